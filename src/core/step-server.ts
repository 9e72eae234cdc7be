import { addressKey, normaliseIp, sameAddress } from "../protocol/address.ts";
import { decodeMessage, textLength } from "../protocol/codec.ts";
import {
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
import type { StoreChange, StoredMessage } from "../store/offline-store.ts";
import type { Datagram, OutboundRequest, RetryPolicy } from "./outbound-requests.ts";
import type { LogLevel, ServerEffect, ServerInput } from "./server-effects.ts";
import type {
  ChannelPost,
  ProbeWaiter,
  ServerClient,
  ServerPurpose,
  ServerState,
} from "./server-state.ts";
import {
  MAILBOX_LIMIT,
  SOURCE_BURST,
  SOURCE_RATE_PER_SECOND,
  STORED_BATCH_BYTES,
  TABLE_PART_BYTES,
  timing,
} from "./timing.ts";

const probePolicy: RetryPolicy = {
  resendEveryMs: timing.probeResendEveryMs,
  deadlineMs: timing.ackWaitMs,
  windowed: false,
};
const channelPolicy: RetryPolicy = { ...probePolicy, windowed: true };
const tablePolicy: RetryPolicy = {
  resendEveryMs: timing.pushResendEveryMs,
  deadlineMs: timing.pushDeadlineMs,
  windowed: true,
};
const storedPolicy: RetryPolicy = { ...tablePolicy, windowed: false };

/** One step's work: store changes first, then datagrams, with log lines alongside. */
class Step {
  readonly changes: StoreChange[] = [];
  readonly datagrams: Datagram[] = [];
  readonly logs: { level: LogLevel; text: string }[] = [];

  constructor(
    readonly state: ServerState,
    readonly now: number,
  ) {}

  send(to: Address, message: Message): void {
    this.datagrams.push({ to, message });
  }

  log(level: LogLevel, text: string): void {
    this.logs.push({ level, text });
  }

  effects(): ServerEffect[] {
    const effects: ServerEffect[] = [];
    if (this.changes.length > 0) effects.push({ kind: "persist", changes: this.changes });
    for (const { level, text } of this.logs) effects.push({ kind: "log", level, text });
    for (const { to, message } of this.datagrams) effects.push({ kind: "send", to, message });
    return effects;
  }
}

export function stepServer(state: ServerState, input: ServerInput, now: number): ServerEffect[] {
  const step = new Step(state, now);
  switch (input.kind) {
    case "datagram":
      receive(step, input.from, input.bytes);
      break;
    case "tick":
      expireRequests(step);
      break;
    default:
      return input satisfies never;
  }
  forgetOldReplies(state, now);
  return step.effects();
}

export function nextServerWakeAt(state: ServerState): number | undefined {
  return state.outbound.nextWakeAt();
}

/** The table as clients see it, in order of first registration. */
export function tableEntries(state: ServerState): TableEntry[] {
  return [...state.clients.values()].map(({ name, ip, port, online }) => ({
    name,
    ip,
    port,
    online,
  }));
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
    case "deregister":
    case "save":
    case "channel":
      answerRequest(step, from, message, bytes.byteLength);
      return;
    case "ack":
      onAck(step, from, message.id);
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

type ClientRequest = RegisterMessage | DeregisterMessage | SaveMessage | ChannelMessage;

/** A retransmitted request gets the answer the first one got, and is never acted on twice. */
function answerRequest(step: Step, from: Address, request: ClientRequest, size: number): void {
  if (request.type === "register" && !hasValidCookie(step, from, request.cookie)) {
    if (size < REGISTER_MIN_BYTES) {
      step.state.drops.malformed++;
      return;
    }
    step.send(from, { type: "challenge", id: request.id, cookie: currentCookie(step, from) });
    return;
  }
  const replyKey = `${addressKey(from)}#${request.id}`;
  const cached = step.state.replies.get(replyKey);
  if (cached) {
    if (cached.reply) step.send(from, cached.reply);
    return;
  }
  if (step.state.replies.size >= REPLY_CACHE_LIMIT) {
    const oldest = step.state.replies.keys().next().value;
    if (oldest !== undefined) step.state.replies.delete(oldest);
  }
  step.state.replies.set(replyKey, {
    reply: undefined,
    expiresAt: step.now + timing.replyCacheMs,
  });
  switch (request.type) {
    case "register":
      onRegister(step, from, request);
      return;
    case "deregister":
      onDeregister(step, from, request);
      return;
    case "save":
      onSave(step, from, request);
      return;
    case "channel":
      onChannel(step, from, request);
      return;
    default:
      request satisfies never;
  }
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

function reply(step: Step, to: Address, message: Message): void {
  const cached = step.state.replies.get(`${addressKey(to)}#${message.id}`);
  if (cached) cached.reply = message;
  step.send(to, message);
}

function replyError(step: Step, to: Address, id: number, code: ErrorCode): void {
  reply(step, to, { type: "error", id, code });
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

function authenticate(
  step: Step,
  from: Address,
  requestId: number,
  token: string,
): ServerClient | undefined {
  const key = step.state.clientsByToken.get(token);
  const client = key === undefined ? undefined : step.state.clients.get(key);
  if (!client) {
    step.state.drops.unauthenticated++;
    replyError(step, from, requestId, "unknown-session");
    return undefined;
  }
  return client;
}

// Registration ---------------------------------------------------------------------------

function onRegister(step: Step, from: Address, request: RegisterMessage): void {
  if (!isValidName(request.name)) {
    replyError(step, from, request.id, "bad-name");
    return;
  }
  const holder = step.state.clients.get(nameKey(request.name));
  const isHolder =
    holder !== undefined && (request.token === holder.token || sameAddress(holder, from));
  if (holder?.online && !isHolder) {
    step.log("debug", `checking whether ${holder.name} is still there before giving the name away`);
    probe(step, holder, {
      kind: "register",
      from,
      requestId: request.id,
      name: request.name,
    });
    return;
  }
  acceptRegistration(step, from, request.id, request.name, isHolder ? holder?.token : undefined);
}

function acceptRegistration(
  step: Step,
  from: Address,
  requestId: number,
  name: string,
  keptToken: string | undefined,
): void {
  const { state } = step;
  const key = nameKey(name);
  const previous = state.clients.get(key);
  if (previous) state.clientsByToken.delete(previous.token);
  // A push still out to the address it had is no use to it now; it gets its own.
  state.tablePushes.delete(key);
  // One address, one process: whoever held it before has gone, or the newcomer could not have bound it.
  for (const other of state.clients.values()) {
    if (other.key !== key && other.online && sameAddress(other, from)) {
      step.log("info", `${other.name} is gone: ${name} registered from its address`);
      markOffline(step, other);
    }
  }
  const client: ServerClient = {
    key,
    name,
    ip: normaliseIp(from.ip),
    port: from.port,
    online: true,
    token: keptToken ?? state.deps.newToken(),
  };
  state.clients.set(key, client);
  state.clientsByToken.set(client.token, key);
  persistClient(step, client);
  const pending = state.mailboxes.get(key)?.length ?? 0;
  step.log(
    "info",
    `${name} registered from ${client.ip}:${client.port}${pending ? `, ${pending} stored message(s) to deliver` : ""}`,
  );
  reply(step, from, { type: "registered", id: requestId, token: client.token, pending });
  if (pending > 0 && !state.storedDeliveries.has(key)) {
    state.storedDeliveries.add(key);
    sendNextStoredBatch(step, client);
  } else if (pending === 0) {
    tableChanged(step);
  }
}

function persistClient(step: Step, client: ServerClient): void {
  const { name, ip, port, online, token } = client;
  step.changes.push({ kind: "put-client", client: { name, ip, port, online, token } });
}

function onDeregister(step: Step, from: Address, request: DeregisterMessage): void {
  const client = authenticate(step, from, request.id, request.token);
  if (!client) return;
  if (client.online) {
    step.log("info", `${client.name} de-registered`);
    markOffline(step, client);
  }
  reply(step, from, { type: "ack", id: request.id });
}

function markOffline(step: Step, client: ServerClient): void {
  if (!client.online) return;
  client.online = false;
  persistClient(step, client);
  tableChanged(step);
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
    { type: "probe", id: requestId },
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
    pushTable(step, client);
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
    case "register":
      if (alive) {
        step.log(
          "info",
          `refused the name ${waiter.name} to ${normaliseIp(waiter.from.ip)}:${waiter.from.port}: ${client.name} is online`,
        );
        replyError(step, waiter.from, waiter.requestId, "name-taken");
      } else {
        // Decided afresh: an earlier waiter on this probe may hold the name by now.
        onRegister(step, waiter.from, {
          type: "register",
          id: waiter.requestId,
          name: waiter.name,
        });
      }
      return;
    case "save": {
      const sender = step.state.clients.get(nameKey(waiter.save.sender));
      if (alive) {
        reply(step, waiter.from, { type: "error", id: waiter.requestId, code: "recipient-online" });
        if (sender) pushTable(step, sender);
      } else {
        storeAndAcknowledge(step, waiter.from, waiter.requestId, client, waiter.save);
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
          waiter.requestId,
          waiter.message,
        );
      } else {
        storeChannelPost(step, client, waiter.post);
      }
      return;
    default:
      waiter satisfies never;
  }
}

// Offline messages ------------------------------------------------------------------------

function onSave(step: Step, from: Address, request: SaveMessage): void {
  const sender = authenticate(step, from, request.id, request.token);
  if (!sender) return;
  if (!sender.online) pushTable(step, sender);
  const recipient = step.state.clients.get(nameKey(request.to));
  if (!recipient) {
    replyError(step, from, request.id, "unknown-recipient");
    return;
  }
  if (textLength(request.text) > MAX_TEXT_LENGTH) {
    replyError(step, from, request.id, "too-long");
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
    probe(step, recipient, { kind: "save", from, requestId: request.id, save });
    return;
  }
  storeAndAcknowledge(step, from, request.id, recipient, save);
}

function storeAndAcknowledge(
  step: Step,
  from: Address,
  requestId: number,
  recipient: ServerClient,
  save: Omit<StoredMessage, "id" | "recipient">,
): void {
  if (!storeMessage(step, recipient, save)) {
    replyError(step, from, requestId, "mailbox-full");
    return;
  }
  step.log("info", `saved a message from ${save.sender} for ${recipient.name}`);
  reply(step, from, { type: "ack", id: requestId });
}

function storeMessage(
  step: Step,
  recipient: ServerClient,
  message: Omit<StoredMessage, "id" | "recipient">,
): boolean {
  const { state } = step;
  const mailbox = state.mailboxes.get(recipient.key) ?? [];
  const senderKey = nameKey(message.sender);
  if (mailbox.some((kept) => kept.ref === message.ref && nameKey(kept.sender) === senderKey)) {
    return true; // a copy of one already kept, as when a save is retried across a restart
  }
  if (mailbox.length >= MAILBOX_LIMIT) {
    step.log(
      "warn",
      `mailbox of ${recipient.name} is full (${MAILBOX_LIMIT}): a message from ${message.sender} was refused`,
    );
    return false;
  }
  const stored: StoredMessage = { id: state.nextStoredId++, recipient: recipient.name, ...message };
  mailbox.push(stored);
  state.mailboxes.set(recipient.key, mailbox);
  step.changes.push({ kind: "put-message", message: stored });
  return true;
}

function sendNextStoredBatch(step: Step, client: ServerClient): void {
  const { state } = step;
  const mailbox = state.mailboxes.get(client.key) ?? [];
  if (mailbox.length === 0 || !client.online) {
    state.storedDeliveries.delete(client.key);
    tableChanged(step);
    return;
  }
  const batch: DeliveredMessage[] = [];
  const messageIds: number[] = [];
  let bytes = 0;
  for (const stored of mailbox) {
    const delivered: DeliveredMessage = {
      sender: stored.sender,
      kind: stored.kind,
      text: stored.text,
      at: stored.receivedAt,
      ref: stored.ref,
    };
    const size = JSON.stringify(delivered).length * 3;
    if (batch.length > 0 && bytes + size > STORED_BATCH_BYTES) break;
    batch.push(delivered);
    messageIds.push(stored.id);
    bytes += size;
  }
  const id = nextRequestId(state);
  state.outbound.add(
    id,
    { ip: client.ip, port: client.port },
    { type: "stored", id, messages: batch },
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
  const remaining = mailbox.filter((message) => !delivered.has(message.id));
  if (remaining.length > 0) state.mailboxes.set(clientKey, remaining);
  else state.mailboxes.delete(clientKey);
  step.changes.push({ kind: "remove-messages", ids: messageIds });
  const client = state.clients.get(clientKey);
  if (client) {
    step.log("info", `delivered ${messageIds.length} stored message(s) to ${client.name}`);
    sendNextStoredBatch(step, client);
  }
}

// Channel ------------------------------------------------------------------------------------

function onChannel(step: Step, from: Address, request: ChannelMessage): void {
  const sender = authenticate(step, from, request.id, request.token);
  if (!sender) return;
  if (!sender.online) pushTable(step, sender);
  if (textLength(request.text) > MAX_TEXT_LENGTH) {
    replyError(step, from, request.id, "too-long");
    return;
  }
  const post: ChannelPost = {
    sender: sender.name,
    text: request.text,
    receivedAt: step.now,
    ref: request.id,
  };
  let live = 0;
  let stored = 0;
  for (const member of step.state.clients.values()) {
    if (member.key === sender.key) continue;
    if (member.online) {
      deliverChannelPost(step, member, post, 0, undefined, undefined);
      live++;
    } else if (storeMessage(step, member, channelStored(post))) {
      stored++;
    }
  }
  step.log(
    "info",
    `channel message from ${sender.name}: sent to ${live} online member(s), stored for ${stored}`,
  );
  reply(step, from, { type: "ack", id: request.id });
}

function channelStored(post: ChannelPost): Omit<StoredMessage, "id" | "recipient"> {
  const { sender, text, receivedAt, ref } = post;
  return { sender, kind: "channel", text, receivedAt, ref };
}

function deliverChannelPost(
  step: Step,
  member: ServerClient,
  post: ChannelPost,
  round: number,
  sameId: number | undefined,
  sameMessage: Message | undefined,
): void {
  const id = sameId ?? nextRequestId(step.state);
  const message: Message = sameMessage ?? {
    type: "channel-message",
    id,
    from: post.sender,
    text: post.text,
    ref: post.ref,
  };
  step.state.outbound.add(
    id,
    { ip: member.ip, port: member.port },
    message,
    { kind: "channel", clientKey: member.key, post, round },
    channelPolicy,
    step.now,
    step.datagrams,
  );
}

function storeChannelPost(step: Step, member: ServerClient, post: ChannelPost): void {
  if (storeMessage(step, member, channelStored(post))) {
    step.log("info", `stored a channel message from ${post.sender} for ${member.name}`);
  }
}

// Table pushes -------------------------------------------------------------------------------

function tableChanged(step: Step): void {
  const { state } = step;
  state.tableVersion++;
  for (const client of state.clients.values()) {
    if (client.online && !state.storedDeliveries.has(client.key)) pushTable(step, client);
  }
}

/** Pushes are coalesced: while one is out to a client, a newer table waits until it is done. */
function pushTable(step: Step, client: ServerClient): void {
  const { state } = step;
  const running = state.tablePushes.get(client.key);
  if (running) {
    running.stale = true;
    return;
  }
  const parts = tableParts(tableEntries(state));
  const pushId = state.nextRequestId;
  state.tablePushes.set(client.key, { id: pushId, outstandingParts: parts.length, stale: false });
  parts.forEach((clients, part) => {
    const id = nextRequestId(state);
    state.outbound.add(
      id,
      { ip: client.ip, port: client.port },
      { type: "table", id, version: state.tableVersion, part, parts: parts.length, clients },
      { kind: "table", clientKey: client.key, pushId },
      tablePolicy,
      step.now,
      step.datagrams,
    );
  });
}

function tableParts(entries: TableEntry[]): TableEntry[][] {
  const parts: TableEntry[][] = [[]];
  let bytes = 0;
  for (const entry of entries) {
    const size = JSON.stringify(entry).length + 1;
    const current = parts[parts.length - 1];
    if (current && current.length > 0 && bytes + size > TABLE_PART_BYTES) {
      parts.push([entry]);
      bytes = size;
    } else {
      current?.push(entry);
      bytes += size;
    }
  }
  return parts;
}

function tablePartDone(step: Step, clientKey: string, pushId: number): void {
  const { state } = step;
  const push = state.tablePushes.get(clientKey);
  if (push?.id !== pushId) return;
  push.outstandingParts--;
  if (push.outstandingParts > 0) return;
  state.tablePushes.delete(clientKey);
  const client = state.clients.get(clientKey);
  if (push.stale && client?.online) pushTable(step, client);
}

// Acks and silences ---------------------------------------------------------------------------

function onAck(step: Step, from: Address, id: number): void {
  const request = step.state.outbound.acknowledge(id, from, step.now, step.datagrams);
  if (!request) {
    step.state.drops.unexpected++;
    return;
  }
  const { purpose } = request;
  switch (purpose.kind) {
    case "probe":
      probeAnswered(step, purpose.clientKey, true);
      return;
    case "table":
      tablePartDone(step, purpose.clientKey, purpose.pushId);
      return;
    case "stored":
      storedBatchDelivered(step, purpose.clientKey, purpose.messageIds);
      return;
    case "channel":
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
      tablePartDone(step, purpose.clientKey, purpose.pushId);
      return;
    case "stored": {
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
      tableChanged(step);
      return;
    }
    case "channel": {
      const member = state.clients.get(purpose.clientKey);
      if (!member) return;
      if (!member.online) {
        storeChannelPost(step, member, purpose.post);
        return;
      }
      probe(step, member, {
        kind: "channel",
        requestId: request.id,
        message: request.message,
        post: purpose.post,
        round: purpose.round,
      });
      return;
    }
    default:
      purpose satisfies never;
  }
}
