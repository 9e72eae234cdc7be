import { encodeBase64url } from "../crypto/base64url.ts";
import { addressKey, normaliseIp, sameAddress } from "../protocol/address.ts";
import type { Address, RegisterMessage } from "../protocol/messages.ts";
import { isValidName, nameKey } from "../protocol/names.ts";
import type { ClientRecord } from "../store/offline-store.ts";
import { ReplayWindow } from "./replay-window.ts";
import { RATE_TABLE_LIMIT, registerFields, rememberRegistration } from "./server-admission.ts";
import { restartStoredDelivery } from "./server-mailboxes.ts";
import { probe } from "./server-probes.ts";
import {
  isAtThisNode,
  putClient,
  type Requester,
  type ServerClient,
  type ServerState,
} from "./server-state.ts";
import { refuseUnremembered, reply, replyError, type Step } from "./server-step.ts";
import { cancelTablePush, requestTablePush, tableChanged } from "./server-table-sync.ts";
import { registerTranscript, sessionKey, signText } from "./session-crypto.ts";
import { FORGET_CHECK_EVERY_MS, NAME_GRANT_PERIOD_MS, NAMES_PER_ADDRESS } from "./timing.ts";

/*
 * The registry of names: registration and its limits, leaving, going offline, and forgetting names after the retention period.
 */

export function onRegister(step: Step, requester: Requester, request: RegisterMessage): void {
  decideRegistration(step, requester, request);
}

function decideRegistration(
  step: Step,
  requester: Requester,
  request: RegisterMessage,
  claimed = false,
): void {
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
  if (holder === undefined && !claimed && !grantNewName(step.state, from, step.now)) {
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
  if (needsClaim(step.state, holder, claimed)) {
    // Another node may be giving the same name away at this moment: Redis decides.
    const claim = step.state.nextClaim++;
    step.state.pendingClaims.set(claim, { requester, request });
    const force = holder !== undefined && sameAddress(holder, from);
    step.claims.push({ kind: "claim", claim, name: request.name, force });
    return;
  }
  acceptRegistration(step, requester, request);
}

/** In a cluster, a name is this node's to give only once claimed, unless its session is here already. */
function needsClaim(
  state: ServerState,
  holder: ServerClient | undefined,
  claimed: boolean,
): boolean {
  if (state.deps.cluster === undefined || claimed) return false;
  return !(holder?.online && isAtThisNode(state.deps, holder));
}

/** The name's claim came back: the registration is decided again (the table may have moved), or refused. */
export function claimAnswered(step: Step, claim: number, granted: boolean, failed: boolean): void {
  const pending = step.state.pendingClaims.get(claim);
  if (!pending) return;
  step.state.pendingClaims.delete(claim);
  const { requester, request } = pending;
  if (failed) {
    step.log("warn", `could not claim the name ${request.name}: Redis is unreachable`);
    refuseUnremembered(step, requester, "store-failed");
    return;
  }
  if (granted) {
    decideRegistration(step, requester, request, true);
    return;
  }
  const { from } = requester;
  step.log(
    "info",
    `refused the name ${request.name} to ${normaliseIp(from.ip)}:${from.port}: another node holds it`,
  );
  replyError(step, requester, "name-taken");
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

export function hasNameGrantLeft(state: ServerState, from: Address, now: number): boolean {
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
    // A new session starts with large parts: one silence of 3 s (a suspended laptop) is
    // not a path that drops fragments, and must not cost the name small parts for good.
    smallParts: false,
    node: state.deps.cluster?.node,
  };
  putClient(state, client);
  state.clientsByToken.set(client.token, key);
  // Back with another agreement key: no push may leave the new one out.
  if (previous && previous.ak !== client.ak) state.table.forgetKey(key);
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
  const { name, ip, port, online, token, lastSeen, sk, ak, node } = client;
  const sessionKey = client.sessionKey ? encodeBase64url(client.sessionKey) : "";
  const record: ClientRecord = {
    name,
    ip,
    port,
    online,
    token,
    lastSeen,
    sk,
    ak,
    sessionKey,
    ...(node === undefined ? {} : { node }),
  };
  step.changes.push({ kind: "put-client", client: record });
}

export function onDeregister(step: Step, requester: Requester, client: ServerClient): void {
  if (client.online) {
    step.log("info", `${client.name} de-registered`);
    markOffline(step, client);
  }
  reply(step, requester, { type: "ack", id: requester.id });
}

export function markOffline(step: Step, client: ServerClient): void {
  if (!client.online) return;
  client.online = false;
  client.lastSeen = step.now;
  noteOfflineSince(step.state, client.lastSeen);
  step.state.syncRequests.delete(client.key);
  // It will not answer a push now: the push's place in the table lane goes to others.
  cancelTablePush(step, client);
  persistClient(step, client);
  tableChanged(step, client);
}

/** An offline name: it may be forgotten a retention period from `since`. */
export function noteOfflineSince(state: ServerState, since: number): void {
  forgetNoEarlierThan(state, since + state.retentionMs);
}

function forgetNoEarlierThan(state: ServerState, at: number): void {
  if (state.nextForgetCheckAt === undefined || at < state.nextForgetCheckAt) {
    state.nextForgetCheckAt = at;
  }
}

/**
 * Offline names with nothing stored are forgotten a retention period after they left.
 * The server wakes for it only when some offline name can expire.
 */
export function forgetIfDue(step: Step): void {
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
    forgetClient(step, client, true);
    step.log(
      "info",
      `forgot ${client.name}: offline since ${new Date(client.lastSeen).toISOString()}`,
    );
  }
}

/** The name leaves the table; `persist`: this server decided it (another node's decision is already stored). */
export function forgetClient(step: Step, client: ServerClient, persist: boolean): void {
  const { state } = step;
  state.clients.delete(client.key);
  state.clientsByToken.delete(client.token);
  if (state.clientsByAddress.get(addressKey(client)) === client.key) {
    state.clientsByAddress.delete(addressKey(client));
  }
  cancelTablePush(step, client);
  if (persist) step.changes.push({ kind: "remove-client", name: client.name });
  state.table.recordForgotten(client.key, client.name);
  state.sweep.due = true;
}
