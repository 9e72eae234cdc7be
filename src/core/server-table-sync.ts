import { MAX_TABLE_PARTS, type Message, type TableChange } from "../protocol/messages.ts";
import {
  isAtThisNode,
  type ServerClient,
  type ServerState,
  type TablePush,
} from "./server-state.ts";
import { nextRequestId, type Step, tablePolicy, toClient } from "./server-step.ts";
import { inSmallParts } from "./table-log.ts";
import {
  CHANNEL_BUSY_ABOVE,
  SWEEP_PARTS_BESIDE_CHANNEL,
  TABLE_PARTS_IN_FLIGHT,
  TABLE_SMALL_PARTS_IN_FLIGHT,
} from "./timing.ts";

/*
 * Table sync: pushes of the change log to clients, found by a sweep, built when the table lane has room, a few parts at a time.
 */

/** One entry changed: a new version; the sweep finds everyone it leaves behind. */
export function tableChanged(step: Step, client: ServerClient): void {
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
export function requestTablePush(step: Step, client: ServerClient, refresh = false): void {
  const { state } = step;
  if (refresh) client.refresh = true;
  if (client.push === undefined) state.syncRequests.add(client.key);
  pumpTablePushes(step);
}

export function cancelTablePush(step: Step, client: ServerClient): void {
  const { push } = client;
  if (!push) return;
  client.push = undefined;
  step.state.sweep.pushesOut.delete(client.key);
  for (const id of push.partIds) step.state.outbound.cancel(id, step.now, step.datagrams);
}

/**
 * Builds each push only when the table lane has room, so it carries every change made
 * while it waited: at most one push per client per round trip, whatever the changes.
 */
export function pumpTablePushes(step: Step): void {
  const { state } = step;
  /** The sweep's own parts out, counted once a fan-out is found under way. */
  let besideChannel: number | undefined;
  while (state.outbound.hasRoom("table")) {
    const requested = state.syncRequests.shift();
    if (requested !== undefined) {
      const client = state.clients.get(requested);
      if (client && isPushable(state, client) && isBehind(state, client)) {
        sendTablePush(step, client);
      }
      continue;
    }
    if (besideChannel === undefined && isFanningOut(state)) besideChannel = sweepPartsOut(state);
    if (besideChannel !== undefined && besideChannel >= SWEEP_PARTS_BESIDE_CHANNEL) return;
    const client = nextInSweep(state);
    if (!client) return;
    if (client.online && isPushable(state, client) && isBehind(state, client)) {
      if (client.stalledAt === state.table.version) continue;
      state.sweep.sentInPass++;
      sendTablePush(step, client);
      const push = client.push;
      if (!push) continue;
      state.sweep.pushesOut.set(client.key, push.id);
      if (besideChannel !== undefined) besideChannel += partsInFlight(push);
    }
  }
}

/**
 * A channel post is being fanned out: the sweep keeps only a few parts of its own out,
 * so that members' acks of the post do not queue behind thousands of table acks (a post
 * while 1,000 of 10,000 clients left took up to 10 s to reach everyone). Pushes asked
 * for by name (a registration, a refresh) still go at once, and do not count.
 */
function isFanningOut(state: ServerState): boolean {
  const channel = state.outbound.load("channel");
  return channel.inFlight + channel.waiting > CHANNEL_BUSY_ABOVE;
}

/** Parts on their way of the pushes the sweep started; those that ended are forgotten. */
function sweepPartsOut(state: ServerState): number {
  let parts = 0;
  for (const [key, pushId] of state.sweep.pushesOut) {
    const push = state.clients.get(key)?.push;
    if (push?.id === pushId) parts += partsInFlight(push);
    else state.sweep.pushesOut.delete(key);
  }
  return parts;
}

function partsInFlight(push: TablePush): number {
  return push.outstandingParts - push.unsent.length;
}

/** The next client of the sweep; undefined when none is due or a pass found no one behind. */
function nextInSweep(state: ServerState): ServerClient | undefined {
  const { sweep, clients } = state;
  while (sweep.due) {
    if (sweep.index >= sweep.keys.length) {
      const passEnded = sweep.index > 0;
      sweep.index = 0;
      if (sweep.keys.length > clients.size * 2) sweep.keys = [...clients.keys()];
      if (clients.size === 0 || (passEnded && sweep.sentInPass === 0)) {
        sweep.due = false;
        return undefined;
      }
      sweep.sentInPass = 0;
      continue;
    }
    const key = sweep.keys[sweep.index++];
    const client = key === undefined ? undefined : clients.get(key);
    if (client) return client;
  }
  return undefined;
}

/** Its session is here, no push is out to it, and it is not in the middle of receiving its stored messages. */
function isPushable(state: ServerState, client: ServerClient): boolean {
  return (
    client.push === undefined &&
    !state.storedDeliveries.has(client.key) &&
    isAtThisNode(state.deps, client)
  );
}

function isBehind(state: ServerState, client: ServerClient): boolean {
  return client.synced !== state.table.version || client.refresh;
}

function sendTablePush(step: Step, client: ServerClient): void {
  const { state } = step;
  client.refresh = false;
  client.stalledAt = undefined;
  const content = state.table.pushFor(client.synced, state.clients, client.entryVersion);
  const small = client.smallParts ? content.parts.flatMap(inSmallParts) : undefined;
  // A table so large that its small parts would pass the limit a client accepts gets large ones.
  const cut = small && small.length <= MAX_TABLE_PARTS ? small : content.parts;
  const parts = cut.length;
  const partIds = cut.map(() => nextRequestId(state));
  const pushId = partIds[0] ?? nextRequestId(state);
  const unsent = cut.map((clients, part): Message => {
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
  const inFlight = client.smallParts ? TABLE_SMALL_PARTS_IN_FLIGHT : TABLE_PARTS_IN_FLIGHT;
  for (let sent = 0; sent < inFlight; sent++) sendNextPart(step, client);
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
export function tablePartDone(
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
  state.sweep.pushesOut.delete(clientKey);
  client.synced = push.reported ?? push.version;
  // Changes made while it was out: the sweep finds it again (it may have passed it by).
  if (client.online && client.synced !== state.table.version) state.sweep.due = true;
}

/**
 * A push nobody acknowledged: the client may be gone. The sweep after the next change
 * tries it again. If the part was a large one, the client may only be out of reach of
 * large datagrams (a lossy link, a path that drops fragments): it is sent small parts
 * from now on, at once.
 */
export function tablePartUnanswered(
  step: Step,
  clientKey: string,
  pushId: number,
  part: readonly TableChange[],
): void {
  const { state } = step;
  const client = state.clients.get(clientKey);
  const push = client?.push;
  if (!client || push?.id !== pushId) return;
  // Six tries of one part went unanswered: the rest would fare no better.
  cancelTablePush(step, client);
  if (push.reported !== undefined) client.synced = push.reported;
  if (!client.smallParts && inSmallParts(part).length > 1) {
    client.smallParts = true;
    step.log("info", `no large table part reached ${client.name}: it is sent small ones`);
    requestTablePush(step, client);
    return;
  }
  client.stalledAt = state.table.version;
}
