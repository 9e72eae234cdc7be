import {
  type DeliveredMessage,
  MAX_BOX_TEXT_LENGTH,
  type SaveMessage,
} from "../protocol/messages.ts";
import { nameKey } from "../protocol/names.ts";
import {
  contentBytes,
  type StoredMessage,
  type StoredSummary,
  summaryOf,
  utf8Length,
} from "../store/offline-store.ts";
import { newStoredId } from "./server-cluster.ts";
import { probe } from "./server-probes.ts";
import type { Requester, ServerClient, ServerState } from "./server-state.ts";
import {
  nextRequestId,
  reply,
  replyError,
  type Step,
  storedPolicy,
  toClient,
} from "./server-step.ts";
import { requestTablePush, tableChanged } from "./server-table-sync.ts";
import { MAILBOX_LIMIT, STORED_BATCH_BYTES } from "./timing.ts";

/*
 * Mailboxes: saves, the store quota, and the delivery of stored messages, whose texts are read from the store when they go out.
 */

export function onSave(
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
  // Sealed: the server bounds the box, the sender checked the text before sealing it.
  if (request.box.length > MAX_BOX_TEXT_LENGTH) {
    replyError(step, requester, "too-long");
    return;
  }
  const save: Omit<StoredMessage, "id" | "recipient"> = {
    sender: sender.name,
    kind: "direct",
    text: "",
    receivedAt: step.now,
    ref: request.ref ?? request.id,
    sealed: { n: request.n, box: request.box, ak: sender.ak },
  };
  if (recipient.online) {
    probe(step, recipient, { kind: "save", requester, save });
    return;
  }
  storeAndAcknowledge(step, requester, recipient, save);
}

export function storeAndAcknowledge(
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
export function storeMessage(
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
    storeUse.textBytes + contentBytes(message) > storeQuota.textBytes
  ) {
    return "store-full";
  }
  const stored: StoredMessage = {
    id: newStoredId(state, step.now),
    recipient: recipient.name,
    ...message,
  };
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
export function unstoreMessage(state: ServerState, message: StoredSummary | StoredMessage): void {
  const key = nameKey(message.recipient);
  const mailbox = state.mailboxes.get(key);
  if (!mailbox) return;
  const remaining = mailbox.filter((kept) => kept.id !== message.id);
  if (remaining.length === mailbox.length) return;
  if (remaining.length > 0) state.mailboxes.set(key, remaining);
  else state.mailboxes.delete(key);
  if (state.delivering.delete(message.id)) return;
  state.storeUse.messages--;
  state.storeUse.textBytes -= "textBytes" in message ? message.textBytes : contentBytes(message);
}

/** Stored messages that count against the limits: not the copies being delivered live. */
function settledCount(state: ServerState, mailbox: readonly StoredSummary[]): number {
  if (state.delivering.size === 0) return mailbox.length;
  let count = 0;
  for (const message of mailbox) if (!state.delivering.has(message.id)) count++;
  return count;
}

export function sendNextStoredBatch(step: Step, client: ServerClient): void {
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
export function restartStoredDelivery(step: Step, client: ServerClient): void {
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

export function storedMessagesRead(
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
    const delivered = deliveredOf(stored);
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

/** A stored message as its recipient gets it: a sealed one with its sender's key, to open it. */
function deliveredOf(stored: StoredMessage): DeliveredMessage {
  const { sender, kind, text, receivedAt: at, ref, sealed } = stored;
  if (sealed === undefined || kind !== "direct") return { sender, kind, text, at, ref };
  return { sender, kind, n: sealed.n, box: sealed.box, ak: sealed.ak, at, ref };
}

export function storedBatchDelivered(
  step: Step,
  clientKey: string,
  messageIds: readonly number[],
): void {
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
  step.changes.push({ kind: "remove-messages", ids: messageIds, recipient: clientKey });
  const client = state.clients.get(clientKey);
  if (client) {
    state.activity.deliveredStored += messageIds.length;
    step.log("debug", `delivered ${messageIds.length} stored message(s) to ${client.name}`);
    sendNextStoredBatch(step, client);
  }
}

/** Commits reported: their stored messages are on disk (or taken back); batches that waited for them are read again. */
export function afterCommits(step: Step, commits: readonly number[]): void {
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
