import { describe, expect, test } from "bun:test";
import { publicKeyText } from "../../src/core/session-crypto.ts";
import { encodeBase64url } from "../../src/crypto/base64url.ts";
import { notices } from "../../src/text/notices.ts";
import { agreementKeyOf } from "../helpers/identities.ts";
import { sealedChat } from "../helpers/sealed.ts";
import {
  FIRST_CLIENT_PORT,
  LOOPBACK,
  registeredNetwork,
  SERVER_ADDRESS,
  SimulatedNetwork,
  START_TIME,
} from "../helpers/simulated-network.ts";

// SPEC.md's strings, written out here so that a changed notice fails a test.
const WELCOME = "[Welcome, You are registered.]";
const TABLE_UPDATED = "[Client table updated.]";

describe("registration", () => {
  test("the client is welcomed, then gets the table", () => {
    const network = new SimulatedNetwork();
    const x = network.addClient("x");
    network.settle();
    expect(x.shown()).toEqual([WELCOME, TABLE_UPDATED]);
    expect(x.state.phase).toBe("online");
    expect(x.state.table).toEqual([
      { name: "x", ip: LOOPBACK, port: FIRST_CLIENT_PORT, online: true, ak: agreementKeyOf("x") },
    ]);
    // Registration by challenge: the first register only earns a cookie.
    expect(network.sentBy("x").map((d) => d.message.type)).toEqual(["register", "register", "ack"]);
    expect(network.sentBy("server").map((d) => d.message.type)).toEqual([
      "challenge",
      "registered",
      "table",
    ]);
    expect(network.store.load().clients).toEqual([
      {
        name: "x",
        ip: LOOPBACK,
        port: FIRST_CLIENT_PORT,
        online: true,
        token: x.state.token ?? "",
        lastSeen: network.now,
        // Bound to x's keys on first registration; the session key is x's and the server's.
        sk: x.state.sk,
        ak: x.state.ak,
        sessionKey: encodeBase64url(x.state.sessionKey ?? new Uint8Array()),
      },
    ]);
    expect(x.state.sessionKey).toHaveLength(32);
    expect(x.pinnedServerKeys).toEqual([publicKeyText(network.serverKeys.signing)]);
  });

  test("every change of the table is pushed to every online client", () => {
    const network = new SimulatedNetwork();
    const x = network.addClient("x");
    network.settle();
    const y = network.addClient("y");
    network.settle();
    const z = network.addClient("z");
    network.settle();
    expect(x.shown()).toEqual([WELCOME, TABLE_UPDATED, TABLE_UPDATED, TABLE_UPDATED]);
    expect(y.shown()).toEqual([WELCOME, TABLE_UPDATED, TABLE_UPDATED]);
    expect(z.shown()).toEqual([WELCOME, TABLE_UPDATED]);
    for (const client of [x, y, z]) {
      expect(client.state.table.map((e) => `${e.name}:${e.port}:${e.online}`)).toEqual([
        "x:6001:true",
        "y:6002:true",
        "z:6003:true",
      ]);
    }

    y.type("dereg y");
    network.settle();
    expect(x.shown().at(-1)).toBe(TABLE_UPDATED);
    expect(z.shown().at(-1)).toBe(TABLE_UPDATED);
    expect(y.shown().at(-1)).toBe("[You are Offline. Bye.]");
    for (const client of [x, z]) {
      expect(client.state.table.find((e) => e.name === "y")?.online).toBe(false);
    }
    // y is offline: it is not sent the table any more.
    const pushesToY = network.sent.filter((d) => d.to === "y" && d.message.type === "table").length;
    z.type("dereg z");
    network.settle();
    expect(network.sent.filter((d) => d.to === "y" && d.message.type === "table")).toHaveLength(
      pushesToY,
    );
    expect(x.state.table.map((e) => e.online)).toEqual([true, false, false]);
  });

  test("a name held by a live online client is refused; the newcomer exits non-zero", () => {
    const network = registeredNetwork(["x", "y"]);
    const original = network.client("x");
    const linesBefore = original.shown().length;
    const newcomer = network.addClient("X", { label: "x2" });
    network.settle();
    expect(newcomer.shown()).toEqual([notices.nameTaken("X")]);
    expect(newcomer.exitCode).toBe(1);
    // The holder was asked whether it is alive, answered, and keeps its name and address.
    expect(network.sentBy("server", "probe").map((d) => d.to)).toEqual(["x"]);
    expect(original.shownSince(linesBefore)).toEqual([]);
    expect(original.running).toBe(true);
    const holder = network.server.clients.get("x");
    expect(holder?.name).toBe("x");
    expect(holder?.port).toBe(original.address.port);
    expect(holder?.token).toBe(original.state.token ?? "");
  });

  test("a name held by a client that died silently goes to the newcomer after a 500 ms probe", () => {
    const network = registeredNetwork(["x", "y"]);
    const y = network.client("y");
    network.client("x").kill();
    const start = network.now;
    const newcomer = network.addClient("x", { label: "x2" });
    network.advance(499);
    expect(newcomer.shown()).toEqual([]);
    expect(network.sentBy("server", "probe").map((d) => [d.to, d.at - start])).toEqual([
      ["x", 0],
      ["x", 100],
      ["x", 200],
      ["x", 300],
      ["x", 400],
    ]);
    network.advance(1);
    expect(newcomer.shown()).toEqual([WELCOME, TABLE_UPDATED]);
    network.settle();
    const entry = {
      name: "x",
      ip: LOOPBACK,
      port: newcomer.address.port,
      online: true,
      ak: agreementKeyOf("x"),
    };
    expect(newcomer.state.table[0]).toEqual(entry);
    expect(y.state.table[0]).toEqual(entry);
    expect(network.server.clients.get("x")?.token).toBe(newcomer.state.token ?? "");
    expect(newcomer.exitCode).toBeUndefined();
  });

  test("a new process on the dead holder's own address gets the name back at once", () => {
    const network = registeredNetwork(["x", "y"]);
    const old = network.client("x");
    const oldToken = old.state.token;
    old.kill();
    const restarted = network.addClient("x");
    network.settle();
    expect(restarted.shown()).toEqual([WELCOME, TABLE_UPDATED]);
    expect(network.sentBy("server", "probe")).toEqual([]);
    // Every registration opens a new session: the old one's id (and key) no longer count.
    expect(restarted.state.token).not.toBe(oldToken);
    expect(network.server.clientsByToken.has(oldToken ?? "")).toBe(false);
  });

  test("two newcomers waiting on one probe of a dead holder: one gets the name, the other is refused", () => {
    const network = registeredNetwork(["x"]);
    network.client("x").kill();
    const first = network.addClient("x", { label: "x2" });
    const second = network.addClient("x", { label: "x3" });
    network.settle();
    const welcomed = [first, second].filter((c) => c.shown().includes(WELCOME));
    const refused = [first, second].filter((c) => c.exitCode === 1);
    expect(welcomed).toHaveLength(1);
    expect(refused).toHaveLength(1);
    expect(refused[0]?.shown()).toEqual([notices.nameTaken("x")]);
    expect(network.server.clients.get("x")?.port).toBe(welcomed[0]?.address.port ?? -1);
    expect(network.server.clients.get("x")?.token).toBe(welcomed[0]?.state.token ?? "");
  });

  test("with no server, registration is tried 6 times and the client exits 1 at 3000 ms", () => {
    const network = new SimulatedNetwork({ withoutServer: true });
    const x = network.addClient("x");
    network.advance(2999);
    expect(x.exitCode).toBeUndefined();
    expect(x.shown()).toEqual([]);
    network.advance(1);
    expect(x.shown()).toEqual(["[Server not responding]", "[Exiting]"]);
    expect(x.exitCode).toBe(1);
    const registers = network.sentBy("x", "register");
    expect(registers.map((d) => d.at - START_TIME)).toEqual([0, 500, 1000, 1500, 2000, 2500]);
    expect(new Set(registers.map((d) => d.message.id)).size).toBe(1);
    network.settle();
    expect(network.sentBy("x")).toHaveLength(6);
  });

  test("a server that comes up during the retries still registers the client", () => {
    const network = new SimulatedNetwork({ withoutServer: true });
    const x = network.addClient("x");
    network.advance(1200);
    network.startServer();
    network.advance(300);
    expect(x.shown()).toEqual([WELCOME, TABLE_UPDATED]);
    network.settle();
    expect(x.exitCode).toBeUndefined();
  });

  test("an answer of the wrong kind does not end a registration", () => {
    const network = new SimulatedNetwork({ withoutServer: true });
    const x = network.addClient("x");
    const id = network.sentBy("x", "register")[0]?.message.id ?? -1;
    network.inject(SERVER_ADDRESS, x.address, { type: "ack", id });
    x.endInput();
    network.advance(500);
    expect(network.sentBy("x", "register")).toHaveLength(2);
    network.advance(2_500);
    // Still waiting for a real answer, so it gives up as SPEC says, instead of hanging.
    expect(x.shown()).toEqual(["[Server not responding]", "[Exiting]"]);
    expect(x.exitCode).toBe(1);
  });

  test("a registered answering a save is not a confirmation", () => {
    const network = registeredNetwork(["x", "y"]);
    const x = network.client("x");
    network.client("y").type("dereg y");
    network.settle();
    network.crashServer();
    x.type("send y hi");
    const id = network.sentBy("x", "save")[0]?.message.id ?? -1;
    network.inject(SERVER_ADDRESS, x.address, {
      type: "registered",
      id,
      sid: "ab".repeat(16),
      pending: 0,
      epoch: "cd".repeat(8),
      sig: "A".repeat(86),
    });
    network.advance(3_000);
    expect(x.shown().slice(-2)).toEqual(["[Server not responding]", "[Exiting]"]);
    expect(x.state.token).not.toBe("ab".repeat(16));
  });

  test("reg after the registration cookie has expired takes one more round trip", () => {
    const network = registeredNetwork(["x"]);
    const x = network.client("x");
    x.type("dereg x");
    network.settle();
    network.advance(5 * 60_000);
    const mark = x.shown().length;
    const sentMark = network.sent.length;
    x.type("reg x");
    network.settle();
    expect(x.shownSince(mark)).toEqual([WELCOME, TABLE_UPDATED]);
    expect(network.sent.slice(sentMark).map((d) => `${d.from}:${d.message.type}`)).toEqual([
      "x:register",
      "server:challenge",
      "x:register",
      "server:registered",
      "server:table",
      "x:ack",
    ]);
  });

  test("sessions and the table survive a server restart", () => {
    const network = registeredNetwork(["x", "y"]);
    const [x, y] = [network.client("x"), network.client("y")];
    network.restartServer();
    expect(network.server.clients.get("x")?.online).toBe(true);
    const marks = [x.shown().length, y.shown().length];
    x.type("send_all after the restart");
    network.settle();
    expect(x.shownSince(marks[0] ?? 0)).toEqual(["[Message received by Server.]"]);
    expect(y.shownSince(marks[1] ?? 0)).toEqual(["[Channel_Message x: after the restart]"]);
    // A new server has a new cookie secret: reg still works.
    y.type("dereg y");
    network.settle();
    network.restartServer();
    y.type("reg y");
    network.settle();
    expect(y.shown().slice(-2)).toEqual([WELCOME, TABLE_UPDATED]);
    expect(x.shown().at(-1)).toBe(TABLE_UPDATED);
  });
});

describe("a new client on a dead client's address", () => {
  test("takes over the address, not the name: the old holder goes offline and its chats are refused", () => {
    const network = registeredNetwork(["w", "x"]);
    const w = network.client("w");
    const x = network.client("x");
    const port = x.address.port;
    x.kill();
    const y = network.addClient("y", { port });
    network.settle();
    expect(network.server.clients.get("x")?.online).toBe(false);
    expect(network.server.clients.get("y")?.online).toBe(true);
    expect(w.state.table.find((entry) => entry.name === "x")?.online).toBe(false);

    // A peer whose table is stale still sends "to x" at that address: y refuses it.
    const mark = y.shown().length;
    network.inject(w.address, y.address, sealedChat({ id: 9, from: "w", to: "x", text: "for x" }));
    network.settle();
    expect(y.shownSince(mark)).toEqual([]);

    // And w's send to x now goes to the server, stored for x.
    w.type("send x for x only");
    network.settle();
    expect(w.shown().at(-1)).toBe("[Messages received by the server and saved]");
    expect(y.shownSince(mark)).toEqual([]);
  });
});

describe("a client the server wrongly took for gone", () => {
  test("learns it from the table, registers again and gets what was stored meanwhile", () => {
    const network = registeredNetwork(["a", "b"]);
    const [a, b] = [network.client("a"), network.client("b")];
    // b is paused (as by SIGSTOP or a laptop lid): nothing reaches it or leaves it.
    const resume = network.drop((d) => d.to === "b" || d.from === "b");
    a.type("send_all while b was paused");
    network.advance(1_500);
    expect(network.server.clients.get("b")?.online).toBe(false);
    a.type("send b after b was dropped");
    network.advance(100);
    expect(a.shown().at(-1)).toBe("[Messages received by the server and saved]");
    const mark = b.shown().length;
    resume();
    network.settle();
    expect(b.shownSince(mark)).toEqual([
      TABLE_UPDATED,
      "[The server lost track of you; registering again.]",
      WELCOME,
      "[You have messages]",
      expect.stringMatching(/^Channel-Message a: \S+ while b was paused$/),
      expect.stringMatching(/^a: \S+ after b was dropped$/),
      TABLE_UPDATED,
    ]);
    expect(network.server.clients.get("b")?.online).toBe(true);
    expect(network.store.load().messages).toEqual([]);
  });
});
