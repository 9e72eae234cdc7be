import { describe, expect, test } from "bun:test";
import { DropLog, dropsBetween, formatAddress } from "../../src/io/drop-log.ts";
import { createServerLog, formatLogLine, type LogStream } from "../../src/io/server-log.ts";

function stream(isTTY: boolean): LogStream & { readonly text: () => string } {
  const chunks: string[] = [];
  return { write: (chunk: string) => chunks.push(chunk), isTTY, text: () => chunks.join("") };
}

const ISO_LINE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z (INFO|WARN|ERROR|DEBUG) .+$/;

describe("formatLogLine", () => {
  const at = new Date("2026-11-30T15:04:05.123Z");

  test("in a file or a pipe: ISO-8601 UTC to the millisecond, the level, the text", () => {
    expect(formatLogLine(at, "info", "a1 registered from 127.0.0.1:6101", false)).toBe(
      "2026-11-30T15:04:05.123Z INFO a1 registered from 127.0.0.1:6101",
    );
  });

  test("in a terminal: a short local time at the start of the line", () => {
    const local = new Date(2026, 10, 30, 9, 4, 5, 123);
    expect(formatLogLine(local, "warn", "x", true)).toBe("09:04:05 WARN x");
  });

  test("one event stays one line, and nothing in it can drive a terminal", () => {
    expect(formatLogLine(at, "info", "a\nb\u001b[31m", false)).toBe(
      "2026-11-30T15:04:05.123Z INFO a\\x0Ab\\x1B[31m",
    );
  });
});

describe("createServerLog", () => {
  test("info and debug to out, warnings and errors to err, each line timed", () => {
    const out = stream(false);
    const err = stream(false);
    const log = createServerLog({ level: "verbose", out, err });
    log.info("one");
    log.debug("two");
    log.warn("three");
    log.error("four");
    const outLines = out.text().split("\n");
    expect(outLines.pop()).toBe("");
    expect(outLines.map((line) => line.replace(/^\S+ /, ""))).toEqual(["INFO one", "DEBUG two"]);
    const errLines = err.text().split("\n");
    expect(errLines.pop()).toBe("");
    expect(errLines.map((line) => line.replace(/^\S+ /, ""))).toEqual(["WARN three", "ERROR four"]);
    for (const line of [...outLines, ...errLines]) expect(line).toMatch(ISO_LINE);
  });

  test("the level decides: normal leaves out debug, quiet keeps only warnings and errors", () => {
    const normal = stream(false);
    const normalLog = createServerLog({ level: "normal", out: normal, err: normal });
    normalLog.debug("hidden");
    normalLog.info("shown");
    expect(normal.text()).toMatch(/^\S+ INFO shown\n$/);

    const quiet = stream(false);
    const quietLog = createServerLog({ level: "quiet", out: quiet, err: quiet });
    quietLog.info("hidden");
    quietLog.warn("shown");
    expect(quiet.text()).toMatch(/^\S+ WARN shown\n$/);
  });

  test("repeated lines are all written, and the text is not rewritten", () => {
    const out = stream(true);
    const log = createServerLog({ level: "normal", out, err: out });
    for (let i = 0; i < 5; i++) log.info("saved `x` for _y_");
    const lines = out.text().trimEnd().split("\n");
    expect(lines).toHaveLength(5);
    for (const line of lines) expect(line).toMatch(/^\d{2}:\d{2}:\d{2} INFO saved `x` for _y_$/);
  });

  test("a reader that went away does not stop the server", () => {
    const broken: LogStream = {
      write: () => {
        throw new Error("EPIPE");
      },
    };
    const log = createServerLog({ level: "normal", out: broken, err: broken });
    expect(() => log.info("x")).not.toThrow();
  });
});

describe("DropLog", () => {
  const from = { ip: "::ffff:127.0.0.1", port: 6101 };

  function harness() {
    const lines: string[] = [];
    const timers: { at: number; run: () => void }[] = [];
    let clock = 0;
    const drops = new DropLog({
      write: (text) => lines.push(text),
      linesPerWindow: 3,
      windowMs: 1000,
      schedule: (ms, run) => timers.push({ at: clock + ms, run }),
    });
    const advanceTo = (now: number) => {
      clock = now;
      for (const timer of timers.filter((t) => t.at <= now)) {
        timers.splice(timers.indexOf(timer), 1);
        timer.run();
      }
    };
    return { lines, drops, advanceTo, now: () => clock, timers };
  }

  test("each drop as it arrives: source, size, reason", () => {
    const h = harness();
    h.drops.record(from, 17, "malformed", 0);
    h.drops.record({ ip: "::1", port: 7 }, 40_000, "oversized", 1);
    h.drops.record(from, 90, "rateLimited", 2);
    expect(h.lines).toEqual([
      "dropped a datagram from 127.0.0.1:6101 (17 bytes): malformed",
      "dropped a datagram from [::1]:7 (40000 bytes): oversized or truncated",
      "dropped a datagram from 127.0.0.1:6101 (90 bytes): over the rate limit",
    ]);
  });

  test("a flood: the first lines of each window, then one summary when it ends", () => {
    const h = harness();
    for (let i = 0; i < 1000; i++) {
      h.drops.record(from, 10, i % 2 === 0 ? "malformed" : "rateLimited", i / 10);
    }
    expect(h.lines).toHaveLength(3);
    h.advanceTo(999);
    expect(h.lines).toHaveLength(3);
    h.advanceTo(1000);
    expect(h.lines).toHaveLength(4);
    expect(h.lines[3]).toBe(
      "dropped 997 more datagrams without a line each: 499 over the rate limit, 498 malformed",
    );
    // The next window starts afresh.
    h.drops.record(from, 10, "unexpected", 1500);
    expect(h.lines[4]).toBe("dropped a datagram from 127.0.0.1:6101 (10 bytes): unexpected");
  });

  test("a flood that goes on: each window summed up once, at its end or by the next drop", () => {
    const h = harness();
    for (let now = 0; now < 3000; now += 1) {
      h.advanceTo(now);
      h.drops.record(from, 10, "unauthenticated", now);
    }
    h.advanceTo(3000);
    const summaries = h.lines.filter((line) => line.startsWith("dropped 997 more"));
    expect(summaries).toHaveLength(3);
    expect(h.lines).toHaveLength(3 * 4);
    h.drops.flush();
    expect(h.lines).toHaveLength(12);
  });

  test("flush writes what a stopping server has not yet summed up", () => {
    const h = harness();
    for (let i = 0; i < 5; i++) h.drops.record(from, 10, "malformed", 0);
    h.drops.flush();
    expect(h.lines.at(-1)).toBe("dropped 2 more datagrams without a line each: 2 malformed");
  });
});

test("dropsBetween: one reason per datagram counted", () => {
  const before = { malformed: 1, unauthenticated: 0, unexpected: 5, rateLimited: 0, replayed: 0 };
  const after = { malformed: 3, unauthenticated: 0, unexpected: 5, rateLimited: 1, replayed: 2 };
  expect(dropsBetween(before, after)).toEqual([
    "malformed",
    "malformed",
    "rateLimited",
    "replayed",
    "replayed",
  ]);
  expect(dropsBetween(after, after)).toEqual([]);
});

test("formatAddress: IPv4 as is (also when mapped), IPv6 in brackets", () => {
  expect(formatAddress({ ip: "127.0.0.1", port: 1 })).toBe("127.0.0.1:1");
  expect(formatAddress({ ip: "::ffff:127.0.0.1", port: 1 })).toBe("127.0.0.1:1");
  expect(formatAddress({ ip: "::1", port: 1 })).toBe("[::1]:1");
});
