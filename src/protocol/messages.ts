/** Wire protocol version 5: one JSON object per datagram. PROTOCOL.md documents it for humans. */
export const PROTOCOL_VERSION = 5;

/** Characters (code points) a chat message may hold. */
export const MAX_TEXT_LENGTH = 4000;
/** The largest datagram anyone sends or accepts but a table part; a 4,000-character message fits with room to spare. */
export const MAX_DATAGRAM_BYTES = 32_768;
/**
 * The largest table part: the most a UDP datagram can carry over IPv4. Only the server
 * sends them and only clients receive them (PROTOCOL.md, "Why 56 KB parts").
 */
export const MAX_TABLE_DATAGRAM_BYTES = 65_507;
export const MAX_NAME_LENGTH = 32;
export const TOKEN_LENGTH = 32;
export const COOKIE_LENGTH = 32;
/** A table epoch: versions of one epoch are comparable, versions of two are not. */
export const EPOCH_LENGTH = 16;
/**
 * A registration without a valid cookie must fill at least this many bytes (as QUIC's
 * Initial packets are padded): the challenge it gets back is smaller than what it sent.
 */
export const REGISTER_MIN_BYTES = 256;
/** A public key, a signature, a MAC, a challenge nonce: base64url lengths on the wire. */
export const KEY_TEXT_LENGTH = 43;
export const SIGNATURE_TEXT_LENGTH = 86;
export const MAC_TEXT_LENGTH = 22;
export const NONCE_TEXT_LENGTH = 22;
export const MAX_PAD_LENGTH = 1024;
/** A sealed message's nonce: 12 bytes in base64url. */
export const SEALED_NONCE_TEXT_LENGTH = 16;
/**
 * The longest box a message of MAX_TEXT_LENGTH characters seals to: at most 4 UTF-8
 * bytes a character and the 16-byte tag, in base64url. The server's bound on `save`.
 */
export const MAX_BOX_TEXT_LENGTH = Math.ceil(((MAX_TEXT_LENGTH * 4 + 16) * 4) / 3);
/** The shortest: one byte of text and the tag. */
export const MIN_BOX_TEXT_LENGTH = Math.ceil(((1 + 16) * 4) / 3);
/** A table push is cut into at most this many parts (about 180 clients each). */
export const MAX_TABLE_PARTS = 4096;

export interface TableEntry {
  readonly name: string;
  readonly ip: string;
  readonly port: number;
  readonly online: boolean;
  /** The X25519 public key of the client's identity (base64url): direct messages are sealed to it. */
  readonly ak: string;
}

/**
 * An entry as a push carries it. A delta leaves `ak` out of an entry whose key has not
 * changed since the delta's base: the client already holds it, and the key is nearly
 * half of an entry. A snapshot carries every key.
 */
export type TableEntryChange = Omit<TableEntry, "ak"> & { readonly ak?: string };

/** In a delta: the name was forgotten since the delta's base. */
export interface TableTombstone {
  readonly name: string;
  readonly gone: true;
}

export type TableChange = TableEntryChange | TableTombstone;

export function isTombstone(change: TableChange): change is TableTombstone {
  return "gone" in change;
}

/**
 * A direct message sealed by its sender for its recipient (AES-256-GCM under their
 * pairwise key, PROTOCOL.md "Sealed direct messages"): `n` the nonce, `box` the
 * ciphertext and tag, both base64url.
 */
export interface Sealed {
  readonly n: string;
  readonly box: string;
}

interface DeliveredFields {
  readonly sender: string;
  /** The server's time of receipt, epoch milliseconds UTC. */
  readonly at: number;
  /** The sender's id for the message (see `ref` below). */
  readonly ref: number;
}

/** A channel message, which the server relays and can read (or a direct one stored before sealing). */
export interface DeliveredText extends DeliveredFields {
  readonly kind: "direct" | "channel";
  readonly text: string;
}

/** A direct message as its sender sealed it; `ak` is the sender's key as the server had it bound. */
export interface DeliveredSealed extends DeliveredFields, Sealed {
  readonly kind: "direct";
  readonly ak: string;
}

export type DeliveredMessage = DeliveredText | DeliveredSealed;

export function isSealedDelivery(message: DeliveredMessage): message is DeliveredSealed {
  return "box" in message;
}

export const ERROR_CODES = [
  "name-taken",
  "wrong-key",
  "bad-name",
  "unknown-session",
  "unknown-recipient",
  "recipient-online",
  "too-long",
  "mailbox-full",
  "store-full",
  "store-failed",
  "slow-down",
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** Client to server. */
export type RegisterMessage = {
  type: "register";
  id: number;
  name: string;
  /** The client's signing and agreement public keys (base64url). */
  sk: string;
  ak: string;
  cookie?: string;
  /** With the cookie: the signature by `sk` over the registration transcript. */
  sig?: string;
  /** The table this client still holds (after a dereg): only what changed since is sent. */
  epoch?: string;
  have?: number;
  /** Filler up to REGISTER_MIN_BYTES; its content means nothing. */
  pad?: string;
};
export type DeregisterMessage = { type: "deregister"; id: number; sid: string; mac?: string };
/**
 * `ref` is the id the sender first gave the message (the `chat` id when a direct try
 * came first; this request's own id when it did not). The sender's name and `ref`
 * name one message however many copies travel, so none is stored or shown twice.
 */
export type SaveMessage = {
  type: "save";
  id: number;
  sid: string;
  to: string;
  /** Sealed for the recipient, with `ref` (or `id` when it is absent) in its associated data. */
  n: string;
  box: string;
  ref?: number;
  mac?: string;
};
/**
 * `ref`: the id the post was first sent with, when a new session took it over under a
 * new id (as `save`'s); the post's own id when absent.
 */
export type ChannelMessage = {
  type: "channel";
  id: number;
  sid: string;
  text: string;
  ref?: number;
  mac?: string;
};

/** Server to client. */
export type RegisteredMessage = {
  type: "registered";
  id: number;
  /** Names the session; not a secret: what proves it is the session key's MAC. */
  sid: string;
  pending: number;
  epoch: string;
  /** The server's signature over the registration transcript and `sid`. */
  sig: string;
};
/**
 * Asks a would-be client to prove it receives at its address before the server sends it
 * more, and gives it the server's public keys and a nonce to sign.
 */
export type ChallengeMessage = {
  type: "challenge";
  id: number;
  cookie: string;
  nonce: string;
  ssk: string;
  sak: string;
};
export type ErrorMessage = { type: "error"; id: number; code: ErrorCode; mac?: string };
export type ProbeMessage = { type: "probe"; id: number; mac?: string };
/**
 * A snapshot (no `base`): the whole table at `version`, maybe in parts. A delta (`base`):
 * each entry changed after `base`, as it is at `version`. PROTOCOL.md, "The client table".
 */
export type TableMessage = {
  type: "table";
  id: number;
  version: number;
  base?: number;
  part: number;
  parts: number;
  clients: readonly TableChange[];
  mac?: string;
};
export type StoredMessages = {
  type: "stored";
  id: number;
  messages: DeliveredMessage[];
  mac?: string;
};
/** `ref` is the id of the sender's `channel` request. */
export type ChannelDelivery = {
  type: "channel-message";
  id: number;
  from: string;
  text: string;
  ref: number;
  mac?: string;
};

/** Client to client. */
/**
 * `to` lets a receiver refuse a chat meant for whoever held its address before it. The
 * text is sealed for `to` with `id` as its ref; the ack carries a MAC under the same key.
 */
export type ChatMessage = {
  type: "chat";
  id: number;
  from: string;
  to: string;
  n: string;
  box: string;
};

/**
 * Anyone: acknowledges the request with the same id. `have`: the table version a client
 * holds (acks of `table`); `unstored`: members a channel post could not be kept for.
 */
export type AckMessage = {
  type: "ack";
  id: number;
  have?: number;
  unstored?: number;
  mac?: string;
};

export type Message =
  | RegisterMessage
  | DeregisterMessage
  | SaveMessage
  | ChannelMessage
  | RegisteredMessage
  | ChallengeMessage
  | ErrorMessage
  | ProbeMessage
  | TableMessage
  | StoredMessages
  | ChannelDelivery
  | ChatMessage
  | AckMessage;

export type MessageType = Message["type"];

export interface Address {
  readonly ip: string;
  readonly port: number;
}
