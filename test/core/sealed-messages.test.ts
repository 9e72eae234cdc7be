import { describe, expect, test } from "bun:test";
import { chatAckMac, PairKeys } from "../../src/core/sealed-messages.ts";
import { withMac } from "../../src/core/session-crypto.ts";
import { encodeBase64url } from "../../src/crypto/base64url.ts";
import type { ChatMessage, Message } from "../../src/protocol/messages.ts";
import { formatTimestamp } from "../../src/text/timestamp.ts";
import { agreementKeyOf, identityFor, newKeyPairs, testCrypto } from "../helpers/identities.ts";
import { openedBy, sealedBy, sealedChat } from "../helpers/sealed.ts";
import {
  registeredNetwork,
  SERVER_ADDRESS,
  type SimClient,
  type SimulatedNetwork,
} from "../helpers/simulated-network.ts";

const NO_ACK = "[No ACK from y, message sent to server.]";

/** The box with one bit of its ciphertext flipped. */
function altered(chat: ChatMessage): ChatMessage {
  const bytes = Uint8Array.from(Buffer.from(chat.box, "base64url"));
  bytes[0] = (bytes[0] ?? 0) ^ 0x01;
  return { ...chat, box: encodeBase64url(bytes) };
}

function chatsFrom(network: SimulatedNetwork, name: string): ChatMessage[] {
  return network
    .sentBy(name, "chat")
    .map((d) => d.message)
    .filter((m): m is ChatMessage => m.type === "chat");
}

function unopenedAt(client: SimClient): { dropped: number; unopened: number } {
  return { dropped: client.state.droppedDatagrams, unopened: client.state.unopenedMessages };
}

describe("a chat travels sealed", () => {
  test("its text is on the wire only as a box that y opens; x's ack carries y's proof", () => {
    const network = registeredNetwork(["x", "y"]);
    const [x, y] = [network.client("x"), network.client("y")];
    x.type("send y the password is swordfish");
    network.settle();
    expect(y.shown().at(-1)).toBe("x: the password is swordfish");
    expect(x.shown().at(-1)).toBe("[Message received by y.]");
    const [chat] = chatsFrom(network, "x");
    if (!chat) throw new Error("x sent no chat");
    expect(JSON.stringify(network.sent.map((d) => d.message))).not.toContain("swordfish");
    expect(openedBy("y", "x", chat.id, chat)).toBe("the password is swordfish");
    // Only x and y can open it: z's key with x's gives another pairwise key.
    expect(openedBy("z", "x", chat.id, chat)).toBeUndefined();
    const [ack] = network.sentBy("y", "ack").filter((d) => d.to === "x");
    const key = new PairKeys().get(testCrypto, identityFor("y").agreement, agreementKeyOf("x"));
    if (!key) throw new Error("no pairwise key");
    expect(ack?.message).toEqual({
      type: "ack",
      id: chat.id,
      mac: chatAckMac(testCrypto, key, { sender: "x", recipient: "y", ref: chat.id }),
    });
  });

  test("an altered chat from x's own address is dropped and counted: not shown, not acknowledged", () => {
    const network = registeredNetwork(["x", "y"]);
    const [x, y] = [network.client("x"), network.client("y")];
    const mark = y.shown().length;
    const genuine = sealedChat({ id: 41, from: "x", to: "y", text: "pay alice" });
    const before = unopenedAt(y);
    const sentMark = network.sent.length;
    network.inject(x.address, y.address, altered(genuine));
    // The same box under another id, or as if to someone else: its associated data differs.
    network.inject(x.address, y.address, { ...genuine, id: 42 });
    network.settle();
    expect(y.shownSince(mark)).toEqual([]);
    expect(network.sent.slice(sentMark)).toEqual([]);
    expect(unopenedAt(y)).toEqual({
      dropped: before.dropped + 2,
      unopened: before.unopened + 2,
    });
    // The genuine one still gets through: the forgeries did not take its (sender, ref).
    network.inject(x.address, y.address, genuine);
    network.settle();
    expect(y.shownSince(mark)).toEqual(["x: pay alice"]);
  });

  test("a chat from x's address sealed by someone without x's key does not open", () => {
    const network = registeredNetwork(["x", "y"]);
    const [x, y] = [network.client("x"), network.client("y")];
    const mark = y.shown().length;
    const sentMark = network.sent.length;
    // Whoever can send from x's address (or forge it) but holds another key pair.
    const forged = sealedChat({ id: 7, from: "x", to: "y", text: "I am x", keys: newKeyPairs() });
    network.inject(x.address, y.address, forged);
    network.settle();
    expect(y.shownSince(mark)).toEqual([]);
    expect(network.sent.slice(sentMark)).toEqual([]);
    expect(y.state.unopenedMessages).toBe(1);
  });

  test("x's chat reflected back to x as if from y does not open: the box names its direction", () => {
    const network = registeredNetwork(["x", "y"]);
    const [x, y] = [network.client("x"), network.client("y")];
    y.kill();
    x.type("send y reflect me");
    network.advance(100);
    const [chat] = chatsFrom(network, "x");
    if (!chat) throw new Error("x sent no chat");
    const mark = x.shown().length;
    network.inject(y.address, x.address, { ...chat, from: "y", to: "x" });
    network.advance(1);
    expect(x.shownSince(mark)).toEqual([]);
    expect(x.state.unopenedMessages).toBe(1);
  });

  test("an ack without y's MAC, or with another message's, does not confirm the chat", () => {
    const network = registeredNetwork(["x", "y", "z"]);
    const [x, y] = [network.client("x"), network.client("y")];
    y.kill();
    const mark = x.shown().length;
    x.type("send y hello");
    network.advance(50);
    const [chat] = chatsFrom(network, "x");
    if (!chat) throw new Error("x sent no chat");
    const yKey = new PairKeys().get(testCrypto, identityFor("y").agreement, agreementKeyOf("x"));
    const zKey = new PairKeys().get(testCrypto, identityFor("z").agreement, agreementKeyOf("x"));
    const sessionKey = x.state.sessionKey;
    if (!yKey || !zKey || !sessionKey) throw new Error("missing keys");
    const label = { sender: "x", recipient: "y", ref: chat.id };
    const forgedAcks: Message[] = [
      { type: "ack", id: chat.id },
      { type: "ack", id: chat.id, mac: "A".repeat(22) },
      // z holds its own key with x, not y's.
      { type: "ack", id: chat.id, mac: chatAckMac(testCrypto, zKey, label) },
      // y's key, but for another message, or for the other direction.
      { type: "ack", id: chat.id, mac: chatAckMac(testCrypto, yKey, { ...label, ref: 1 }) },
      {
        type: "ack",
        id: chat.id,
        mac: chatAckMac(testCrypto, yKey, { sender: "y", recipient: "x", ref: chat.id }),
      },
      // The server's session key with x proves nothing about y.
      withMac(testCrypto, sessionKey, { type: "ack", id: chat.id }),
    ];
    const dropped = x.state.droppedDatagrams;
    for (const ack of forgedAcks) network.inject(y.address, x.address, ack);
    network.advance(450);
    expect(x.shownSince(mark)).toEqual([NO_ACK]);
    expect(x.state.droppedDatagrams).toBe(dropped + forgedAcks.length);
  });
});

describe("offline messages are sealed to the recipient", () => {
  test("the server stores and forwards a box it cannot read; y opens it after reg", () => {
    const network = registeredNetwork(["x", "y"]);
    const [x, y] = [network.client("x"), network.client("y")];
    y.type("dereg y");
    network.settle();
    x.type("send y meet me at the old mill");
    network.settle();
    expect(x.shown().at(-1)).toBe("[Messages received by the server and saved]");
    const stored = network.store.load();
    expect(stored.messages).toHaveLength(1);
    expect(stored.messages[0]).toMatchObject({ sender: "x", recipient: "y", text: "" });
    expect(JSON.stringify(stored)).not.toContain("mill");
    expect(JSON.stringify(network.server.mailboxes.get("y"))).not.toContain("mill");
    const mark = y.shown().length;
    y.type("reg y");
    network.settle();
    const at = formatTimestamp(stored.messages[0]?.receivedAt ?? 0);
    expect(y.shownSince(mark).filter((line) => line.startsWith("x: "))).toEqual([
      `x: ${at} meet me at the old mill`,
    ]);
    expect(JSON.stringify(network.sent.map((d) => d.message))).not.toContain("mill");
  });

  test("a save whose box is longer than 4,000 characters can seal to is refused too-long, not stored", () => {
    const network = registeredNetwork(["x", "y"]);
    const [x, y] = [network.client("x"), network.client("y")];
    y.type("dereg y");
    network.settle();
    const sid = x.state.token ?? "";
    const key = x.state.sessionKey;
    if (!key) throw new Error("x has no session");
    // 4,001 characters of 4 UTF-8 bytes: one more than any text the limit allows.
    const sealed = sealedBy("x", "y", 90, "😀".repeat(4_001));
    const sentMark = network.sent.length;
    network.inject(
      x.address,
      SERVER_ADDRESS,
      withMac(testCrypto, key, { type: "save", id: 90, sid, to: "y", ...sealed }),
    );
    network.settle();
    expect(network.sent.slice(sentMark).map((d) => d.message)).toEqual([
      withMac(testCrypto, key, { type: "error", id: 90, code: "too-long" }),
    ]);
    expect(network.store.load().messages).toEqual([]);
  });

  test("the quota counts the bytes stored: the box, its nonce and the sender's key", () => {
    const network = registeredNetwork(["x", "y"]);
    const [x, y] = [network.client("x"), network.client("y")];
    y.type("dereg y");
    network.settle();
    x.type("send y 12345");
    network.settle();
    const [message] = network.store.load().messages;
    const sealed = message?.sealed;
    if (!sealed) throw new Error("not stored sealed");
    // 5 bytes of text and a 16-byte tag in base64url, a 16-character nonce, a 43-character key.
    expect(sealed.box).toHaveLength(28);
    expect(network.server.storeUse.textBytes).toBe(28 + 16 + 43);
  });

  test("a stored message that does not open is counted, not shown, and its batch still acknowledged", () => {
    const network = registeredNetwork(["x", "y"]);
    const y = network.client("y");
    const key = y.state.sessionKey;
    if (!key) throw new Error("y has no session");
    // As the server could make it: sealed by a key that is not x's, claimed to be x's.
    const impostor = newKeyPairs();
    const messages = [
      {
        sender: "x",
        kind: "direct" as const,
        ...sealedBy("x", "y", 5, "from the server, really", { keys: impostor }),
        ak: agreementKeyOf("x"),
        at: network.now,
        ref: 5,
      },
    ];
    const mark = y.shown().length;
    const stored = withMac(testCrypto, key, { type: "stored", id: 9_000, messages });
    network.inject(SERVER_ADDRESS, y.address, stored);
    network.settle();
    expect(y.shownSince(mark)).toEqual([]);
    expect(y.state.unopenedMessages).toBe(1);
    expect(network.sentBy("y", "ack").filter((d) => d.message.id === 9_000)).toHaveLength(1);
  });
});

describe("a recipient whose key cannot be used", () => {
  test("gets nothing, sealed or in clear, and the sender is told why", () => {
    const network = registeredNetwork(["x", "y"]);
    const x = network.client("x");
    // A key of low order: every agreement with it gives the all-zero secret, known to all.
    x.state.table = x.state.table.map((entry) =>
      entry.name === "y" ? { ...entry, ak: "A".repeat(43) } : entry,
    );
    // Past the known-keys check (a changed key, refused until accepted) to the sealing itself.
    x.type("trust y");
    const sentMark = network.sent.length;
    const mark = x.shown().length;
    x.type("send y hello");
    network.settle();
    expect(x.shownSince(mark)).toEqual([
      "[Cannot seal a message for y: the key the table holds for y is unusable. Nothing was sent.]",
    ]);
    expect(network.sent.slice(sentMark)).toEqual([]);
  });
});
