import { encodeBase64url } from "../crypto/base64url.ts";
import { addressKey, normaliseIp, sameAddress } from "../protocol/address.ts";
import { decodeMessage, textLength } from "../protocol/codec.ts";
import {
  type AckMessage,
  type Address,
  type ChannelMessage,
  type DeliveredMessage,
  type DeregisterMessage,
  type ErrorCode,
  MAX_TEXT_LENGTH,
  type Message,
  REGISTER_MIN_BYTES,
  type RegisterMessage,
  type SaveMessage,
  type TableEntry,
} from "../protocol/messages.ts";
import { isValidName, nameKey } from "../protocol/names.ts";
import {
  type ClientRecord,
  type StoreChange,
  type StoredMessage,
  type StoredSummary,
  summaryOf,
  utf8Length,
} from "../store/offline-store.ts";
import type { Datagram, OutboundRequest, RetryPolicy } from "./outbound-requests.ts";
import type { LogLevel, ServerEffect, ServerInput } from "./server-effects.ts";
import type {
  AwaitingCommit,
  ChannelPost,
  FanOut,
  ProbeWaiter,
  Requester,
  ServerClient,
  ServerPurpose,
  ServerState,
} from "./server-state.ts";
import { FAN_OUT_TIMES_KEPT } from "./server-state.ts";
import {
  hasValidMac,
  macOf,
  ReplayWindow,
  registerTranscript,
  sessionKey,
  signText,
  verifyText,
  withMac,
} from "./session-crypto.ts";
import { tableEntry } from "./table-log.ts";
import {
  FORGET_CHECK_EVERY_MS,
  MAILBOX_LIMIT,
  NAME_GRANT_PERIOD_MS,
  NAMES_PER_ADDRESS,
  SOURCE_BURST,
  SOURCE_RATE_PER_SECOND,
  STORED_BATCH_BYTES,
  TABLE_PARTS_IN_FLIGHT,
  timing,
} from "./timing.ts";

const probePolicy: RetryPolicy = {
  resendEveryMs: timing.probeResendEveryMs,
  deadlineMs: timing.ackWaitMs,
  lane: "probe",
};
const channelPolicy: RetryPolicy = { ...probePolicy, lane: "channel" };
const tablePolicy: RetryPolicy = {
  resendEveryMs: timing.pushResendEveryMs,
  deadlineMs: timing.pushDeadlineMs,
  lane: "table",
};
const storedPolicy: RetryPolicy = { ...tablePolicy, lane: "stored" };

/**
 * One step's work. Write, then answer: when the step changed the store, everything it
 * would send or log waits in `awaitingCommit` until the shell reports the commit.
 */
class Step {
  readonly changes: StoreChange[] = [];
  readonly datagrams: Datagram[] = [];
  readonly replies = new Map<Datagram, Requester>();
  readonly stored: StoredMessage[] = [];
  readonly fanOuts: FanOut[] = [];
  readonly logs: { level: LogLevel; text: string }[] = [];
  readonly released: ServerEffect[] = [];
  readonly reads: ServerEffect[] = [];

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
    const commit = this.changes.length > 0 ? this.state.nextCommit++ : 0;
    if (this.stored.length > 0) {
      this.state.storedInCommit.set(
        commit,
        this.stored.map((message) => message.id),
      );
    }
    // Only answers wait for the disk; the server's own requests promise nothing about it.
    if (this.changes.length > 0 && this.replies.size > 0) {
      this.state.awaitingCommit.set(commit, {
        datagrams: this.datagrams,
        replies: this.replies,
        logs: this.logs,
        stored: this.stored,
        fanOuts: this.fanOuts,
      });
      return [...this.released, { kind: "persist", commit, changes: this.changes }, ...this.reads];
    }
    if (this.changes.length > 0) {
      return [
        ...this.released,
        { kind: "persist", commit, changes: this.changes },
        ...logEffects(this.logs),
        ...sendEffects(this.datagrams),
        ...this.reads,
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
    ];
  }
}

function logEffects(logs: AwaitingCommit["logs"]): ServerEffect[] {
  return logs.map(({ level, text }) => ({ kind: "log", level, text }));
}

function sendEffects(datagrams: readonly Datagram[]): ServerEffect[] {
  return datagrams.map(({ to, message }) => ({ kind: "send", to, message }));
}

export function stepServer(state: ServerState, input: ServerInput, now: number): ServerEffect[] {
  const step = new Step(state, now);
  if (state.resumeDeliveries) resumeDeliveries(step);
  switch (input.kind) {
    case "datagram":
      receive(step, input.from, input.bytes);
      break;
    case "tick":
      expireRequests(step);
      forgetIfDue(step);
      break;
    case "committed":
      for (const commit of input.commits) releaseCommitted(step, commit);
      afterCommits(step, input.commits);
      break;
    case "commit-failed":
      for (const commit of input.commits) takeBackFailed(step, commit);
      afterCommits(step, input.commits);
      break;
    case "read-done":
      storedMessagesRead(step, input.read, input.messages, input.failed === true);
      break;
    default:
      return input satisfies never;
  }
  pumpTablePushes(step);
  forgetOldReplies(state, now);
  forgetUsedRegistrations(state, now);
  return step.effects();
}

/** When the protocol's own timers (resends, verdicts) need a tick. */
export function nextServerWakeAt(state: ServerState): number | undefined {
  if (state.resumeDeliveries) return 0;
  return state.outbound.nextWakeAt();
}

/** When an offline name may be due to be forgotten: housekeeping, days away, kept apart from the protocol's timers. */
export function nextForgetAt(state: ServerState): number | undefined {
  return state.nextForgetCheckAt;
}

/** The table as clients see it, in order of first registration. */
export function tableEntries(state: ServerState): TableEntry[] {
  return [...state.clients.values()].map(tableEntry);
}

// Write, then answer ---------------------------------------------------------------------

function releaseCommitted(step: Step, commit: number): void {
  const held = step.state.awaitingCommit.get(commit);
  if (!held) return;
  step.state.awaitingCommit.delete(commit);
  for (const fanOut of held.fanOuts) fanOut.startedAt = step.now;
  for (const [datagram, requester] of held.replies) {
    rememberReply(step.state, datagram, requester, step.now);
  }
  step.released.push(...logEffects(held.logs), ...sendEffects(held.datagrams));
}

/**
 * The disk refused: what the step stored is taken back, its answers become `store-failed`
 * and are not remembered, so a retransmission is worked on afresh. Its own requests
 * (pushes, probes, deliveries) still go: they promise nothing about the disk.
 */
function takeBackFailed(step: Step, commit: number): void {
  const { state } = step;
  const held = state.awaitingCommit.get(commit);
  if (!held) return;
  state.awaitingCommit.delete(commit);
  for (const message of held.stored) unstoreMessage(state, message);
  for (const fanOut of held.fanOuts) fanOut.startedAt = step.now;
  state.activity.storeFailures++;
  for (const datagram of held.datagrams) {
    const requester = held.replies.get(datagram);
    if (!requester) {
      step.released.push({ kind: "send", ...datagram });
      continue;
    }
    state.replies.delete(requester.replyKey);
    if (requester.session) sessionOf(state, requester.session.sid)?.window.release(requester.id);
    const failed = authenticated(state, requester, {
      type: "error",
      id: requester.id,
      code: "store-failed",
    });
    step.released.push({ kind: "send", to: datagram.to, message: failed });
  }
  if (held.stored.length > 0) {
    step.log(
      "warn",
      `${held.stored.length} message(s) were not saved: the store refused the write`,
    );
  }
}

/** Commits reported: their stored messages are on disk (or taken back); batches that waited for them are read again. */
function afterCommits(step: Step, commits: readonly number[]): void {
  const { state } = step;
  for (const commit of commits) state.storedInCommit.delete(commit);
  if (state.readAfterCommit.size === 0) return;
  const waiting = [...state.readAfterCommit];
  state.readAfterCommit.clear();
  for (const key of waiting) {
    const client = state.clients.get(key);
    if (client && state.storedDeliveries.has(key)) sendNextStoredBatch(step, client);
  }
}

function rememberReply(
  state: ServerState,
  datagram: Datagram,
  requester: Requester,
  now: number,
): void {
  const cached = state.replies.get(requester.replyKey);
  if (cached) cached.reply = datagram.message;
  else {
    state.replies.set(requester.replyKey, {
      reply: datagram.message,
      from: requester.from,
      expiresAt: now + timing.replyCacheMs,
    });
  }
}

function sessionOf(state: ServerState, sid: string): ServerClient | undefined {
  const key = state.clientsByToken.get(sid);
  return key === undefined ? undefined : state.clients.get(key);
}

/** An answer in a session carries the session's MAC. */
function authenticated<M extends Message>(state: ServerState, requester: Requester, message: M): M {
  return requester.session ? withMac(state.deps.crypto, requester.session.key, message) : message;
}

/** The server's own request to a client, with the MAC of the client's session. */
function toClient<M extends Message>(state: ServerState, client: ServerClient, message: M): M {
  return client.sessionKey ? withMac(state.deps.crypto, client.sessionKey, message) : message;
}

function receive(step: Step, from: Address, bytes: Uint8Array): void {
  if (!withinRateLimit(step.state, addressKey(from), step.now)) {
    step.state.drops.rateLimited++;
    return;
  }
  const message = decodeMessage(bytes);
  if (!message) {
    step.state.drops.malformed++;
    return;
  }
  switch (message.type) {
    case "register":
      answerRegister(step, from, message, bytes.byteLength);
      return;
    case "deregister":
    case "save":
    case "channel":
      answerInSession(step, from, message);
      return;
    case "ack":
      onAck(step, from, message);
      return;
    case "registered":
    case "challenge":
    case "error":
    case "probe":
    case "table":
    case "stored":
    case "channel-message":
    case "chat":
      step.state.drops.unexpected++;
      return;
    default:
      message satisfies never;
  }
}

type SessionRequest = DeregisterMessage | SaveMessage | ChannelMessage;

/**
 * Registration by challenge, then by signature: nothing bigger than a challenge goes to
 * an address until it shows its cookie, and nothing is done for a name until the key
 * behind it has signed the transcript.
 */
function answerRegister(step: Step, from: Address, request: RegisterMessage, size: number): void {
  const { state } = step;
  const newName = !state.clients.has(nameKey(request.name));
  if (!hasValidCookie(step, from, request.cookie)) {
    if (size < REGISTER_MIN_BYTES) {
      state.drops.malformed++;
      return;
    }
    if (newName && !hasNameGrantLeft(state, from, step.now)) {
      // No new name for this address now, whatever it proves: told at once (an error is
      // smaller than the padded register), without a challenge round or a signature.
      step.send(from, { type: "error", id: request.id, code: "slow-down" });
      return;
    }
    const cookie = currentCookie(step, from);
    step.send(from, {
      type: "challenge",
      id: request.id,
      cookie,
      nonce: nonceFor(state, cookie),
      ssk: state.ssk,
      sak: state.sak,
    });
    return;
  }
  if (newName && !hasNameGrantLeft(state, from, step.now)) {
    // Checked before the signature, which costs a hundred times more: a flood of new
    // names from one address is refused at the price of a map lookup.
    step.send(from, { type: "error", id: request.id, code: "slow-down" });
    return;
  }
  const cookie = request.cookie ?? "";
  const transcript = registerTranscript({ ...registerFields(state, request, cookie) });
  if (
    request.sig === undefined ||
    !verifyText(state.deps.crypto, request.sk, transcript, request.sig)
  ) {
    state.drops.unauthenticated++;
    return;
  }
  const requester: Requester = {
    from,
    id: request.id,
    replyKey: `${addressKey(from)}#${request.id}`,
    session: undefined,
  };
  if (repeatAnswered(step, requester)) return;
  if (state.usedRegistrations.has(registrationKey(request, cookie))) {
    // A registration that already opened a session, again after its answer was forgotten
    // or from another address: it opens no other.
    state.drops.replayed++;
    return;
  }
  startWork(step, requester);
  onRegister(step, requester, request);
}

function registrationKey(request: RegisterMessage, cookie: string): string {
  return `${nameKey(request.name)}#${cookie}#${request.id}`;
}

/** Kept while the cookie is valid (this period and the one before), and never more than this many. */
const USED_REGISTRATIONS_LIMIT = 100_000;

function rememberRegistration(step: Step, request: RegisterMessage): void {
  const used = step.state.usedRegistrations;
  if (used.size >= USED_REGISTRATIONS_LIMIT) {
    const oldest = used.keys().next().value;
    if (oldest !== undefined) used.delete(oldest);
  }
  const key = registrationKey(request, request.cookie ?? "");
  used.delete(key);
  used.set(key, step.now + 2 * timing.cookiePeriodMs);
}

function forgetUsedRegistrations(state: ServerState, now: number): void {
  for (const [key, expiresAt] of state.usedRegistrations) {
    if (expiresAt > now) break;
    state.usedRegistrations.delete(key);
  }
}

function registerFields(state: ServerState, request: RegisterMessage, cookie: string) {
  return {
    ssk: state.ssk,
    sak: state.sak,
    nonce: nonceFor(state, cookie),
    cookie,
    name: request.name,
    sk: request.sk,
    ak: request.ak,
    id: request.id,
  };
}

/** The nonce a challenge gives with a cookie: derived, so the server keeps nothing per challenge. */
export function nonceFor(state: ServerState, cookie: string): string {
  const { crypto } = state.deps;
  return macOf(crypto, state.nonceSecret, new TextEncoder().encode(`nonce\n${cookie}`));
}

/**
 * A request in a session: its MAC proves the session key, its id must be new to the
 * session (a replay from anywhere changes nothing), and a retransmission from where the
 * first copy came gets the answer the first one got.
 */
function answerInSession(step: Step, from: Address, request: SessionRequest): void {
  const { state } = step;
  const client = sessionOf(state, request.sid);
  if (!client) {
    state.drops.unauthenticated++;
    step.send(from, { type: "error", id: request.id, code: "unknown-session" });
    return;
  }
  const key = client.sessionKey;
  if (!key || !hasValidMac(state.deps.crypto, key, request)) {
    state.drops.unauthenticated++;
    return;
  }
  const requester: Requester = {
    from,
    id: request.id,
    replyKey: `${request.sid}#${request.id}`,
    session: { sid: request.sid, key },
  };
  const verdict = client.window.check(request.id);
  if (verdict !== "new") {
    const cached = state.replies.get(requester.replyKey);
    if (verdict === "seen" && cached && sameAddress(cached.from, from)) {
      if (cached.reply) step.send(from, cached.reply);
      return;
    }
    state.drops.replayed++;
    return;
  }
  client.window.take(request.id);
  startWork(step, requester);
  switch (request.type) {
    case "deregister":
      onDeregister(step, requester, client);
      return;
    case "save":
      onSave(step, requester, client, request);
      return;
    case "channel":
      onChannel(step, requester, client, request);
      return;
    default:
      request satisfies never;
  }
}

/** A registration already answered (or being worked on) from this address: the same answer, nothing more. */
function repeatAnswered(step: Step, requester: Requester): boolean {
  const cached = step.state.replies.get(requester.replyKey);
  if (!cached) return false;
  if (cached.reply) step.send(requester.from, cached.reply);
  return true;
}

/** The request is being worked on: a repeat meanwhile gets no answer yet. */
function startWork(step: Step, requester: Requester): void {
  const { replies } = step.state;
  if (replies.size >= REPLY_CACHE_LIMIT) {
    const oldest = replies.keys().next().value;
    if (oldest !== undefined) replies.delete(oldest);
  }
  replies.set(requester.replyKey, {
    reply: undefined,
    from: requester.from,
    expiresAt: step.now + timing.replyCacheMs,
  });
}

/** A flood from one address is dropped before it costs more than a map lookup. */
const RATE_TABLE_LIMIT = 100_000;
/** Answers kept for retransmissions; past this the oldest goes first (normally they expire). */
const REPLY_CACHE_LIMIT = 100_000;

function withinRateLimit(state: ServerState, source: string, now: number): boolean {
  let bucket = state.rates.get(source);
  if (!bucket) {
    if (state.rates.size >= RATE_TABLE_LIMIT) forgetIdleSources(state, now);
    bucket = { allowance: SOURCE_BURST, updatedAt: now };
    state.rates.set(source, bucket);
  }
  const refill = ((now - bucket.updatedAt) * SOURCE_RATE_PER_SECOND) / 1000;
  bucket.allowance = Math.min(SOURCE_BURST, bucket.allowance + Math.max(0, refill));
  bucket.updatedAt = now;
  if (bucket.allowance < 1) return false;
  bucket.allowance -= 1;
  return true;
}

/** Idle sources first; if a flood of new ones leaves none idle, the oldest tenth goes. */
function forgetIdleSources(state: ServerState, now: number): void {
  const fullAfterMs = (SOURCE_BURST * 1000) / SOURCE_RATE_PER_SECOND;
  for (const [source, bucket] of state.rates) {
    if (now - bucket.updatedAt >= fullAfterMs) state.rates.delete(source);
  }
  if (state.rates.size < RATE_TABLE_LIMIT * 0.9) return;
  let excess = state.rates.size - Math.floor(RATE_TABLE_LIMIT * 0.9);
  for (const source of state.rates.keys()) {
    if (excess-- <= 0) break;
    state.rates.delete(source);
  }
}

function cookiePeriod(now: number): number {
  return Math.floor(now / timing.cookiePeriodMs);
}

function currentCookie(step: Step, from: Address): string {
  return step.state.deps.cookieFor(from, cookiePeriod(step.now));
}

/** Registration by challenge: nothing bigger than a challenge goes to an address until it proves it receives there. */
function hasValidCookie(step: Step, from: Address, cookie: string | undefined): boolean {
  if (cookie === undefined) return false;
  const period = cookiePeriod(step.now);
  const { cookieFor } = step.state.deps;
  return cookie === cookieFor(from, period) || cookie === cookieFor(from, period - 1);
}

/** An answer to a request: remembered for retransmissions once what it reports is committed. */
function reply(step: Step, requester: Requester, message: Message): void {
  step.sendReply(requester, authenticated(step.state, requester, message));
}

function replyError(step: Step, requester: Requester, code: ErrorCode): void {
  reply(step, requester, { type: "error", id: requester.id, code });
}

function forgetOldReplies(state: ServerState, now: number): void {
  for (const [key, cached] of state.replies) {
    if (cached.expiresAt > now) break;
    state.replies.delete(key);
  }
}

function nextRequestId(state: ServerState): number {
  const id = state.nextRequestId;
  state.nextRequestId = id >= Number.MAX_SAFE_INTEGER ? 0 : id + 1;
  return id;
}

// Registration ---------------------------------------------------------------------------

function onRegister(step: Step, requester: Requester, request: RegisterMessage): void {
  const { from } = requester;
  if (!isValidName(request.name)) {
    replyError(step, requester, "bad-name");
    return;
  }
  const holder = step.state.clients.get(nameKey(request.name));
  if (holder && holder.sk !== "" && holder.sk !== request.sk) {
    // Trust on first use: the name is bound to the key that first registered it.
    step.log(
      "info",
      `refused the name ${request.name} to ${normaliseIp(from.ip)}:${from.port}: it is bound to another key`,
    );
    replyError(step, requester, "wrong-key");
    return;
  }
  // The same key from its own address, or while offline: the same user, come back.
  const isHolder = holder !== undefined && (!holder.online || sameAddress(holder, from));
  if (holder === undefined && !grantNewName(step.state, from, step.now)) {
    step.log(
      "info",
      `refused the name ${request.name} to ${normaliseIp(from.ip)}:${from.port}: too many new names from that address`,
    );
    replyError(step, requester, "slow-down");
    return;
  }
  if (holder?.online && !isHolder) {
    step.log("debug", `checking whether ${holder.name} is still there before giving the name away`);
    probe(step, holder, { kind: "register", requester, request });
    return;
  }
  acceptRegistration(step, requester, request);
}

/**
 * A flood of registrations costs its sender, not everyone else: one address takes a few
 * new names a period. Coming back under one's own name does not count.
 */
function grantNewName(state: ServerState, from: Address, now: number): boolean {
  const source = addressKey(from);
  let grant = state.nameGrants.get(source);
  if (!grant || now - grant.periodStart >= NAME_GRANT_PERIOD_MS) {
    if (state.nameGrants.size >= RATE_TABLE_LIMIT) forgetOldGrants(state, now);
    grant = { count: 0, periodStart: now };
    state.nameGrants.set(source, grant);
  }
  if (grant.count >= NAMES_PER_ADDRESS) return false;
  grant.count++;
  return true;
}

function hasNameGrantLeft(state: ServerState, from: Address, now: number): boolean {
  const grant = state.nameGrants.get(addressKey(from));
  return (
    !grant || now - grant.periodStart >= NAME_GRANT_PERIOD_MS || grant.count < NAMES_PER_ADDRESS
  );
}

function forgetOldGrants(state: ServerState, now: number): void {
  for (const [source, grant] of state.nameGrants) {
    if (now - grant.periodStart >= NAME_GRANT_PERIOD_MS) state.nameGrants.delete(source);
  }
  let excess = state.nameGrants.size - Math.floor(RATE_TABLE_LIMIT * 0.9);
  for (const source of state.nameGrants.keys()) {
    if (excess-- <= 0) break;
    state.nameGrants.delete(source);
  }
}

function acceptRegistration(step: Step, requester: Requester, request: RegisterMessage): void {
  const { state } = step;
  const { from } = requester;
  const name = request.name;
  const key = nameKey(name);
  const cookie = request.cookie ?? "";
  const fields = registerFields(state, request, cookie);
  const sid = state.deps.newToken();
  const sessionKeyBytes = sessionKey(
    state.deps.crypto,
    state.deps.keys.agreement,
    request.ak,
    fields.nonce,
    name,
    sid,
  );
  if (!sessionKeyBytes) {
    // An agreement key no secret can come from (malformed, low order): no session.
    state.drops.unauthenticated++;
    state.replies.delete(requester.replyKey);
    return;
  }
  rememberRegistration(step, request);
  const previous = state.clients.get(key);
  if (previous) state.clientsByToken.delete(previous.token);
  // A push still out to the address it had is no use to it now; it gets its own.
  if (previous) cancelTablePush(step, previous);
  // One address, one process: whoever held it before has gone, or the newcomer could not have bound it.
  const address = addressKey(from);
  const otherKey = state.clientsByAddress.get(address);
  const other = otherKey === undefined ? undefined : state.clients.get(otherKey);
  if (other && other.key !== key) {
    // What was on its way to that address is no use to the newcomer there.
    cancelTablePush(step, other);
    if (other.online) {
      step.log("info", `${other.name} is gone: ${name} registered from its address`);
      markOffline(step, other);
    }
  }
  if (previous && state.clientsByAddress.get(addressKey(previous)) === key) {
    state.clientsByAddress.delete(addressKey(previous));
  }
  state.clientsByAddress.set(address, key);
  const client: ServerClient = {
    key,
    name,
    ip: normaliseIp(from.ip),
    port: from.port,
    online: true,
    token: sid,
    sk: request.sk,
    ak: request.ak,
    sessionKey: sessionKeyBytes,
    window: new ReplayWindow(),
    lastSeen: step.now,
    // A client back after a dereg still holds its table: it needs only what changed since.
    entryVersion: previous?.entryVersion ?? 0,
    synced: state.table.canDeltaFrom(request.epoch, request.have) ? request.have : undefined,
    push: undefined,
    refresh: false,
    stalledAt: undefined,
  };
  state.clients.set(key, client);
  state.clientsByToken.set(client.token, key);
  persistClient(step, client);
  state.activity.registrations++;
  const pending = state.mailboxes.get(key)?.length ?? 0;
  step.log(
    "info",
    `${name} registered from ${client.ip}:${client.port}${pending ? `, ${pending} stored message(s) to deliver` : ""}`,
  );
  reply(step, requester, {
    type: "registered",
    id: request.id,
    sid,
    pending,
    epoch: state.table.epoch,
    sig: signText(state.deps.crypto, state.deps.keys.signing, registerTranscript(fields, sid)),
  });
  if (pending > 0) {
    // SPEC §5: the others learn that it is back once its messages are delivered.
    state.table.forgetSnapshot();
    state.announceWhenDelivered.add(key);
    restartStoredDelivery(step, client);
    return;
  }
  tableChanged(step, client);
  requestTablePush(step, client);
}

function persistClient(step: Step, client: ServerClient): void {
  const { name, ip, port, online, token, lastSeen, sk, ak } = client;
  const sessionKey = client.sessionKey ? encodeBase64url(client.sessionKey) : "";
  const record: ClientRecord = { name, ip, port, online, token, lastSeen, sk, ak, sessionKey };
  step.changes.push({ kind: "put-client", client: record });
}

function onDeregister(step: Step, requester: Requester, client: ServerClient): void {
  if (client.online) {
    step.log("info", `${client.name} de-registered`);
    markOffline(step, client);
  }
  reply(step, requester, { type: "ack", id: requester.id });
}

function markOffline(step: Step, client: ServerClient): void {
  if (!client.online) return;
  client.online = false;
  client.lastSeen = step.now;
  forgetNoEarlierThan(step.state, client.lastSeen + step.state.retentionMs);
  step.state.syncRequests.delete(client.key);
  persistClient(step, client);
  tableChanged(step, client);
}

// Liveness probes --------------------------------------------------------------------------

/** SPEC §4 "check the status": one probe per client, shared by everyone waiting on it. */
function probe(step: Step, client: ServerClient, waiter: ProbeWaiter): void {
  const { state } = step;
  const running = state.probes.get(client.key);
  if (running) {
    running.waiters.push(waiter);
    return;
  }
  const requestId = nextRequestId(state);
  state.probes.set(client.key, { requestId, waiters: [waiter] });
  state.outbound.add(
    requestId,
    { ip: client.ip, port: client.port },
    toClient(state, client, { type: "probe", id: requestId }),
    { kind: "probe", clientKey: client.key },
    probePolicy,
    step.now,
    step.datagrams,
  );
}

function probeAnswered(step: Step, clientKey: string, alive: boolean): void {
  const { state } = step;
  const running = state.probes.get(clientKey);
  if (!running) return;
  state.probes.delete(clientKey);
  const client = state.clients.get(clientKey);
  if (!client) return;
  if (!alive) {
    step.log("info", `${client.name} did not answer a status check: marked offline`);
    markOffline(step, client);
    // If it was only silent for a while (a pause, a burst of loss), this table tells it
    // that it is offline, and it registers again to get what is stored for it meanwhile.
    requestTablePush(step, client);
  }
  for (const waiter of running.waiters) resumeAfterProbe(step, client, alive, waiter);
}

function resumeAfterProbe(
  step: Step,
  client: ServerClient,
  alive: boolean,
  waiter: ProbeWaiter,
): void {
  switch (waiter.kind) {
    case "register": {
      const { from } = waiter.requester;
      if (alive) {
        step.log(
          "info",
          `refused the name ${waiter.request.name} to ${normaliseIp(from.ip)}:${from.port}: ${client.name} is online`,
        );
        replyError(step, waiter.requester, "name-taken");
      } else {
        // Decided afresh: an earlier waiter on this probe may hold the name by now.
        onRegister(step, waiter.requester, waiter.request);
      }
      return;
    }
    case "save": {
      const sender = step.state.clients.get(nameKey(waiter.save.sender));
      if (alive) {
        replyError(step, waiter.requester, "recipient-online");
        if (sender) requestTablePush(step, sender, true);
      } else {
        storeAndAcknowledge(step, waiter.requester, client, waiter.save);
      }
      return;
    }
    case "channel":
      if (alive && client.online && waiter.round + 1 < timing.channelRounds) {
        deliverChannelPost(
          step,
          client,
          waiter.post,
          waiter.round + 1,
          waiter.copy,
          waiter.requestId,
          waiter.message,
        );
      } else {
        storeChannelPost(step, client, waiter.post, waiter.copy);
        fanOutSettled(step, waiter.post);
      }
      return;
    default:
      waiter satisfies never;
  }
}

// Offline messages ------------------------------------------------------------------------

function onSave(
  step: Step,
  requester: Requester,
  sender: ServerClient,
  request: SaveMessage,
): void {
  if (!sender.online) requestTablePush(step, sender);
  const recipient = step.state.clients.get(nameKey(request.to));
  if (!recipient) {
    replyError(step, requester, "unknown-recipient");
    return;
  }
  if (textLength(request.text) > MAX_TEXT_LENGTH) {
    replyError(step, requester, "too-long");
    return;
  }
  const save: Omit<StoredMessage, "id" | "recipient"> = {
    sender: sender.name,
    kind: "direct",
    text: request.text,
    receivedAt: step.now,
    ref: request.ref ?? request.id,
  };
  if (recipient.online) {
    probe(step, recipient, { kind: "save", requester, save });
    return;
  }
  storeAndAcknowledge(step, requester, recipient, save);
}

function storeAndAcknowledge(
  step: Step,
  requester: Requester,
  recipient: ServerClient,
  save: Omit<StoredMessage, "id" | "recipient">,
): void {
  const refusal = storeMessage(step, recipient, save);
  if (refusal) {
    replyError(step, requester, refusal);
    return;
  }
  step.state.activity.saved++;
  step.log("debug", `saved a message from ${save.sender} for ${recipient.name}`);
  reply(step, requester, { type: "ack", id: requester.id });
}

/** Keeps a message for a recipient; says why not when it cannot. */
function storeMessage(
  step: Step,
  recipient: ServerClient,
  message: Omit<StoredMessage, "id" | "recipient">,
): "mailbox-full" | "store-full" | undefined {
  const { state } = step;
  const mailbox = state.mailboxes.get(recipient.key) ?? [];
  const senderKey = nameKey(message.sender);
  if (mailbox.some((kept) => kept.ref === message.ref && nameKey(kept.sender) === senderKey)) {
    return undefined; // a copy of one already kept, as when a save is retried across a restart
  }
  if (settledCount(state, mailbox) >= MAILBOX_LIMIT) return "mailbox-full";
  const { storeUse, storeQuota } = state;
  if (
    storeUse.messages >= storeQuota.messages ||
    storeUse.textBytes + utf8Length(message.text) > storeQuota.textBytes
  ) {
    return "store-full";
  }
  const stored: StoredMessage = { id: state.nextStoredId++, recipient: recipient.name, ...message };
  const summary = summaryOf(stored);
  mailbox.push(summary);
  state.mailboxes.set(recipient.key, mailbox);
  storeUse.messages++;
  storeUse.textBytes += summary.textBytes;
  step.changes.push({ kind: "put-message", message: stored });
  step.stored.push(stored);
  return undefined;
}

/** A stored message leaves memory: delivered, its commit failed, or it cannot be read. */
function unstoreMessage(state: ServerState, message: StoredSummary | StoredMessage): void {
  const key = nameKey(message.recipient);
  const mailbox = state.mailboxes.get(key);
  if (!mailbox) return;
  const remaining = mailbox.filter((kept) => kept.id !== message.id);
  if (remaining.length === mailbox.length) return;
  if (remaining.length > 0) state.mailboxes.set(key, remaining);
  else state.mailboxes.delete(key);
  if (state.delivering.delete(message.id)) return;
  state.storeUse.messages--;
  state.storeUse.textBytes -= "textBytes" in message ? message.textBytes : utf8Length(message.text);
}

/** Stored messages that count against the limits: not the copies being delivered live. */
function settledCount(state: ServerState, mailbox: readonly StoredSummary[]): number {
  if (state.delivering.size === 0) return mailbox.length;
  let count = 0;
  for (const message of mailbox) if (!state.delivering.has(message.id)) count++;
  return count;
}

function sendNextStoredBatch(step: Step, client: ServerClient): void {
  const { state } = step;
  const mailbox = state.mailboxes.get(client.key) ?? [];
  if (mailbox.length === 0 || !client.online) {
    state.storedDeliveries.delete(client.key);
    if (state.announceWhenDelivered.delete(client.key)) {
      tableChanged(step, client);
      requestTablePush(step, client);
    }
    return;
  }
  // The texts are read from the store; the batch goes out when they are back.
  const ids: number[] = [];
  let bytes = 0;
  for (const stored of mailbox) {
    const size = stored.textBytes + stored.sender.length + STORED_ENTRY_OVERHEAD;
    if (ids.length > 0 && bytes + size > STORED_BATCH_BYTES) break;
    ids.push(stored.id);
    bytes += size;
  }
  const read = state.nextRead++;
  state.reads.set(read, { clientKey: client.key, ids });
  step.reads.push({ kind: "read", read, ids });
}

/**
 * Delivers what is stored for a client from the start, at its current address: a
 * batch (or a read) still on its way to where it registered from before is dropped.
 */
function restartStoredDelivery(step: Step, client: ServerClient): void {
  const { state } = step;
  const inFlight = state.storedInFlight.get(client.key);
  if (inFlight !== undefined) {
    state.outbound.cancel(inFlight, step.now, step.datagrams);
    state.storedInFlight.delete(client.key);
  }
  for (const [read, pending] of state.reads) {
    if (pending.clientKey === client.key) state.reads.delete(read);
  }
  state.readAfterCommit.delete(client.key);
  state.storedDeliveries.add(client.key);
  sendNextStoredBatch(step, client);
}

/** What one stored message costs in a batch besides its sender and text (worst case, in characters). */
const STORED_ENTRY_OVERHEAD = 80;

function storedMessagesRead(
  step: Step,
  read: number,
  messages: readonly StoredMessage[],
  failed: boolean,
): void {
  const { state } = step;
  const pending = state.reads.get(read);
  if (!pending) return;
  state.reads.delete(read);
  const client = state.clients.get(pending.clientKey);
  if (!client?.online || !state.storedDeliveries.has(client.key)) return;
  if (failed) {
    state.readAfterCommit.add(client.key);
    return;
  }
  const indexed = new Set((state.mailboxes.get(client.key) ?? []).map((stored) => stored.id));
  const found = messages.filter((message) => indexed.has(message.id));
  const foundIds = new Set(found.map((message) => message.id));
  const missing = pending.ids.filter((id) => indexed.has(id) && !foundIds.has(id));
  const uncommitted = new Set([...state.storedInCommit.values()].flat());
  if (missing.some((id) => uncommitted.has(id))) {
    // On its way to disk: the batch is read again once the commit is reported.
    state.readAfterCommit.add(client.key);
    return;
  }
  for (const id of missing) {
    const lost = state.mailboxes.get(client.key)?.find((stored) => stored.id === id);
    if (lost) unstoreMessage(state, lost);
    step.log(
      "warn",
      `stored message ${id} for ${client.name} cannot be read from the store; it is skipped`,
    );
  }
  if (found.length === 0) {
    sendNextStoredBatch(step, client);
    return;
  }
  // Chosen by their size on disk; cut by their size on the wire (escapes can grow a text).
  const batch: DeliveredMessage[] = [];
  const messageIds: number[] = [];
  let bytes = 0;
  for (const stored of found) {
    const delivered: DeliveredMessage = {
      sender: stored.sender,
      kind: stored.kind,
      text: stored.text,
      at: stored.receivedAt,
      ref: stored.ref,
    };
    const size = utf8Length(JSON.stringify(delivered));
    if (batch.length > 0 && bytes + size > STORED_BATCH_BYTES) break;
    batch.push(delivered);
    messageIds.push(stored.id);
    bytes += size;
  }
  const id = nextRequestId(state);
  state.storedInFlight.set(client.key, id);
  state.outbound.add(
    id,
    { ip: client.ip, port: client.port },
    toClient(state, client, { type: "stored", id, messages: batch }),
    { kind: "stored", clientKey: client.key, messageIds },
    storedPolicy,
    step.now,
    step.datagrams,
  );
}

function storedBatchDelivered(step: Step, clientKey: string, messageIds: readonly number[]): void {
  const { state } = step;
  const delivered = new Set(messageIds);
  const mailbox = state.mailboxes.get(clientKey) ?? [];
  const remaining: StoredSummary[] = [];
  for (const message of mailbox) {
    if (!delivered.has(message.id)) {
      remaining.push(message);
      continue;
    }
    if (state.delivering.delete(message.id)) continue;
    state.storeUse.messages--;
    state.storeUse.textBytes -= message.textBytes;
  }
  if (remaining.length > 0) state.mailboxes.set(clientKey, remaining);
  else state.mailboxes.delete(clientKey);
  step.changes.push({ kind: "remove-messages", ids: messageIds });
  const client = state.clients.get(clientKey);
  if (client) {
    state.activity.deliveredStored += messageIds.length;
    step.log("debug", `delivered ${messageIds.length} stored message(s) to ${client.name}`);
    sendNextStoredBatch(step, client);
  }
}

// Channel ------------------------------------------------------------------------------------

function onChannel(
  step: Step,
  requester: Requester,
  sender: ServerClient,
  request: ChannelMessage,
): void {
  if (!sender.online) requestTablePush(step, sender);
  if (textLength(request.text) > MAX_TEXT_LENGTH) {
    replyError(step, requester, "too-long");
    return;
  }
  const post: ChannelPost = {
    sender: sender.name,
    text: request.text,
    receivedAt: step.now,
    ref: request.ref ?? request.id,
    fanOut: { startedAt: step.now, pending: 0 },
  };
  let live = 0;
  let stored = 0;
  let unstored = 0;
  for (const member of step.state.clients.values()) {
    if (member.key === sender.key) continue;
    if (member.online) {
      const copy = keepWhileDelivering(step, member, post);
      deliverChannelPost(step, member, post, 0, copy, undefined, undefined);
      live++;
    } else if (storeMessage(step, member, channelStored(post))) {
      unstored++;
    } else {
      stored++;
    }
  }
  post.fanOut.pending = live;
  if (live > 0) step.fanOuts.push(post.fanOut);
  step.state.activity.channelPosts++;
  step.state.activity.storedForChannel += stored;
  step.log(
    "debug",
    `channel message from ${sender.name}: sent to ${live} online member(s), stored for ${stored} offline${unstored ? `, not stored for ${unstored} (mailbox or store full)` : ""}`,
  );
  reply(step, requester, { type: "ack", id: request.id, ...(unstored > 0 ? { unstored } : {}) });
}

function channelStored(post: ChannelPost): Omit<StoredMessage, "id" | "recipient"> {
  const { sender, text, receivedAt, ref } = post;
  return { sender, kind: "channel", text, receivedAt, ref };
}

/** A post kept for an online member while it is delivered live: a crash then loses none. */
function keepWhileDelivering(step: Step, member: ServerClient, post: ChannelPost): StoredMessage {
  const { state } = step;
  const copy: StoredMessage = {
    id: state.nextStoredId++,
    recipient: member.name,
    ...channelStored(post),
  };
  const mailbox = state.mailboxes.get(member.key) ?? [];
  mailbox.push(summaryOf(copy));
  state.mailboxes.set(member.key, mailbox);
  state.delivering.add(copy.id);
  step.changes.push({ kind: "put-message", message: copy });
  step.stored.push(copy);
  return copy;
}

/** The member has the post: its copy goes. */
function deliveredLive(step: Step, copy: StoredMessage | undefined): void {
  if (!copy || !step.state.delivering.has(copy.id)) return;
  unstoreMessage(step.state, copy);
  step.changes.push({ kind: "remove-messages", ids: [copy.id] });
}

/** After a crash: what online members still have waiting reaches them as stored messages. */
function resumeDeliveries(step: Step): void {
  const { state } = step;
  state.resumeDeliveries = false;
  for (const client of state.clients.values()) {
    if (!client.online || state.storedDeliveries.has(client.key)) continue;
    if ((state.mailboxes.get(client.key)?.length ?? 0) === 0) continue;
    step.log("info", `resuming the delivery of stored messages to ${client.name}`);
    state.storedDeliveries.add(client.key);
    sendNextStoredBatch(step, client);
  }
}

function deliverChannelPost(
  step: Step,
  member: ServerClient,
  post: ChannelPost,
  round: number,
  copy: StoredMessage | undefined,
  sameId: number | undefined,
  sameMessage: Message | undefined,
): void {
  const id = sameId ?? nextRequestId(step.state);
  // A retry round goes under the member's current session key, which may be new.
  const message: Message = sameMessage
    ? toClient(step.state, member, sameMessage)
    : toClient(step.state, member, {
        type: "channel-message",
        id,
        from: post.sender,
        text: post.text,
        ref: post.ref,
      });
  step.state.outbound.add(
    id,
    { ip: member.ip, port: member.port },
    message,
    { kind: "channel", clientKey: member.key, post, round, copy },
    channelPolicy,
    step.now,
    step.datagrams,
  );
}

function storeChannelPost(
  step: Step,
  member: ServerClient,
  post: ChannelPost,
  copy: StoredMessage | undefined,
): void {
  if (copy) {
    const { state } = step;
    // Already on disk: it only starts to count as a stored message.
    if (!state.delivering.delete(copy.id)) return;
    state.storeUse.messages++;
    state.storeUse.textBytes += utf8Length(copy.text);
    state.activity.storedForChannel++;
    step.log("debug", `stored a channel message from ${post.sender} for ${member.name}`);
    return;
  }
  const refusal = storeMessage(step, member, channelStored(post));
  if (refusal) {
    step.log(
      "warn",
      `a channel message from ${post.sender} could not be stored for ${member.name}: ${refusal}`,
    );
  } else {
    step.state.activity.storedForChannel++;
    step.log("debug", `stored a channel message from ${post.sender} for ${member.name}`);
  }
}

/** One member has the post or has been given up on; the last one ends the fan-out. */
function fanOutSettled(step: Step, post: ChannelPost): void {
  const { fanOut } = post;
  fanOut.pending--;
  const times = step.state.fanOutTimes;
  if (fanOut.pending === 0 && times.length < FAN_OUT_TIMES_KEPT) {
    times.push(step.now - fanOut.startedAt);
  }
}

// Table pushes -------------------------------------------------------------------------------

/** One entry changed: a new version; the sweep finds everyone it leaves behind. */
function tableChanged(step: Step, client: ServerClient): void {
  const { state } = step;
  client.entryVersion = state.table.recordChange(client);
  state.sweep.due = true;
  // SPEC §5 and §6: the table goes out before the answer that follows the change.
  pumpTablePushes(step);
}

/**
 * This client needs the table (it registered, or must learn it is offline); one push at
 * a time. `refresh`: send it even if it is up to date (an empty delta, which it shows).
 */
function requestTablePush(step: Step, client: ServerClient, refresh = false): void {
  const { state } = step;
  if (refresh) client.refresh = true;
  if (client.push === undefined) state.syncRequests.add(client.key);
  pumpTablePushes(step);
}

function cancelTablePush(step: Step, client: ServerClient): void {
  const { push } = client;
  if (!push) return;
  client.push = undefined;
  for (const id of push.partIds) step.state.outbound.cancel(id, step.now, step.datagrams);
}

/**
 * Builds each push only when the table lane has room, so it carries every change made
 * while it waited: at most one push per client per round trip, whatever the changes.
 */
function pumpTablePushes(step: Step): void {
  const { state } = step;
  while (state.outbound.hasRoom("table")) {
    const requested = state.syncRequests.shift();
    if (requested !== undefined) {
      const client = state.clients.get(requested);
      if (client && isPushable(state, client) && isBehind(state, client)) {
        sendTablePush(step, client);
      }
      continue;
    }
    const client = nextInSweep(state);
    if (!client) return;
    if (client.online && isPushable(state, client) && isBehind(state, client)) {
      if (client.stalledAt === state.table.version) continue;
      state.sweep.sentInPass++;
      sendTablePush(step, client);
    }
  }
}

/** The next client of the sweep; undefined when none is due or a pass found no one behind. */
function nextInSweep(state: ServerState): ServerClient | undefined {
  const { sweep } = state;
  while (sweep.due) {
    if (sweep.index >= sweep.keys.length) {
      if (sweep.keys.length > 0 && sweep.sentInPass === 0) {
        sweep.due = false;
        sweep.keys = [];
        return undefined;
      }
      sweep.keys = [...state.clients.keys()];
      sweep.index = 0;
      sweep.sentInPass = 0;
      if (sweep.keys.length === 0) sweep.due = false;
      continue;
    }
    const key = sweep.keys[sweep.index++];
    const client = key === undefined ? undefined : state.clients.get(key);
    if (client) return client;
  }
  return undefined;
}

/** No push out to it, and not in the middle of receiving its stored messages. */
function isPushable(state: ServerState, client: ServerClient): boolean {
  return client.push === undefined && !state.storedDeliveries.has(client.key);
}

function isBehind(state: ServerState, client: ServerClient): boolean {
  return client.synced !== state.table.version || client.refresh;
}

function sendTablePush(step: Step, client: ServerClient): void {
  const { state } = step;
  client.refresh = false;
  client.stalledAt = undefined;
  const content = state.table.pushFor(client.synced, state.clients, client.entryVersion);
  const parts = content.parts.length;
  const partIds = content.parts.map(() => nextRequestId(state));
  const pushId = partIds[0] ?? nextRequestId(state);
  const unsent = content.parts.map((clients, part): Message => {
    const id = partIds[part] ?? pushId;
    return toClient(
      state,
      client,
      content.base === undefined
        ? { type: "table", id, version: content.version, part, parts, clients }
        : { type: "table", id, version: content.version, base: content.base, part, parts, clients },
    );
  });
  client.push = {
    id: pushId,
    partIds,
    version: content.version,
    unsent,
    outstandingParts: parts,
    reported: undefined,
  };
  for (let sent = 0; sent < TABLE_PARTS_IN_FLIGHT; sent++) sendNextPart(step, client);
}

function sendNextPart(step: Step, client: ServerClient): void {
  const push = client.push;
  const message = push?.unsent.shift();
  if (!push || !message) return;
  step.state.outbound.add(
    message.id,
    { ip: client.ip, port: client.port },
    message,
    { kind: "table", clientKey: client.key, pushId: push.id, version: push.version },
    tablePolicy,
    step.now,
    step.datagrams,
  );
}

/**
 * `have`: the version the client says it holds; the server believes it. A client that
 * never says (one typed by hand) is taken to hold what it was sent.
 */
function tablePartDone(
  step: Step,
  clientKey: string,
  pushId: number,
  have: number | undefined,
): void {
  const { state } = step;
  const client = state.clients.get(clientKey);
  const push = client?.push;
  if (!client || push?.id !== pushId) return;
  if (have !== undefined && have <= state.table.version) {
    push.reported = Math.max(push.reported ?? have, have);
  }
  push.outstandingParts--;
  if (push.outstandingParts > 0) {
    sendNextPart(step, client);
    return;
  }
  client.push = undefined;
  client.synced = push.reported ?? push.version;
  // Changes made while it was out: the next push now (the sweep passed it by meanwhile).
  if (client.online && client.synced !== state.table.version) state.syncRequests.add(clientKey);
}

/** A push nobody acknowledged: the client may be gone. The sweep after the next change tries it again. */
function tablePartUnanswered(step: Step, clientKey: string, pushId: number): void {
  const { state } = step;
  const client = state.clients.get(clientKey);
  const push = client?.push;
  if (!client || push?.id !== pushId) return;
  // Six tries of one part went unanswered: the rest would fare no better.
  cancelTablePush(step, client);
  if (push.reported !== undefined) client.synced = push.reported;
  client.stalledAt = state.table.version;
}

// Forgetting ---------------------------------------------------------------------------------

function forgetNoEarlierThan(state: ServerState, at: number): void {
  if (state.nextForgetCheckAt === undefined || at < state.nextForgetCheckAt) {
    state.nextForgetCheckAt = at;
  }
}

/**
 * Offline names with nothing stored are forgotten a retention period after they left.
 * The server wakes for it only when some offline name can expire.
 */
function forgetIfDue(step: Step): void {
  const { state, now } = step;
  if (state.nextForgetCheckAt === undefined || now < state.nextForgetCheckAt) return;
  state.nextForgetCheckAt = undefined;
  for (const client of [...state.clients.values()]) {
    if (client.online) continue;
    if (now - client.lastSeen < state.retentionMs) {
      forgetNoEarlierThan(state, client.lastSeen + state.retentionMs);
      continue;
    }
    // Its messages wait for it; it becomes a candidate again when it next goes offline.
    if ((state.mailboxes.get(client.key)?.length ?? 0) > 0) continue;
    if (state.probes.has(client.key) || state.storedDeliveries.has(client.key)) {
      forgetNoEarlierThan(state, now + FORGET_CHECK_EVERY_MS);
      continue;
    }
    state.clients.delete(client.key);
    state.clientsByToken.delete(client.token);
    if (state.clientsByAddress.get(addressKey(client)) === client.key) {
      state.clientsByAddress.delete(addressKey(client));
    }
    cancelTablePush(step, client);
    step.changes.push({ kind: "remove-client", name: client.name });
    state.table.recordForgotten(client.key, client.name);
    state.sweep.due = true;
    step.log(
      "info",
      `forgot ${client.name}: offline since ${new Date(client.lastSeen).toISOString()}`,
    );
  }
}

// Acks and silences ---------------------------------------------------------------------------

/** An ack counts only with the MAC of the session its request went to: no one keeps a dead client alive. */
function onAck(step: Step, from: Address, ack: AckMessage): void {
  const { state } = step;
  const { id, have } = ack;
  const outstanding = state.outbound.peek(id, from);
  if (!outstanding) {
    state.drops.unexpected++;
    return;
  }
  const client = state.clients.get(outstanding.purpose.clientKey);
  if (!client?.sessionKey || !hasValidMac(state.deps.crypto, client.sessionKey, ack)) {
    state.drops.unauthenticated++;
    return;
  }
  const request = state.outbound.acknowledge(id, from, step.now, step.datagrams);
  if (!request) return;
  const { purpose } = request;
  switch (purpose.kind) {
    case "probe":
      probeAnswered(step, purpose.clientKey, true);
      return;
    case "table":
      tablePartDone(step, purpose.clientKey, purpose.pushId, have);
      return;
    case "stored":
      step.state.storedInFlight.delete(purpose.clientKey);
      storedBatchDelivered(step, purpose.clientKey, purpose.messageIds);
      return;
    case "channel":
      deliveredLive(step, purpose.copy);
      fanOutSettled(step, purpose.post);
      return;
    default:
      purpose satisfies never;
  }
}

function expireRequests(step: Step): void {
  const expired = step.state.outbound.advance(step.now, step.datagrams);
  for (const request of expired) requestUnanswered(step, request);
}

function requestUnanswered(step: Step, request: OutboundRequest<ServerPurpose>): void {
  const { state } = step;
  const { purpose } = request;
  switch (purpose.kind) {
    case "probe":
      probeAnswered(step, purpose.clientKey, false);
      return;
    case "table":
      tablePartUnanswered(step, purpose.clientKey, purpose.pushId);
      return;
    case "stored": {
      state.storedInFlight.delete(purpose.clientKey);
      state.storedDeliveries.delete(purpose.clientKey);
      const client = state.clients.get(purpose.clientKey);
      if (client?.online && !sameAddress(client, request.to)) {
        // A new registration took the name meanwhile and was promised these messages.
        state.storedDeliveries.add(client.key);
        sendNextStoredBatch(step, client);
        return;
      }
      step.log(
        "warn",
        `${client?.name ?? purpose.clientKey} did not acknowledge stored messages; they stay stored`,
      );
      if (client && state.announceWhenDelivered.delete(client.key)) {
        tableChanged(step, client);
        requestTablePush(step, client);
      }
      return;
    }
    case "channel": {
      const member = state.clients.get(purpose.clientKey);
      if (!member?.online) {
        if (member) storeChannelPost(step, member, purpose.post, purpose.copy);
        fanOutSettled(step, purpose.post);
        return;
      }
      probe(step, member, {
        kind: "channel",
        requestId: request.id,
        message: request.message,
        post: purpose.post,
        round: purpose.round,
        copy: purpose.copy,
      });
      return;
    }
    default:
      purpose satisfies never;
  }
}
