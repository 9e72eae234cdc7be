import { normaliseIp } from "../protocol/address.ts";
import { nameKey } from "../protocol/names.ts";
import { deliverChannelPost, fanOutSettled, storeChannelPost } from "./server-channel.ts";
import { isRemote, probeAtItsNode } from "./server-cluster.ts";
import { storeAndAcknowledge } from "./server-mailboxes.ts";
import { markOffline, onRegister } from "./server-registry.ts";
import type { ProbeWaiter, ServerClient } from "./server-state.ts";
import { nextRequestId, probePolicy, replyError, type Step, toClient } from "./server-step.ts";
import { requestTablePush } from "./server-table-sync.ts";
import { timing } from "./timing.ts";

/*
 * Liveness probes (SPEC §4 "check the status"): one per client, shared by everyone waiting on its verdict.
 */

/** SPEC §4 "check the status": one probe per client, shared by everyone waiting on it. */
export function probe(step: Step, client: ServerClient, waiter: ProbeWaiter): void {
  const { state } = step;
  const running = state.probes.get(client.key);
  if (running) {
    running.waiters.push(waiter);
    return;
  }
  if (isRemote(state, client)) {
    probeAtItsNode(step, client, waiter);
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

export function probeAnswered(step: Step, clientKey: string, alive: boolean): void {
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
    case "node":
      step.notes.push({ kind: "probe-result", to: waiter.node, probeId: waiter.probeId, alive });
      return;
    default:
      waiter satisfies never;
  }
}
