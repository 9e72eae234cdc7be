import { addressKey, sameAddress } from "../protocol/address.ts";
import { decodeMessage } from "../protocol/codec.ts";
import {
  type Address,
  type ChannelMessage,
  type DeregisterMessage,
  REGISTER_MIN_BYTES,
  type RegisterMessage,
  type SaveMessage,
} from "../protocol/messages.ts";
import { nameKey } from "../protocol/names.ts";
import { onChannel } from "./server-channel.ts";
import { onSave } from "./server-mailboxes.ts";
import { hasNameGrantLeft, onDeregister, onRegister } from "./server-registry.ts";
import type { Requester, ServerState } from "./server-state.ts";
import { keptAnswer, type Step, sessionOf } from "./server-step.ts";
import { hasValidMac, macOf, registerTranscript, verifyText } from "./session-crypto.ts";
import { onAck } from "./step-server.ts";
import { SOURCE_BURST, SOURCE_RATE_PER_SECOND, timing } from "./timing.ts";

/*
 * Admission: what a datagram must be before the server acts on it. Rate limits, the cookie handshake, signed registrations, sessions and their replay windows, answers remembered for retransmissions.
 */

export function receive(step: Step, from: Address, bytes: Uint8Array): void {
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

export function rememberRegistration(step: Step, request: RegisterMessage): void {
  const key = registrationKey(request, request.cookie ?? "");
  step.state.usedRegistrations.set(key, step.now + 2 * timing.cookiePeriodMs);
}

export function forgetUsedRegistrations(state: ServerState, now: number): void {
  state.usedRegistrations.forgetExpired(now);
}

export function registerFields(state: ServerState, request: RegisterMessage, cookie: string) {
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
      const answer = keptAnswer(state, requester, cached);
      if (answer) step.send(from, answer);
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
  const answer = keptAnswer(step.state, requester, cached);
  if (answer) step.send(requester.from, answer);
  return true;
}

/** The request is being worked on: a repeat meanwhile gets no answer yet. */
function startWork(step: Step, requester: Requester): void {
  step.state.replies.set(requester.replyKey, {
    reply: undefined,
    from: requester.from,
    expiresAt: step.now + timing.replyCacheMs,
  });
}

/** A flood from one address is dropped before it costs more than a map lookup. */
export const RATE_TABLE_LIMIT = 100_000;

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

export function forgetOldReplies(state: ServerState, now: number): void {
  state.replies.forgetExpired(now);
}
