/** Wire protocol version 2: one JSON object per datagram. PROTOCOL.md documents it for humans. */
export const PROTOCOL_VERSION = 2;

/** Characters (code points) a chat message may hold. */
export const MAX_TEXT_LENGTH = 4000;
/** The largest datagram anyone sends or accepts; a 4,000-character message fits with room to spare. */
export const MAX_DATAGRAM_BYTES = 32_768;
export const MAX_NAME_LENGTH = 32;
export const TOKEN_LENGTH = 32;
export const COOKIE_LENGTH = 32;
/** A table epoch: versions of one epoch are comparable, versions of two are not. */
export const EPOCH_LENGTH = 16;
/**
 * A registration without a valid cookie must fill at least this many bytes (as QUIC's
 * Initial packets are padded): the challenge it gets back is smaller than what it sent.
 */
export const REGISTER_MIN_BYTES = 160;
export const MAX_PAD_LENGTH = 1024;
/** A table push is cut into at most this many parts (about 180 clients each). */
export const MAX_TABLE_PARTS = 4096;

export interface TableEntry {
  readonly name: string;
  readonly ip: string;
  readonly port: number;
  readonly online: boolean;
}

/** In a delta: the name was forgotten since the delta's base. */
export interface TableTombstone {
  readonly name: string;
  readonly gone: true;
}

export type TableChange = TableEntry | TableTombstone;

export function isTombstone(change: TableChange): change is TableTombstone {
  return "gone" in change;
}

export interface DeliveredMessage {
  readonly sender: string;
  readonly kind: "direct" | "channel";
  readonly text: string;
  /** The server's time of receipt, epoch milliseconds UTC. */
  readonly at: number;
  /** The sender's id for the message (see `ref` below). */
  readonly ref: number;
}

export const ERROR_CODES = [
  "name-taken",
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
  token?: string;
  cookie?: string;
  /** The table this client still holds (after a dereg): only what changed since is sent. */
  epoch?: string;
  have?: number;
  /** Filler up to REGISTER_MIN_BYTES; its content means nothing. */
  pad?: string;
};
export type DeregisterMessage = { type: "deregister"; id: number; token: string };
/**
 * `ref` is the id the sender first gave the message (the `chat` id when a direct try
 * came first; this request's own id when it did not). The sender's name and `ref`
 * name one message however many copies travel, so none is stored or shown twice.
 */
export type SaveMessage = {
  type: "save";
  id: number;
  token: string;
  to: string;
  text: string;
  ref?: number;
};
export type ChannelMessage = { type: "channel"; id: number; token: string; text: string };

/** Server to client. */
export type RegisteredMessage = {
  type: "registered";
  id: number;
  token: string;
  pending: number;
  epoch: string;
};
/** Asks a would-be client to prove it receives at its address before the server sends it more. */
export type ChallengeMessage = { type: "challenge"; id: number; cookie: string };
export type ErrorMessage = { type: "error"; id: number; code: ErrorCode };
export type ProbeMessage = { type: "probe"; id: number };
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
};
export type StoredMessages = { type: "stored"; id: number; messages: DeliveredMessage[] };
/** `ref` is the id of the sender's `channel` request. */
export type ChannelDelivery = {
  type: "channel-message";
  id: number;
  from: string;
  text: string;
  ref: number;
};

/** Client to client. */
/** `to` lets a receiver refuse a chat meant for whoever held its address before it. */
export type ChatMessage = { type: "chat"; id: number; from: string; to: string; text: string };

/**
 * Anyone: acknowledges the request with the same id. `have`: the table version a client
 * holds (acks of `table`); `unstored`: members a channel post could not be kept for.
 */
export type AckMessage = { type: "ack"; id: number; have?: number; unstored?: number };

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
