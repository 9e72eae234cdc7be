import { formatAddress, ipFamily, isLoopback, sameAddress, samePeer } from "../protocol/address.ts";
import { decodeMessage, encodeMessage, padRegistration, textLength } from "../protocol/codec.ts";
import {
  type Address,
  type ChatMessage,
  type DeliveredMessage,
  type ErrorCode,
  isSealedDelivery,
  isTombstone,
  MAX_DATAGRAM_BYTES,
  MAX_TEXT_LENGTH,
  type Message,
  type RegisterMessage,
  type TableChange,
  type TableEntry,
  type TableMessage,
} from "../protocol/messages.ts";
import { nameKey } from "../protocol/names.ts";
import { notices } from "../text/notices.ts";
import { sanitiseForTerminal } from "../text/sanitise.ts";
import { formatTimestamp } from "../text/timestamp.ts";
import { type Command, helpLines, type ParsedLine, parseCommandLine } from "./client-commands.ts";
import {
  acceptsStoredKey,
  keyFingerprint,
  learnStoredKey,
  noticeTableKeys,
  refusesToSend,
  trust,
  warnRefusedStored,
  whois,
} from "./client-known-keys.ts";
import type {
  ClientEffect,
  ClientInput,
  ClientPurpose,
  ClientState,
  PacedRequest,
  PendingRequest,
  ServerChallenge,
} from "./client-state.ts";
import { chatAckMac, isChatAckMac, openText, sealText } from "./sealed-messages.ts";
import {
  hasValidMac,
  registerTranscript,
  sessionKey,
  signText,
  verifyText,
  withMac,
} from "./session-crypto.ts";
import { timing } from "./timing.ts";

/** Past this many rows `list` ends with the count again. */
const LIST_RECOUNT_ROWS = 20;

type Step = { readonly state: ClientState; readonly now: number; readonly effects: ClientEffect[] };

export function stepClient(state: ClientState, input: ClientInput, now: number): ClientEffect[] {
  const step: Step = { state, now, effects: [] };
  if (state.phase === "exited") return step.effects;
  switch (input.kind) {
    case "start":
      register(step, true);
      break;
    case "line":
      onLine(step, input.text);
      break;
    case "end-of-input":
      state.leaving = true;
      break;
    case "datagram":
      receive(step, input.from, input.bytes);
      break;
    case "tick":
      launchPaced(step);
      advanceRequests(step);
      if (state.queuedUntil !== undefined && state.queuedUntil <= now) runQueued(step);
      if (state.storedUntil !== undefined && state.storedUntil <= now) {
        stopAwaitingStored(state);
        warnRefusedStored(state, step.effects);
      }
      break;
    default:
      return input satisfies never;
  }
  drainQueue(step);
  if (state.leaving && !hasExited(state) && isIdle(state)) exit(step, 0);
  return step.effects;
}

export function nextClientWakeAt(state: ClientState): number | undefined {
  let earliest: number | undefined;
  for (const request of state.pending.values()) {
    const at = request.resendAt[0] ?? request.giveUpAt;
    if (earliest === undefined || at < earliest) earliest = at;
  }
  if (state.queuedUntil !== undefined && (earliest === undefined || state.queuedUntil < earliest)) {
    earliest = state.queuedUntil;
  }
  if (state.paced.length > 0) {
    const at = state.pacer.readyAt();
    if (earliest === undefined || at < earliest) earliest = at;
  }
  if (state.storedUntil !== undefined && (earliest === undefined || state.storedUntil < earliest)) {
    earliest = state.storedUntil;
  }
  return earliest;
}

function hasExited(state: ClientState): boolean {
  return state.phase === "exited";
}

function isIdle(state: ClientState): boolean {
  return (
    state.phase !== "registering" &&
    state.pending.size === 0 &&
    state.paced.length === 0 &&
    state.queued.length === 0 &&
    state.queuedUntil === undefined &&
    state.storedUntil === undefined
  );
}

/** What the user asked for and has not seen the outcome of; the first registration is not theirs. */
function hasUserWork(state: ClientState): boolean {
  const isUsers = (request: PacedRequest): boolean =>
    request.purpose.kind !== "register" || !request.purpose.first;
  return (
    state.queued.length > 0 ||
    state.storedUntil !== undefined ||
    state.paced.some(isUsers) ||
    [...state.pending.values()].some(isUsers)
  );
}

/** A registration or de-registration changes what later commands mean: they wait for its outcome. */
function isBlocked(state: ClientState): boolean {
  return (
    state.phase === "registering" ||
    state.phaseRequest !== undefined ||
    state.queuedUntil !== undefined
  );
}

function show(step: Step, text: string): void {
  step.effects.push({ kind: "show", text });
}

function exit(step: Step, code: number): void {
  step.state.phase = "exited";
  step.state.pending.clear();
  step.state.paced.length = 0;
  step.state.queued.length = 0;
  step.effects.push({ kind: "exit", code });
}

function sendDatagram(step: Step, to: Address, message: Message): void {
  step.effects.push({ kind: "send", to, message });
}

// Requests that wait for an acknowledgement ------------------------------------------------------

function nextId(state: ClientState): number {
  const id = state.nextId;
  state.nextId = id >= Number.MAX_SAFE_INTEGER ? 0 : id + 1;
  return id;
}

/** Requests to the server: one try and five retries, each waiting 500 ms (SPEC §4). */
function serverSchedule(now: number): { resendAt: number[]; giveUpAt: number } {
  const resendAt: number[] = [];
  for (let retry = 1; retry <= timing.serverRequestRetries; retry++) {
    resendAt.push(now + retry * timing.ackWaitMs);
  }
  return { resendAt, giveUpAt: now + (timing.serverRequestRetries + 1) * timing.ackWaitMs };
}

/** A direct message: a single 500 ms wait holding a few sends with the same id (SPEC §3). */
function directSchedule(now: number): { resendAt: number[]; giveUpAt: number } {
  const resendAt: number[] = [];
  for (let send = 1; send < timing.directSends; send++) {
    resendAt.push(now + send * timing.directResendEveryMs);
  }
  return { resendAt, giveUpAt: now + timing.ackWaitMs };
}

function startRequest(
  step: Step,
  to: Address,
  purpose: ClientPurpose,
  build: (id: number) => Message,
): number {
  const { state } = step;
  const id = nextId(state);
  const built = build(id);
  const message =
    purpose.kind === "deregister" || purpose.kind === "save" || purpose.kind === "channel"
      ? inSession(state, built)
      : built;
  if (purpose.kind === "chat") {
    launch(step, { id, to, message, purpose });
    return id;
  }
  // Requests to the server are paced below its per-source limit: a script of thousands
  // of commands must not look like a flood.
  state.paced.push({ id, to, message, purpose });
  launchPaced(step);
  return id;
}

/** A request is over, answered or given up: commands waiting on it may run. */
function settle(state: ClientState, id: number): void {
  state.pending.delete(id);
  if (state.phaseRequest === id) state.phaseRequest = undefined;
}

function launch(step: Step, request: PacedRequest): void {
  const schedule =
    request.purpose.kind === "chat" ? directSchedule(step.now) : serverSchedule(step.now);
  step.state.pending.set(request.id, { ...request, ...schedule });
  sendDatagram(step, request.to, request.message);
}

function launchPaced(step: Step): void {
  const { state } = step;
  while (state.paced.length > 0 && state.pacer.take(step.now)) {
    const next = state.paced.shift();
    if (next) launch(step, next);
  }
}

function advanceRequests(step: Step): void {
  for (const request of [...step.state.pending.values()]) {
    if (hasExited(step.state)) return;
    if (request.giveUpAt <= step.now) {
      settle(step.state, request.id);
      requestUnanswered(step, request);
      continue;
    }
    let due = false;
    while (request.resendAt.length > 0 && (request.resendAt[0] ?? Infinity) <= step.now) {
      request.resendAt.shift();
      due = true;
    }
    if (due) sendDatagram(step, request.to, request.message);
  }
}

function requestUnanswered(step: Step, request: PendingRequest): void {
  const { purpose } = request;
  switch (purpose.kind) {
    case "register":
      if (!purpose.first) {
        show(step, notices.serverNotResponding);
        return;
      }
      show(step, notices.serverNotResponding);
      show(step, notices.exiting);
      exit(step, 1);
      return;
    case "deregister":
    case "save":
      show(step, notices.serverNotResponding);
      show(step, notices.exiting);
      exit(step, 1);
      return;
    case "channel":
      show(step, notices.channelServerNotResponding);
      return;
    case "chat":
      show(step, notices.noAckSentToServer(purpose.to));
      saveAtServer(step, purpose.to, purpose.ak, purpose.text, request.id);
      return;
    default:
      purpose satisfies never;
  }
}

// Commands ---------------------------------------------------------------------------------------

function onLine(step: Step, text: string): void {
  const { state } = step;
  const parsed = parseCommandLine(text);
  if (parsed.kind === "empty") return;
  if (parsed.kind === "command" && parsed.command.kind === "quit") {
    quit(step);
    return;
  }
  // A mistake is answered at once unless commands typed before it still wait: then it
  // waits too, so answers come in the order the lines were typed.
  if (parsed.kind !== "command" && state.queued.length === 0) {
    runLine(step, parsed);
    return;
  }
  state.queued.push(parsed);
}

function runLine(step: Step, parsed: ParsedLine): void {
  switch (parsed.kind) {
    case "empty":
      return;
    case "usage":
      show(step, notices.usage(parsed.usage));
      return;
    case "unknown":
      show(step, notices.unknownCommand(sanitiseForTerminal(parsed.word)));
      return;
    case "command":
      run(step, parsed.command);
      return;
    default:
      parsed satisfies never;
  }
}

/** Leaves once what the user started has an outcome to show; a second quit leaves at once. */
function quit(step: Step): void {
  const { state } = step;
  if (state.quitting || !hasUserWork(state)) {
    exit(step, 0);
    return;
  }
  state.quitting = true;
  state.leaving = true;
  show(step, notices.finishingBeforeQuit);
}

function run(step: Step, command: Command): void {
  const { state } = step;
  switch (command.kind) {
    case "send":
      if (requireOnline(step)) send(step, command.to, command.text);
      return;
    case "send-all":
      if (requireOnline(step) && withinLimit(step, command.text)) {
        startRequest(step, state.server, { kind: "channel" }, (id) => ({
          type: "channel",
          id,
          sid: state.token ?? "",
          text: command.text,
        }));
      }
      return;
    case "dereg":
      if (!isOwnName(step, command.name)) return;
      if (state.phase === "offline") show(step, notices.alreadyOffline);
      else deregister(step);
      return;
    case "reg":
      if (!isOwnName(step, command.name)) return;
      if (state.phase === "online") show(step, notices.alreadyRegistered);
      else register(step, false);
      return;
    case "list":
      showTable(step, command.prefix);
      return;
    case "whois":
      whois(state, step.effects, command.name);
      return;
    case "trust":
      trust(state, step.effects, command.name);
      return;
    case "help":
      for (const line of helpLines) show(step, line);
      return;
    case "quit":
      quit(step);
      return;
    default:
      command satisfies never;
  }
}

function requireOnline(step: Step): boolean {
  if (step.state.phase === "online") return true;
  show(step, notices.notRegistered);
  return false;
}

function withinLimit(step: Step, text: string): boolean {
  const length = textLength(text);
  if (length <= MAX_TEXT_LENGTH) return true;
  show(step, notices.messageTooLong(length, MAX_TEXT_LENGTH));
  return false;
}

function isOwnName(step: Step, name: string): boolean {
  if (nameKey(name) === nameKey(step.state.name)) return true;
  show(step, notices.notYourName(step.state.name));
  return false;
}

function isWaitingFor(state: ClientState, kind: ClientPurpose["kind"]): boolean {
  for (const request of state.pending.values()) if (request.purpose.kind === kind) return true;
  return state.paced.some((request) => request.purpose.kind === kind);
}

function findInTable(state: ClientState, name: string): TableEntry | undefined {
  const key = nameKey(name);
  return state.table.find((entry) => nameKey(entry.name) === key);
}

function send(step: Step, to: string, text: string): void {
  const { state } = step;
  if (!withinLimit(step, text)) return;
  const recipient = findInTable(state, to);
  if (!recipient) {
    show(step, notices.unknownRecipient(sanitiseForTerminal(to)));
    return;
  }
  if (refusesToSend(state, step.effects, recipient)) return;
  // Sealed, or not sent at all: never in clear.
  const key = pairKeyWith(state, recipient.ak);
  if (key === undefined) {
    show(step, notices.unusableKey(recipient.name));
    return;
  }
  if (!recipient.online) {
    saveAtServer(step, recipient.name, recipient.ak, text);
    return;
  }
  if (!canReachDirectly(state, recipient)) {
    show(
      step,
      notices.otherAddressFamily(recipient.name, ipFamily(recipient.ip), ipFamily(ownIp(state))),
    );
    return;
  }
  startRequest(
    step,
    { ip: recipient.ip, port: recipient.port },
    { kind: "chat", to: recipient.name, text, ak: recipient.ak },
    (id) => ({
      type: "chat",
      id,
      from: state.name,
      to: recipient.name,
      ...sealText(
        state.crypto,
        key,
        { sender: state.name, recipient: recipient.name, ref: id },
        text,
      ),
    }),
  );
}

/** The key shared with the holder of `ak`; undefined when that key is unusable (malformed, low order). */
function pairKeyWith(state: ClientState, ak: string): Uint8Array | undefined {
  return state.pairKeys.get(state.crypto, state.identity.agreement, ak);
}

function ownIp(state: ClientState): string {
  return findInTable(state, state.name)?.ip ?? state.server.ip;
}

/**
 * A datagram to an IPv4 peer leaves from our IPv4 address, which the peer's table does not
 * hold for us if we registered over IPv6 (and the other way round): it would drop it, and
 * the server, finding it alive, would refuse to store it. Loopback is one host either way.
 */
function canReachDirectly(state: ClientState, recipient: Address): boolean {
  const own = ownIp(state);
  if (isLoopback(own) && isLoopback(recipient.ip)) return true;
  return ipFamily(own) === ipFamily(recipient.ip);
}

/**
 * `ref` is the id of the direct try that came first, if one did: the message keeps one
 * name. Sealed for the recipient's key `ak`: the server keeps what it cannot read.
 */
function saveAtServer(step: Step, to: string, ak: string, text: string, ref?: number): void {
  const { state } = step;
  const key = pairKeyWith(state, ak);
  if (key === undefined) {
    show(step, notices.unusableKey(to));
    return;
  }
  startRequest(step, state.server, { kind: "save", to, text }, (id) => ({
    type: "save",
    id,
    sid: state.token ?? "",
    to,
    ...sealText(state.crypto, key, { sender: state.name, recipient: to, ref: ref ?? id }, text),
    ref: ref ?? id,
  }));
}

/**
 * A message is named by its sender and the sender's id for it, whichever way a copy
 * comes (direct, channel, stored); a name already shown is not shown again.
 */
function isFirstCopy(step: Step, sender: string, ref: number): boolean {
  if (!step.state.shown.firstSight(sender, ref, step.now)) return false;
  // Recorded before it is shown: a crash in between loses a line of output, never shows it twice.
  step.effects.push({ kind: "record-shown", sender, ref });
  return true;
}

function register(step: Step, first: boolean): void {
  const { state } = step;
  state.phaseRequest = startRequest(step, state.server, { kind: "register", first }, (id) =>
    registration(state, id, state.challenge),
  );
}

/** A registration: padded until a challenge came, then signed over the challenge's transcript. */
function registration(
  state: ClientState,
  id: number,
  challenge: ServerChallenge | undefined,
): RegisterMessage {
  const message: RegisterMessage = {
    type: "register",
    id,
    name: state.name,
    sk: state.sk,
    ak: state.ak,
    ...(state.tableEpoch === undefined || state.tableVersion === undefined
      ? {}
      : { epoch: state.tableEpoch, have: state.tableVersion }),
  };
  if (challenge === undefined) return padRegistration(message);
  const transcript = registerTranscript(transcriptFields(state, challenge, id));
  return {
    ...message,
    cookie: challenge.cookie,
    sig: signText(state.crypto, state.identity.signing, transcript),
  };
}

function transcriptFields(state: ClientState, challenge: ServerChallenge, id: number) {
  const { cookie, nonce, ssk, sak } = challenge;
  return { ssk, sak, nonce, cookie, name: state.name, sk: state.sk, ak: state.ak, id };
}

/** A request in the session, with the session's MAC. */
function inSession<M extends Message>(state: ClientState, message: M): M {
  return state.sessionKey ? withMac(state.crypto, state.sessionKey, message) : message;
}

function deregister(step: Step): void {
  const { state } = step;
  state.phaseRequest = startRequest(step, state.server, { kind: "deregister" }, (id) => ({
    type: "deregister",
    id,
    sid: state.token ?? "",
  }));
}

/** While offline no pushes come: the table is as it was, except that we are offline. */
function showTable(step: Step, prefix: string): void {
  const { state } = step;
  const offline = state.phase !== "online";
  const wanted = prefix.toLowerCase();
  const entries = state.table.filter((entry) => entry.name.toLowerCase().startsWith(wanted));
  const total = state.table.length;
  const heading = offline ? notices.tableHeadingOffline : notices.tableHeading;
  show(step, prefix ? heading(total, entries.length, sanitiseForTerminal(prefix)) : heading(total));
  const rows = entries.map((entry) => {
    const self = nameKey(entry.name) === nameKey(state.name);
    return {
      name: sanitiseForTerminal(entry.name),
      address: formatAddress(entry),
      online: self && offline ? false : entry.online,
    };
  });
  const nameWidth = Math.max(0, ...rows.map((row) => row.name.length));
  const addressWidth = Math.max(0, ...rows.map((row) => row.address.length));
  for (const row of rows) {
    show(
      step,
      notices.tableRow(row.name.padEnd(nameWidth), row.address.padEnd(addressWidth), row.online),
    );
  }
  // A long table scrolls its heading away: say again how many there were.
  if (rows.length > LIST_RECOUNT_ROWS) {
    show(step, notices.tableCount(rows.length, rows.filter((row) => row.online).length));
  }
}

// Datagrams --------------------------------------------------------------------------------------

function receive(step: Step, from: Address, bytes: Uint8Array): void {
  const { state } = step;
  const fromServer = sameAddress(from, state.server);
  // Only the server's table parts may be this large: anyone else's is dropped unparsed.
  if (bytes.byteLength > MAX_DATAGRAM_BYTES && !fromServer) {
    state.droppedDatagrams++;
    return;
  }
  const message = decodeMessage(bytes);
  if (!message) {
    state.droppedDatagrams++;
    return;
  }
  switch (message.type) {
    case "ack":
    case "registered":
    case "error":
      onAnswer(step, from, message);
      return;
    case "challenge":
      onChallenge(step, from, message);
      return;
    case "probe":
    case "table":
    case "stored":
    case "channel-message": {
      // Only the server's session key makes these. A replayed one is a copy of what was
      // handled: its id, its message's (sender, ref) or its table version says so.
      const key = state.sessionKey;
      if (!fromServer || !key || !hasValidMac(state.crypto, key, message)) {
        state.droppedDatagrams++;
        return;
      }
      if (
        (message.type === "table" || message.type === "stored") &&
        (state.phase !== "online" || isWaitingFor(state, "register"))
      ) {
        // It overtook our `registered`: unacknowledged, it comes again once we have it, so
        // `[You have messages]` and the welcome come first (SPEC §5).
        state.droppedDatagrams++;
        return;
      }
      if (message.type === "table") {
        // Its ack says which version we hold once the part is taken in.
        if (!state.seen.seen(`server#${message.id}`, step.now)) onTablePart(step, message);
        acknowledge(step, from, message.id, bytes.byteLength, state.tableVersion);
        if (state.assembly === undefined) afterTableUpdate(step);
        return;
      }
      acknowledge(step, from, message.id, bytes.byteLength);
      if (state.seen.seen(`server#${message.id}`, step.now)) return;
      onServerRequest(step, message);
      return;
    }
    case "chat":
      onChat(step, from, message, bytes.byteLength);
      return;
    case "register":
    case "deregister":
    case "save":
    case "channel":
      state.droppedDatagrams++;
      return;
    default:
      message satisfies never;
  }
}

function onServerRequest(
  step: Step,
  message: Extract<Message, { type: "probe" | "stored" | "channel-message" }>,
): void {
  switch (message.type) {
    case "probe":
      return;
    case "stored":
      receivedStored(step, message.messages.length);
      for (const stored of message.messages) {
        const opened = storedText(step, stored);
        if (opened === undefined) continue;
        if (!isFirstCopy(step, stored.sender, stored.ref)) continue;
        announceStored(step);
        const timestamp = formatTimestamp(stored.at);
        const text = sanitiseForTerminal(opened);
        show(
          step,
          stored.kind === "channel"
            ? notices.storedChannelMessage(stored.sender, timestamp, text)
            : notices.storedDirectMessage(stored.sender, timestamp, text),
        );
      }
      if (step.state.storedUntil === undefined) warnRefusedStored(step.state, step.effects);
      return;
    case "channel-message":
      if (!isFirstCopy(step, message.from, message.ref)) return;
      show(step, notices.channelMessage(message.from, sanitiseForTerminal(message.text)));
      return;
    default:
      message satisfies never;
  }
}

/**
 * A stored message's text: a sealed one opened with the key of its sender as the server
 * had it bound, if that is the key trusted for the sender. One with another key, or that
 * does not open, is counted and left unshown; its batch is still acknowledged, or the
 * server would bring it again and again.
 */
function storedText(step: Step, stored: DeliveredMessage): string | undefined {
  const { state } = step;
  if (!isSealedDelivery(stored)) return stored.text;
  if (!acceptsStoredKey(state, stored.sender, stored.ak)) return undefined;
  const key = pairKeyWith(state, stored.ak);
  const label = { sender: stored.sender, recipient: state.name, ref: stored.ref };
  const text = key === undefined ? undefined : openText(state.crypto, key, label, stored);
  if (text === undefined) state.unopenedMessages++;
  else learnStoredKey(state, step.effects, stored.sender, stored.ak);
  return text;
}

/**
 * A snapshot replaces the table once all its parts are in; a delta (PROTOCOL.md, "The
 * client table") updates it in place, if we hold at least its base.
 */
function onTablePart(step: Step, message: TableMessage): void {
  const { state } = step;
  const { version, base, part, parts } = message;
  const held = state.tableVersion;
  if (held !== undefined && held > version) return;
  if (base !== undefined && (held === undefined || held < base)) return;
  const assembly = state.assembly;
  if (assembly?.version !== version || assembly.base !== base || assembly.parts.length !== parts) {
    state.assembly = {
      version,
      base,
      parts: new Array<readonly TableChange[] | undefined>(parts).fill(undefined),
    };
  }
  const current = state.assembly;
  if (!current) return;
  current.parts[part] = message.clients;
  if (current.parts.some((received) => received === undefined)) return;
  const changes = current.parts.flatMap((received) => received ?? []);
  state.table = base === undefined ? snapshotTable(changes) : applyDelta(state.table, changes);
  // A delta leaves out keys that did not change: the entries are read back from the table, keys filled in.
  const changed = new Set(
    changes.filter((change) => !isTombstone(change)).map((change) => nameKey(change.name)),
  );
  state.entriesToCheck = state.table.filter((entry) => changed.has(nameKey(entry.name)));
  state.tableVersion = version;
  state.assembly = undefined;
  state.tableUpdated = true;
}

/**
 * A snapshot is its changes applied in order to an empty table: a name may come again
 * (the last says how it is) or be forgotten. The codec lets none through without keys.
 */
function snapshotTable(changes: readonly TableChange[]): TableEntry[] {
  return applyDelta([], changes);
}

/**
 * Entries keep their place; new names go to the end; forgotten ones leave. An entry
 * without `ak` keeps the key held for it; a new name without one (which a server never
 * sends) gets none, and nothing is sent to it.
 */
function applyDelta(table: readonly TableEntry[], changes: readonly TableChange[]): TableEntry[] {
  const updated = new Map<string, TableChange>();
  for (const change of changes) updated.set(nameKey(change.name), change);
  const result: TableEntry[] = [];
  for (const entry of table) {
    const key = nameKey(entry.name);
    const change = updated.get(key);
    if (change === undefined) {
      result.push(entry);
      continue;
    }
    updated.delete(key);
    if (!isTombstone(change)) result.push({ ...change, ak: change.ak ?? entry.ak });
  }
  for (const change of updated.values()) {
    if (!isTombstone(change)) result.push({ ...change, ak: change.ak ?? "" });
  }
  return result;
}

/** Once a whole push is applied: one notice, and what waited for the table goes on. */
function afterTableUpdate(step: Step): void {
  const { state } = step;
  if (!state.tableUpdated) return;
  state.tableUpdated = false;
  show(step, notices.tableUpdated);
  noticeTableKeys(state, step.effects, state.entriesToCheck);
  state.entriesToCheck = [];
  if (state.queuedUntil !== undefined) runQueued(step);
  registerAgainIfDropped(step);
}

/** Never a reply larger than what asked for it: a forged request cannot use us to amplify. */
function acknowledge(
  step: Step,
  to: Address,
  id: number,
  requestSize: number,
  have?: number,
): void {
  const bare: Message = have === undefined ? { type: "ack", id } : { type: "ack", id, have };
  const ack = sameAddress(to, step.state.server) ? inSession(step.state, bare) : bare;
  if (encodeMessage(ack).byteLength <= requestSize) sendDatagram(step, to, ack);
}

/**
 * The server marks a client offline that misses a status check; one that was only
 * silent for a while (paused, or every probe lost) learns it from the table and
 * registers again, which also brings what was stored for it meanwhile.
 */
function registerAgainIfDropped(step: Step): void {
  const { state } = step;
  if (state.phase !== "online" || isWaitingFor(state, "register")) return;
  if (isWaitingFor(state, "deregister")) return;
  if (findInTable(state, state.name)?.online !== false) return;
  show(step, notices.registeringAgain);
  register(step, false);
}

/**
 * Direct messages count only from the address the table holds for the name they claim,
 * and only if they open under the key shared with that name's key. The ack's MAC proves
 * to the sender that we opened it.
 */
function onChat(step: Step, from: Address, chat: ChatMessage, size: number): void {
  const { state } = step;
  const { id, from: sender } = chat;
  const known = findInTable(state, sender);
  const forMe = nameKey(chat.to) === nameKey(state.name);
  if (state.phase !== "online" || !forMe || !known || !samePeer(known, from)) {
    state.droppedDatagrams++;
    return;
  }
  const key = pairKeyWith(state, known.ak);
  const label = { sender: known.name, recipient: state.name, ref: id };
  const text = key === undefined ? undefined : openText(state.crypto, key, label, chat);
  if (key === undefined || text === undefined) {
    state.droppedDatagrams++;
    state.unopenedMessages++;
    return;
  }
  const ack: Message = { type: "ack", id, mac: chatAckMac(state.crypto, key, label) };
  if (encodeMessage(ack).byteLength <= size) sendDatagram(step, from, ack);
  if (!isFirstCopy(step, sender, id)) return;
  show(step, notices.directMessage(known.name, sanitiseForTerminal(text)));
}

function onAnswer(
  step: Step,
  from: Address,
  answer: Extract<Message, { type: "ack" | "registered" | "error" }>,
): void {
  const { state } = step;
  const request = state.pending.get(answer.id);
  if (
    !request ||
    !sameAddress(request.to, from) ||
    !isAnswerTo(request.purpose, answer.type) ||
    !isAuthenticAnswer(state, request, answer)
  ) {
    state.droppedDatagrams++;
    return;
  }
  const { purpose } = request;
  let sessionKeyBytes: Uint8Array | undefined;
  if (answer.type === "registered") {
    sessionKeyBytes = verifiedSession(state, request, answer);
    if (!sessionKeyBytes) {
      state.droppedDatagrams++;
      return;
    }
  }
  settle(state, answer.id);
  if (answer.type === "error") {
    onRefusal(step, purpose, answer.code);
    return;
  }
  switch (purpose.kind) {
    case "register":
      if (answer.type === "registered" && sessionKeyBytes) {
        registered(step, answer, sessionKeyBytes);
      }
      return;
    case "deregister":
      state.phase = "offline";
      show(step, notices.offlineBye);
      return;
    case "save":
      show(step, notices.savedByServer);
      return;
    case "channel":
      show(step, notices.channelReceivedByServer);
      if (answer.type === "ack" && answer.unstored) {
        show(step, notices.channelNotStoredFor(answer.unstored));
      }
      return;
    case "chat":
      show(step, notices.messageReceivedBy(purpose.to));
      return;
    default:
      purpose satisfies never;
  }
}

/** What can answer each request: anything else with its id leaves it waiting. */
function isAnswerTo(purpose: ClientPurpose, type: "ack" | "registered" | "error"): boolean {
  switch (purpose.kind) {
    case "register":
      return type !== "ack";
    case "chat":
      return type === "ack";
    default:
      return type !== "registered";
  }
}

/**
 * Answers in a session carry its MAC; only a refusal of the session itself cannot (the
 * server no longer has its key), and it changes nothing but what the user is told.
 */
function isAuthenticAnswer(
  state: ClientState,
  request: PendingRequest,
  answer: Extract<Message, { type: "ack" | "registered" | "error" }>,
): boolean {
  const { purpose } = request;
  if (purpose.kind === "chat") {
    // Only the recipient holds the key: no one else can say it got the message.
    const key = pairKeyWith(state, purpose.ak);
    const label = { sender: state.name, recipient: purpose.to, ref: request.id };
    return (
      answer.type === "ack" &&
      key !== undefined &&
      isChatAckMac(state.crypto, key, label, answer.mac)
    );
  }
  const kind = purpose.kind;
  if (kind !== "deregister" && kind !== "save" && kind !== "channel") return true;
  if (answer.type === "error" && answer.code === "unknown-session") {
    // Not while a registration is outstanding: its new session takes the request over
    // under a new id (moveIntoSession), and a refusal of the old one means nothing then.
    return !registering(state);
  }
  return state.sessionKey !== undefined && hasValidMac(state.crypto, state.sessionKey, answer);
}

function registering(state: ClientState): boolean {
  const phase = state.phaseRequest;
  return phase !== undefined && state.pending.get(phase)?.purpose.kind === "register";
}

/** The session key, if the server signed our transcript and its session id with the key it showed. */
function verifiedSession(
  state: ClientState,
  request: PendingRequest,
  answer: Extract<Message, { type: "registered" }>,
): Uint8Array | undefined {
  const challenge = state.challenge;
  if (challenge === undefined || request.message.type !== "register") return undefined;
  if (request.message.cookie !== challenge.cookie) return undefined;
  const transcript = registerTranscript(transcriptFields(state, challenge, answer.id), answer.sid);
  if (!verifyText(state.crypto, challenge.ssk, transcript, answer.sig)) return undefined;
  return sessionKey(
    state.crypto,
    state.identity.agreement,
    challenge.sak,
    challenge.nonce,
    state.name,
    answer.sid,
  );
}

/**
 * The server wants proof that we receive at our address and hold our key: the same
 * register, with its cookie and our signature. A server whose key is not the one pinned
 * for its address gets nothing, and the user is told loudly.
 */
function onChallenge(
  step: Step,
  from: Address,
  challenge: Extract<Message, { type: "challenge" }>,
): void {
  const { state } = step;
  const request = state.pending.get(challenge.id);
  if (request?.message.type !== "register" || !sameAddress(request.to, from)) {
    state.droppedDatagrams++;
    return;
  }
  if (state.pinnedServerKey !== undefined && state.pinnedServerKey !== challenge.ssk) {
    settle(state, request.id);
    show(
      step,
      notices.serverKeyChanged(
        formatAddress(state.server),
        keyFingerprint(state.crypto, state.pinnedServerKey),
        keyFingerprint(state.crypto, challenge.ssk),
      ),
    );
    if (request.purpose.kind === "register" && request.purpose.first) exit(step, 1);
    return;
  }
  const { cookie, nonce, ssk, sak } = challenge;
  state.challenge = { cookie, nonce, ssk, sak };
  request.message = registration(state, request.id, state.challenge);
  sendDatagram(step, request.to, request.message);
}

function registered(
  step: Step,
  answer: Extract<Message, { type: "registered" }>,
  key: Uint8Array,
): void {
  const { state } = step;
  const { sid: token, pending, epoch } = answer;
  state.sessionKey = key;
  const ssk = state.challenge?.ssk;
  if (ssk !== undefined && state.pinnedServerKey === undefined) {
    state.pinnedServerKey = ssk;
    step.effects.push({ kind: "pin-server-key", key: ssk });
  }
  if (state.tableEpoch !== epoch) {
    // Versions of another server run mean nothing here: the next push is a snapshot.
    state.tableEpoch = epoch;
    state.tableVersion = undefined;
    state.assembly = undefined;
  }
  state.token = token;
  moveIntoSession(state);
  state.phase = "online";
  show(step, notices.welcome);
  // `[You have messages]` comes with the first stored message shown: if earlier processes
  // showed every copy the server still held, nothing is announced.
  state.storedAnnounced = false;
  if (pending > 0) {
    // Input may already have ended: stay for them, or they are never shown.
    state.storedExpected = pending;
    state.storedUntil = step.now + timing.pushDeadlineMs;
  }
  if (state.queued.length > 0 && state.table.length === 0) {
    // Give the first table push its full retry time; run the commands without it after that.
    state.queuedUntil = step.now + timing.pushDeadlineMs;
    return;
  }
  runQueued(step);
}

/**
 * Saves and posts still on their way belong to the session before this one, which the
 * server has just replaced: they carry on in the new one under a new id, the new sid and
 * MAC, keeping the id they were first sent with as their `ref` (so nobody shows or stores
 * a copy twice). Left in the old session they could only be refused, and their sender
 * never told what became of them; and a late refusal of the old id now finds nothing.
 */
function moveIntoSession(state: ClientState): void {
  const token = state.token;
  if (token === undefined) return;
  const move = (message: Message, id: number): Message => {
    if (message.type !== "save" && message.type !== "channel") return message;
    const { mac: _old, ...bare } = message;
    return inSession(state, { ...bare, id, sid: token, ref: bare.ref ?? bare.id });
  };
  for (const request of [...state.pending.values()]) {
    if (request.message.type !== "save" && request.message.type !== "channel") continue;
    const id = nextId(state);
    state.pending.delete(request.id);
    state.pending.set(id, { ...request, id, message: move(request.message, id) });
  }
  for (let index = 0; index < state.paced.length; index++) {
    const request = state.paced[index];
    if (request?.message.type !== "save" && request?.message.type !== "channel") continue;
    const id = nextId(state);
    state.paced[index] = { ...request, id, message: move(request.message, id) };
  }
}

/** The first table is in, or it is late: what was typed meanwhile runs without waiting for it longer. */
function runQueued(step: Step): void {
  step.state.queuedUntil = undefined;
  drainQueue(step);
}

/** Runs the lines that wait, in order, until one of them starts a change of phase. */
function drainQueue(step: Step): void {
  const { state } = step;
  while (state.queued.length > 0 && !isBlocked(state) && !hasExited(state)) {
    const next = state.queued.shift();
    if (next) runLine(step, next);
  }
}

/** Each batch gives the next one the server's full retry time to arrive. */
function receivedStored(step: Step, count: number): void {
  const { state } = step;
  if (state.storedUntil === undefined) return;
  state.storedExpected -= count;
  if (state.storedExpected <= 0) stopAwaitingStored(state);
  else state.storedUntil = step.now + timing.pushDeadlineMs;
}

/** SPEC §5's `[You have messages]`, once per registration, just before the first stored message shown. */
function announceStored(step: Step): void {
  if (step.state.storedAnnounced) return;
  step.state.storedAnnounced = true;
  show(step, notices.youHaveMessages);
}

function stopAwaitingStored(state: ClientState): void {
  state.storedExpected = 0;
  state.storedUntil = undefined;
}

function onRefusal(step: Step, purpose: ClientPurpose, code: ErrorCode): void {
  const { state } = step;
  switch (code) {
    case "wrong-key":
      show(step, notices.wrongKey(state.name));
      if (purpose.kind === "register" && purpose.first) exit(step, 1);
      return;
    case "name-taken":
    case "bad-name":
      show(
        step,
        code === "name-taken" ? notices.nameTaken(state.name) : notices.badName(state.name),
      );
      if (purpose.kind === "register" && purpose.first) exit(step, 1);
      return;
    case "recipient-online":
      show(step, notices.clientExists(purpose.kind === "save" ? purpose.to : "?"));
      return;
    case "unknown-recipient":
      show(step, notices.serverRefusedUnknownRecipient(purpose.kind === "save" ? purpose.to : "?"));
      return;
    case "too-long":
      show(step, notices.serverTooLong(MAX_TEXT_LENGTH));
      return;
    case "mailbox-full":
      show(step, notices.mailboxFull(purpose.kind === "save" ? purpose.to : "?"));
      return;
    case "store-full":
      show(step, notices.storeFull);
      return;
    case "store-failed":
      show(step, notices.storeFailed);
      if (purpose.kind === "register" && purpose.first) exit(step, 1);
      return;
    case "slow-down":
      show(step, notices.slowDown);
      if (purpose.kind === "register" && purpose.first) exit(step, 1);
      return;
    case "unknown-session":
      show(step, notices.sessionExpired);
      if (purpose.kind === "deregister") state.phase = "offline";
      return;
    default:
      code satisfies never;
  }
}
