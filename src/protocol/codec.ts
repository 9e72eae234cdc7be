import {
  COOKIE_LENGTH,
  type DeliveredMessage,
  EPOCH_LENGTH,
  ERROR_CODES,
  type ErrorCode,
  MAX_DATAGRAM_BYTES,
  MAX_NAME_LENGTH,
  MAX_PAD_LENGTH,
  MAX_TABLE_PARTS,
  MAX_TEXT_LENGTH,
  type Message,
  PROTOCOL_VERSION,
  REGISTER_MIN_BYTES,
  type RegisterMessage,
  type TableChange,
  type TableEntry,
  type TableMessage,
  TOKEN_LENGTH,
} from "./messages.ts";
import { isValidName } from "./names.ts";

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

export function encodeMessage(message: Message): Uint8Array {
  if (message.type === "table") return encodeTable(message);
  return encoder.encode(JSON.stringify({ v: PROTOCOL_VERSION, ...message }));
}

/**
 * A push goes to many clients with the same entries and its own id: the entries are
 * serialised and encoded once (keyed by the shared array), and only the head with the
 * id is written per datagram.
 */
const tableBodies = new WeakMap<readonly TableChange[], Uint8Array>();

function encodeTable(message: TableMessage): Uint8Array {
  const { id, version, base, part, parts, clients } = message;
  let body = tableBodies.get(clients);
  if (body === undefined) {
    body = encoder.encode(`"clients":${JSON.stringify(clients)}}`);
    tableBodies.set(clients, body);
  }
  const delta = base === undefined ? "" : `,"base":${base}`;
  const split = parts === 1 ? "" : `,"part":${part},"parts":${parts}`;
  const head = encoder.encode(
    `{"v":${PROTOCOL_VERSION},"type":"table","id":${id},"version":${version}${delta}${split},`,
  );
  const datagram = new Uint8Array(head.byteLength + body.byteLength);
  datagram.set(head);
  datagram.set(body, head.byteLength);
  return datagram;
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

export function textLength(text: string): number {
  let length = 0;
  for (const _ of text) length++;
  return length;
}

function isText(value: unknown): value is string {
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

function decodeTableEntry(value: unknown): TableEntry | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const { name, ip, port, online } = value as Fields;
  if (!isName(name) || !isIp(ip) || !isPort(port) || typeof online !== "boolean") return undefined;
  return { name, ip, port, online };
}

function decodeTableChange(value: unknown): TableChange | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const { name, gone } = value as Fields;
  if (gone === undefined) return decodeTableEntry(value);
  return gone === true && isName(name) ? { name, gone } : undefined;
}

function decodeDelivered(value: unknown): DeliveredMessage | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const { sender, kind, text, at, ref } = value as Fields;
  if (!isName(sender) || !isText(text) || !isTimestamp(at) || !isId(ref)) return undefined;
  if (kind !== "direct" && kind !== "channel") return undefined;
  return { sender, kind, text, at, ref };
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
  switch (f.type) {
    case "register": {
      const { name, token, cookie, epoch, have, pad } = f;
      if (!isName(name)) return undefined;
      const message: RegisterMessage = { type: "register", id, name };
      if (epoch !== undefined || have !== undefined) {
        if (!isHex(epoch, EPOCH_LENGTH) || !isId(have)) return undefined;
        message.epoch = epoch;
        message.have = have;
      }
      if (token !== undefined) {
        if (!isToken(token)) return undefined;
        message.token = token;
      }
      if (cookie !== undefined) {
        if (!isHex(cookie, COOKIE_LENGTH)) return undefined;
        message.cookie = cookie;
      }
      if (pad !== undefined) {
        if (typeof pad !== "string" || pad.length > MAX_PAD_LENGTH) return undefined;
        message.pad = pad;
      }
      return message;
    }
    case "challenge":
      return isHex(f.cookie, COOKIE_LENGTH)
        ? { type: "challenge", id, cookie: f.cookie }
        : undefined;
    case "deregister":
      return isToken(f.token) ? { type: "deregister", id, token: f.token } : undefined;
    case "save": {
      const { token, to, text, ref } = f;
      if (!isToken(token) || !isName(to) || !isText(text)) return undefined;
      if (ref === undefined) return { type: "save", id, token, to, text };
      return isId(ref) ? { type: "save", id, token, to, text, ref } : undefined;
    }
    case "channel":
      return isToken(f.token) && isText(f.text)
        ? { type: "channel", id, token: f.token, text: f.text }
        : undefined;
    case "registered":
      return isToken(f.token) && isId(f.pending) && isHex(f.epoch, EPOCH_LENGTH)
        ? { type: "registered", id, token: f.token, pending: f.pending, epoch: f.epoch }
        : undefined;
    case "error":
      return typeof f.code === "string" && KNOWN_ERROR_CODES.has(f.code)
        ? { type: "error", id, code: f.code as ErrorCode }
        : undefined;
    case "probe":
      return { type: "probe", id };
    case "table": {
      const clients = decodeList(f.clients, decodeTableChange);
      const { version, base } = f;
      // A push of one datagram leaves both out; one without the other is malformed.
      if ((f.part === undefined) !== (f.parts === undefined)) return undefined;
      const part = f.part ?? 0;
      const parts = f.parts ?? 1;
      if (!clients || !isId(version) || !isId(part) || !isId(parts)) return undefined;
      if (parts < 1 || parts > MAX_TABLE_PARTS || part >= parts) return undefined;
      if (base === undefined) {
        if (clients.some((change) => "gone" in change)) return undefined;
        return { type: "table", id, version, part, parts, clients };
      }
      if (!isId(base) || base > version) return undefined;
      return { type: "table", id, version, base, part, parts, clients };
    }
    case "stored": {
      const messages = decodeList(f.messages, decodeDelivered);
      return messages && messages.length > 0 ? { type: "stored", id, messages } : undefined;
    }
    case "channel-message":
      return isName(f.from) && isText(f.text) && isId(f.ref)
        ? { type: "channel-message", id, from: f.from, text: f.text, ref: f.ref }
        : undefined;
    case "chat":
      return isName(f.from) && isName(f.to) && isText(f.text)
        ? { type: "chat", id, from: f.from, to: f.to, text: f.text }
        : undefined;
    case "ack": {
      const { have, unstored } = f;
      if ((have !== undefined && !isId(have)) || (unstored !== undefined && !isId(unstored))) {
        return undefined;
      }
      return {
        type: "ack",
        id,
        ...(have === undefined ? {} : { have }),
        ...(unstored === undefined ? {} : { unstored }),
      };
    }
    default:
      return undefined;
  }
}

/**
 * Decodes one datagram. Bytes from the network are never trusted: anything that is
 * not exactly a version-2 message of a known type with well-formed fields is `undefined`.
 */
export function decodeMessage(bytes: Uint8Array): Message | undefined {
  if (bytes.byteLength === 0 || bytes.byteLength > MAX_DATAGRAM_BYTES) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(strictDecoder.decode(bytes));
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined;
  const fields = parsed as Fields;
  if (fields.v !== PROTOCOL_VERSION) return undefined;
  return decodeFields(fields);
}
