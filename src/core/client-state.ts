import type { Address, Message, TableChange, TableEntry } from "../protocol/messages.ts";
import type { ParsedLine } from "./client-commands.ts";
import type { CryptoPort } from "./crypto-port.ts";
import { DedupWindow } from "./dedup-window.ts";
import { PeerKeys } from "./peer-keys.ts";
import { PairKeys } from "./sealed-messages.ts";
import { type KeyPairs, publicKeyText } from "./session-crypto.ts";
import { ShownMessages } from "./shown-messages.ts";
import { CLIENT_REQUEST_BURST, CLIENT_REQUESTS_PER_SECOND, timing } from "./timing.ts";
import { TokenBucket } from "./token-bucket.ts";

export type ClientInput =
  | { readonly kind: "start" }
  | { readonly kind: "line"; readonly text: string }
  | { readonly kind: "end-of-input" }
  | { readonly kind: "datagram"; readonly from: Address; readonly bytes: Uint8Array }
  | { readonly kind: "tick" };

export type ClientEffect =
  | { readonly kind: "send"; readonly to: Address; readonly message: Message }
  | { readonly kind: "show"; readonly text: string }
  | { readonly kind: "exit"; readonly code: number }
  /** The server proved it holds this signing key: pin it for the server's address. */
  | { readonly kind: "pin-server-key"; readonly key: string }
  /** This message is about to be shown: remember it across restarts (before showing it). */
  | { readonly kind: "record-shown"; readonly sender: string; readonly ref: number }
  /** Names seen for the first time, trusted with the key the table shows: keep them. */
  | {
      readonly kind: "learn-peer-keys";
      readonly keys: readonly { readonly name: string; readonly key: string }[];
    }
  /** The user accepted a changed key for a name: it replaces the one kept. */
  | { readonly kind: "trust-peer-key"; readonly name: string; readonly key: string };

/** registering: first registration; online; offline: after dereg, still running; exited. */
export type ClientPhase = "registering" | "online" | "offline" | "exited";

/** What a request waiting for an acknowledgement was for: decides what its answer or silence means. */
export type ClientPurpose =
  | { readonly kind: "register"; readonly first: boolean }
  | { readonly kind: "deregister" }
  | { readonly kind: "save"; readonly to: string; readonly text: string }
  | { readonly kind: "channel" }
  /** `ak`: the key the chat was sealed to, which its ack's MAC must prove. */
  | { readonly kind: "chat"; readonly to: string; readonly text: string; readonly ak: string };

export interface PendingRequest {
  readonly id: number;
  readonly to: Address;
  /** Replaced once, when a challenge adds its cookie to a registration. */
  message: Message;
  readonly purpose: ClientPurpose;
  /** When to send again, earliest first; emptied as they pass. */
  readonly resendAt: number[];
  readonly giveUpAt: number;
}

/** A request to the server waiting for its turn under the client's pacing. */
export type PacedRequest = Pick<PendingRequest, "id" | "to" | "message" | "purpose">;

/** The parts of one push as they arrive; applied once all are in. */
export interface TableAssembly {
  readonly version: number;
  readonly base: number | undefined;
  readonly parts: (readonly TableChange[] | undefined)[];
}

/** What a challenge gave: the server's keys and the nonce to sign with its cookie. */
export interface ServerChallenge {
  readonly cookie: string;
  readonly nonce: string;
  readonly ssk: string;
  readonly sak: string;
}

export interface ClientState {
  readonly name: string;
  readonly server: Address;
  readonly crypto: CryptoPort;
  readonly identity: KeyPairs;
  /** Our public keys as they travel. */
  readonly sk: string;
  readonly ak: string;
  /** The server's signing key pinned for its address, once known. */
  pinnedServerKey: string | undefined;
  phase: ClientPhase;
  /** The session id (sid) of the current session. */
  token: string | undefined;
  /** The session key agreed at registration: every datagram with the server carries its MAC. */
  sessionKey: Uint8Array | undefined;
  /** The server's last challenge, reused by `reg` while its cookie is still good. */
  challenge: ServerChallenge | undefined;
  table: TableEntry[];
  /** The server's epoch and version of `table`; undefined until a snapshot of this epoch came. */
  tableEpoch: string | undefined;
  tableVersion: number | undefined;
  assembly: TableAssembly | undefined;
  /** A whole push was applied in this step: say so once. */
  tableUpdated: boolean;
  /** The entries that push brought, whose keys are checked once it is announced. */
  entriesToCheck: readonly TableEntry[];
  /** Peers' keys trusted on first use, and the changed ones not (yet) accepted. */
  readonly peerKeys: PeerKeys;
  nextId: number;
  readonly pending: Map<number, PendingRequest>;
  /** Requests to the server not yet sent, in order, and the pace they go out at. */
  readonly paced: PacedRequest[];
  readonly pacer: TokenBucket;
  /**
   * Lines typed while a registration or de-registration is outstanding, run in order once
   * its outcome is known: a command never overtakes one typed before it.
   */
  readonly queued: ParsedLine[];
  /** The registration or de-registration outstanding, if one is: later commands wait for it. */
  phaseRequest: number | undefined;
  /** Set while queued commands wait for the first table after registering; they run by this time at the latest. */
  queuedUntil: number | undefined;
  /** Ids of server requests already handled: a retransmission is acknowledged again, nothing more. */
  readonly seen: DedupWindow;
  /** Messages already shown, by sender and the sender's id, in this process or an earlier one. */
  readonly shown: ShownMessages;
  /** Stored messages the server announced at registration and has not delivered yet. */
  storedExpected: number;
  /** `[You have messages]` is said before the first of them that is shown, not for copies already seen. */
  storedAnnounced: boolean;
  /** Until when to wait for the next batch of them; undefined when none are awaited. */
  storedUntil: number | undefined;
  /** Input has ended, or the user typed quit: leave once nothing is outstanding. */
  leaving: boolean;
  /** The user typed quit while something was outstanding; a second quit leaves at once. */
  quitting: boolean;
  droppedDatagrams: number;
  /** Keys shared with peers, by their agreement key: direct messages are sealed under them. */
  readonly pairKeys: PairKeys;
  /** Direct messages that did not open (forged, altered, or from someone without the key): never shown. */
  unopenedMessages: number;
  /**
   * Stored direct messages not shown because they came with a key other than the one
   * trusted for their sender, by sender and key: warned about once the delivery ends.
   */
  readonly refusedStored: Map<string, RefusedStored>;
}

/** Stored messages from one sender, all sealed with one key that is not the trusted one. */
export interface RefusedStored {
  readonly sender: string;
  readonly trusted: string;
  readonly offered: string;
  count: number;
}

export interface ClientDeps {
  readonly name: string;
  readonly server: Address;
  /** A random start for this process's message ids, so a restarted client never reuses recent ones. */
  readonly firstRequestId: number;
  readonly crypto: CryptoPort;
  readonly identity: KeyPairs;
  /** The server's signing key as pinned for this address on an earlier run, if any. */
  readonly pinnedServerKey?: string | undefined;
  /** Messages shown by earlier processes of this identity (shownKey), from its `.shown` file. */
  readonly shownBefore?: Iterable<string>;
  /** Peers' keys trusted by earlier processes of this identity, from its `.known-keys` file. */
  readonly knownPeerKeys?: Iterable<readonly [name: string, key: string]>;
}

export function createClientState(deps: ClientDeps): ClientState {
  return {
    name: deps.name,
    server: deps.server,
    crypto: deps.crypto,
    identity: deps.identity,
    sk: publicKeyText(deps.identity.signing),
    ak: publicKeyText(deps.identity.agreement),
    pinnedServerKey: deps.pinnedServerKey,
    phase: "registering",
    token: undefined,
    sessionKey: undefined,
    challenge: undefined,
    table: [],
    tableEpoch: undefined,
    tableVersion: undefined,
    assembly: undefined,
    tableUpdated: false,
    entriesToCheck: [],
    peerKeys: new PeerKeys(deps.knownPeerKeys ?? []),
    nextId: deps.firstRequestId,
    pending: new Map(),
    paced: [],
    pacer: new TokenBucket(CLIENT_REQUESTS_PER_SECOND, CLIENT_REQUEST_BURST),
    queued: [],
    phaseRequest: undefined,
    queuedUntil: undefined,
    seen: new DedupWindow(timing.dedupWindowMs, 10_000),
    shown: new ShownMessages(deps.shownBefore ?? [], timing.shownMemoryMs, 100_000),
    storedExpected: 0,
    storedAnnounced: false,
    storedUntil: undefined,
    leaving: false,
    quitting: false,
    droppedDatagrams: 0,
    pairKeys: new PairKeys(),
    unopenedMessages: 0,
    refusedStored: new Map(),
  };
}
