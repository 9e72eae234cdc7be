import { decodeBase64urlOfLength } from "../crypto/base64url.ts";
import { addressKey } from "../protocol/address.ts";
import { nameKey } from "../protocol/names.ts";
import {
  type ClientRecord,
  type StoreChange,
  type StoredMessage,
  summaryOf,
} from "../store/offline-store.ts";
import { SEAL_KEY_BYTES } from "./crypto-port.ts";
import { ReplayWindow } from "./replay-window.ts";
import { deliverChannelPost } from "./server-channel.ts";
import type { NodeNote } from "./server-effects.ts";
import { sendNextStoredBatch } from "./server-mailboxes.ts";
import { probe, probeAnswered } from "./server-probes.ts";
import { forgetClient, markOffline, noteOfflineSince } from "./server-registry.ts";
import {
  isAtThisNode,
  type ProbeWaiter,
  putClient,
  type ServerClient,
  type ServerState,
} from "./server-state.ts";
import type { Step } from "./server-step.ts";
import { cancelTablePush, requestTablePush, tableChanged } from "./server-table-sync.ts";
import { timing } from "./timing.ts";

/*
 * One node of a cluster (docs/CLUSTER.md). Every node holds the whole table and the
 * index of stored messages, kept in step by applying the changes the other nodes commit
 * to the shared log; but a client's session is its own node's: only that node pushes to
 * it, probes it and delivers to it. What another node's client needs from us goes to
 * that node as a note in the same log.
 */

/** Its session is at another node of the cluster. */
export function isRemote(state: ServerState, client: ServerClient): boolean {
  return !isAtThisNode(state.deps, client);
}

/** Stored-message ids count milliseconds from here, so they stay below 2^53 for decades. */
const CLUSTER_ID_EPOCH = Date.UTC(2025, 0, 1);
const NODE_SLOTS = 64;
const IDS_PER_MS = 64;

/**
 * A new stored-message id. On one server, a counter. In a cluster, ids made on different
 * nodes must never collide and should follow the order of receipt (a mailbox is
 * delivered in id order after a restart): the millisecond, the node's slot, and a
 * sequence within the millisecond, borrowing the next millisecond past 64.
 */
export function newStoredId(state: ServerState, now: number): number {
  const cluster = state.deps.cluster;
  if (!cluster) return state.nextStoredId++;
  const ids = state.clusterIds;
  const ms = Math.max(0, now - CLUSTER_ID_EPOCH);
  if (ms > ids.ms) {
    ids.ms = ms;
    ids.seq = 0;
  } else if (ids.seq + 1 >= IDS_PER_MS) {
    ids.ms++;
    ids.seq = 0;
  } else {
    ids.seq++;
  }
  return (ids.ms * NODE_SLOTS + (cluster.slot % NODE_SLOTS)) * IDS_PER_MS + ids.seq;
}

/** A client at another node is probed by its node: we ask through the shared log. */
export function probeAtItsNode(step: Step, client: ServerClient, waiter: ProbeWaiter): void {
  const { state } = step;
  const node = client.node;
  if (node === undefined) return;
  const probeId = state.nextRequestId++;
  state.probes.set(client.key, { requestId: probeId, waiters: [waiter] });
  state.remoteProbes.set(probeId, {
    clientKey: client.key,
    node,
    deadline: step.now + timing.remoteProbeMs,
  });
  step.notes.push({ kind: "probe", to: node, name: client.name, probeId });
}

/** Another node's verdict on its client (or our own, when it never came). */
function remoteProbeAnswered(step: Step, probeId: number, alive: boolean): void {
  const { state } = step;
  const asked = state.remoteProbes.get(probeId);
  if (!asked) return;
  state.remoteProbes.delete(probeId);
  const running = state.probes.get(asked.clientKey);
  if (running?.requestId !== probeId) return;
  const client = state.clients.get(asked.clientKey);
  if (client?.online && client.node !== asked.node) {
    // It moved to another node while we asked: ask there.
    state.probes.delete(asked.clientKey);
    for (const waiter of running.waiters) probe(step, client, waiter);
    return;
  }
  probeAnswered(step, asked.clientKey, alive);
}

/** Remote probes whose node never answered: the client counts as gone (its node may be). */
export function expireRemoteProbes(step: Step): void {
  for (const [probeId, asked] of [...step.state.remoteProbes]) {
    if (asked.deadline <= step.now) remoteProbeAnswered(step, probeId, false);
  }
}

export function nextRemoteProbeDeadline(state: ServerState): number | undefined {
  let earliest: number | undefined;
  for (const asked of state.remoteProbes.values()) {
    if (earliest === undefined || asked.deadline < earliest) earliest = asked.deadline;
  }
  return earliest;
}

/** What another node committed: applied to our copy of the table and the mailboxes. */
export function applyRemoteChanges(
  step: Step,
  node: string,
  changes: readonly StoreChange[],
  notes: readonly NodeNote[],
): void {
  for (const change of changes) {
    switch (change.kind) {
      case "put-client":
        applyRemoteClient(step, change.client);
        break;
      case "remove-client": {
        const client = step.state.clients.get(nameKey(change.name));
        if (client) forgetClient(step, client, false);
        break;
      }
      case "put-message":
        indexRemoteMessage(step, change.message);
        break;
      case "remove-messages":
        unindexMessages(step.state, change.ids, change.recipient);
        break;
      default:
        change satisfies never;
    }
  }
  const self = step.state.deps.cluster?.node;
  for (const note of notes) if (note.to === self) onNote(step, node, note);
}

function applyRemoteClient(step: Step, record: ClientRecord): void {
  const { state } = step;
  const key = nameKey(record.name);
  const previous = state.clients.get(key);
  const wasHere = previous?.online === true && !isRemote(state, previous);
  if (previous) {
    state.clientsByToken.delete(previous.token);
    if (state.clientsByAddress.get(addressKey(previous)) === key) {
      state.clientsByAddress.delete(addressKey(previous));
    }
    const stillHere = record.online && isAtThisNode(state.deps, record);
    if (previous.online && !isRemote(state, previous) && !stillHere)
      endLocalSession(step, previous);
  }
  const sameSession = previous?.token === record.token;
  const client: ServerClient = {
    key,
    name: record.name,
    ip: record.ip,
    port: record.port,
    online: record.online,
    token: record.token,
    sk: record.sk,
    ak: record.ak,
    sessionKey: decodeBase64urlOfLength(record.sessionKey, SEAL_KEY_BYTES),
    window: sameSession && previous ? previous.window : new ReplayWindow(),
    lastSeen: record.lastSeen,
    entryVersion: previous?.entryVersion ?? 0,
    synced: previous?.synced,
    push: previous?.push,
    refresh: previous?.refresh ?? false,
    stalledAt: previous?.stalledAt,
    smallParts: sameSession && previous ? previous.smallParts : false,
    node: record.node,
  };
  putClient(state, client);
  state.clientsByToken.set(client.token, key);
  state.clientsByAddress.set(addressKey(client), key);
  if (!client.online) noteOfflineSince(state, client.lastSeen);
  tableChanged(step, client);
  if (wasHere && !client.online && isAtThisNode(state.deps, client)) {
    // Another node found it gone (its probe through us timed out): if it is only slow,
    // this table tells it that it is offline, and it registers again, as on one server.
    requestTablePush(step, client);
  }
}

/** Its session moved to another node, or another node found it gone: nothing more goes to it from here. */
function endLocalSession(step: Step, client: ServerClient): void {
  const { state } = step;
  cancelTablePush(step, client);
  state.syncRequests.delete(client.key);
  const inFlight = state.storedInFlight.get(client.key);
  if (inFlight !== undefined) state.outbound.cancel(inFlight, step.now, step.datagrams);
  state.storedInFlight.delete(client.key);
  state.storedDeliveries.delete(client.key);
  state.announceWhenDelivered.delete(client.key);
  state.readAfterCommit.delete(client.key);
}

function indexRemoteMessage(step: Step, message: StoredMessage): void {
  const { state } = step;
  const key = nameKey(message.recipient);
  const mailbox = state.mailboxes.get(key) ?? [];
  if (mailbox.some((kept) => kept.id === message.id)) return;
  const summary = summaryOf(message);
  mailbox.push(summary);
  state.mailboxes.set(key, mailbox);
  const recipient = state.clients.get(key);
  const here = recipient?.online === true && !isRemote(state, recipient);
  if (here && message.kind === "channel" && !state.storedDeliveries.has(key)) {
    // A post another node took: its copy for our member goes out live, kept until acked.
    state.delivering.add(message.id);
    const { sender, text, receivedAt, ref } = message;
    const fanOut = { startedAt: step.now, pending: 1 };
    const post = { sender, text, receivedAt, ref, fanOut };
    deliverChannelPost(step, recipient, post, 0, message, undefined, undefined);
    return;
  }
  state.storeUse.messages++;
  state.storeUse.textBytes += summary.textBytes;
  if (here && !state.storedDeliveries.has(key)) {
    // Stored by another node while it was online here (a race of views): deliver it now.
    state.storedDeliveries.add(key);
    sendNextStoredBatch(step, recipient);
  }
}

/** Messages delivered (or given up) by another node leave our index. */
function unindexMessages(
  state: ServerState,
  ids: readonly number[],
  recipient: string | undefined,
): void {
  const removed = new Set(ids);
  const keys = recipient === undefined ? [...state.mailboxes.keys()] : [recipient];
  for (const key of keys) {
    const mailbox = state.mailboxes.get(key);
    if (!mailbox) continue;
    const remaining = mailbox.filter((kept) => {
      if (!removed.has(kept.id)) return true;
      if (!state.delivering.delete(kept.id)) {
        state.storeUse.messages--;
        state.storeUse.textBytes -= kept.textBytes;
      }
      return false;
    });
    if (remaining.length > 0) state.mailboxes.set(key, remaining);
    else state.mailboxes.delete(key);
  }
}

function onNote(step: Step, node: string, note: NodeNote): void {
  const { state } = step;
  switch (note.kind) {
    case "probe": {
      const client = state.clients.get(nameKey(note.name));
      if (client?.online && !isRemote(state, client)) {
        probe(step, client, { kind: "node", node, probeId: note.probeId });
      } else {
        step.notes.push({ kind: "probe-result", to: node, probeId: note.probeId, alive: false });
      }
      return;
    }
    case "probe-result":
      remoteProbeAnswered(step, note.probeId, note.alive);
      return;
    default:
      note satisfies never;
  }
}

/** A node stopped beating and we took it over: its clients are offline, for every node. */
export function nodeGone(step: Step, node: string): void {
  const { state } = step;
  let count = 0;
  for (const client of state.clients.values()) {
    if (!client.online || client.node !== node) continue;
    markOffline(step, client);
    count++;
  }
  for (const [probeId, asked] of [...state.remoteProbes]) {
    if (asked.node === node) remoteProbeAnswered(step, probeId, false);
  }
  step.log("warn", `node ${node} stopped answering: ${count} of its client(s) marked offline`);
}
