import { describe, expect, test } from "bun:test";
import { withMac } from "../../src/core/session-crypto.ts";
import { nameKey } from "../../src/protocol/names.ts";
import { notices } from "../../src/text/notices.ts";
import { testCrypto } from "../helpers/identities.ts";
import { registeredNetwork, SERVER_ADDRESS } from "../helpers/simulated-network.ts";

/**
 * x died silently; y's message for x goes to the server, which probes x. Someone at x's
 * address (a process that took x's port, or a spoofer that sees the probe) answers each
 * probe: `mac` says how.
 */
function probesAnsweredFromXsAddress(mac: "none" | "forged" | "x's session key"): {
  shown: string[];
  unauthenticated: number;
} {
  const network = registeredNetwork(["x", "y"]);
  const [x, y] = [network.client("x"), network.client("y")];
  x.kill();
  const mark = y.shown().length;
  y.type("send x hello");
  const answered = new Set<number>();
  for (let ms = 0; ms < 1_500; ms += 10) {
    network.advance(10);
    for (const probe of network.sentBy("server", "probe")) {
      const id = probe.message.id;
      if (probe.to !== "x" || answered.has(id)) continue;
      answered.add(id);
      const key = network.server.clients.get(nameKey("x"))?.sessionKey;
      const ack = { type: "ack" as const, id };
      const answer =
        mac === "none"
          ? ack
          : mac === "forged"
            ? { ...ack, mac: "A".repeat(22) }
            : withMac(testCrypto, key ?? new Uint8Array(32), ack);
      network.inject(x.address, SERVER_ADDRESS, answer);
    }
  }
  network.settle();
  expect(answered.size).toBeGreaterThan(0);
  return { shown: y.shownSince(mark), unauthenticated: network.server.drops.unauthenticated };
}

describe("an ack of a probe counts only with the client's MAC", () => {
  test("acks without it, or with a forged one, do not keep a dead client alive", () => {
    for (const mac of ["none", "forged"] as const) {
      const { shown, unauthenticated } = probesAnsweredFromXsAddress(mac);
      expect(unauthenticated).toBeGreaterThan(0);
      expect(shown).toEqual([
        notices.noAckSentToServer("x"),
        notices.tableUpdated,
        notices.savedByServer,
      ]);
    }
  });

  test("the same acks with x's MAC would (the test of the test)", () => {
    expect(probesAnsweredFromXsAddress("x's session key").shown).toContain(
      notices.clientExists("x"),
    );
  });
});
