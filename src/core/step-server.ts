import { sameAddress } from "../protocol/address.ts";
import type { AckMessage, Address, TableEntry } from "../protocol/messages.ts";
import type { OutboundRequest } from "./outbound-requests.ts";
import { forgetOldReplies, forgetUsedRegistrations, receive } from "./server-admission.ts";
import {
  deliveredLive,
  fanOutSettled,
  resumeDeliveries,
  storeChannelPost,
} from "./server-channel.ts";
import {
  applyRemoteChanges,
  expireRemoteProbes,
  nextRemoteProbeDeadline,
  nodeGone,
} from "./server-cluster.ts";
import type { ServerEffect, ServerInput } from "./server-effects.ts";
import {
  afterCommits,
  sendNextStoredBatch,
  storedBatchDelivered,
  storedMessagesRead,
  unstoreMessage,
} from "./server-mailboxes.ts";
import { probe, probeAnswered } from "./server-probes.ts";
import { claimAnswered, forgetIfDue } from "./server-registry.ts";
import type { ServerPurpose, ServerState } from "./server-state.ts";
import { logEffects, refuseUnremembered, rememberReply, Step, sendEffects } from "./server-step.ts";
import {
  pumpTablePushes,
  requestTablePush,
  tableChanged,
  tablePartDone,
  tablePartUnanswered,
} from "./server-table-sync.ts";
import { hasValidMac } from "./session-crypto.ts";
import { tableEntry } from "./table-log.ts";

export function stepServer(state: ServerState, input: ServerInput, now: number): ServerEffect[] {
  const step = new Step(state, now);
  if (state.resumeDeliveries) resumeDeliveries(step);
  switch (input.kind) {
    case "datagram":
      receive(step, input.from, input.bytes);
      break;
    case "tick":
      expireRequests(step);
      expireRemoteProbes(step);
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
    case "remote-changes":
      applyRemoteChanges(step, input.node, input.changes, input.notes);
      break;
    case "claim-done":
      claimAnswered(step, input.claim, input.granted, input.failed === true);
      break;
    case "node-gone":
      nodeGone(step, input.node);
      break;
    case "quiet":
      state.table.letGoOfCaches();
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
  const outbound = state.outbound.nextWakeAt();
  const remote = nextRemoteProbeDeadline(state);
  if (remote === undefined) return outbound;
  return outbound === undefined ? remote : Math.min(outbound, remote);
}

/** When an offline name may be due to be forgotten: housekeeping, days away, kept apart from the protocol's timers. */
export function nextForgetAt(state: ServerState): number | undefined {
  return state.nextForgetCheckAt;
}

/** The table as clients see it, in order of first registration. */
export function tableEntries(state: ServerState): TableEntry[] {
  return [...state.clients.values()].map(tableEntry);
}

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
    if (!requester) step.released.push({ kind: "send", ...datagram });
    else refuseUnremembered(step, requester, "store-failed");
  }
  if (held.stored.length > 0) {
    step.log(
      "warn",
      `${held.stored.length} message(s) were not saved: the store refused the write`,
    );
  }
}

/** An ack counts only with the MAC of the session its request went to: no one keeps a dead client alive. */
export function onAck(step: Step, from: Address, ack: AckMessage): void {
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
      tablePartUnanswered(
        step,
        purpose.clientKey,
        purpose.pushId,
        request.message.type === "table" ? request.message.clients : [],
      );
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
