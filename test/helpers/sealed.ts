/**
 * Sealed direct messages as test peers make and read them, with the deterministic keys
 * of identities.ts: a name's own keys unless others are given.
 */

import { openText, PairKeys, sealText } from "../../src/core/sealed-messages.ts";
import type { KeyPairs } from "../../src/core/session-crypto.ts";
import { identityPath, loadIdentity } from "../../src/identity/identity-file.ts";
import type { ChatMessage, Sealed } from "../../src/protocol/messages.ts";
import type { StoredMessage } from "../../src/store/offline-store.ts";
import { agreementKeyOf, identityFor, testCrypto } from "./identities.ts";

/** A client keeps one PairKeys for its one identity; tests act as many, so one per identity. */
const pairKeysByOwner = new Map<KeyPairs, PairKeys>();

function pairKeysOf(own: KeyPairs): PairKeys {
  let keys = pairKeysByOwner.get(own);
  if (keys === undefined) {
    keys = new PairKeys(100_000);
    pairKeysByOwner.set(own, keys);
  }
  return keys;
}

function pairKey(own: KeyPairs, peerKey: string): Uint8Array {
  const key = pairKeysOf(own).get(testCrypto, own.agreement, peerKey);
  if (key === undefined) throw new Error(`no pairwise key with ${peerKey}`);
  return key;
}

/** `text` sealed by `sender` for `recipient` (whose key is `recipientKey`, by default its own). */
export function sealedBy(
  sender: string,
  recipient: string,
  ref: number,
  text: string,
  options: { keys?: KeyPairs; recipientKey?: string } = {},
): Sealed {
  const own = options.keys ?? identityFor(sender);
  const key = pairKey(own, options.recipientKey ?? agreementKeyOf(recipient));
  return sealText(testCrypto, key, { sender, recipient, ref }, text);
}

/** A chat from `from` to `to` with `id` as its ref, sealed as a client seals it. */
export function sealedChat(fields: {
  id: number;
  from: string;
  to: string;
  text: string;
  keys?: KeyPairs;
}): ChatMessage {
  const { id, from, to, text } = fields;
  const sealed = sealedBy(from, to, id, text, fields.keys ? { keys: fields.keys } : {});
  return { type: "chat", id, from, to, ...sealed };
}

/** What `recipient` reads in a box from `sender` (whose key is `senderKey`); undefined if it does not open. */
export function openedBy(
  recipient: string,
  sender: string,
  ref: number,
  sealed: Sealed,
  options: { keys?: KeyPairs; senderKey?: string } = {},
): string | undefined {
  const own = options.keys ?? identityFor(recipient);
  const key = pairKeysOf(own).get(
    testCrypto,
    own.agreement,
    options.senderKey ?? agreementKeyOf(sender),
  );
  return key === undefined
    ? undefined
    : openText(testCrypto, key, { sender, recipient, ref }, sealed);
}

/** A stored message's text as its recipient reads it (a sealed one opened with the recipient's usual keys). */
export function readByRecipient(message: StoredMessage): string | undefined {
  const { sealed } = message;
  if (sealed === undefined) return message.text;
  return openedBy(message.recipient, message.sender, message.ref, sealed, { senderKey: sealed.ak });
}

/**
 * What a server holds, as the recipients read it: each sealed message opened with its
 * recipient's identity file under `configHome` (XDG_CONFIG_HOME of real client processes),
 * its text in place of the empty one the server keeps. One that does not open keeps "".
 */
export function readWithIdentityFiles(
  messages: readonly StoredMessage[],
  configHome: string,
): StoredMessage[] {
  return messages.map((message) => {
    const { sealed } = message;
    if (sealed === undefined) return message;
    const path = identityPath({ name: message.recipient, env: { XDG_CONFIG_HOME: configHome } });
    const keys = loadIdentity(path);
    const text = openedBy(message.recipient, message.sender, message.ref, sealed, {
      keys,
      senderKey: sealed.ak,
    });
    return { ...message, text: text ?? "" };
  });
}
