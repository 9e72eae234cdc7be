import { describe, expect, test } from "bun:test";
import { nameKey } from "../../src/protocol/names.ts";
import { notices } from "../../src/text/notices.ts";
import { identityFor } from "../helpers/identities.ts";
import { type SimClient, SimulatedNetwork } from "../helpers/simulated-network.ts";

/*
 * Three server nodes sharing one chat through a shared store and log (Redis in the real
 * shell), with x, y and z each at a different node: SPEC's flows must look exactly as
 * they do with one server.
 */

const TABLE_UPDATED = "[Client table updated.]";
const SAVED = "[Messages received by the server and saved]";
const YOU_HAVE_MESSAGES = "[You have messages]";
const NODES = ["a", "b", "c"] as const;

function cluster(): { network: SimulatedNetwork; x: SimClient; y: SimClient; z: SimClient } {
  const network = new SimulatedNetwork({ nodes: NODES });
  const x = network.addClient("x", { node: "a" });
  const y = network.addClient("y", { node: "b" });
  const z = network.addClient("z", { node: "c" });
  network.settle();
  for (const client of [x, y, z]) {
    expect(client.state.phase).toBe("online");
    // In order of first registration as each node learned of it: the same entries, not always the same order.
    expect(client.state.table.map((entry) => `${entry.name} ${entry.online}`).sort()).toEqual([
      "x true",
      "y true",
      "z true",
    ]);
  }
  return { network, x, y, z };
}

function onlineIn(network: SimulatedNetwork, node: string, name: string): boolean | undefined {
  return network.node(node).clients.get(nameKey(name))?.online;
}

describe("a cluster of three nodes", () => {
  test("every node's clients see one table, and chat directly across nodes", () => {
    const { network, x, y } = cluster();
    const mark = y.shown().length;
    x.type("send y hello from a");
    network.settle();
    expect(y.shownSince(mark)).toEqual([expect.stringMatching(/^x: .*hello from a$/)]);
    expect(x.shown().at(-1)).toBe("[Message received by y.]");
    for (const node of NODES) {
      expect([...network.node(node).clients.values()].map((c) => c.node).sort()).toEqual([
        ...NODES,
      ]);
    }
  });

  test("dereg at one node reaches the others' clients, and a save for it is delivered at its node", () => {
    const { network, x, y, z } = cluster();
    const xMark = x.shown().length;
    const zMark = z.shown().length;
    y.type("dereg y");
    network.settle();
    expect(y.shown().at(-1)).toBe("[You are Offline. Bye.]");
    expect(x.shownSince(xMark)).toEqual([TABLE_UPDATED]);
    expect(z.shownSince(zMark)).toEqual([TABLE_UPDATED]);
    for (const node of NODES) expect(onlineIn(network, node, "y")).toBe(false);

    x.type("send y kept for you at node b");
    network.settle();
    expect(x.shown().at(-1)).toBe(SAVED);
    expect(network.store.load().messages.map((m) => m.recipient)).toEqual(["y"]);

    const yMark = y.shown().length;
    y.type("reg y");
    network.settle();
    const shown = y.shownSince(yMark);
    expect(shown).toContain(YOU_HAVE_MESSAGES);
    expect(shown.filter((line) => line.endsWith("kept for you at node b"))).toHaveLength(1);
    expect(network.store.load().messages).toEqual([]);
    for (const node of NODES) {
      expect(network.node(node).mailboxes.size).toBe(0);
      expect(onlineIn(network, node, "y")).toBe(true);
    }
  });

  test("send_all reaches members at every node, each acks its own node, and no copy stays stored", () => {
    const { network, x, y, z } = cluster();
    const [yMark, zMark] = [y.shown().length, z.shown().length];
    x.type("send_all to everyone everywhere");
    network.settle();
    expect(x.shown().at(-1)).toBe("[Message received by Server.]");
    expect(y.shownSince(yMark)).toEqual([notices.channelMessage("x", "to everyone everywhere")]);
    expect(z.shownSince(zMark)).toEqual([notices.channelMessage("x", "to everyone everywhere")]);
    expect(network.store.load().messages).toEqual([]);
    for (const node of NODES) expect(network.node(node).mailboxes.size).toBe(0);
    // y and z were sent the post by their own nodes, not by x's.
    const postSenders = network.sent
      .filter((d) => d.message.type === "channel-message")
      .map((d) => `${d.from}>${d.to}`);
    expect(new Set(postSenders)).toEqual(new Set(["b>y", "c>z"]));
  });

  test("a channel member gone silent at another node gets the post stored, delivered on its return", () => {
    const { network, x, y } = cluster();
    y.kill();
    const mark = x.shown().length;
    x.type("send_all while y is away");
    network.settle();
    // Acknowledged once stored; the table saying y is gone follows (SPEC §6).
    expect(x.shownSince(mark)).toEqual(["[Message received by Server.]", TABLE_UPDATED]);
    for (const node of NODES) expect(onlineIn(network, node, "y")).toBe(false);
    expect(network.store.load().messages.map((m) => `${m.recipient} ${m.kind}`)).toEqual([
      "y channel",
    ]);
    const again = network.addClient("y", { node: "c" });
    network.settle();
    expect(again.shown()).toContain(YOU_HAVE_MESSAGES);
    expect(again.shown().filter((line) => line.endsWith("while y is away"))).toHaveLength(1);
    expect(network.store.load().messages).toEqual([]);
  });

  test("a save for a client online at another node: its node checks it; alive means exists!!", () => {
    const { network, x, y } = cluster();
    const dropChats = network.drop((d) => d.message.type === "chat" && d.to === "y");
    const mark = x.shown().length;
    x.type("send y lost on the way");
    network.settle();
    dropChats();
    expect(x.shownSince(mark)).toEqual([
      notices.noAckSentToServer("y"),
      notices.clientExists("y"),
      TABLE_UPDATED,
    ]);
    // The probe went from y's own node, b, asked by a through the shared log.
    expect(network.sentBy("b", "probe").map((d) => d.to)).toEqual(["y"]);
    expect(network.sentBy("a", "probe")).toEqual([]);
    expect(y.state.phase).toBe("online");
    expect(network.store.load().messages).toEqual([]);
  });

  test("a save for a client gone silent at another node is stored once its node finds it gone", () => {
    const { network, x, y } = cluster();
    y.kill();
    const mark = x.shown().length;
    x.type("send y are you there");
    network.settle();
    // SPEC §5: marked offline, the table pushed, then stored and acknowledged.
    expect(x.shownSince(mark)).toEqual([notices.noAckSentToServer("y"), TABLE_UPDATED, SAVED]);
    for (const node of NODES) expect(onlineIn(network, node, "y")).toBe(false);
    expect(network.store.load().messages.map((m) => m.recipient)).toEqual(["y"]);
  });

  test("a name online at one node is refused at another while its holder answers", () => {
    const { network, y } = cluster();
    const impostor = network.addClient("y", { label: "y2", node: "a" });
    network.settle();
    expect(impostor.shown()).toContain(notices.nameTaken("y"));
    expect(impostor.exitCode).toBe(1);
    expect(y.state.phase).toBe("online");
    for (const node of NODES) expect(network.node(node).clients.get("y")?.node).toBe("b");
  });

  test("the same user starting again at another node takes its name over once the old process is gone", () => {
    const { network, y } = cluster();
    y.kill();
    const again = network.addClient("y", { label: "y-again", node: "c" });
    network.settle();
    expect(again.state.phase).toBe("online");
    for (const node of NODES) expect(network.node(node).clients.get("y")?.node).toBe("c");
    expect(network.claims.get("y")).toBe("c");
  });

  test("two nodes giving one free name away at the same moment: exactly one wins", () => {
    const network = new SimulatedNetwork({ nodes: NODES });
    // Two different people: both nodes see the name unbound, the claim decides.
    const first = network.addClient("w", { label: "w-at-a", node: "a" });
    const second = network.addClient("w", {
      label: "w-at-b",
      node: "b",
      identity: identityFor("someone else"),
    });
    network.settle();
    const online = [first, second].filter((client) => client.state.phase === "online");
    expect(online).toHaveLength(1);
    const loser = first.state.phase === "online" ? second : first;
    expect(loser.shown()).toContain(notices.nameTaken("w"));
    const winnerNode = online[0] === first ? "a" : "b";
    for (const node of NODES) expect(network.node(node).clients.get("w")?.node).toBe(winnerNode);
  });

  test("a node that dies: another takes it over, its clients go offline everywhere, messages for them are kept", () => {
    const { network, x, y, z } = cluster();
    network.crashServer("b");
    y.kill();
    const zMark = z.shown().length;
    network.takeOver("b", "c");
    network.settle();
    expect(z.shownSince(zMark)).toEqual([TABLE_UPDATED]);
    expect(onlineIn(network, "a", "y")).toBe(false);
    expect(onlineIn(network, "c", "y")).toBe(false);
    expect(network.claims.has("y")).toBe(false);

    x.type("send y after your node died");
    network.settle();
    expect(x.shown().at(-1)).toBe(SAVED);

    const again = network.addClient("y", { label: "y-again", node: "a" });
    network.settle();
    expect(again.shown()).toContain(YOU_HAVE_MESSAGES);
    expect(again.shown().filter((line) => line.endsWith("after your node died"))).toHaveLength(1);
  });

  test("a post acknowledged while a member's node dies mid-fan-out reaches that member exactly once", () => {
    const { network, x, y } = cluster();
    // b dies before it can deliver: the copy for y stays in the shared store.
    network.crashServer("b");
    y.kill();
    x.type("send_all before the takeover");
    network.settle();
    expect(x.shown().at(-1)).toBe("[Message received by Server.]");
    network.takeOver("b", "a");
    network.settle();
    const again = network.addClient("y", { label: "y-again", node: "c" });
    network.settle();
    expect(again.shown().filter((line) => line.endsWith("before the takeover"))).toHaveLength(1);
    expect(network.store.load().messages).toEqual([]);
  });

  test("stored-message ids made at different nodes never collide and follow the order of receipt", () => {
    const { network, x, y, z } = cluster();
    y.type("dereg y");
    network.settle();
    for (let round = 0; round < 3; round++) {
      x.type(`send y from x ${round}`);
      z.type(`send y from z ${round}`);
      network.settle();
    }
    const stored = network.store.load().messages;
    expect(new Set(stored.map((m) => m.id)).size).toBe(6);
    const byId = [...stored].sort((p, q) => p.id - q.id).map((m) => m.receivedAt);
    expect(byId).toEqual([...byId].sort((p, q) => p - q));
    const mark = y.shown().length;
    y.type("reg y");
    network.settle();
    const texts = y.shownSince(mark).filter((line) => line.includes(" from "));
    expect(texts).toHaveLength(6);
  });

  test("a name that cannot be claimed (Redis away) is refused with store-failed, not remembered, and given once Redis is back", () => {
    const { network, y } = cluster();
    y.type("dereg y");
    network.settle();
    network.claimsFail = true;
    const mark = y.shown().length;
    y.type("reg y");
    network.settle();
    expect(y.shownSince(mark)).toEqual([notices.storeFailed]);
    network.claimsFail = false;
    y.type("reg y");
    network.settle();
    expect(y.state.phase).toBe("online");
    expect(network.claims.get("y")).toBe("b");
  });

  test("a node too slow to answer for its client: the asker counts it gone, and the client, told so by its own node, registers again and gets the message", () => {
    // The log takes 2 s each way: longer than a node waits for another's verdict.
    const network = new SimulatedNetwork({ nodes: NODES, logDelayMs: 2_000 });
    const x = network.addClient("x", { node: "a" });
    const y = network.addClient("y", { node: "b" });
    network.settle();
    expect(y.state.phase).toBe("online");
    const dropChats = network.drop((d) => d.message.type === "chat" && d.to === "y");
    x.type("send y through a slow cluster");
    network.settle();
    dropChats();
    expect(x.shown()).toContain(SAVED);
    // b learned that y was marked offline, told y, and y came back and got the message.
    expect(y.state.phase).toBe("online");
    expect(y.shown().filter((line) => line.endsWith("through a slow cluster"))).toHaveLength(1);
    for (const node of NODES) expect(onlineIn(network, node, "y")).toBe(true);
    expect(network.store.load().messages).toEqual([]);
  });
});
