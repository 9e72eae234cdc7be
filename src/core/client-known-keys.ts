import { decodeBase64url } from "../crypto/base64url.ts";
import { formatAddress } from "../protocol/address.ts";
import type { TableEntry } from "../protocol/messages.ts";
import { nameKey } from "../protocol/names.ts";
import { notices } from "../text/notices.ts";
import { sanitiseForTerminal } from "../text/sanitise.ts";
import type { ClientEffect, ClientState } from "./client-state.ts";
import type { CryptoPort } from "./crypto-port.ts";

/**
 * Keys a person can check (issue #9): `whois` shows a fingerprint, a table showing a new
 * key for a known name is warned about once, messages to that name are refused until
 * `trust <name>` accepts the key. The keys are the peers' agreement keys, the ones the
 * table carries and messages to them are sealed to.
 */

/** The fingerprint people compare, of one public key; the key itself if it is not one. */
export function keyFingerprint(crypto: CryptoPort, key: string): string {
  const bytes = decodeBase64url(key);
  return bytes ? crypto.fingerprint(bytes) : key;
}

function show(effects: ClientEffect[], text: string): void {
  effects.push({ kind: "show", text });
}

function isOwn(state: ClientState, name: string): boolean {
  return nameKey(name) === nameKey(state.name);
}

function entryFor(state: ClientState, name: string): TableEntry | undefined {
  const key = nameKey(name);
  return state.table.find((entry) => nameKey(entry.name) === key);
}

/** After a table push: new names are trusted silently (and kept), a changed key is warned about once. */
export function noticeTableKeys(
  state: ClientState,
  effects: ClientEffect[],
  entries: readonly TableEntry[],
): void {
  const { learned, changed } = state.peerKeys.observe(
    entries.filter((entry) => !isOwn(state, entry.name)),
  );
  if (learned.length > 0) effects.push({ kind: "learn-peer-keys", keys: learned });
  for (const { name, trusted, offered } of changed) {
    show(
      effects,
      notices.peerKeyChanged(
        name,
        keyFingerprint(state.crypto, trusted),
        keyFingerprint(state.crypto, offered),
      ),
    );
  }
}

/** Whether a message to `recipient` must not go: its key is not the one trusted for it. */
export function refusesToSend(
  state: ClientState,
  effects: ClientEffect[],
  recipient: TableEntry,
): boolean {
  if (isOwn(state, recipient.name) || state.peerKeys.isTrusted(recipient.name, recipient.ak)) {
    return false;
  }
  show(effects, notices.notSendingChangedKey(recipient.name));
  return true;
}

/**
 * Whether a stored direct message from `sender`, sealed with `key`, may be opened: the
 * key is the one trusted for the sender, or none is trusted yet. One with another key is
 * counted and kept for `warnRefusedStored`: the server hands out the keys, and could
 * otherwise have a message shown "from" anyone.
 */
export function acceptsStoredKey(state: ClientState, sender: string, key: string): boolean {
  if (isOwn(state, sender) || state.peerKeys.isTrusted(sender, key)) return true;
  state.unopenedMessages++;
  const id = `${nameKey(sender)} ${key}`;
  const refused = state.refusedStored.get(id);
  if (refused !== undefined) {
    refused.count++;
    return false;
  }
  const trusted = state.peerKeys.trusted(sender) ?? "";
  state.refusedStored.set(id, { sender, trusted, offered: key, count: 1 });
  return false;
}

/** A stored message from a name not seen before opened with `key`: trusted on first use, as a table's. */
export function learnStoredKey(
  state: ClientState,
  effects: ClientEffect[],
  sender: string,
  key: string,
): void {
  if (isOwn(state, sender) || !state.peerKeys.learn(sender, key)) return;
  effects.push({ kind: "learn-peer-keys", keys: [{ name: nameKey(sender), key }] });
}

/** Once a delivery of stored messages ends: one warning per sender (and key) refused in it. */
export function warnRefusedStored(state: ClientState, effects: ClientEffect[]): void {
  for (const { sender, trusted, offered, count } of state.refusedStored.values()) {
    show(
      effects,
      notices.storedKeyRefused(
        sender,
        count,
        keyFingerprint(state.crypto, offered),
        keyFingerprint(state.crypto, trusted),
      ),
    );
  }
  state.refusedStored.clear();
}

/** `whois <name>`: where the client is, whether it is online, and its key's fingerprint. */
export function whois(state: ClientState, effects: ClientEffect[], name: string): void {
  const entry = entryFor(state, name);
  if (isOwn(state, name)) {
    const where = entry === undefined ? undefined : formatAddress(entry);
    const online = state.phase === "online";
    show(
      effects,
      notices.whoisSelf(state.name, where, online, keyFingerprint(state.crypto, state.ak)),
    );
    return;
  }
  if (entry === undefined) {
    show(effects, notices.unknownRecipient(sanitiseForTerminal(name)));
    return;
  }
  const where = formatAddress(entry);
  const offered = keyFingerprint(state.crypto, entry.ak);
  const trusted = state.peerKeys.trusted(entry.name);
  if (trusted !== undefined && trusted !== entry.ak) {
    const before = keyFingerprint(state.crypto, trusted);
    show(effects, notices.whoisChangedKey(entry.name, where, entry.online, offered, before));
    return;
  }
  show(effects, notices.whois(entry.name, where, entry.online, offered));
}

/** `trust <name>`: accept the key the table shows for the name, after it changed. */
export function trust(state: ClientState, effects: ClientEffect[], name: string): void {
  if (isOwn(state, name)) {
    show(effects, notices.trustSelf(state.name));
    return;
  }
  const entry = entryFor(state, name);
  if (entry === undefined) {
    show(effects, notices.unknownRecipient(sanitiseForTerminal(name)));
    return;
  }
  const fingerprint = keyFingerprint(state.crypto, entry.ak);
  if (state.peerKeys.trusted(entry.name) === entry.ak) {
    show(effects, notices.keyUnchanged(entry.name, fingerprint));
    return;
  }
  state.peerKeys.trust(entry.name, entry.ak);
  effects.push({ kind: "trust-peer-key", name: nameKey(entry.name), key: entry.ak });
  show(effects, notices.trustedNewKey(entry.name, fingerprint));
}
