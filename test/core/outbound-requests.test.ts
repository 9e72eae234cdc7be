import { describe, expect, test } from "bun:test";
import {
  type Datagram,
  OutboundRequests,
  type RetryPolicy,
} from "../../src/core/outbound-requests.ts";
import { timing } from "../../src/core/timing.ts";
import type { Address } from "../../src/protocol/messages.ts";

const probe: RetryPolicy = {
  resendEveryMs: timing.probeResendEveryMs,
  deadlineMs: timing.ackWaitMs,
};
const push: RetryPolicy = {
  resendEveryMs: timing.pushResendEveryMs,
  deadlineMs: timing.pushDeadlineMs,
  lane: "main",
};
const member = (port: number): Address => ({ ip: "127.0.0.1", port });

/** Runs the requests' clock from `from` to `to`, waking exactly when they ask to. */
function run(requests: OutboundRequests<string>, from: number, to: number) {
  const sends: { at: number; id: number }[] = [];
  const expired: { at: number; id: number }[] = [];
  let now = from;
  for (;;) {
    const wake = requests.nextWakeAt();
    if (wake === undefined || wake > to) break;
    expect(wake).toBeGreaterThanOrEqual(now);
    now = wake;
    const out: Datagram[] = [];
    for (const request of requests.advance(now, out)) expired.push({ at: now, id: request.id });
    for (const datagram of out) sends.push({ at: now, id: datagram.message.id });
  }
  return { sends, expired };
}

describe("OutboundRequests", () => {
  test("a probe is sent every 100 ms and given up at 500 ms", () => {
    const requests = new OutboundRequests<string>({ main: 64 });
    const out: Datagram[] = [];
    requests.add(7, member(1), { type: "probe", id: 7 }, "p", probe, 1000, out);
    expect(out).toEqual([{ to: member(1), message: { type: "probe", id: 7 } }]);
    const { sends, expired } = run(requests, 1000, 10_000);
    expect(sends).toEqual([
      { at: 1100, id: 7 },
      { at: 1200, id: 7 },
      { at: 1300, id: 7 },
      { at: 1400, id: 7 },
    ]);
    expect(expired).toEqual([{ at: 1500, id: 7 }]);
    expect(requests.outstanding).toBe(0);
    expect(requests.nextWakeAt()).toBeUndefined();
  });

  test("a push is sent every 500 ms and given up at 3000 ms", () => {
    const requests = new OutboundRequests<string>({ main: 64 });
    requests.add(1, member(1), { type: "ack", id: 1 }, "t", push, 0, []);
    const { sends, expired } = run(requests, 0, 10_000);
    expect(sends.map((s) => s.at)).toEqual([500, 1000, 1500, 2000, 2500]);
    expect(expired).toEqual([{ at: 3000, id: 1 }]);
  });

  test("a late tick sends once, not once per missed period", () => {
    const requests = new OutboundRequests<string>({ main: 64 });
    requests.add(1, member(1), { type: "ack", id: 1 }, "t", push, 0, []);
    const out: Datagram[] = [];
    expect(requests.advance(1700, out)).toEqual([]);
    expect(out).toHaveLength(1);
    expect(requests.nextWakeAt()).toBe(2200);
  });

  test("an ack ends the request; only from the address it went to", () => {
    const requests = new OutboundRequests<string>({ main: 64 });
    requests.add(1, member(1), { type: "probe", id: 1 }, "p", probe, 0, []);
    expect(requests.acknowledge(1, member(2), 10, [])).toBeUndefined();
    expect(requests.acknowledge(1, { ip: "::ffff:127.0.0.1", port: 1 }, 10, [])?.purpose).toBe("p");
    expect(requests.has(1)).toBe(false);
    expect(requests.acknowledge(1, member(1), 11, [])).toBeUndefined();
    expect(run(requests, 11, 10_000)).toEqual({ sends: [], expired: [] });
  });

  test("never more than `window` windowed requests in flight; the rest wait their turn in order", () => {
    const window = 5;
    const requests = new OutboundRequests<string>({ main: window });
    const out: Datagram[] = [];
    for (let id = 0; id < 20; id++) {
      requests.add(id, member(id), { type: "ack", id }, `m${id}`, push, 0, out);
    }
    // A probe is never held back by the window.
    requests.add(100, member(100), { type: "probe", id: 100 }, "probe", probe, 0, out);
    expect(out.map((d) => d.message.id)).toEqual([0, 1, 2, 3, 4, 100]);
    expect(requests.outstanding).toBe(21);
    expect(requests.acknowledge(7, member(7), 1, [])).toBeUndefined();

    const launched: number[] = [];
    let inFlight = new Set([0, 1, 2, 3, 4]);
    for (let now = 1; inFlight.size > 0; now++) {
      const [oldest] = inFlight;
      if (oldest === undefined) break;
      const next: Datagram[] = [];
      expect(requests.acknowledge(oldest, member(oldest), now, next)?.id).toBe(oldest);
      inFlight.delete(oldest);
      for (const datagram of next) {
        launched.push(datagram.message.id);
        inFlight.add(datagram.message.id);
      }
      expect(inFlight.size).toBeLessThanOrEqual(window);
      inFlight = new Set([...inFlight].sort((a, b) => a - b));
    }
    expect(launched).toEqual([5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    expect(requests.outstanding).toBe(1);
  });

  test("a request that waited gets its full deadline from when it is sent", () => {
    const requests = new OutboundRequests<string>({ main: 1 });
    requests.add(1, member(1), { type: "ack", id: 1 }, "first", push, 0, []);
    requests.add(2, member(2), { type: "ack", id: 2 }, "second", push, 0, []);
    const { sends, expired } = run(requests, 0, 100_000);
    expect(expired).toEqual([
      { at: 3000, id: 1 },
      { at: 6000, id: 2 },
    ]);
    expect(sends.filter((s) => s.id === 2).map((s) => s.at)).toEqual([
      3000, 3500, 4000, 4500, 5000, 5500,
    ]);
  });

  test("expiry frees the window for the next waiting request", () => {
    const requests = new OutboundRequests<string>({ main: 2 });
    for (let id = 1; id <= 5; id++)
      requests.add(id, member(id), { type: "ack", id }, "x", push, 0, []);
    const { expired } = run(requests, 0, 100_000);
    expect(expired.map((e) => [e.at, e.id])).toEqual([
      [3000, 1],
      [3000, 2],
      [6000, 3],
      [6000, 4],
      [9000, 5],
    ]);
    expect(requests.outstanding).toBe(0);
  });

  test("thousands of waiting requests drain completely (the queue compacts)", () => {
    const requests = new OutboundRequests<string>({ main: 64 });
    for (let id = 0; id < 5000; id++)
      requests.add(id, member(id), { type: "ack", id }, "x", push, 0, []);
    let acked = 0;
    for (let id = 0; id < 5000; id++) {
      if (requests.acknowledge(id, member(id), 1, [])) acked++;
      expect(requests.outstanding).toBe(5000 - acked);
    }
    expect(acked).toBe(5000);
    expect(requests.nextWakeAt()).toBeUndefined();
  });
});
