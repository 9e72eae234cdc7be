import { decodeBase64urlOfLength, encodeBase64url } from "../crypto/base64url.ts";
import type { Message, TableChange } from "../protocol/messages.ts";
import { PROTOCOL_VERSION } from "../protocol/messages.ts";
import { nameKey } from "../protocol/names.ts";
import { tableEntriesJson } from "../protocol/table-entries-json.ts";
import {
  type AgreementKeyPair,
  type CryptoPort,
  PUBLIC_KEY_BYTES,
  SEAL_KEY_BYTES,
  SIGNATURE_BYTES,
  type SigningKeyPair,
} from "./crypto-port.ts";

/**
 * The identity layer's arithmetic, shared by server, client and test peers: the signed
 * registration transcript, the session key, and the MAC every later datagram carries.
 * Pure: every primitive comes through the port. PROTOCOL.md, "Identity layer".
 */

export interface KeyPairs {
  readonly signing: SigningKeyPair;
  readonly agreement: AgreementKeyPair;
}

/** A MAC on the wire: the first 16 bytes of HMAC-SHA256, base64url (22 characters). */
export const MAC_WIRE_BYTES = 16;
export const NONCE_WIRE_BYTES = 16;

const encoder = new TextEncoder();

export interface RegisterTranscript {
  /** The server's signing and agreement public keys, base64url. */
  readonly ssk: string;
  readonly sak: string;
  readonly nonce: string;
  readonly cookie: string;
  readonly name: string;
  /** The client's signing and agreement public keys, base64url. */
  readonly sk: string;
  readonly ak: string;
  readonly id: number;
}

/**
 * What the client signs to prove its key, and (with the session id) what the server signs
 * back. Both servers keys are in it, so no one on the path can swap the agreement key
 * the session key comes from.
 */
export function registerTranscript(t: RegisterTranscript, sid?: string): Uint8Array {
  const lines = [
    "chatapp v2 register",
    t.ssk,
    t.sak,
    t.nonce,
    t.cookie,
    nameKey(t.name),
    t.sk,
    t.ak,
    String(t.id),
  ];
  if (sid !== undefined) lines.push(sid);
  return encoder.encode(lines.join("\n"));
}

export function signText(port: CryptoPort, pair: SigningKeyPair, bytes: Uint8Array): string {
  return encodeBase64url(port.sign(pair.privateKey, bytes));
}

export function verifyText(
  port: CryptoPort,
  publicKey: string,
  bytes: Uint8Array,
  signature: string,
): boolean {
  const key = decodeBase64urlOfLength(publicKey, PUBLIC_KEY_BYTES);
  const sig = decodeBase64urlOfLength(signature, SIGNATURE_BYTES);
  return key !== undefined && sig !== undefined && port.verify(key, bytes, sig);
}

/**
 * K = HKDF-SHA256(X25519(own, peer), salt = nonce, info = "chatapp v2 session\n" + name + "\n" + sid).
 * Undefined when the peer's key cannot be used (malformed, low order).
 */
export function sessionKey(
  port: CryptoPort,
  own: AgreementKeyPair,
  peerAgreementKey: string,
  nonce: string,
  name: string,
  sid: string,
): Uint8Array | undefined {
  const peer = decodeBase64urlOfLength(peerAgreementKey, PUBLIC_KEY_BYTES);
  const salt = decodeBase64urlOfLength(nonce, NONCE_WIRE_BYTES);
  if (peer === undefined || salt === undefined) return undefined;
  const secret = port.agree(own.privateKey, peer);
  if (secret === undefined) return undefined;
  return port.deriveKey(
    secret,
    salt,
    `chatapp v2 session\n${nameKey(name)}\n${sid}`,
    SEAL_KEY_BYTES,
  );
}

/** The JSON of a value with object keys sorted at every level; undefined fields left out, as JSON does. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) {
    return value.every(isFlatAndSorted) ? JSON.stringify(value) : viaSortedCopy(value);
  }
  if (typeof value === "object" && value !== null) {
    const fields = value as Record<string, unknown>;
    if (isFlatAndSorted(fields)) return JSON.stringify(fields);
    return viaSortedCopy(fields);
  }
  return JSON.stringify(value);
}

/**
 * The same text, built by the engine: a copy with every object's keys inserted in sorted
 * order, given to JSON.stringify once (a MAC is checked and made for every datagram).
 * Anything the copy cannot mirror exactly takes the definition's own path.
 */
function viaSortedCopy(value: object): string {
  const copy = sortedCopy(value);
  return copy === NOT_COPYABLE ? canonicalBySteps(value) : JSON.stringify(copy);
}

const NOT_COPYABLE = Symbol("not copyable");

function sortedCopy(value: unknown): unknown {
  if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") {
    return value;
  }
  if (typeof value !== "object") return NOT_COPYABLE;
  if (value === null) return value;
  if (Array.isArray(value)) {
    const copy: unknown[] = [];
    for (const item of value) {
      // JSON writes an undefined item as null; the definition leaves it out.
      const itemCopy = item === undefined ? NOT_COPYABLE : sortedCopy(item);
      if (itemCopy === NOT_COPYABLE) return NOT_COPYABLE;
      copy.push(itemCopy);
    }
    return copy;
  }
  if (Object.getPrototypeOf(value) !== Object.prototype) return NOT_COPYABLE;
  const fields = value as Record<string, unknown>;
  // No prototype: a "__proto__" key from the network is then a key like any other.
  const copy: Record<string, unknown> = Object.create(null);
  for (const key of Object.keys(fields).sort()) {
    // An integer-like key would be enumerated before the others, whatever the order.
    const first = key.charCodeAt(0);
    if (first >= 48 && first <= 57) return NOT_COPYABLE;
    const item = fields[key];
    if (item === undefined) continue;
    const itemCopy = sortedCopy(item);
    if (itemCopy === NOT_COPYABLE) return NOT_COPYABLE;
    copy[key] = itemCopy;
  }
  return copy;
}

/** The definition, step by step: keys sorted at every level, undefined fields left out. */
function canonicalBySteps(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((item) => canonicalBySteps(item)).join(",")}]`;
  if (typeof value === "object" && value !== null) {
    const fields = value as Record<string, unknown>;
    const keys = Object.keys(fields)
      .filter((key) => fields[key] !== undefined)
      .sort();
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalBySteps(fields[key])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * A plain object whose keys are already in order and whose values are strings, numbers
 * or booleans: its plain JSON is its canonical form (table entries are built so).
 */
function isFlatAndSorted(value: unknown): boolean {
  if (
    typeof value !== "object" ||
    value === null ||
    Object.getPrototypeOf(value) !== Object.prototype
  ) {
    return false;
  }
  const fields = value as Record<string, unknown>;
  const keys = Object.keys(fields);
  for (let index = 0; index < keys.length; index++) {
    const key = keys[index] as string;
    if (index > 0 && key <= (keys[index - 1] as string)) return false;
    const item = fields[key];
    if (typeof item !== "string" && typeof item !== "number" && typeof item !== "boolean") {
      return false;
    }
  }
  return true;
}

/**
 * What a MAC covers: the message as decoded, without `mac` (and without `pad`, which
 * means nothing). A table's entries are covered by their digest: a push goes to
 * thousands of clients, each with its own MAC, and the entries are hashed once.
 */
export function macInput(port: CryptoPort, message: Message): Uint8Array {
  const written = writtenMacInput(port, message);
  if (written !== undefined) return encoder.encode(written);
  const { mac: _mac, ...rest } = message as Message & { mac?: string; pad?: string };
  const { pad: _pad, ...covered } = rest as typeof rest & { pad?: string };
  // A table without its entries (the decoder never makes one) is covered like any message.
  if (covered.type === "table" && Array.isArray(covered.clients)) {
    const { clients, ...header } = covered;
    return encoder.encode(
      canonicalJson({ v: PROTOCOL_VERSION, ...header, clients: entriesDigest(port, clients) }),
    );
  }
  return encoder.encode(canonicalJson({ v: PROTOCOL_VERSION, ...covered }));
}

/**
 * The keys, in sorted order, of the flat messages that travel by the thousand: a table
 * part out to each client and its ack back, saves, posts and their copies, probes.
 * Their MAC input is written directly, as canonicalJson would write it; any other key
 * (or a value that is not a plain string, number or boolean) takes the general path.
 */
const WRITTEN_KEYS: Readonly<Record<string, readonly string[]>> = {
  table: ["base", "clients", "id", "part", "parts", "type", "v", "version"],
  ack: ["have", "id", "type", "unstored", "v"],
  save: ["box", "id", "n", "ref", "sid", "to", "type", "v"],
  channel: ["id", "ref", "sid", "text", "type", "v"],
  "channel-message": ["from", "id", "ref", "text", "type", "v"],
  probe: ["id", "type", "v"],
  deregister: ["id", "sid", "type", "v"],
  error: ["code", "id", "type", "v"],
};
const UNCOVERED = new Set(["mac", "pad"]);

function writtenMacInput(port: CryptoPort, message: Message): string | undefined {
  const fields = message as unknown as Record<string, unknown>;
  const keys = WRITTEN_KEYS[message.type];
  if (keys === undefined) return undefined;
  for (const key in fields) {
    if (!keys.includes(key) && !UNCOVERED.has(key)) return undefined;
  }
  let text = "";
  for (const key of keys) {
    let value = key === "v" && !Object.hasOwn(fields, "v") ? PROTOCOL_VERSION : fields[key];
    if (value === undefined) continue;
    if (key === "clients") {
      if (!Array.isArray(value)) return undefined;
      value = entriesDigest(port, value as TableChange[]);
    } else if (typeof value === "object" || typeof value === "function") {
      return undefined;
    }
    text += `${text === "" ? "" : ","}"${key}":${JSON.stringify(value)}`;
  }
  return `{${text}}`;
}

/**
 * HMAC-SHA256 under a fixed, public key is a hash as collision-resistant as SHA-256
 * itself: a MAC over it binds the entries as a MAC over them would. What it hashes is
 * the entries' text as they travel, which is canonical: arrays in a fixed order.
 */
const DIGEST_KEY = new Uint8Array(32);
const entryDigests = new WeakMap<readonly TableChange[], string>();

function entriesDigest(port: CryptoPort, entries: readonly TableChange[]): string {
  let digest = entryDigests.get(entries);
  if (digest === undefined) {
    digest = encodeBase64url(port.mac(DIGEST_KEY, encoder.encode(tableEntriesJson(entries))));
    entryDigests.set(entries, digest);
  }
  return digest;
}

export function macOf(port: CryptoPort, key: Uint8Array, bytes: Uint8Array): string {
  return encodeBase64url(port.mac(key, bytes).subarray(0, MAC_WIRE_BYTES));
}

/** The message with its `mac` under `key`. */
export function withMac<M extends Message>(port: CryptoPort, key: Uint8Array, message: M): M {
  return { ...message, mac: macOf(port, key, macInput(port, message)) };
}

/** True when `mac` is the MAC of `bytes` under `key`, compared in constant time. */
export function macMatches(
  port: CryptoPort,
  key: Uint8Array,
  bytes: Uint8Array,
  mac: string | undefined,
): boolean {
  if (mac === undefined) return false;
  const given = decodeBase64urlOfLength(mac, MAC_WIRE_BYTES);
  if (given === undefined) return false;
  return port.equalSecrets(port.mac(key, bytes).subarray(0, MAC_WIRE_BYTES), given);
}

export function hasValidMac(port: CryptoPort, key: Uint8Array, message: Message): boolean {
  return macMatches(port, key, macInput(port, message), (message as { mac?: string }).mac);
}

export function publicKeyText(pair: { readonly publicKey: Uint8Array }): string {
  return encodeBase64url(pair.publicKey);
}
