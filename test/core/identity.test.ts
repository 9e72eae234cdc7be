import { describe, expect, test } from "bun:test";
import { publicKeyText, withMac } from "../../src/core/session-crypto.ts";
import { SOURCE_BURST } from "../../src/core/timing.ts";
import { encodeMessage, padRegistration } from "../../src/protocol/codec.ts";
import {
  MAX_DATAGRAM_BYTES,
  type Message,
  PROTOCOL_VERSION,
  REGISTER_MIN_BYTES,
} from "../../src/protocol/messages.ts";
import { agreementKeyOf, newKeyPairs, testCrypto } from "../helpers/identities.ts";
import { openedBy, sealedBy, sealedChat } from "../helpers/sealed.ts";
import {
  LOOPBACK,
  registeredNetwork,
  SERVER_ADDRESS,
  type SimClient,
} from "../helpers/simulated-network.ts";

const forgedToken = "00000000000000000000000000000000";

function inSessionOf<M extends Message>(client: SimClient, message: M): M {
  const key = client.state.sessionKey;
  if (!key) throw new Error(`${client.label} has no session`);
  return withMac(testCrypto, key, message);
}

describe("sessions and addresses", () => {
  test("a direct message from an address the table does not hold for its sender is ignored", () => {
    const network = registeredNetwork(["x", "y"]);
    const y = network.client("y");
    const mark = y.shown().length;
    const sentMark = network.sent.length;
    network.inject(
      { ip: LOOPBACK, port: 7777 },
      y.address,
      sealedChat({ id: 1, from: "x", to: "y", text: "I am x" }),
    );
    network.inject(
      { ip: "10.0.0.1", port: network.client("x").address.port },
      y.address,
      sealedChat({ id: 2, from: "x", to: "y", text: "me too" }),
    );
    // The server's address is not x's either.
    network.inject(
      SERVER_ADDRESS,
      y.address,
      sealedChat({ id: 3, from: "x", to: "y", text: "and me" }),
    );
    network.settle();
    expect(y.shownSince(mark)).toEqual([]);
    expect(network.sent.slice(sentMark)).toEqual([]);
    expect(y.state.droppedDatagrams).toBe(3);
  });

  test("a datagram over 32,768 bytes is read only when it comes from the server", () => {
    const network = registeredNetwork(["x"]);
    const x = network.client("x");
    const entries = Array.from({ length: 500 }, (_, i) => [
      `n${i}`,
      LOOPBACK,
      6000 + i,
      true,
      "A".repeat(43),
    ]);
    const large = new TextEncoder().encode(
      JSON.stringify({ v: PROTOCOL_VERSION, type: "table", id: 1, version: 99, clients: entries }),
    );
    expect(large.byteLength).toBeGreaterThan(MAX_DATAGRAM_BYTES);
    const parse = JSON.parse;
    let parsed = 0;
    JSON.parse = (...args: Parameters<typeof parse>) => {
      parsed++;
      return parse(...args);
    };
    try {
      network.inject({ ip: LOOPBACK, port: 9 }, x.address, large);
      network.settle();
      expect(parsed).toBe(0);
      // From the server's address it is read (and then dropped: it carries no valid MAC).
      network.inject(SERVER_ADDRESS, x.address, large);
      network.settle();
      expect(parsed).toBeGreaterThan(0);
    } finally {
      JSON.parse = parse;
    }
    expect(x.state.droppedDatagrams).toBe(2);
  });

  test("a chat from a name that is not in the table is ignored", () => {
    const network = registeredNetwork(["x", "y"]);
    const y = network.client("y");
    const mark = y.shown().length;
    network.inject(
      network.client("x").address,
      y.address,
      sealedChat({ id: 1, from: "mallory", to: "y", text: "hi" }),
    );
    network.settle();
    expect(y.shownSince(mark)).toEqual([]);
  });

  test("server messages from another address are ignored", () => {
    const network = registeredNetwork(["x", "y"]);
    const y = network.client("y");
    const from = network.client("x").address;
    const mark = y.shown().length;
    const table = y.state.table;
    const forged: Message[] = [
      { type: "channel-message", id: 1, from: "x", text: "fake post", ref: 1 },
      {
        type: "stored",
        id: 2,
        messages: [
          {
            sender: "x",
            kind: "direct",
            ...sealedBy("x", "y", 2, "fake"),
            ak: agreementKeyOf("x"),
            at: 0,
            ref: 2,
          },
        ],
      },
      { type: "table", id: 3, version: 99, part: 0, parts: 1, clients: [] },
      { type: "probe", id: 4 },
    ];
    for (const message of forged) network.inject(from, y.address, message);
    network.settle();
    expect(y.shownSince(mark)).toEqual([]);
    expect(y.state.table).toBe(table);
  });

  test("an ack from the wrong address does not confirm a direct message", () => {
    const network = registeredNetwork(["x", "y", "z"]);
    const [x, y] = [network.client("x"), network.client("y")];
    y.kill();
    const mark = x.shown().length;
    x.type("send y hello");
    const chat = network.sentBy("x", "chat")[0];
    expect(chat).toBeDefined();
    network.inject(network.client("z").address, x.address, {
      type: "ack",
      id: chat?.message.id ?? -1,
    });
    network.advance(500);
    expect(x.shownSince(mark)).toEqual(["[No ACK from y, message sent to server.]"]);
  });

  test("forged deregister, save and channel change nothing: an unknown session is refused, x's session without x's MAC is dropped", () => {
    const network = registeredNetwork(["x", "y"]);
    const [x, y] = [network.client("x"), network.client("y")];
    const marks = [x.shown().length, y.shown().length];
    const persisted = network.persisted.length;
    const sentMark = network.sent.length;
    const sid = x.state.token ?? "";
    const otherKey = testCrypto.randomBytes(32);
    const forged: Message[] = [
      { type: "deregister", id: 1, sid: forgedToken },
      { type: "save", id: 2, sid: forgedToken, to: "y", ...sealedBy("x", "y", 2, "forged") },
      { type: "channel", id: 3, sid: forgedToken, text: "forged" },
      // x's session id is no secret: without x's session key it proves nothing.
      { type: "deregister", id: 4, sid },
      withMac(testCrypto, otherKey, {
        type: "save",
        id: 5,
        sid,
        to: "y",
        ...sealedBy("x", "y", 5, "forged"),
      }),
      withMac(testCrypto, otherKey, { type: "channel", id: 6, sid, text: "forged" }),
    ];
    for (const message of forged) network.inject(x.address, SERVER_ADDRESS, message);
    network.settle();
    expect(network.persisted.length).toBe(persisted);
    expect(network.server.clients.get("x")?.online).toBe(true);
    expect(network.server.mailboxes.size).toBe(0);
    expect(network.server.drops.unauthenticated).toBe(6);
    const answers = network.sent.slice(sentMark);
    expect(answers.map((d) => [d.to, d.message])).toEqual(
      [1, 2, 3].map((id) => ["x", { type: "error", id, code: "unknown-session" }]),
    );
    // x had none of those ids outstanding: it shows nothing and stays online.
    expect(x.shownSince(marks[0] ?? 0)).toEqual([]);
    expect(y.shownSince(marks[1] ?? 0)).toEqual([]);
    expect(x.state.phase).toBe("online");
  });

  test("a retransmitted save is answered each time and stored once", () => {
    const network = registeredNetwork(["x", "y"]);
    const [x, y] = [network.client("x"), network.client("y")];
    y.type("dereg y");
    network.settle();
    const save = inSessionOf(x, {
      type: "save",
      id: 77,
      sid: x.state.token ?? "",
      to: "y",
      ...sealedBy("x", "y", 77, "once"),
    });
    const sentMark = network.sent.length;
    for (let copy = 0; copy < 3; copy++) network.inject(x.address, SERVER_ADDRESS, save);
    network.settle();
    const stored = network.store.load().messages;
    expect(stored).toMatchObject([{ recipient: "y", sender: "x", text: "" }]);
    const sealed = stored[0]?.sealed;
    expect(sealed && openedBy("y", "x", 77, sealed)).toBe("once");
    // The same datagram each time, byte for byte (the server makes a plain ack again).
    const ack = encodeMessage(inSessionOf(x, { type: "ack", id: 77 }));
    const answers = network.sent.slice(sentMark).map((d) => d.bytes);
    expect(answers).toEqual([ack, ack, ack]);
  });

  test("a retransmitted channel post is answered each time and fanned out once", () => {
    const network = registeredNetwork(["x", "y", "z"]);
    const x = network.client("x");
    const marks = ["y", "z"].map((name) => network.client(name).shown().length);
    const post = inSessionOf(x, {
      type: "channel",
      id: 78,
      sid: x.state.token ?? "",
      text: "once",
    });
    for (let copy = 0; copy < 3; copy++) network.inject(x.address, SERVER_ADDRESS, post);
    network.settle();
    expect(network.sentBy("server", "channel-message").map((d) => d.to)).toEqual(["y", "z"]);
    expect(network.sentBy("server", "ack").filter((d) => d.message.id === 78)).toHaveLength(3);
    expect(network.client("y").shownSince(marks[0] ?? 0)).toEqual(["[Channel_Message x: once]"]);
    expect(network.client("z").shownSince(marks[1] ?? 0)).toEqual(["[Channel_Message x: once]"]);
  });

  test("a save retransmitted while the server is still probing gets one answer when the probe ends", () => {
    const network = registeredNetwork(["x", "y"]);
    const [x, y] = [network.client("x"), network.client("y")];
    y.kill();
    const save = inSessionOf(x, {
      type: "save",
      id: 79,
      sid: x.state.token ?? "",
      to: "y",
      ...sealedBy("x", "y", 79, "once"),
    });
    const sentMark = network.sent.length;
    network.inject(x.address, SERVER_ADDRESS, save);
    network.advance(300);
    network.inject(x.address, SERVER_ADDRESS, save);
    network.settle();
    const acks = network.sent
      .slice(sentMark)
      .filter((d) => d.to === "x" && d.message.type === "ack");
    expect(acks).toHaveLength(1);
    expect(network.store.load().messages).toHaveLength(1);
  });

  test("junk sent to the server or a client is dropped and counted", () => {
    const network = registeredNetwork(["x"]);
    const x = network.client("x");
    const mark = x.shown().length;
    const sentMark = network.sent.length;
    const junk = [new Uint8Array([0xff]), new TextEncoder().encode('{"v":1,"type":"nope","id":1}')];
    for (const bytes of junk) {
      network.inject({ ip: LOOPBACK, port: 9 }, SERVER_ADDRESS, bytes);
      network.inject({ ip: LOOPBACK, port: 9 }, x.address, bytes);
    }
    network.settle();
    expect(network.server.drops.malformed).toBe(2);
    expect(x.state.droppedDatagrams).toBe(2);
    expect(network.sent.slice(sentMark)).toEqual([]);
    expect(x.shownSince(mark)).toEqual([]);
  });

  test("a register without the cookie gets only a challenge no larger than itself (no amplification)", () => {
    const network = registeredNetwork(["x"]);
    const sentMark = network.sent.length;
    const keys = newKeyPairs();
    const register = padRegistration({
      type: "register",
      id: 5,
      name: "victim",
      sk: publicKeyText(keys.signing),
      ak: publicKeyText(keys.agreement),
    });
    expect(encodeMessage(register).byteLength).toBe(REGISTER_MIN_BYTES);
    network.inject({ ip: "203.0.113.9", port: 4444 }, SERVER_ADDRESS, register);
    network.settle();
    const answers = network.sent.slice(sentMark);
    expect(answers.map((d) => d.message.type)).toEqual(["challenge"]);
    for (const answer of answers) {
      expect(encodeMessage(answer.message).byteLength).toBeLessThan(REGISTER_MIN_BYTES);
    }
    expect(network.server.clients.has("victim")).toBe(false);
  });

  test("an unpadded register without the cookie gets no answer at all", () => {
    const network = registeredNetwork(["x"]);
    const sentMark = network.sent.length;
    const keys = newKeyPairs();
    network.inject({ ip: "203.0.113.9", port: 4444 }, SERVER_ADDRESS, {
      type: "register",
      id: 5,
      name: "victim",
      sk: publicKeyText(keys.signing),
      ak: publicKeyText(keys.agreement),
    });
    network.settle();
    expect(network.sent.slice(sentMark)).toEqual([]);
  });

  test("a flood from one address is cut at its burst; other clients are not affected", () => {
    const network = registeredNetwork(["x", "y"]);
    const flooder = { ip: "198.51.100.7", port: 9999 };
    for (let index = 0; index < SOURCE_BURST + 600; index++) {
      network.inject(flooder, SERVER_ADDRESS, new Uint8Array([0x7b]));
    }
    network.settle();
    expect(network.server.drops.malformed).toBe(SOURCE_BURST);
    expect(network.server.drops.rateLimited).toBe(600);
    const x = network.client("x");
    x.type("send_all still fine");
    network.settle();
    expect(x.shown().at(-1)).toBe("[Message received by Server.]");
    // The bucket refills at its rate.
    network.advance(1_000);
    network.inject(flooder, SERVER_ADDRESS, new Uint8Array([0x7b]));
    network.settle();
    expect(network.server.drops.malformed).toBe(SOURCE_BURST + 1);
  });
});
