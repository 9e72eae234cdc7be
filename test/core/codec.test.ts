import { describe, expect, test } from "bun:test";
import { seededRandom } from "../../src/io/seeded-random.ts";
import {
  decodeMessage,
  encodeForSending,
  encodeMessage,
  textLength,
} from "../../src/protocol/codec.ts";
import {
  type ErrorCode,
  MAX_BOX_TEXT_LENGTH,
  MAX_DATAGRAM_BYTES,
  MAX_TABLE_DATAGRAM_BYTES,
  MAX_TEXT_LENGTH,
  type Message,
  type MessageType,
  MIN_BOX_TEXT_LENGTH,
} from "../../src/protocol/messages.ts";
import { isValidName } from "../../src/protocol/names.ts";

const token = "0123456789abcdef0123456789abcdef";
const cookie = "fedcba9876543210fedcba9876543210";
const sk = "A".repeat(43);
const ak = `${"B".repeat(42)}A`;
const sig = "C".repeat(86);
const mac = "D".repeat(22);
const nonce = "E".repeat(22);
const n = "F".repeat(16);
/** A box of one byte of text and its tag; the codec cannot tell a real one from this. */
const box = "G".repeat(MIN_BOX_TEXT_LENGTH);
const longestBox = "H".repeat(MAX_BOX_TEXT_LENGTH);
const errorCodes = {
  "name-taken": true,
  "wrong-key": true,
  "bad-name": true,
  "unknown-session": true,
  "unknown-recipient": true,
  "recipient-online": true,
  "too-long": true,
  "mailbox-full": true,
  "store-full": true,
  "store-failed": true,
  "slow-down": true,
} satisfies Record<ErrorCode, true>;

const valid: Message[] = [
  { type: "register", id: 0, name: "alice", sk, ak },
  { type: "register", id: 1, name: "Bob.b-1_", sk, ak, epoch: "0123456789abcdef", have: 4 },
  { type: "register", id: 2, name: "c", sk, ak, cookie, sig },
  { type: "register", id: 3, name: "d".repeat(32), sk, ak, cookie },
  { type: "deregister", id: 4, sid: token, mac },
  { type: "save", id: 5, sid: token, to: "bob", n, box, mac },
  { type: "save", id: 5, sid: token, to: "bob", n, box: longestBox, ref: 4, mac },
  { type: "channel", id: 6, sid: token, text: "  spaces  inside and around  " },
  { type: "registered", id: 7, sid: token, pending: 0, epoch: "0123456789abcdef", sig },
  { type: "registered", id: 8, sid: token, pending: 1000, epoch: "0123456789abcdef", sig },
  { type: "challenge", id: 9, cookie, nonce, ssk: sk, sak: ak },
  ...Object.keys(errorCodes).map(
    (code, index): Message => ({ type: "error", id: 10 + index, code: code as ErrorCode }),
  ),
  { type: "probe", id: 20, mac },
  {
    type: "table",
    id: 21,
    version: 3,
    part: 1,
    parts: 2,
    clients: [
      { name: "alice", ip: "127.0.0.1", port: 6001, online: true, ak },
      { name: "bob", ip: "::1", port: 65_535, online: false, ak: sk },
    ],
  },
  { type: "table", id: 22, version: 0, part: 0, parts: 1, clients: [] },
  {
    type: "stored",
    id: 23,
    messages: [
      { sender: "alice", kind: "direct", n, box, ak, at: 1_741_944_413_000, ref: 7 },
      { sender: "carol", kind: "channel", text: "all: 🎉", at: 0, ref: 0 },
      // Stored in clear before direct messages were sealed.
      { sender: "dave", kind: "direct", text: "hi", at: 0, ref: 1 },
    ],
  },
  { type: "channel-message", id: 24, from: "alice", text: "Grüße, 世界 👋🏽", ref: 3 },
  { type: "chat", id: Number.MAX_SAFE_INTEGER, from: "alice", to: "bob", n, box: longestBox },
  { type: "chat", id: 25, from: "a", to: "bob", n, box },
  { type: "ack", id: 27 },
];

/** Forces a sample of every message type: a new type fails to compile until it is added. */
const everyType = {
  register: true,
  deregister: true,
  save: true,
  channel: true,
  registered: true,
  challenge: true,
  error: true,
  probe: true,
  table: true,
  stored: true,
  "channel-message": true,
  chat: true,
  ack: true,
} satisfies Record<MessageType, true>;

const bytes = (text: string) => new TextEncoder().encode(text);
const json = (value: unknown) => bytes(JSON.stringify(value));

describe("round trip", () => {
  test("the samples hold every message type and every error code", () => {
    const types: string[] = [...new Set(valid.map((m) => m.type))];
    expect(types.sort()).toEqual(Object.keys(everyType).sort());
    const codes: string[] = [
      ...new Set(valid.flatMap((m) => (m.type === "error" ? [m.code] : []))),
    ];
    expect(codes.sort()).toEqual(Object.keys(errorCodes).sort());
  });

  for (const message of valid) {
    test(`${message.type} #${message.id}`, () => {
      const encoded = encodeMessage(message);
      expect(encoded.byteLength).toBeLessThanOrEqual(MAX_DATAGRAM_BYTES);
      expect(decodeMessage(encoded)).toEqual(message);
      expect(JSON.parse(new TextDecoder().decode(encoded)).v).toBe(5);
    });
  }

  test("the largest text of the widest characters still fits one datagram", () => {
    // JSON escapes a control character or lone surrogate as six bytes: the worst case.
    for (const unit of ["\u0001", "\ud800", "😀", '"']) {
      const message: Message = {
        type: "channel",
        id: Number.MAX_SAFE_INTEGER,
        sid: token,
        mac,
        text: unit.repeat(MAX_TEXT_LENGTH),
      };
      const encoded = encodeMessage(message);
      expect(encoded.byteLength).toBeLessThanOrEqual(MAX_DATAGRAM_BYTES);
      expect(decodeMessage(encoded)).toEqual(message);
    }
  });

  test("the largest sealed text fits one datagram, as a save and as a chat", () => {
    const save: Message = {
      type: "save",
      id: Number.MAX_SAFE_INTEGER,
      sid: token,
      to: "x".repeat(32),
      n,
      box: longestBox,
      ref: Number.MAX_SAFE_INTEGER,
      mac,
    };
    const chat: Message = {
      type: "chat",
      id: Number.MAX_SAFE_INTEGER,
      from: "y".repeat(32),
      to: "x".repeat(32),
      n,
      box: longestBox,
    };
    for (const message of [save, chat]) {
      expect(encodeMessage(message).byteLength).toBeLessThanOrEqual(MAX_DATAGRAM_BYTES);
    }
    // 4,000 characters of 4 UTF-8 bytes and the 16-byte tag, in base64url.
    expect(MAX_BOX_TEXT_LENGTH).toBe(21_355);
  });

  test("a push's datagrams for sending are the encoded message, each valid until the next", () => {
    const clients = [
      { ak: "a".repeat(43), ip: "127.0.0.1", name: "x", online: true, port: 4001 },
      { ip: "::1", name: "y", online: false, port: 4002 },
      { gone: true as const, name: "z" },
    ];
    const pushes: Message[] = [
      { type: "table", id: 7, version: 9, base: 3, part: 0, parts: 1, clients, mac },
      {
        type: "table",
        id: Number.MAX_SAFE_INTEGER,
        version: 9,
        base: 0,
        part: 1,
        parts: 2,
        clients,
      },
      { type: "table", id: 8, version: 10, base: 9, part: 0, parts: 1, clients, mac },
    ];
    for (const push of pushes) {
      const sent = encodeForSending(push);
      expect(sent).toEqual(encodeMessage(push));
      expect(decodeMessage(sent)).toEqual(push);
    }
    expect(encodeForSending(valid[0] as Message)).toEqual(encodeMessage(valid[0] as Message));
  });

  test("a table part may be larger than any other datagram, up to what UDP carries", () => {
    const entry = (i: number) => ({
      ak,
      ip: "127.0.0.1",
      name: `c${i}`,
      online: true,
      port: 4000 + i,
    });
    const clients = Array.from({ length: 520 }, (_, i) => entry(i));
    const part: Message = { type: "table", id: 1, version: 520, part: 0, parts: 1, clients, mac };
    const encoded = encodeMessage(part);
    expect(encoded.byteLength).toBeGreaterThan(MAX_DATAGRAM_BYTES);
    expect(encoded.byteLength).toBeLessThanOrEqual(MAX_TABLE_DATAGRAM_BYTES);
    expect(decodeMessage(encoded)).toEqual(part);
    // The same size in any other type is dropped: only the server sends parts, to clients.
    // (A field the receiver does not know is otherwise dropped and the rest decoded.)
    const request = { v: 5, type: "register", id: 1, name: "alice", sk, ak };
    const extra = "-".repeat(MAX_DATAGRAM_BYTES);
    expect(decodeMessage(json({ ...request, extra }))).toBeUndefined();
    expect(decodeMessage(json({ ...request, extra: "-" }))).toBeDefined();
  });

  test("fields the receiver does not know are dropped, not passed on", () => {
    const decoded = decodeMessage(json({ v: 5, type: "ack", id: 3, extra: { deep: [1] }, token }));
    expect(decoded).toEqual({ type: "ack", id: 3 });
  });
});

describe("malformed datagrams are undefined and never throw", () => {
  const register = { v: 5, type: "register", id: 1, name: "alice", sk, ak };
  const cases: [string, Uint8Array][] = [
    ["empty", new Uint8Array()],
    ["not JSON", bytes("hello")],
    ["truncated JSON", bytes('{"v":5,"type":"ack","id":1')],
    ["JSON null", bytes("null")],
    ["JSON number", bytes("1")],
    ["JSON string", bytes('"ack"')],
    ["JSON array", json([register])],
    ["array of fields", json(["v", 1, "type", "ack", "id", 1])],
    ["no version", json({ type: "ack", id: 1 })],
    ["version 1", json({ v: 1, type: "ack", id: 1 })],
    ["version 2 (a snapshot there never repeats a name)", json({ v: 2, type: "ack", id: 1 })],
    [
      "version 3 (its peers drop table parts above 32,768 bytes)",
      json({ v: 3, type: "ack", id: 1 }),
    ],
    ["version as a string", json({ v: "1", type: "ack", id: 1 })],
    ["version 1.0000001", bytes('{"v":1.0000001,"type":"ack","id":1}')],
    ["unknown type", json({ v: 5, type: "hello", id: 1 })],
    ["type of another case", json({ v: 5, type: "ACK", id: 1 })],
    ["prototype type", json({ v: 5, type: "toString", id: 1 })],
    ["no id", json({ v: 5, type: "ack" })],
    ["negative id", json({ v: 5, type: "ack", id: -1 })],
    ["fractional id", json({ v: 5, type: "ack", id: 1.5 })],
    ["id above 2^53-1", json({ v: 5, type: "ack", id: 2 ** 53 })],
    ["huge id", bytes('{"v":5,"type":"ack","id":1e400}')],
    ["id as a string", json({ v: 5, type: "ack", id: "1" })],
    ["id as null", json({ v: 5, type: "ack", id: null })],
    ["id as an array", json({ v: 5, type: "ack", id: [1] })],
    [
      "invalid UTF-8",
      new Uint8Array([
        ...bytes('{"v":5,"type":"chat","id":1,"from":"a","text":"'),
        0xff,
        0xfe,
        ...bytes('"}'),
      ]),
    ],
    [
      "overlong UTF-8",
      new Uint8Array([
        ...bytes('{"v":5,"type":"chat","id":1,"from":"a","text":"'),
        0xc0,
        0xaf,
        ...bytes('"}'),
      ]),
    ],
    [
      "UTF-16",
      new Uint8Array([0xff, 0xfe, ...[...'{"v":5}'].flatMap((c) => [c.charCodeAt(0), 0])]),
    ],
    [
      "40 KB datagram",
      json({ v: 5, type: "chat", id: 1, from: "a", to: "bob", text: "x".repeat(40_000) }),
    ],
    [
      "just over a table part's size limit",
      new Uint8Array(MAX_TABLE_DATAGRAM_BYTES + 1).fill(0x20),
    ],
    ["deep nesting", bytes(`${"[".repeat(16_000)}${"]".repeat(16_000)}`)],
    [
      "nested junk in a field",
      json({ v: 5, type: "chat", id: 1, from: { a: [{ b: {} }] }, to: "bob", text: "t" }),
    ],
    ["register without a name", json({ v: 5, type: "register", id: 1 })],
    ["register with a short key", json({ ...register, sk: "abc" })],
    ["register with a key in standard base64", json({ ...register, ak: `+${ak.slice(1)}` })],
    ["register without its agreement key", json({ ...register, ak: undefined })],
    ["register with a signature but no cookie", json({ ...register, sig })],
    [
      "save with a short mac",
      json({ v: 5, type: "save", id: 1, sid: token, to: "b", text: "t", mac: "AA" }),
    ],
    ["register with a null cookie", json({ ...register, cookie: null })],
    ["register with a short cookie", json({ ...register, cookie: cookie.slice(1) })],
    ["deregister without a token", json({ v: 5, type: "deregister", id: 1 })],
    ["save without text", json({ v: 5, type: "save", id: 1, sid: token, to: "bob" })],
    ["save with empty text", json({ v: 5, type: "save", id: 1, sid: token, to: "bob", text: "" })],
    [
      "save with text as a number",
      json({ v: 5, type: "save", id: 1, sid: token, to: "bob", text: 5 }),
    ],
    [
      "save with 4001 characters",
      json({ v: 5, type: "save", id: 1, sid: token, to: "bob", text: "x".repeat(4001) }),
    ],
    [
      "save with the old token field",
      json({ v: 5, type: "save", id: 1, token, to: "b", text: "t" }),
    ],
    [
      "chat with 4001 emoji",
      json({ v: 5, type: "chat", id: 1, from: "a", to: "bob", text: "😀".repeat(4001) }),
    ],
    ["channel without a token", json({ v: 5, type: "channel", id: 1, text: "hi" })],
    [
      "registered with a negative pending",
      json({ v: 5, type: "registered", id: 1, sid: token, pending: -1, sig }),
    ],
    ["registered without a sid", json({ v: 5, type: "registered", id: 1, pending: 0, sig })],
    [
      "registered without a signature",
      json({ v: 5, type: "registered", id: 1, sid: token, pending: 0, epoch: "0123456789abcdef" }),
    ],
    [
      "challenge without the server's keys",
      json({ v: 5, type: "challenge", id: 1, cookie, nonce }),
    ],
    ["challenge without a cookie", json({ v: 5, type: "challenge", id: 1 })],
    ["error with an unknown code", json({ v: 5, type: "error", id: 1, code: "oops" })],
    ["error with a prototype code", json({ v: 5, type: "error", id: 1, code: "constructor" })],
    ["error without a code", json({ v: 5, type: "error", id: 1 })],
    ["table without clients", json({ v: 5, type: "table", id: 1, version: 1, part: 0, parts: 1 })],
    [
      "table with part = parts",
      json({ v: 5, type: "table", id: 1, version: 1, part: 1, parts: 1, clients: [] }),
    ],
    [
      "table with zero parts",
      json({ v: 5, type: "table", id: 1, version: 1, part: 0, parts: 0, clients: [] }),
    ],
    [
      "table with a bad entry",
      json({
        v: 5,
        type: "table",
        id: 1,
        version: 1,
        part: 0,
        parts: 1,
        clients: [["a", "1.2.3.4", 0, true, ak]],
      }),
    ],
    [
      "table with a null entry",
      json({ v: 5, type: "table", id: 1, version: 1, part: 0, parts: 1, clients: [null] }),
    ],
    [
      "table with an online string",
      json({
        v: 5,
        type: "table",
        id: 1,
        version: 1,
        part: 0,
        parts: 1,
        clients: [["a", "1.2.3.4", 1, "yes", ak]],
      }),
    ],
    [
      "table entry without its agreement key",
      json({
        v: 5,
        type: "table",
        id: 1,
        version: 1,
        clients: [["a", "1.2.3.4", 1, true]],
      }),
    ],
    [
      "table entry with an agreement key one character short",
      json({
        v: 5,
        type: "table",
        id: 1,
        version: 1,
        clients: [["a", "1.2.3.4", 1, true, ak.slice(1)]],
      }),
    ],
    [
      "table entry with an agreement key outside base64url",
      json({
        v: 5,
        type: "table",
        id: 1,
        version: 1,
        clients: [["a", "1.2.3.4", 1, true, `+${ak.slice(1)}`]],
      }),
    ],
    [
      "table entry as an object (the form before version 5)",
      json({
        v: 5,
        type: "table",
        id: 1,
        version: 1,
        base: 0,
        clients: [{ ak, ip: "1.2.3.4", name: "a", online: true, port: 1 }],
      }),
    ],
    [
      "table entry with an item too many",
      json({ v: 5, type: "table", id: 1, version: 1, clients: [["a", "1.2.3.4", 1, true, ak, 1]] }),
    ],
    [
      "table entry too short to be an entry or a forgotten name",
      json({ v: 5, type: "table", id: 1, version: 1, base: 0, clients: [["a", null]] }),
    ],
    [
      "table entry whose name is not a name",
      json({ v: 5, type: "table", id: 1, version: 1, base: 0, clients: [["-a"]] }),
    ],
    [
      "table with clients as an object",
      json({ v: 5, type: "table", id: 1, version: 1, part: 0, parts: 1, clients: {} }),
    ],
    ["stored with no messages", json({ v: 5, type: "stored", id: 1, messages: [] })],
    [
      "chat in clear, as before sealing",
      json({ v: 5, type: "chat", id: 1, from: "a", to: "b", text: "hi" }),
    ],
    [
      "chat with a box one character short of a tag and a byte",
      json({ v: 5, type: "chat", id: 1, from: "a", to: "b", n, box: box.slice(1) }),
    ],
    [
      "chat with a nonce of 15 characters",
      json({ v: 5, type: "chat", id: 1, from: "a", to: "b", n: n.slice(1), box }),
    ],
    [
      "chat with a box outside base64url",
      json({ v: 5, type: "chat", id: 1, from: "a", to: "b", n, box: `${box}+/` }),
    ],
    ["chat without its nonce", json({ v: 5, type: "chat", id: 1, from: "a", to: "b", box })],
    [
      "save in clear, as before sealing",
      json({ v: 5, type: "save", id: 1, sid: token, to: "b", text: "hi" }),
    ],
    [
      "stored sealed message without the sender's key",
      json({
        v: 5,
        type: "stored",
        id: 1,
        messages: [{ sender: "a", kind: "direct", n, box, at: 0, ref: 1 }],
      }),
    ],
    [
      "stored channel message sealed",
      json({
        v: 5,
        type: "stored",
        id: 1,
        messages: [{ sender: "a", kind: "channel", n, box, ak, at: 0, ref: 1 }],
      }),
    ],
    [
      "stored message with a text and a box",
      json({
        v: 5,
        type: "stored",
        id: 1,
        messages: [{ sender: "a", kind: "direct", text: "hi", n, box, ak, at: 0, ref: 1 }],
      }),
    ],
    [
      "stored with an unknown kind",
      json({
        v: 1,
        type: "stored",
        id: 1,
        messages: [{ sender: "a", kind: "group", text: "t", at: 0 }],
      }),
    ],
    [
      "stored with a negative time",
      json({
        v: 1,
        type: "stored",
        id: 1,
        messages: [{ sender: "a", kind: "direct", text: "t", at: -5 }],
      }),
    ],
    [
      "channel-message from a bad name",
      json({ v: 5, type: "channel-message", id: 1, from: "-x", text: "t" }),
    ],
  ];
  for (const badName of [
    "",
    "-abc",
    ".abc",
    "_abc",
    "a b",
    "a/b",
    "ä",
    "a\n",
    "x".repeat(33),
    "a\u0000",
  ]) {
    cases.push([
      `chat from the name ${JSON.stringify(badName)}`,
      json({ v: 5, type: "chat", id: 1, from: badName, to: "bob", text: "t" }),
    ]);
    cases.push([`register as ${JSON.stringify(badName)}`, json({ ...register, name: badName })]);
  }

  for (const [name, datagram] of cases) {
    test(name, () => {
      expect(decodeMessage(datagram)).toBeUndefined();
    });
  }

  test("names that follow the rules are accepted", () => {
    for (const name of ["a", "A", "0", "a.b-c_d", "x".repeat(32), "Z9"]) {
      expect(isValidName(name)).toBe(true);
      expect(decodeMessage(json({ ...register, name }))).toEqual({
        type: "register",
        id: 1,
        name,
        sk,
        ak,
      });
    }
  });
});

/** Everything a decoded message promises its receiver. */
function expectWellFormed(message: Message): void {
  expect(Number.isSafeInteger(message.id) && message.id >= 0).toBe(true);
  const texts: string[] = [];
  const names: string[] = [];
  switch (message.type) {
    case "register":
      names.push(message.name);
      break;
    case "save":
      names.push(message.to);
      expect(message.n).toHaveLength(16);
      break;
    case "channel":
      texts.push(message.text);
      break;
    case "chat":
      names.push(message.from, message.to);
      expect(message.box.length).toBeGreaterThanOrEqual(MIN_BOX_TEXT_LENGTH);
      break;
    case "channel-message":
      names.push(message.from);
      texts.push(message.text);
      break;
    case "table":
      names.push(...message.clients.map((c) => c.name));
      expect(message.part).toBeLessThan(message.parts);
      break;
    case "stored":
      names.push(...message.messages.map((m) => m.sender));
      texts.push(...message.messages.flatMap((m) => ("text" in m ? [m.text] : [])));
      break;
    default:
      break;
  }
  for (const name of names) expect(isValidName(name)).toBe(true);
  for (const text of texts) {
    expect(text.length).toBeGreaterThan(0);
    expect(textLength(text)).toBeLessThanOrEqual(MAX_TEXT_LENGTH);
  }
  // What was accepted survives another trip unchanged.
  expect(decodeMessage(encodeMessage(message))).toEqual(message);
}

describe("fuzzing with a seeded generator", () => {
  test("3,000 random byte strings", () => {
    const random = seededRandom(2024);
    let accepted = 0;
    for (let round = 0; round < 3000; round++) {
      const length = Math.floor(random() * (round % 10 === 0 ? 40_000 : 200));
      const datagram = new Uint8Array(length);
      for (let index = 0; index < length; index++) datagram[index] = Math.floor(random() * 256);
      const decoded = decodeMessage(datagram);
      if (decoded) {
        accepted++;
        expectWellFormed(decoded);
      }
    }
    expect(accepted).toBe(0);
  });

  test("3,000 random JSON-ish strings built from protocol tokens", () => {
    const random = seededRandom(7);
    const pieces = [
      '{"v":1',
      ',"type":"ack"',
      ',"id":',
      "1",
      "-1",
      "1e308",
      '"x"',
      "}",
      "[",
      "]",
      ",",
      ":",
      "null",
      "true",
      '"chat"',
      ',"from":"a"',
      ',"text":"hi"',
      "{",
      '"',
    ];
    const pick = () => pieces[Math.floor(random() * pieces.length)] ?? "";
    let accepted = 0;
    for (let round = 0; round < 3000; round++) {
      let text = "";
      const count = 1 + Math.floor(random() * 12);
      for (let index = 0; index < count; index++) text += pick();
      const decoded = decodeMessage(bytes(text));
      if (decoded) {
        accepted++;
        expectWellFormed(decoded);
      }
    }
    // Some fragments do form valid acks; they must still be well formed (checked above).
    expect(accepted).toBeLessThan(3000);
  });

  test("byte-level mutations of every valid message", () => {
    const random = seededRandom(99);
    let accepted = 0;
    let tried = 0;
    for (const message of valid) {
      const original = encodeMessage(message);
      for (let round = 0; round < 150; round++) {
        const mutated = [...original];
        const edits = 1 + Math.floor(random() * 4);
        for (let edit = 0; edit < edits; edit++) {
          const at = Math.floor(random() * (mutated.length + 1));
          const byte = Math.floor(random() * 256);
          const how = random();
          if (how < 0.4) mutated[at] = byte;
          else if (how < 0.6) mutated.splice(at, 0, byte);
          else if (how < 0.8) mutated.splice(at, 1);
          else mutated.length = at;
        }
        tried++;
        const decoded = decodeMessage(new Uint8Array(mutated));
        if (decoded) {
          accepted++;
          expectWellFormed(decoded);
        }
      }
    }
    expect(tried).toBe(valid.length * 150);
    expect(accepted).toBeLessThan(tried);
  });

  test("field-level mutations: every field of every message swapped for junk", () => {
    const random = seededRandom(31337);
    const junk: unknown[] = [
      null,
      true,
      -1,
      1.5,
      2 ** 53,
      Number.MAX_VALUE,
      "",
      "x".repeat(5000),
      "A",
      [],
      [1, 2],
      {},
      { nested: { deeper: [null, { x: 1 }] } },
      "\u0000",
      "zz".repeat(16),
    ];
    for (const message of valid) {
      const fields = JSON.parse(new TextDecoder().decode(encodeMessage(message))) as Record<
        string,
        unknown
      >;
      for (const key of Object.keys(fields)) {
        for (let round = 0; round < 20; round++) {
          const value = junk[Math.floor(random() * junk.length)];
          const decoded = decodeMessage(json({ ...fields, [key]: value }));
          if (decoded) expectWellFormed(decoded);
        }
        const { [key]: _removed, ...without } = fields;
        const decoded = decodeMessage(json(without));
        const optional =
          key === "mac" ||
          (message.type === "save" && key === "ref") ||
          (message.type === "register" &&
            (key === "sig" || (key === "cookie" && fields.sig === undefined)));
        if (optional) expect(decoded).toBeDefined();
        else expect(decoded).toBeUndefined();
      }
    }
  });
});
