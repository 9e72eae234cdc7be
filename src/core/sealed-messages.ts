import { decodeBase64urlOfLength } from "../crypto/base64url.ts";
import { openWithKey, pairwiseKey, sealedMessageAad, sealWithKey } from "../crypto/sealed-box.ts";
import { isMessageText } from "../protocol/codec.ts";
import type { Sealed } from "../protocol/messages.ts";
import { nameKey } from "../protocol/names.ts";
import { type AgreementKeyPair, type CryptoPort, PUBLIC_KEY_BYTES } from "./crypto-port.ts";
import { macMatches, macOf } from "./session-crypto.ts";

/**
 * Direct messages between two clients, sealed under their pairwise key
 * (src/crypto/sealed-box.ts): the text of a `chat` or a `save`, and the MAC of a chat's
 * ack that only the recipient can make. PROTOCOL.md, "Sealed direct messages".
 */

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

/** Who sent which message to whom: what a sealed box and an ack's MAC are bound to. */
export interface MessageLabel {
  readonly sender: string;
  readonly recipient: string;
  readonly ref: number;
}

/** Pairwise keys by the peer's agreement key: one key agreement per peer, not per message. */
export class PairKeys {
  private readonly keys = new Map<string, Uint8Array | undefined>();

  constructor(private readonly limit = 1_024) {}

  /** The key shared with the holder of `peerKey` (base64url); undefined when that key is unusable. */
  get(crypto: CryptoPort, own: AgreementKeyPair, peerKey: string): Uint8Array | undefined {
    if (this.keys.has(peerKey)) return this.keys.get(peerKey);
    const peer = decodeBase64urlOfLength(peerKey, PUBLIC_KEY_BYTES);
    const key = peer === undefined ? undefined : pairwiseKey(crypto, own, peer);
    this.keys.set(peerKey, key);
    if (this.keys.size > this.limit) {
      const oldest = this.keys.keys().next().value;
      if (oldest !== undefined) this.keys.delete(oldest);
    }
    return key;
  }
}

export function sealText(
  crypto: CryptoPort,
  key: Uint8Array,
  label: MessageLabel,
  text: string,
): Sealed {
  const sealed = sealWithKey(crypto, key, encoder.encode(text), aadOf(label));
  return { n: sealed.nonce, box: sealed.box };
}

/**
 * The text of a box sealed under `key` for this label; undefined when it does not
 * authenticate, or opens to something that is not a message text.
 */
export function openText(
  crypto: CryptoPort,
  key: Uint8Array,
  label: MessageLabel,
  sealed: Sealed,
): string | undefined {
  const bytes = openWithKey(crypto, key, { nonce: sealed.n, box: sealed.box }, aadOf(label));
  if (bytes === undefined) return undefined;
  let text: string;
  try {
    text = strictDecoder.decode(bytes);
  } catch {
    return undefined;
  }
  return isMessageText(text) ? text : undefined;
}

/** The MAC a recipient puts on its ack of a chat: proof that it opened it, which no one else can give. */
export function chatAckMac(crypto: CryptoPort, key: Uint8Array, label: MessageLabel): string {
  return macOf(crypto, key, chatAckInput(label));
}

export function isChatAckMac(
  crypto: CryptoPort,
  key: Uint8Array,
  label: MessageLabel,
  mac: string | undefined,
): boolean {
  return macMatches(crypto, key, chatAckInput(label), mac);
}

function aadOf({ sender, recipient, ref }: MessageLabel): Uint8Array {
  return sealedMessageAad(sender, recipient, ref);
}

/** Distinct from every box's associated data, and naming the direction, so an ack cannot be reflected. */
function chatAckInput({ sender, recipient, ref }: MessageLabel): Uint8Array {
  return encoder.encode(`chatapp v2 chat ack\n${nameKey(sender)}\n${nameKey(recipient)}\n${ref}`);
}
