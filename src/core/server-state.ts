import { decodeBase64urlOfLength, encodeBase64url } from "../crypto/base64url.ts";
import { addressKey } from "../protocol/address.ts";
import type { Address, Message, RegisterMessage } from "../protocol/messages.ts";
import { nameKey } from "../protocol/names.ts";
import type { ServerSnapshot, StoredMessage, StoredSummary } from "../store/offline-store.ts";
import { SEAL_KEY_BYTES } from "./crypto-port.ts";
import { ExpiringMap } from "./expiring-map.ts";
import { FifoSet } from "./fifo-set.ts";
import type { Datagram } from "./outbound-requests.ts";
import { OutboundRequests } from "./outbound-requests.ts";
import { ReplayWindow } from "./replay-window.ts";
import type { ActivityCounts, DropCounts, LogLevel, ServerDeps } from "./server-effects.ts";
import { TableLog } from "./table-log.ts";
import {
  DEFAULT_RETENTION_MS,
  DEFAULT_STORE_QUOTA,
  REPLY_CACHE_LIMIT,
  SERVER_LANES,
  USED_REGISTRATIONS_LIMIT,
} from "./timing.ts";

export interface ServerClient {
  readonly key: string;
  name: string;
  ip: string;
  port: number;
  online: boolean;
  /** The session id (sid) of its current session. */
  token: string;
  /** The keys the name is bound to (base64url). */
  readonly sk: string;
  readonly ak: string;
  /** The current session's key; undefined if it cannot be used (a damaged record). */
  sessionKey: Uint8Array | undefined;
  /** Ids of its requests seen in this session. */
  window: ReplayWindow;
  lastSeen: number;
  /** The table version of this entry's last change. */
  entryVersion: number;
  /** The table version this client acknowledged; undefined: it needs a snapshot. */
  synced: number | undefined;
  /** The table push out to it now, if any: at most one at a time. */
  push: TablePush | undefined;
  /** It must be sent the table even if it holds the current version (SPEC §5: exists!! and the table). */
  refresh: boolean;
  /** A push to it went unanswered at this version: it is tried again after the next change. */
  stalledAt: number | undefined;
  /** A push of large parts went unanswered in this session: it is sent small parts until it registers again. */
  smallParts: boolean;
  /** In a cluster: the node its session is at (undefined on a single server). */
  node: string | undefined;
}

export interface ChannelPost {
  readonly sender: string;
  readonly text: string;
  readonly receivedAt: number;
  /** The id of the sender's `channel` request: every copy of the post carries it. */
  readonly ref: number;
  /** Its live deliveries, for the fan-out time in the metrics. */
  readonly fanOut: FanOut;
}

/** A post's live deliveries: members still to acknowledge it or be given up on (stored). */
export interface FanOut {
  /** When the deliveries (and the sender's ack) went out: once the post was committed. */
  startedAt: number;
  pending: number;
}

/** Why the server sent a request of its own; decides what an ack or a silence means. */
export type ServerPurpose =
  | { readonly kind: "probe"; readonly clientKey: string }
  | {
      readonly kind: "table";
      readonly clientKey: string;
      readonly pushId: number;
      readonly version: number;
    }
  | { readonly kind: "stored"; readonly clientKey: string; readonly messageIds: readonly number[] }
  | {
      readonly kind: "channel";
      readonly clientKey: string;
      readonly post: ChannelPost;
      readonly round: number;
      /** The member's stored copy, kept while it is delivered live (undefined for an old one). */
      readonly copy: StoredMessage | undefined;
    };

/** Work waiting for a probe's verdict on whether a client is alive. */
export type ProbeWaiter =
  | {
      readonly kind: "register";
      readonly requester: Requester;
      readonly request: RegisterMessage;
    }
  | {
      readonly kind: "save";
      readonly requester: Requester;
      readonly save: Omit<StoredMessage, "id" | "recipient">;
    }
  | {
      readonly kind: "channel";
      readonly requestId: number;
      readonly message: Message;
      readonly post: ChannelPost;
      readonly round: number;
      readonly copy: StoredMessage | undefined;
    }
  /** Another node of the cluster asked whether this client of ours is alive. */
  | { readonly kind: "node"; readonly node: string; readonly probeId: number };

/** Who asked, and how the answer is remembered and authenticated. */
export interface Requester {
  readonly from: Address;
  readonly id: number;
  /** The reply cache's key: the session and id, or (before a session) the address and id. */
  readonly replyKey: string;
  /** The session the request came in, whose key MACs the answer. */
  readonly session: { readonly sid: string; readonly key: Uint8Array } | undefined;
}

export interface Probe {
  /** The probe datagram's request id, or (for a client at another node) the id of the note that asked its node. */
  readonly requestId: number;
  readonly waiters: ProbeWaiter[];
}

export interface TablePush {
  /** Parts of an earlier push (to an address the client has left) do not count for this one. */
  readonly id: number;
  readonly partIds: readonly number[];
  readonly version: number;
  /** Parts not sent yet: a client has at most TABLE_PARTS_IN_FLIGHT of them coming at once. */
  readonly unsent: Message[];
  outstandingParts: number;
  /** The highest version the client said it holds while this push was out. */
  reported: number | undefined;
}

/** What a step that changed the store would send and log, held until the change is committed. */
export interface AwaitingCommit {
  readonly datagrams: readonly Datagram[];
  /** Which of those datagrams answer a request, and whose (the rest are the server's own requests). */
  readonly replies: ReadonlyMap<Datagram, Requester>;
  readonly logs: readonly { readonly level: LogLevel; readonly text: string }[];
  /** Messages this step stored, taken back if the commit fails. */
  readonly stored: readonly StoredMessage[];
  /** Fan-outs whose deliveries go out with the commit: they start then. */
  readonly fanOuts: readonly FanOut[];
}

/**
 * A kept answer that is a plain `ack` in a session: it is made again for a repeat, the
 * same datagram since its MAC is a function of the session key and the id. Kept as the
 * message, each such answer cost about 100 bytes more, and the server keeps up to
 * REPLY_CACHE_LIMIT of them.
 */
export const PLAIN_ACK = "plain-ack";

/** A cached answer to a client request, repeated verbatim when the request is retransmitted. */
export interface CachedReply {
  /** Undefined while the request is worked on. */
  reply: Message | typeof PLAIN_ACK | undefined;
  /** Where the request came from: a copy of it from anywhere else is a replay. */
  readonly from: Address;
  readonly expiresAt: number;
}

export interface ServerState {
  readonly deps: ServerDeps;
  /** The server's public keys as they travel. */
  readonly ssk: string;
  readonly sak: string;
  /** Turns a cookie into the challenge's nonce, so the server keeps no state per challenge. */
  readonly nonceSecret: Uint8Array;
  readonly clients: Map<string, ServerClient>;
  readonly clientsByToken: Map<string, string>;
  /** Which client's entry holds each address (addressKey): one process per address. */
  readonly clientsByAddress: Map<string, string>;
  /** Per recipient, what is stored for it, in order of receipt: no texts (read when delivered). */
  readonly mailboxes: Map<string, StoredSummary[]>;
  /** Stored messages being read for delivery, by read number: for which client, which ids. */
  readonly reads: Map<number, { readonly clientKey: string; readonly ids: readonly number[] }>;
  nextRead: number;
  /** Ids of stored messages whose commit has not been reported yet, by commit. */
  readonly storedInCommit: Map<number, readonly number[]>;
  /** The stored batch on its way to each client, by request id: one at a time. */
  readonly storedInFlight: Map<string, number>;
  /** Clients whose next batch waits for a commit: some of its messages were not on disk yet. */
  readonly readAfterCommit: Set<string>;
  nextStoredId: number;
  nextRequestId: number;
  readonly table: TableLog;
  /**
   * Clients asked for by name (a registration, a refresh, one that must learn it is
   * offline, one whose push ended behind): served before the sweep.
   */
  readonly syncRequests: FifoSet<string>;
  /** Who else needs a push after a change: found by sweeping the table, not by queueing everyone. */
  readonly sweep: TableSweep;
  readonly outbound: OutboundRequests<ServerPurpose>;
  readonly probes: Map<string, Probe>;
  readonly storedDeliveries: Set<string>;
  /** Clients whose return the others learn once their stored messages are delivered (SPEC §5). */
  readonly announceWhenDelivered: Set<string>;
  /**
   * Ids of stored copies of channel posts being delivered live: on disk so that a crash
   * loses none, not counted against limits, gone once the member acknowledges.
   */
  readonly delivering: Set<number>;
  /** Set at start: online clients with stored copies get them (a fan-out a crash cut short). */
  resumeDeliveries: boolean;
  nextCommit: number;
  readonly awaitingCommit: Map<number, AwaitingCommit>;
  /** New names taken per source address in the current period. */
  readonly nameGrants: Map<string, NameGrant>;
  readonly storeUse: { messages: number; textBytes: number };
  readonly retentionMs: number;
  readonly storeQuota: { readonly messages: number; readonly textBytes: number };
  nextForgetCheckAt: number | undefined;
  readonly replies: ExpiringMap<string, CachedReply>;
  /**
   * Signed registrations that opened a session, by name, cookie and id, until their
   * cookie expires: the same datagram again, from anywhere, opens nothing. (After that
   * its cookie is refused anyway; a restarted server has a new cookie secret.)
   */
  readonly usedRegistrations: ExpiringMap<string, number>;
  readonly drops: DropCounts;
  readonly activity: ActivityCounts;
  /**
   * Milliseconds from each fan-out's start to its last member's ack or verdict, for the
   * shell to read and empty after each step; at most FAN_OUT_TIMES_KEPT wait unread.
   */
  readonly fanOutTimes: number[];
  /** Per source address: datagrams it may still send now (a token bucket). */
  readonly rates: Map<string, RateBucket>;
  /** Cluster: registrations waiting for their name's claim, by claim number. */
  readonly pendingClaims: Map<number, PendingClaim>;
  nextClaim: number;
  /** Cluster: probes another node carries out for us, by note id: the client, and when we stop waiting. */
  readonly remoteProbes: Map<number, RemoteProbe>;
  /** Cluster: the millisecond and sequence of the last stored-message id made here. */
  readonly clusterIds: { ms: number; seq: number };
}

export interface PendingClaim {
  readonly requester: Requester;
  readonly request: RegisterMessage;
}

export interface RemoteProbe {
  readonly clientKey: string;
  /** The node asked: its client may have moved on by the time it answers. */
  readonly node: string;
  readonly deadline: number;
}

/** Unread fan-out times kept when no shell reads them (the core's own tests). */
export const FAN_OUT_TIMES_KEPT = 1024;

/**
 * A change costs O(1): it only says a sweep is due. The sweep walks the clients in
 * passes, as the table lane has room, and stops after a pass that found no one behind.
 */
export interface TableSweep {
  due: boolean;
  /**
   * Every client's key in the order they joined, kept across passes: a pass walks it
   * from `index`, and a new client is appended (`putClient`). A forgotten one stays
   * until the list is compacted, and is skipped.
   */
  keys: string[];
  index: number;
  sentInPass: number;
  /**
   * The pushes the sweep started that may still be out, by client key and push id: a
   * push that has ended is found (its client holds another push, or none) and dropped
   * when they are next counted.
   */
  readonly pushesOut: Map<string, number>;
}

/** Adds or replaces a client; a new key joins the sweep's list. */
export function putClient(state: ServerState, client: ServerClient): void {
  if (!state.clients.has(client.key)) state.sweep.keys.push(client.key);
  state.clients.set(client.key, client);
}

export interface NameGrant {
  count: number;
  readonly periodStart: number;
}

export interface RateBucket {
  allowance: number;
  updatedAt: number;
}

export function createServerState(snapshot: ServerSnapshot, deps: ServerDeps): ServerState {
  const clients = new Map<string, ServerClient>();
  const clientsByToken = new Map<string, string>();
  const clientsByAddress = new Map<string, string>();
  for (const record of snapshot.clients) {
    const key = nameKey(record.name);
    const { sessionKey, ...rest } = record;
    clients.set(key, {
      key,
      ...rest,
      sessionKey: decodeBase64urlOfLength(sessionKey, SEAL_KEY_BYTES),
      window: new ReplayWindow(),
      entryVersion: 0,
      synced: undefined,
      push: undefined,
      refresh: false,
      stalledAt: undefined,
      smallParts: false,
      node: record.node,
    });
    clientsByToken.set(record.token, key);
    clientsByAddress.set(addressKey(record), key);
  }
  const table = new TableLog(deps.epoch);
  for (const client of clients.values()) client.entryVersion = table.recordChange(client);
  const mailboxes = new Map<string, StoredSummary[]>();
  let lastStoredId = 0;
  const storeUse = { messages: 0, textBytes: 0 };
  for (const message of snapshot.messages) {
    storeUse.messages++;
    storeUse.textBytes += message.textBytes;
    const key = nameKey(message.recipient);
    const mailbox = mailboxes.get(key) ?? [];
    mailbox.push(message);
    mailboxes.set(key, mailbox);
    lastStoredId = Math.max(lastStoredId, message.id);
  }
  const retentionMs = deps.retentionMs ?? DEFAULT_RETENTION_MS;
  let nextForgetCheckAt: number | undefined;
  for (const client of clients.values()) {
    if (client.online) continue;
    const at = client.lastSeen + retentionMs;
    if (nextForgetCheckAt === undefined || at < nextForgetCheckAt) nextForgetCheckAt = at;
  }
  return {
    deps,
    ssk: encodeBase64url(deps.keys.signing.publicKey),
    sak: encodeBase64url(deps.keys.agreement.publicKey),
    nonceSecret: deps.crypto.randomBytes(32),
    clients,
    clientsByToken,
    clientsByAddress,
    mailboxes,
    reads: new Map(),
    nextRead: 1,
    storedInCommit: new Map(),
    readAfterCommit: new Set(),
    storedInFlight: new Map(),
    nextStoredId: lastStoredId + 1,
    nextRequestId: deps.firstRequestId,
    table,
    syncRequests: new FifoSet(),
    // Online when the server stopped: the next change's sweep brings each of them a snapshot.
    sweep: { due: false, keys: [...clients.keys()], index: 0, sentInPass: 0, pushesOut: new Map() },
    outbound: new OutboundRequests(SERVER_LANES),
    probes: new Map(),
    storedDeliveries: new Set(),
    announceWhenDelivered: new Set(),
    delivering: new Set(),
    resumeDeliveries: [...clients.values()].some(
      (client) =>
        client.online && isAtThisNode(deps, client) && (mailboxes.get(client.key)?.length ?? 0) > 0,
    ),
    nextCommit: 1,
    awaitingCommit: new Map(),
    nameGrants: new Map(),
    storeUse,
    retentionMs,
    storeQuota: deps.storeQuota ?? DEFAULT_STORE_QUOTA,
    nextForgetCheckAt,
    replies: new ExpiringMap((cached) => cached.expiresAt, REPLY_CACHE_LIMIT),
    usedRegistrations: new ExpiringMap((expiresAt) => expiresAt, USED_REGISTRATIONS_LIMIT),
    drops: { malformed: 0, unauthenticated: 0, unexpected: 0, rateLimited: 0, replayed: 0 },
    activity: {
      saved: 0,
      storedForChannel: 0,
      deliveredStored: 0,
      channelPosts: 0,
      registrations: 0,
      storeFailures: 0,
    },
    fanOutTimes: [],
    rates: new Map(),
    pendingClaims: new Map(),
    nextClaim: 1,
    remoteProbes: new Map(),
    clusterIds: { ms: 0, seq: 0 },
  };
}

/** Its session is at this server: always on a single server; in a cluster, when its record names this node. */
export function isAtThisNode(
  deps: ServerDeps,
  client: { readonly node?: string | undefined },
): boolean {
  return (
    deps.cluster === undefined || client.node === undefined || client.node === deps.cluster.node
  );
}
