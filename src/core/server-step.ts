import type { Address, ErrorCode, Message } from "../protocol/messages.ts";
import type { StoreChange, StoredMessage } from "../store/offline-store.ts";
import type { Datagram, RetryPolicy } from "./outbound-requests.ts";
import type { LogLevel, NodeNote, ServerEffect } from "./server-effects.ts";
import {
  type AwaitingCommit,
  type CachedReply,
  type FanOut,
  PLAIN_ACK,
  type Requester,
  type ServerClient,
  type ServerState,
} from "./server-state.ts";
import { withMac } from "./session-crypto.ts";
import { timing } from "./timing.ts";

/*
 * The plumbing every part of the server core shares: one step's effects (answers held until their commit), retry policies, replies, session MACs and request ids.
 */

export const probePolicy: RetryPolicy = {
  resendEveryMs: timing.probeResendEveryMs,
  deadlineMs: timing.ackWaitMs,
  lane: "probe",
};
export const channelPolicy: RetryPolicy = { ...probePolicy, lane: "channel" };
export const tablePolicy: RetryPolicy = {
  resendEveryMs: timing.pushResendEveryMs,
  deadlineMs: timing.pushDeadlineMs,
  lane: "table",
};
export const storedPolicy: RetryPolicy = { ...tablePolicy, lane: "stored" };

/**
 * One step's work. Write, then answer: when the step changed the store, everything it
 * would send or log waits in `awaitingCommit` until the shell reports the commit.
 */
export class Step {
  readonly changes: StoreChange[] = [];
  /** Cluster: notes to other nodes, which travel in the shared log with this step's changes. */
  readonly notes: NodeNote[] = [];
  readonly datagrams: Datagram[] = [];
  readonly replies = new Map<Datagram, Requester>();
  readonly stored: StoredMessage[] = [];
  readonly fanOuts: FanOut[] = [];
  readonly logs: { level: LogLevel; text: string }[] = [];
  readonly released: ServerEffect[] = [];
  readonly reads: ServerEffect[] = [];
  /** Cluster: names to claim before a registration goes on. */
  readonly claims: ServerEffect[] = [];

  constructor(
    readonly state: ServerState,
    readonly now: number,
  ) {}

  send(to: Address, message: Message): void {
    this.datagrams.push({ to, message });
  }

  sendReply(requester: Requester, message: Message): void {
    const datagram = { to: requester.from, message };
    this.datagrams.push(datagram);
    this.replies.set(datagram, requester);
  }

  log(level: LogLevel, text: string): void {
    this.logs.push({ level, text });
  }

  effects(): ServerEffect[] {
    const writes = this.changes.length > 0 || this.notes.length > 0;
    const commit = writes ? this.state.nextCommit++ : 0;
    const persist: ServerEffect[] = writes
      ? [
          {
            kind: "persist",
            commit,
            changes: this.changes,
            ...(this.notes.length > 0 ? { notes: this.notes } : {}),
          },
        ]
      : [];
    if (this.stored.length > 0) {
      this.state.storedInCommit.set(
        commit,
        this.stored.map((message) => message.id),
      );
    }
    // Only answers wait for the disk; the server's own requests promise nothing about it.
    if (writes && this.replies.size > 0) {
      this.state.awaitingCommit.set(commit, {
        datagrams: this.datagrams,
        replies: this.replies,
        logs: this.logs,
        stored: this.stored,
        fanOuts: this.fanOuts,
      });
      return [...this.released, ...persist, ...this.reads, ...this.claims];
    }
    if (writes) {
      return [
        ...this.released,
        ...persist,
        ...logEffects(this.logs),
        ...sendEffects(this.datagrams),
        ...this.reads,
        ...this.claims,
      ];
    }
    for (const [datagram, requester] of this.replies) {
      rememberReply(this.state, datagram, requester, this.now);
    }
    return [
      ...this.released,
      ...logEffects(this.logs),
      ...sendEffects(this.datagrams),
      ...this.reads,
      ...this.claims,
    ];
  }
}

export function logEffects(logs: AwaitingCommit["logs"]): ServerEffect[] {
  return logs.map(({ level, text }) => ({ kind: "log", level, text }));
}

export function sendEffects(datagrams: readonly Datagram[]): ServerEffect[] {
  return datagrams.map(({ to, message }) => ({ kind: "send", to, message }));
}

export function rememberReply(
  state: ServerState,
  datagram: Datagram,
  requester: Requester,
  now: number,
): void {
  const reply = isPlainAck(datagram.message, requester) ? PLAIN_ACK : datagram.message;
  const cached = state.replies.get(requester.replyKey);
  if (cached) cached.reply = reply;
  else {
    state.replies.set(requester.replyKey, {
      reply,
      from: requester.from,
      expiresAt: now + timing.replyCacheMs,
    });
  }
}

/** An ack of the request in a session with nothing but its id (and MAC): not one that says `unstored`. */
function isPlainAck(message: Message, requester: Requester): boolean {
  return (
    message.type === "ack" &&
    message.id === requester.id &&
    message.have === undefined &&
    message.unstored === undefined &&
    requester.session !== undefined
  );
}

/** What to send again for a repeat of an answered request; undefined while it is worked on. */
export function keptAnswer(
  state: ServerState,
  requester: Requester,
  cached: CachedReply,
): Message | undefined {
  if (cached.reply !== PLAIN_ACK) return cached.reply;
  return authenticated(state, requester, { type: "ack", id: requester.id });
}

export function sessionOf(state: ServerState, sid: string): ServerClient | undefined {
  const key = state.clientsByToken.get(sid);
  return key === undefined ? undefined : state.clients.get(key);
}

/** An answer in a session carries the session's MAC. */
export function authenticated<M extends Message>(
  state: ServerState,
  requester: Requester,
  message: M,
): M {
  return requester.session ? withMac(state.deps.crypto, requester.session.key, message) : message;
}

/** The server's own request to a client, with the MAC of the client's session. */
export function toClient<M extends Message>(
  state: ServerState,
  client: ServerClient,
  message: M,
): M {
  return client.sessionKey ? withMac(state.deps.crypto, client.sessionKey, message) : message;
}

/** An answer to a request: remembered for retransmissions once what it reports is committed. */
export function reply(step: Step, requester: Requester, message: Message): void {
  step.sendReply(requester, authenticated(step.state, requester, message));
}

export function replyError(step: Step, requester: Requester, code: ErrorCode): void {
  reply(step, requester, { type: "error", id: requester.id, code });
}

/**
 * An error answer that is not remembered: the request failed for a reason that may pass
 * (the store refused, Redis was away), so a retransmission is worked on afresh.
 */
export function refuseUnremembered(step: Step, requester: Requester, code: ErrorCode): void {
  const { state } = step;
  state.replies.delete(requester.replyKey);
  if (requester.session) sessionOf(state, requester.session.sid)?.window.release(requester.id);
  const refusal = authenticated(state, requester, { type: "error", id: requester.id, code });
  step.released.push({ kind: "send", to: requester.from, message: refusal });
}

export function nextRequestId(state: ServerState): number {
  const id = state.nextRequestId;
  state.nextRequestId = id >= Number.MAX_SAFE_INTEGER ? 0 : id + 1;
  return id;
}
