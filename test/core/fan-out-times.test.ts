import { describe, expect, test } from "bun:test";
import { withMac } from "../../src/core/session-crypto.ts";
import { stepServer } from "../../src/core/step-server.ts";
import { encodeMessage } from "../../src/protocol/codec.ts";
import { testCrypto } from "../helpers/identities.ts";
import { registeredNetwork } from "../helpers/simulated-network.ts";

describe("fan-out times (for the metrics)", () => {
  test("from the deliveries going out to the last member's ack: one time per post", () => {
    const network = registeredNetwork(["x", "y", "z"]);
    network.server.fanOutTimes.length = 0;
    network.setFaults({ delayMinMs: 20, delayMaxMs: 20 });
    network.client("x").type("send_all hello");
    network.settle();
    // Out at once on arrival (the store commits at once here), 20 ms there and 20 back.
    expect(network.server.fanOutTimes).toEqual([40]);
  });

  test("a member that never answers ends the fan-out with its verdict (stored, at 1000 ms)", () => {
    const network = registeredNetwork(["x", "y", "z"]);
    network.server.fanOutTimes.length = 0;
    network.client("y").kill();
    network.client("x").type("send_all roll call");
    network.settle();
    expect(network.server.fanOutTimes).toEqual([1000]);
    expect(network.server.clients.get("y")?.online).toBe(false);
  });

  test("a post with no member online to deliver to live is no fan-out", () => {
    const network = registeredNetwork(["x", "y"]);
    network.client("y").type("dereg y");
    network.settle();
    network.server.fanOutTimes.length = 0;
    network.client("x").type("send_all anyone?");
    network.settle();
    expect(network.server.activity.channelPosts).toBe(1);
    expect(network.server.fanOutTimes).toEqual([]);
  });

  test("it starts when the commit lets the deliveries go, not when the post arrived", () => {
    const network = registeredNetwork(["x", "y"]);
    const server = network.server;
    server.fanOutTimes.length = 0;
    const x = network.client("x");
    const y = network.client("y");
    const sid = x.state.token ?? "";
    const key = x.state.sessionKey;
    if (!key) throw new Error("x has no session");
    const arrivedAt = network.now;
    const post = encodeMessage(
      withMac(testCrypto, key, { type: "channel", id: 4242, sid, text: "slow disk" }),
    );
    const held = stepServer(server, { kind: "datagram", from: x.address, bytes: post }, arrivedAt);
    const persist = held.find((effect) => effect.kind === "persist");
    expect(held.filter((effect) => effect.kind === "send")).toEqual([]);
    if (persist?.kind !== "persist") throw new Error("the post was not persisted");

    const released = stepServer(
      server,
      { kind: "committed", commits: [persist.commit] },
      arrivedAt + 50,
    );
    const delivery = released.find(
      (effect) => effect.kind === "send" && effect.message.type === "channel-message",
    );
    if (delivery?.kind !== "send") throw new Error("no delivery went out with the commit");
    const yKey = y.state.sessionKey;
    if (!yKey) throw new Error("y has no session");
    // An ack counts only under the member's session key: no one else can end its wait.
    const ack = encodeMessage(withMac(testCrypto, yKey, { type: "ack", id: delivery.message.id }));
    stepServer(server, { kind: "datagram", from: y.address, bytes: ack }, arrivedAt + 80);
    expect(server.fanOutTimes).toEqual([30]);
  });
});
