import {
  COOKIE_LENGTH,
  type DeliveredMessage,
  EPOCH_LENGTH,
  ERROR_CODES,
  type ErrorCode,
  KEY_TEXT_LENGTH,
  MAC_TEXT_LENGTH,
  MAX_DATAGRAM_BYTES,
  MAX_NAME_LENGTH,
  MAX_PAD_LENGTH,
  MAX_TABLE_DATAGRAM_BYTES,
  MAX_TABLE_PARTS,
  MAX_TEXT_LENGTH,
  type Message,
  MIN_BOX_TEXT_LENGTH,
  NONCE_TEXT_LENGTH,
  PROTOCOL_VERSION,
  REGISTER_MIN_BYTES,
  type RegisterMessage,
  SEALED_NONCE_TEXT_LENGTH,
  type Sealed,
  SIGNATURE_TEXT_LENGTH,
  type TableChange,
  type TableMessage,
  TOKEN_LENGTH,
} from "./messages.ts";
import { isValidName } from "./names.ts";
import { tableEntriesJson } from "./table-entries-json.ts";

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

export function encodeMessage(message: Message): Uint8Array {
  if (message.type === "table") return encodeTable(message);
  return encoder.encode(JSON.stringify({ v: PROTOCOL_VERSION, ...message }));
}

/**
 * A push goes to many clients with the same entries and its own id: the entries are
 * serialised and encoded once (keyed by the shared array), and only the head with the
 * id and MAC is written per datagram.
 */
const tableBodies = new WeakMap<readonly TableChange[], Uint8Array>();
/**
 * Room kept before a shared body for one datagram's head, written right-aligned into
 * it: the datagram is a view of the buffer, and the body is never copied.
 */
const TABLE_HEAD_ROOM = 256;

function tableBody(clients: readonly TableChange[]): Uint8Array {
  let body = tableBodies.get(clients);
  if (body === undefined) {
    const json = encoder.encode(`"clients":${tableEntriesJson(clients)}}`);
    body = new Uint8Array(TABLE_HEAD_ROOM + json.byteLength);
    body.set(json, TABLE_HEAD_ROOM);
    tableBodies.set(clients, body);
  }
  return body;
}

/** Everything before `"clients"`: ASCII only (numbers and a base64url MAC). */
function tableHead({ id, version, base, part, parts, mac }: TableMessage): string {
  const delta = base === undefined ? "" : `,"base":${base}`;
  const split = parts === 1 ? "" : `,"part":${part},"parts":${parts}`;
  const macField = mac === undefined ? "" : `,"mac":"${mac}"`;
  return `{"v":${PROTOCOL_VERSION},"type":"table","id":${id},"version":${version}${delta}${split}${macField},`;
}

function encodeTable(message: TableMessage): Uint8Array {
  const body = tableBody(message.clients).subarray(TABLE_HEAD_ROOM);
  const head = encoder.encode(tableHead(message));
  const datagram = new Uint8Array(head.byteLength + body.byteLength);
  datagram.set(head);
  datagram.set(body, head.byteLength);
  return datagram;
}

/**
 * The datagram of `message`, to be sent at once: a table push's bytes are a view of a
 * buffer the next call writes into, so they are valid only until then. A push of
 * 10,000 entries is 1.2 MB that would otherwise be copied once per recipient.
 */
export function encodeForSending(message: Message): Uint8Array {
  if (message.type !== "table") return encodeMessage(message);
  const head = tableHead(message);
  if (head.length > TABLE_HEAD_ROOM) return encodeTable(message);
  const buffer = tableBody(message.clients);
  const start = TABLE_HEAD_ROOM - head.length;
  encoder.encodeInto(head, buffer.subarray(start, TABLE_HEAD_ROOM));
  return buffer.subarray(start);
}

/** The registration padded to REGISTER_MIN_BYTES, so that its challenge is no amplifier. */
export function padRegistration(message: RegisterMessage): RegisterMessage {
  const { pad: _, ...bare } = message;
  const size = encodeMessage(bare).byteLength + ',"pad":""'.length;
  return size >= REGISTER_MIN_BYTES
    ? bare
    : { ...bare, pad: "-".repeat(REGISTER_MIN_BYTES - size) };
}

type Fields = Record<string, unknown>;

const KNOWN_ERROR_CODES: ReadonlySet<string> = new Set<ErrorCode>(ERROR_CODES);

const MAX_ID = 2 ** 53 - 1;

function isId(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= MAX_ID;
}

/** The largest time a JavaScript Date can hold: anything beyond is no time of receipt. */
const MAX_TIMESTAMP = 8_640_000_000_000_000;

function isTimestamp(value: unknown): value is number {
  return isId(value) && value <= MAX_TIMESTAMP;
}

function isPort(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 1 && value <= 65_535;
}

function isName(value: unknown): value is string {
  return typeof value === "string" && value.length <= MAX_NAME_LENGTH && isValidName(value);
}

function isHex(value: unknown, length: number): value is string {
  return typeof value === "string" && value.length === length && /^[0-9a-f]+$/.test(value);
}

function isToken(value: unknown): value is string {
  return isHex(value, TOKEN_LENGTH);
}

const BASE64URL = /^[A-Za-z0-9_-]+$/;

function isBase64url(value: unknown, length: number): value is string {
  return typeof value === "string" && value.length === length && BASE64URL.test(value);
}

function isKey(value: unknown): value is string {
  return isBase64url(value, KEY_TEXT_LENGTH);
}

/**
 * A sealed text's nonce and box. The codec bounds the box only by the datagram: the
 * server answers an oversized `save` with `too-long`, and a receiver finds the text's
 * length once it has opened it.
 */
function sealedFields(n: unknown, box: unknown): Sealed | undefined {
  if (!isBase64url(n, SEALED_NONCE_TEXT_LENGTH)) return undefined;
  if (typeof box !== "string" || box.length < MIN_BOX_TEXT_LENGTH || !BASE64URL.test(box)) {
    return undefined;
  }
  return { n, box };
}

/** A MAC is optional to the codec; the cores decide where one is required. */
function macField(value: unknown): { ok: boolean; mac?: string } {
  if (value === undefined) return { ok: true };
  return isBase64url(value, MAC_TEXT_LENGTH) ? { ok: true, mac: value } : { ok: false };
}

function withMac<M extends Message>(message: M, field: { mac?: string }): M {
  return field.mac === undefined ? message : { ...message, mac: field.mac };
}

export function textLength(text: string): number {
  let length = 0;
  for (const _ of text) length++;
  return length;
}

export function isMessageText(value: unknown): value is string {
  return (
    typeof value === "string" &&
    value.length > 0 &&
    value.length <= MAX_TEXT_LENGTH * 2 &&
    textLength(value) <= MAX_TEXT_LENGTH
  );
}

function isIp(value: unknown): value is string {
  return typeof value === "string" && value.length > 0 && value.length <= 64;
}

/** An entry as it travels (table-entries-json.ts): `[name, ip, port, online, ak?]`, or `[name]` when forgotten. */
function decodeTableChange(value: unknown): TableChange | undefined {
  if (!Array.isArray(value)) return undefined;
  const [name, ip, port, online, ak] = value as unknown[];
  if (!isName(name)) return undefined;
  if (value.length === 1) return { gone: true, name };
  if (value.length < 4 || value.length > 5) return undefined;
  if (!isIp(ip) || !isPort(port) || typeof online !== "boolean") return undefined;
  if (value.length === 4) return { ip, name, online, port };
  return isKey(ak) ? { ak, ip, name, online, port } : undefined;
}

function decodeDelivered(value: unknown): DeliveredMessage | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const { sender, kind, text, n, box, ak, at, ref } = value as Fields;
  if (!isName(sender) || !isTimestamp(at) || !isId(ref)) return undefined;
  if (kind !== "direct" && kind !== "channel") return undefined;
  if (text === undefined && kind === "direct") {
    const sealed = sealedFields(n, box);
    return sealed && isKey(ak) ? { sender, kind, ...sealed, ak, at, ref } : undefined;
  }
  if (n !== undefined || box !== undefined || ak !== undefined) return undefined;
  return isMessageText(text) ? { sender, kind, text, at, ref } : undefined;
}

function decodeList<T>(
  value: unknown,
  decodeItem: (item: unknown) => T | undefined,
): T[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const items: T[] = [];
  for (const item of value) {
    const decoded = decodeItem(item);
    if (decoded === undefined) return undefined;
    items.push(decoded);
  }
  return items;
}

function decodeFields(f: Fields): Message | undefined {
  const id = f.id;
  if (!isId(id)) return undefined;
  const mac = macField(f.mac);
  switch (f.type) {
    case "register": {
      const { name, sk, ak, cookie, sig, epoch, have, pad } = f;
      if (!isName(name) || !isKey(sk) || !isKey(ak)) return undefined;
      const message: RegisterMessage = { type: "register", id, name, sk, ak };
      if (epoch !== undefined || have !== undefined) {
        if (!isHex(epoch, EPOCH_LENGTH) || !isId(have)) return undefined;
        message.epoch = epoch;
        message.have = have;
      }
      if (cookie !== undefined) {
        if (!isHex(cookie, COOKIE_LENGTH)) return undefined;
        message.cookie = cookie;
      }
      if (sig !== undefined) {
        if (!isBase64url(sig, SIGNATURE_TEXT_LENGTH) || cookie === undefined) return undefined;
        message.sig = sig;
      }
      if (pad !== undefined) {
        if (typeof pad !== "string" || pad.length > MAX_PAD_LENGTH) return undefined;
        message.pad = pad;
      }
      return message;
    }
    case "challenge": {
      const { cookie, nonce, ssk, sak } = f;
      return isHex(cookie, COOKIE_LENGTH) &&
        isBase64url(nonce, NONCE_TEXT_LENGTH) &&
        isKey(ssk) &&
        isKey(sak)
        ? { type: "challenge", id, cookie, nonce, ssk, sak }
        : undefined;
    }
    case "deregister":
      return isToken(f.sid) && mac.ok
        ? withMac({ type: "deregister", id, sid: f.sid }, mac)
        : undefined;
    case "save": {
      const { sid, to, ref } = f;
      const sealed = sealedFields(f.n, f.box);
      if (!isToken(sid) || !isName(to) || !sealed || !mac.ok) return undefined;
      if (ref === undefined) return withMac({ type: "save", id, sid, to, ...sealed }, mac);
      return isId(ref) ? withMac({ type: "save", id, sid, to, ...sealed, ref }, mac) : undefined;
    }
    case "channel": {
      const { sid, text, ref } = f;
      if (!isToken(sid) || !isMessageText(text) || !mac.ok) return undefined;
      if (ref === undefined) return withMac({ type: "channel", id, sid, text }, mac);
      return isId(ref) ? withMac({ type: "channel", id, sid, text, ref }, mac) : undefined;
    }
    case "registered":
      return isToken(f.sid) &&
        isId(f.pending) &&
        isHex(f.epoch, EPOCH_LENGTH) &&
        isBase64url(f.sig, SIGNATURE_TEXT_LENGTH)
        ? { type: "registered", id, sid: f.sid, pending: f.pending, epoch: f.epoch, sig: f.sig }
        : undefined;
    case "error":
      return typeof f.code === "string" && KNOWN_ERROR_CODES.has(f.code) && mac.ok
        ? withMac({ type: "error", id, code: f.code as ErrorCode }, mac)
        : undefined;
    case "probe":
      return mac.ok ? withMac({ type: "probe", id }, mac) : undefined;
    case "table": {
      const clients = decodeList(f.clients, decodeTableChange);
      const { version, base } = f;
      // A push of one datagram leaves both out; one without the other is malformed.
      if ((f.part === undefined) !== (f.parts === undefined)) return undefined;
      const part = f.part ?? 0;
      const parts = f.parts ?? 1;
      if (!clients || !isId(version) || !isId(part) || !isId(parts) || !mac.ok) return undefined;
      if (parts < 1 || parts > MAX_TABLE_PARTS || part >= parts) return undefined;
      if (base === undefined) {
        // A snapshot leaves out no key. It may name a forgotten client: its pieces
        // (PROTOCOL.md) are changes, applied in order to an empty table.
        if (clients.some((change) => !("gone" in change) && change.ak === undefined)) {
          return undefined;
        }
        return withMac({ type: "table", id, version, part, parts, clients }, mac);
      }
      if (!isId(base) || base > version) return undefined;
      return withMac({ type: "table", id, version, base, part, parts, clients }, mac);
    }
    case "stored": {
      const messages = decodeList(f.messages, decodeDelivered);
      return messages && messages.length > 0 && mac.ok
        ? withMac({ type: "stored", id, messages }, mac)
        : undefined;
    }
    case "channel-message":
      return isName(f.from) && isMessageText(f.text) && isId(f.ref) && mac.ok
        ? withMac({ type: "channel-message", id, from: f.from, text: f.text, ref: f.ref }, mac)
        : undefined;
    case "chat": {
      const sealed = sealedFields(f.n, f.box);
      return isName(f.from) && isName(f.to) && sealed
        ? { type: "chat", id, from: f.from, to: f.to, ...sealed }
        : undefined;
    }
    case "ack": {
      const { have, unstored } = f;
      if ((have !== undefined && !isId(have)) || (unstored !== undefined && !isId(unstored))) {
        return undefined;
      }
      if (!mac.ok) return undefined;
      return withMac(
        {
          type: "ack" as const,
          id,
          ...(have === undefined ? {} : { have }),
          ...(unstored === undefined ? {} : { unstored }),
        },
        mac,
      );
    }
    default:
      return undefined;
  }
}

/**
 * Decodes one datagram. Bytes from the network are never trusted: anything that is
 * not exactly a message of this version, of a known type, with well-formed fields, and
 * within its size (MAX_DATAGRAM_BYTES; a table part MAX_TABLE_DATAGRAM_BYTES) is `undefined`.
 */
export function decodeMessage(bytes: Uint8Array): Message | undefined {
  if (bytes.byteLength === 0 || bytes.byteLength > MAX_TABLE_DATAGRAM_BYTES) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(strictDecoder.decode(bytes));
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined;
  const fields = parsed as Fields;
  if (fields.v !== PROTOCOL_VERSION) return undefined;
  if (bytes.byteLength > MAX_DATAGRAM_BYTES && fields.type !== "table") return undefined;
  return decodeFields(fields);
}
