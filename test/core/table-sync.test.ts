import { describe, expect, test } from "bun:test";
import { publicKeyText } from "../../src/core/session-crypto.ts";
import { TABLE_SMALL_PART_BYTES, timing } from "../../src/core/timing.ts";
import { decodeMessage, encodeMessage } from "../../src/protocol/codec.ts";
import type { TableMessage } from "../../src/protocol/messages.ts";
import { agreementKeyOf, identityFor, newKeyPairs } from "../helpers/identities.ts";
import { registeredNetwork, SimulatedNetwork } from "../helpers/simulated-network.ts";
import { LONG_TEST_TIMEOUT_MS } from "../helpers/timeouts.ts";

const TABLE_UPDATED = "[Client table updated.]";

function tablesSent(network: SimulatedNetwork, since: number): TableMessage[] {
  return network.sent
    .slice(since)
    .filter((d) => d.from === "server")
    .map((d) => d.message)
    .filter((message): message is TableMessage => message.type === "table");
}

describe("the table travels as a change log", () => {
  test(
    "one change costs each online client one small datagram, whatever the table's size",
    () => {
      const network = new SimulatedNetwork();
      const names = Array.from({ length: 1_000 }, (_, i) => `m${i}`);
      const members = network.addRegisteredClients(names);
      const [first] = members;
      if (!first) throw new Error("no members");
      // After the restart that loaded them, the first change brings everyone a snapshot.
      first.type("dereg m0");
      network.settle();
      const mark = network.sent.length;
      first.type("reg m0");
      network.settle();
      // m0 itself held no version of this server (it was loaded, not registered): a snapshot.
      const toOthers = network.sent
        .slice(mark)
        .filter((d) => d.from === "server" && d.to !== "m0" && d.message.type === "table");
      const tables = toOthers.map((d) => d.message as TableMessage);
      // One push per other online client, none sent twice: nothing was lost.
      expect(new Set(tables.map((table) => table.id)).size).toBe(999);
      expect(tables.length).toBe(999);
      for (const table of tables) {
        expect(table.base).toBeDefined();
        expect(table.clients).toHaveLength(1);
        // m0's key has not changed: the delta leaves it out, as the client holds it.
        expect(table.clients[0]).not.toHaveProperty("ak");
        expect(encodeMessage(table).byteLength).toBeLessThanOrEqual(200);
      }
      for (const member of members.slice(1, 5)) {
        expect(member.state.table.find((e) => e.name === "m0")?.online).toBe(true);
        expect(member.state.table).toHaveLength(1_000);
      }
    },
    LONG_TEST_TIMEOUT_MS,
  );

  test("a client no large part reaches (a path that drops fragments) is sent small ones, and gets the whole table", () => {
    const network = new SimulatedNetwork();
    const names = Array.from({ length: 300 }, (_, i) => `m${i}`);
    const members = network.addRegisteredClients(names);
    const [first, far, near] = members;
    if (!first || !far || !near) throw new Error("no members");
    const isLarge = (bytes: Uint8Array) => bytes.byteLength > TABLE_SMALL_PART_BYTES + 512;
    const heal = network.drop(
      (d) => d.to === "m1" && d.message.type === "table" && isLarge(d.bytes),
    );
    // The first change brings everyone a snapshot: 300 entries, one large part of ~34 KB.
    first.type("dereg m0");
    network.settle();
    expect(network.serverLogs).toContain("no large table part reached m1: it is sent small ones");
    expect(far.state.table).toEqual(near.state.table);
    expect(far.state.table.find((entry) => entry.name === "m0")?.online).toBe(false);
    expect(far.shown()).toContain(TABLE_UPDATED);
    const toNear = network.sent.filter((d) => d.to === "m2" && d.message.type === "table");
    expect(toNear.some((d) => isLarge(d.bytes))).toBe(true);
    // Its next pushes are small from the start: nothing more is lost, nothing waits.
    const mark = network.sent.length;
    first.type("reg m0");
    network.settle();
    const later = network.sent
      .slice(mark)
      .filter((d) => d.to === "m1" && d.message.type === "table");
    expect(later.length).toBeGreaterThan(0);
    expect(later.some((d) => isLarge(d.bytes))).toBe(false);
    expect(far.state.table.find((entry) => entry.name === "m0")?.online).toBe(true);
    // A new session starts with large parts again (one silence is not a path that drops them).
    expect(network.node("server").clients.get("m1")?.smallParts).toBe(true);
    heal();
    far.type("dereg m1");
    network.settle();
    far.type("reg m1");
    network.settle();
    expect(network.node("server").clients.get("m1")?.smallParts).toBe(false);
  });

  test("a client back from a dereg gets only what changed, each entry once", () => {
    const network = registeredNetwork(["x", "y", "z"]);
    const [x, y, z] = [network.client("x"), network.client("y"), network.client("z")];
    x.type("dereg x");
    network.settle();
    for (let round = 0; round < 5; round++) {
      y.type("dereg y");
      network.settle();
      y.type("reg y");
      network.settle();
    }
    z.type("dereg z");
    network.settle();
    const mark = network.sent.length;
    x.type("reg x");
    network.settle();
    const toX = network.sent
      .slice(mark)
      .filter((d) => d.from === "server" && d.to === "x" && d.message.type === "table");
    expect(toX).toHaveLength(1);
    const push = toX[0]?.message as TableMessage;
    expect(push.base).toBeDefined();
    expect(push.clients.map((c) => c.name).sort()).toEqual(["x", "y", "z"]);
    expect(x.state.table.map((e) => `${e.name}:${e.online}`)).toEqual([
      "x:true",
      "y:true",
      "z:false",
    ]);
    expect(x.state.tableVersion).toBe(network.server.table.version);
  });

  test(
    "a client far behind and a newcomer get shared pieces, and end with the server's table",
    () => {
      const names = Array.from({ length: 320 }, (_, i) => `p${i}`);
      const network = registeredNetwork(["x", "y"]);
      const x = network.client("x");
      x.type("dereg x");
      network.settle();
      // More registrations than a delta is built for one client: x is far behind.
      for (const name of names) network.addClient(name);
      network.settle();
      // A few go offline after the snapshot a newcomer will be given.
      for (const name of names.slice(0, 5)) network.client(name).type(`dereg ${name}`);
      network.settle();
      const expected = network.server.table.version;
      const seen = (client: { state: { table: readonly { name: string; online: boolean }[] } }) =>
        client.state.table.map((e) => `${e.name}:${e.online}`).sort();
      const mark = network.sent.length;
      const xShown = x.shown().length;
      x.type("reg x");
      network.settle();
      const toX = tablesSent(network, mark).filter((t) => t.base !== undefined);
      // One push, in parts: the head built for x and the shared pieces.
      expect(toX.length).toBeGreaterThan(1);
      expect(new Set(toX.map((t) => t.parts)).size).toBe(1);
      expect(x.shownSince(xShown).filter((line) => line === TABLE_UPDATED)).toHaveLength(1);
      expect(x.state.tableVersion).toBe(expected + 1);
      const server = () =>
        [...network.server.clients.values()].map((c) => `${c.name}:${c.online}`).sort();
      expect(seen(x)).toEqual(server());
      const newcomer = network.addClient("newcomer");
      network.settle();
      expect(seen(newcomer)).toEqual(server());
      expect(seen(newcomer)).toContain("p0:false");
      expect(newcomer.shown().filter((line) => line === TABLE_UPDATED)).toHaveLength(1);
      expect(newcomer.state.tableVersion).toBe(network.server.table.version);
    },
    LONG_TEST_TIMEOUT_MS,
  );

  test("a client that cannot apply a delta says what it holds, and gets what it lacks", () => {
    const network = registeredNetwork(["x", "y"]);
    const [x, y] = [network.client("x"), network.client("y")];
    const held = x.state.tableVersion ?? 0;
    // x lost track (as after a bug or a lost snapshot part): it holds an older version.
    x.state.tableVersion = held - 1;
    x.state.table = x.state.table.filter((entry) => entry.name !== "y");
    const mark = x.shown().length;
    y.type("dereg y");
    network.settle();
    expect(x.state.table.map((e) => `${e.name}:${e.online}`)).toEqual(["x:true", "y:false"]);
    expect(x.state.tableVersion).toBe(network.server.table.version);
    expect(x.shownSince(mark)).toContain(TABLE_UPDATED);
  });

  test("changes made while a push is out are gathered into the next one", () => {
    const network = registeredNetwork(["x", "y", "z", "w"]);
    const x = network.client("x");
    const mark = network.sent.length;
    // Three changes in the same instant: x is sent at most two pushes, not three.
    network.client("y").type("dereg y");
    network.client("z").type("dereg z");
    network.client("w").type("dereg w");
    network.settle();
    const toX = tablesSent(network, mark).filter((table) =>
      network.sent.some((d) => d.message === table && d.to === "x"),
    );
    expect(new Set(toX.map((t) => t.id)).size).toBeLessThanOrEqual(2);
    expect(x.state.table.filter((e) => !e.online).map((e) => e.name)).toEqual(["y", "z", "w"]);
  });
});

describe("keys in the table", () => {
  test("a delta carries a key only for an entry the client does not hold with it", () => {
    const network = registeredNetwork(["x", "y"]);
    const [x, y] = [network.client("x"), network.client("y")];
    let mark = network.sent.length;
    y.type("dereg y");
    network.settle();
    const [offline] = tablesSent(network, mark).filter((t) => t.base !== undefined);
    expect(offline?.clients).toEqual([
      { name: "y", ip: "127.0.0.1", port: y.address.port, online: false },
    ]);
    expect(x.state.table.find((e) => e.name === "y")?.ak).toBe(agreementKeyOf("y"));
    mark = network.sent.length;
    network.addClient("z");
    network.settle();
    const toX = network.sent
      .slice(mark)
      .filter((d) => d.to === "x" && d.message.type === "table")
      .map((d) => d.message as TableMessage);
    expect(toX.flatMap((t) => t.clients).map((c) => [c.name, "ak" in c])).toEqual([["z", true]]);
    expect(x.state.table.map((e) => [e.name, e.ak])).toEqual([
      ["x", agreementKeyOf("x")],
      ["y", agreementKeyOf("y")],
      ["z", agreementKeyOf("z")],
    ]);
  });

  test("a name back with another agreement key has it in every push, and is sealed to it", () => {
    const network = registeredNetwork(["x", "y"]);
    const x = network.client("x");
    network.client("y").kill();
    const keys = { signing: identityFor("y").signing, agreement: newKeyPairs().agreement };
    const newcomer = network.addClient("y", { label: "y2", identity: keys });
    network.settle();
    const newKey = publicKeyText(keys.agreement);
    expect(x.state.table.find((e) => e.name === "y")?.ak).toBe(newKey);
    // x knew y's old key: it sends to the new one only once its user accepts it.
    x.type("trust y");
    const mark = newcomer.shown().length;
    x.type("send y under the new key");
    network.settle();
    expect(newcomer.shownSince(mark)).toEqual(["x: under the new key"]);
    expect(x.shown().at(-1)).toBe("[Message received by y.]");
  });

  test("back with another key and stored messages: those sealed to the old key do not open, the table gets the new one", () => {
    const network = registeredNetwork(["x", "y"]);
    const x = network.client("x");
    network.client("y").type("dereg y");
    network.settle();
    x.type("send y sealed to your old key");
    network.settle();
    network.client("y").kill();
    const keys = { signing: identityFor("y").signing, agreement: newKeyPairs().agreement };
    const newcomer = network.addClient("y", { label: "y2", identity: keys });
    network.settle();
    // Nothing opens, so nothing is announced (SPEC: never [You have messages] followed by nothing).
    expect(newcomer.shown()).not.toContain("[You have messages]");
    expect(newcomer.shown().filter((line) => line.includes("old key"))).toEqual([]);
    expect(newcomer.state.unopenedMessages).toBe(1);
    expect(network.store.load().messages).toEqual([]);
    expect(x.state.table.find((e) => e.name === "y")?.ak).toBe(publicKeyText(keys.agreement));
  });

  test("a snapshot may name a forgotten client or one name twice: applied in order, the last wins", () => {
    const entry = { ak: agreementKeyOf("a"), ip: "127.0.0.1", name: "a", online: true, port: 6001 };
    const snapshot = decodeMessage(
      new TextEncoder().encode(
        JSON.stringify({
          v: 5,
          type: "table",
          id: 1,
          version: 4,
          clients: [
            ["a", "127.0.0.1", 6001, true, entry.ak],
            ["b"],
            ["a", "127.0.0.1", 6001, false, entry.ak],
          ],
        }),
      ),
    );
    expect(snapshot).toMatchObject({ type: "table", version: 4 });
    expect(snapshot && "clients" in snapshot ? snapshot.clients : []).toEqual([
      entry,
      { gone: true, name: "b" },
      { ...entry, online: false },
    ]);
  });

  test("a snapshot entry without its key is malformed; a delta entry may leave it out", () => {
    const entry = { name: "a", ip: "127.0.0.1", port: 6001, online: true };
    const table = (base?: number) =>
      new TextEncoder().encode(
        JSON.stringify({
          v: 5,
          type: "table",
          id: 1,
          version: 2,
          base,
          clients: [["a", "127.0.0.1", 6001, true]],
        }),
      );
    expect(decodeMessage(table())).toBeUndefined();
    expect(decodeMessage(table(1))).toMatchObject({ type: "table", base: 1, clients: [entry] });
  });
});

describe("forgetting", () => {
  test("an offline name with nothing stored is forgotten after the retention period", () => {
    const network = registeredNetwork(["x", "y"]);
    const [x, y] = [network.client("x"), network.client("y")];
    y.type("dereg y");
    network.settle();
    const mark = x.shown().length;
    network.advance(network.server.retentionMs - 1);
    network.tickServer();
    network.settle();
    expect(network.server.clients.has("y")).toBe(true);
    network.advance(1);
    network.tickServer();
    network.settle();
    expect(network.server.clients.has("y")).toBe(false);
    expect(network.store.load().clients.map((c) => c.name)).toEqual(["x"]);
    expect(x.state.table.map((e) => e.name)).toEqual(["x"]);
    expect(x.shownSince(mark)).toEqual([TABLE_UPDATED]);
    // The name is free again, for anyone.
    const newcomer = network.addClient("y", { label: "y2" });
    network.settle();
    expect(newcomer.state.phase).toBe("online");
  });

  test("an offline name with stored messages is kept", () => {
    const network = registeredNetwork(["x", "y"]);
    const [x, y] = [network.client("x"), network.client("y")];
    y.type("dereg y");
    network.settle();
    x.type("send y are you there?");
    network.settle();
    network.advance(network.server.retentionMs + timing.ackWaitMs);
    network.tickServer();
    network.settle();
    expect(network.server.clients.has("y")).toBe(true);
  });
});

describe("write, then answer", () => {
  test("a save the disk refuses is answered store-failed, kept nowhere, and works once the disk does", () => {
    const network = registeredNetwork(["x", "y"]);
    const [x, y] = [network.client("x"), network.client("y")];
    y.type("dereg y");
    network.settle();
    network.storeRefusesWrites = true;
    const mark = x.shown().length;
    x.type("send y lost to a full disk");
    network.settle();
    expect(x.shownSince(mark)).toEqual([
      "[The server could not write to its disk; nothing was saved. Try again later.]",
    ]);
    expect(network.server.mailboxes.get("y")).toBeUndefined();
    expect(network.server.storeUse.messages).toBe(0);
    network.storeRefusesWrites = false;
    x.type("send y kept once the disk has room");
    network.settle();
    expect(x.shown().at(-1)).toBe("[Messages received by the server and saved]");
    const yMark = y.shown().length;
    y.type("reg y");
    network.settle();
    const shown = y.shownSince(yMark).join("\n");
    expect(shown).toContain("kept once the disk has room");
    expect(shown).not.toContain("lost to a full disk");
  });

  test("no answer leaves before its commit: a retransmission meanwhile gets nothing", () => {
    const network = registeredNetwork(["x", "y"]);
    const [x, y] = [network.client("x"), network.client("y")];
    y.type("dereg y");
    network.settle();
    network.storeRefusesWrites = true;
    x.type("send y twice refused");
    network.settle();
    // Every try was worked on afresh and refused; none was ever acknowledged.
    const acks = network.sent.filter(
      (d) => d.from === "server" && d.to === "x" && d.message.type === "ack",
    );
    expect(acks).toHaveLength(0);
  });
});

describe("pushes to an address that moved on", () => {
  test("a push still out to an address that registered another name since is cancelled", () => {
    const network = registeredNetwork(["x", "y"]);
    const [x, y] = [network.client("x"), network.client("y")];
    // x stops answering; a change makes the server push to it, and keep retrying.
    x.kill();
    y.type("dereg y");
    network.advance(100);
    const pushToX = network.sent.findLast((d) => d.to === "x" && d.message.type === "table");
    if (!pushToX) throw new Error("no push to x");
    // A new process on x's address registers another name.
    const w = network.addClient("w", { port: x.address.port });
    network.settle();
    expect(w.state.phase).toBe("online");
    const resent = network.sent.filter(
      (d) => d.at > pushToX.at && d.message.type === "table" && d.message.id === pushToX.message.id,
    );
    expect(resent).toEqual([]);
    expect(network.server.clients.get("x")?.online).toBe(false);
  });
});
