import { describe, expect, test } from "bun:test";
import {
  CHANNEL_BUSY_ABOVE,
  SERVER_LANES,
  SWEEP_PARTS_BESIDE_CHANNEL,
  TABLE_PARTS_IN_FLIGHT,
} from "../../src/core/timing.ts";
import { SimulatedNetwork } from "../helpers/simulated-network.ts";
import { LONG_TEST_TIMEOUT_MS } from "../helpers/timeouts.ts";

const MEMBERS = 1_000;
const names = Array.from({ length: MEMBERS }, (_, index) => `m${String(index).padStart(4, "0")}`);

/** Follows the server's own requests on the wire: sent (first time) until the server gets their ack. */
function watchServerRequests(network: SimulatedNetwork) {
  const windowed = new Set<number>();
  const probes = new Set<number>();
  const peak = { windowed: 0, probes: 0 };
  network.serverSteps.push((record) => {
    if (record.received?.type === "ack") {
      windowed.delete(record.received.id);
      probes.delete(record.received.id);
    }
    for (const effect of record.effects) {
      if (effect.kind !== "send") continue;
      const { type, id } = effect.message;
      if (type === "table" || type === "channel-message") windowed.add(id);
      if (type === "probe") probes.add(id);
    }
    peak.windowed = Math.max(peak.windowed, windowed.size);
    peak.probes = Math.max(peak.probes, probes.size);
  });
  return peak;
}

describe(`fan-out to ${MEMBERS} members`, () => {
  for (const loss of [0, 0.01]) {
    test(
      `a channel message reaches every member once, within the send window (loss ${loss})`,
      () => {
        const network = new SimulatedNetwork({ seed: 1000 + loss * 100 });
        const members = network.addRegisteredClients(names);
        network.setFaults({ loss, duplication: 0.02, delayMinMs: 1, delayMaxMs: 40 });
        const peak = watchServerRequests(network);
        const [sender, ...others] = members;
        if (!sender) throw new Error("no members");
        sender.type("send_all hello, everyone");
        network.settle();
        expect(sender.shown()).toEqual(["[Message received by Server.]"]);
        for (const member of others)
          expect(member.shown()).toEqual(["[Channel_Message m0000: hello, everyone]"]);
        expect(network.sentBy("server", "channel-message").length).toBeGreaterThanOrEqual(
          MEMBERS - 1,
        );
        expect(peak.windowed).toBe(SERVER_LANES.channel);
        expect(peak.probes).toBeLessThanOrEqual(MEMBERS * loss);
        expect([...network.server.clients.values()].filter((c) => !c.online)).toEqual([]);
        expect(network.store.load().messages).toEqual([]);
      },
      LONG_TEST_TIMEOUT_MS,
    );
  }

  test(
    "a table push to every member goes out in parts, within the send window",
    () => {
      const network = new SimulatedNetwork({ seed: 7 });
      const members = network.addRegisteredClients(names);
      network.setFaults({ delayMinMs: 1, delayMaxMs: 40 });
      const peak = watchServerRequests(network);
      const newcomer = network.addClient("newcomer");
      network.settle();
      expect(newcomer.shown()).toEqual([
        "[Welcome, You are registered.]",
        "[Client table updated.]",
      ]);
      expect(newcomer.state.table).toHaveLength(MEMBERS + 1);
      for (const member of members) {
        expect(member.shown()).toEqual(["[Client table updated.]"]);
        expect(member.state.table).toHaveLength(MEMBERS + 1);
      }
      const parts = network.sentBy("server", "table")[0]?.message;
      expect(parts?.type === "table" && parts.parts).toBeGreaterThan(1);
      expect(peak.windowed).toBe(SERVER_LANES.table);
      expect(peak.probes).toBe(0);
    },
    LONG_TEST_TIMEOUT_MS,
  );

  test(
    "while a post's copies are out, the sweep starts few table parts; every table catches up after",
    () => {
      const network = new SimulatedNetwork({ seed: 11 });
      const members = network.addRegisteredClients(names);
      network.setFaults({ delayMinMs: 1, delayMaxMs: 40 });
      const [sender, ...others] = members;
      if (!sender) throw new Error("no members");
      const leavers = others.slice(0, 200);
      const stayers = others.slice(200);
      // A push the sweep starts beside the post may send its first parts at once.
      const bound = SWEEP_PARTS_BESIDE_CHANNEL + TABLE_PARTS_IN_FLIGHT - 1;
      const lanes = { drained: false, peakAfterDrain: 0, postSeen: false };
      network.serverSteps.push(() => {
        const outbound = network.server.outbound;
        const channel = outbound.load("channel");
        const table = outbound.load("table").inFlight;
        if (channel.inFlight + channel.waiting <= CHANNEL_BUSY_ABOVE) return;
        lanes.postSeen = true;
        if (table <= bound) lanes.drained = true;
        if (lanes.drained) lanes.peakAfterDrain = Math.max(lanes.peakAfterDrain, table);
      });
      for (const leaver of leavers) leaver.type(`dereg ${leaver.name}`);
      network.advance(30);
      expect(network.server.outbound.load("table").inFlight).toBe(SERVER_LANES.table);
      sender.type("send_all while many leave");
      network.settle();
      expect(lanes).toEqual({
        drained: true,
        peakAfterDrain: lanes.peakAfterDrain,
        postSeen: true,
      });
      expect(lanes.peakAfterDrain).toBeLessThanOrEqual(bound);
      const gone = leavers.map((leaver) => leaver.name).sort();
      for (const member of stayers) {
        expect(member.shown()).toContain("[Channel_Message m0000: while many leave]");
        const offline = member.state.table.filter((entry) => !entry.online);
        expect(offline.map((entry) => entry.name).sort()).toEqual(gone);
      }
    },
    LONG_TEST_TIMEOUT_MS,
  );
  test(
    "registrants that never take their snapshot cannot hold the sweep back while posts keep coming",
    () => {
      const network = new SimulatedNetwork({ seed: 5 });
      const members = network.addRegisteredClients(names);
      network.setFaults({ delayMinMs: 1, delayMaxMs: 10 });
      const [sender, leaver, ...others] = members;
      if (!sender || !leaver) throw new Error("no members");
      // Two names whose table parts and posts never arrive (they still answer probes):
      // each holds TABLE_PARTS_IN_FLIGHT parts of a snapshot until it is given up on.
      const silent = new Set(["s1", "s2"]);
      network.drop(
        (datagram) =>
          datagram.from === "server" &&
          silent.has(datagram.to) &&
          (datagram.message.type === "table" || datagram.message.type === "channel-message"),
      );
      sender.type("send_all post 0");
      network.advance(5);
      for (const name of silent) network.addClient(name);
      network.advance(50);
      leaver.type(`dereg ${leaver.name}`);
      const knowing = () =>
        others.filter((member) =>
          member.state.table.some((entry) => entry.name === leaver.name && !entry.online),
        ).length;
      for (let post = 1; post <= 5; post++) {
        network.advance(300);
        sender.type(`send_all post ${post}`);
      }
      // A post every 300 ms keeps the channel lane busy the whole time.
      expect(knowing()).toBe(others.length);
    },
    LONG_TEST_TIMEOUT_MS,
  );
});
