import {
  COOKIE_LENGTH,
  type DeliveredMessage,
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
  type TableEntry,
  TOKEN_LENGTH,
} from "./messages.ts";
import { isValidName } from "./names.ts";

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

export function encodeMessage(message: Message): Uint8Array {
  return encoder.encode(JSON.stringify({ v: PROTOCOL_VERSION, ...message }));
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
      const { name, token, cookie, pad } = f;
      if (!isName(name)) return undefined;
      const message: RegisterMessage = { type: "register", id, name };
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
      return isToken(f.token) && isId(f.pending)
        ? { type: "registered", id, token: f.token, pending: f.pending }
        : undefined;
    case "error":
      return typeof f.code === "string" && KNOWN_ERROR_CODES.has(f.code)
        ? { type: "error", id, code: f.code as ErrorCode }
        : undefined;
    case "probe":
      return { type: "probe", id };
    case "table": {
      const clients = decodeList(f.clients, decodeTableEntry);
      const { version, part, parts } = f;
      if (!clients || !isId(version) || !isId(part) || !isId(parts)) return undefined;
      if (parts < 1 || parts > MAX_TABLE_PARTS || part >= parts) return undefined;
      return { type: "table", id, version, part, parts, clients };
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
    case "ack":
      return { type: "ack", id };
    default:
      return undefined;
  }
}

/**
 * Decodes one datagram. Bytes from the network are never trusted: anything that is
 * not exactly a version-1 message of a known type with well-formed fields is `undefined`.
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
