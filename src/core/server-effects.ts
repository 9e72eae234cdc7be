import type { Address, Message } from "../protocol/messages.ts";
import type { StoreChange, StoredMessage } from "../store/offline-store.ts";
import type { CryptoPort } from "./crypto-port.ts";
import type { KeyPairs } from "./session-crypto.ts";

export type ServerInput =
  | { readonly kind: "datagram"; readonly from: Address; readonly bytes: Uint8Array }
  | { readonly kind: "tick" }
  /** The shell committed (or failed to commit) the `persist` effects with these numbers. */
  | { readonly kind: "committed"; readonly commits: readonly number[] }
  | { readonly kind: "commit-failed"; readonly commits: readonly number[] }
  /** What a `read` effect found on disk (messages not committed yet are left out). */
  | {
      readonly kind: "read-done";
      readonly read: number;
      readonly messages: readonly StoredMessage[];
      /** The store could not be read: try again after the next commit. */
      readonly failed?: boolean;
    }
  /** Cluster: changes another node committed, in the order the shared log holds them. */
  | {
      readonly kind: "remote-changes";
      readonly node: string;
      readonly changes: readonly StoreChange[];
      readonly notes: readonly NodeNote[];
    }
  /** Cluster: the answer to a `claim` effect; `failed`: Redis could not be asked. */
  | {
      readonly kind: "claim-done";
      readonly claim: number;
      readonly granted: boolean;
      readonly failed?: boolean;
    }
  /** Cluster: a node stopped beating and this node won the takeover: its clients go offline. */
  | { readonly kind: "node-gone"; readonly node: string }
  /** The server has turned quiet: what only speeds up bursts of changes is let go. */
  | { readonly kind: "quiet" };

export type LogLevel = "info" | "debug" | "warn";

/**
 * What the shell carries out, in order. A step that changes the store says only
 * `persist`: what it would send waits in the core until the shell reports the commit
 * (`committed`), so nothing sent can claim more than what is on disk. The shell may
 * commit the changes of many steps in one transaction.
 */
export type ServerEffect =
  | {
      readonly kind: "persist";
      readonly commit: number;
      readonly changes: readonly StoreChange[];
      /** Cluster: requests and answers for other nodes, written to the shared log with the changes. */
      readonly notes?: readonly NodeNote[];
    }
  /** Cluster: claim the name for this node (atomically, across nodes); report `claim-done`. */
  | {
      readonly kind: "claim";
      readonly claim: number;
      readonly name: string;
      readonly force: boolean;
    }
  | { readonly kind: "send"; readonly to: Address; readonly message: Message }
  /** Read these stored messages from the store and report them as `read-done`. */
  | { readonly kind: "read"; readonly read: number; readonly ids: readonly number[] }
  | { readonly kind: "log"; readonly level: LogLevel; readonly text: string };

/** What the server did, counted since it started: for summaries in the log, and metrics. */
export interface ActivityCounts {
  saved: number;
  storedForChannel: number;
  deliveredStored: number;
  channelPosts: number;
  registrations: number;
  storeFailures: number;
}

/** Counts of datagrams dropped without being acted on, by reason. */
export interface DropCounts {
  malformed: number;
  unauthenticated: number;
  unexpected: number;
  rateLimited: number;
  /** An authentic datagram seen before (a replay from anywhere), or too old to tell. */
  replayed: number;
}

/**
 * What one node of a cluster asks another, through the shared log: is your client
 * alive? (`probe`), and the answer (`probe-result`), which follows in the log the
 * change that marked the client offline, so the asker has already applied it.
 */
export type NodeNote =
  | { readonly kind: "probe"; readonly to: string; readonly name: string; readonly probeId: number }
  | {
      readonly kind: "probe-result";
      readonly to: string;
      readonly probeId: number;
      readonly alive: boolean;
    };

/** This server is one node of several sharing one chat (docs/CLUSTER.md). */
export interface ClusterDeps {
  /** The node's name, unique in the cluster: clients' records say which node holds their session. */
  readonly node: string;
  /** 0–63, distinct among running nodes: part of every stored message id this node makes. */
  readonly slot: number;
}

export interface ServerDeps {
  /** A fresh session id (TOKEN_LENGTH lowercase hex characters); the session key, not this, is the secret. */
  newToken(): string;
  readonly crypto: CryptoPort;
  /** The server's own signing and agreement key pairs, which clients pin. */
  readonly keys: KeyPairs;
  /** A random starting point for the server's own request ids, so a restarted server never reuses them. */
  firstRequestId: number;
  /**
   * The registration cookie for an address in one period of time (COOKIE_LENGTH lowercase
   * hex): unguessable without the server's secret, so echoing it proves the sender
   * receives at that address.
   */
  cookieFor(address: Address, period: number): string;
  /** This run's table epoch (EPOCH_LENGTH lowercase hex): versions of another run mean nothing here. */
  epoch: string;
  /** Offline names with nothing stored are forgotten after this long. */
  retentionMs?: number;
  /** All stored messages together may not exceed this. */
  storeQuota?: { readonly messages: number; readonly textBytes: number };
  /** Set when this server is a node of a cluster. */
  cluster?: ClusterDeps;
}
