import type { Address, Message } from "../protocol/messages.ts";
import { nameKey } from "../protocol/names.ts";
import type { StoredMessage, StoreSnapshot } from "../store/offline-store.ts";
import { OutboundRequests } from "./outbound-requests.ts";
import type { DropCounts, ServerDeps } from "./server-effects.ts";
import { SERVER_SEND_WINDOW } from "./timing.ts";

export interface ServerClient {
  readonly key: string;
  name: string;
  ip: string;
  port: number;
  online: boolean;
  token: string;
}

export interface ChannelPost {
  readonly sender: string;
  readonly text: string;
  readonly receivedAt: number;
  /** The id of the sender's `channel` request: every copy of the post carries it. */
  readonly ref: number;
}

/** Why the server sent a request of its own; decides what an ack or a silence means. */
export type ServerPurpose =
  | { readonly kind: "probe"; readonly clientKey: string }
  | { readonly kind: "table"; readonly clientKey: string; readonly pushId: number }
  | { readonly kind: "stored"; readonly clientKey: string; readonly messageIds: readonly number[] }
  | {
      readonly kind: "channel";
      readonly clientKey: string;
      readonly post: ChannelPost;
      readonly round: number;
    };

/** Work waiting for a probe's verdict on whether a client is alive. */
export type ProbeWaiter =
  | {
      readonly kind: "register";
      readonly from: Address;
      readonly requestId: number;
      readonly name: string;
    }
  | {
      readonly kind: "save";
      readonly from: Address;
      readonly requestId: number;
      readonly save: Omit<StoredMessage, "id" | "recipient">;
    }
  | {
      readonly kind: "channel";
      readonly requestId: number;
      readonly message: Message;
      readonly post: ChannelPost;
      readonly round: number;
    };

export interface Probe {
  readonly requestId: number;
  readonly waiters: ProbeWaiter[];
}

export interface TablePush {
  /** Parts of an earlier push (to an address the client has left) do not count for this one. */
  readonly id: number;
  outstandingParts: number;
  /** The table changed again while this push was out: send it once more when done. */
  stale: boolean;
}

/** A cached answer to a client request, repeated verbatim when the request is retransmitted. */
export interface CachedReply {
  reply: Message | undefined;
  readonly expiresAt: number;
}

export interface ServerState {
  readonly deps: ServerDeps;
  readonly clients: Map<string, ServerClient>;
  readonly clientsByToken: Map<string, string>;
  readonly mailboxes: Map<string, StoredMessage[]>;
  nextStoredId: number;
  nextRequestId: number;
  tableVersion: number;
  readonly outbound: OutboundRequests<ServerPurpose>;
  readonly probes: Map<string, Probe>;
  readonly tablePushes: Map<string, TablePush>;
  readonly storedDeliveries: Set<string>;
  readonly replies: Map<string, CachedReply>;
  readonly drops: DropCounts;
  /** Per source address: datagrams it may still send now (a token bucket). */
  readonly rates: Map<string, RateBucket>;
}

export interface RateBucket {
  allowance: number;
  updatedAt: number;
}

export function createServerState(snapshot: StoreSnapshot, deps: ServerDeps): ServerState {
  const clients = new Map<string, ServerClient>();
  const clientsByToken = new Map<string, string>();
  for (const record of snapshot.clients) {
    const key = nameKey(record.name);
    clients.set(key, { key, ...record });
    clientsByToken.set(record.token, key);
  }
  const mailboxes = new Map<string, StoredMessage[]>();
  let lastStoredId = 0;
  for (const message of snapshot.messages) {
    const key = nameKey(message.recipient);
    const mailbox = mailboxes.get(key) ?? [];
    mailbox.push(message);
    mailboxes.set(key, mailbox);
    lastStoredId = Math.max(lastStoredId, message.id);
  }
  return {
    deps,
    clients,
    clientsByToken,
    mailboxes,
    nextStoredId: lastStoredId + 1,
    nextRequestId: deps.firstRequestId,
    tableVersion: 1,
    outbound: new OutboundRequests(SERVER_SEND_WINDOW),
    probes: new Map(),
    tablePushes: new Map(),
    storedDeliveries: new Set(),
    replies: new Map(),
    drops: { malformed: 0, unauthenticated: 0, unexpected: 0, rateLimited: 0 },
    rates: new Map(),
  };
}
