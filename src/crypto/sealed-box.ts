import {
  type AgreementKeyPair,
  type CryptoPort,
  NONCE_BYTES,
  SEAL_KEY_BYTES,
  TAG_BYTES,
} from "../core/crypto-port.ts";
import { nameKey } from "../protocol/names.ts";
import { decodeBase64url, decodeBase64urlOfLength, encodeBase64url } from "./base64url.ts";

/**
 * Messages sealed between two identities: a key only the two of them can derive,
 * AES-256-GCM, and associated data that says who sent what to whom. Pure: every
 * primitive comes through the port.
 */

export const PAIRWISE_INFO = "chatapp v2 pairwise";

/** A sealed message as it travels: both fields base64url without padding. */
export interface SealedBox {
  /** 12 random bytes (16 characters). */
  readonly nonce: string;
  /** Ciphertext followed by the 16-byte tag. */
  readonly box: string;
}

/**
 * The key two identities share: HKDF-SHA256 of their X25519 secret, salted with both
 * agreement public keys in byte order. Both sides compute the same salt without
 * knowing who started, and the key is bound to the two public keys, not only to the
 * secret (a secret is the same for other key pairs that differ by a low-order
 * component). Undefined when the peer's key is malformed or of low order.
 */
export function pairwiseKey(
  port: CryptoPort,
  own: AgreementKeyPair,
  peerPublicKey: Uint8Array,
): Uint8Array | undefined {
  const secret = port.agree(own.privateKey, peerPublicKey);
  if (secret === undefined) return undefined;
  const [first, second] =
    compareBytes(own.publicKey, peerPublicKey) <= 0
      ? [own.publicKey, peerPublicKey]
      : [peerPublicKey, own.publicKey];
  const salt = new Uint8Array(first.length + second.length);
  salt.set(first);
  salt.set(second, first.length);
  return port.deriveKey(secret, salt, PAIRWISE_INFO, SEAL_KEY_BYTES);
}

/**
 * Seals `plaintext` for the holder of `peerPublicKey`; undefined when that key cannot be
 * used (malformed, low order). Nonces are 96 random bits, never a counter: the two
 * sides share one key and keep no common state, and a client restarts without
 * remembering a counter. Two random nonces collide with probability about n²/2^97
 * after n messages under one key: below 2^-32 (NIST SP 800-38D's bound) until
 * n = 2^32, some four billion messages between one pair of people.
 */
export function sealFor(
  port: CryptoPort,
  own: AgreementKeyPair,
  peerPublicKey: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
): SealedBox | undefined {
  const key = pairwiseKey(port, own, peerPublicKey);
  return key === undefined ? undefined : sealWithKey(port, key, plaintext, aad);
}

/** The plaintext of a box sealed by the holder of `peerPublicKey`, or undefined if it does not authenticate. */
export function openFrom(
  port: CryptoPort,
  own: AgreementKeyPair,
  peerPublicKey: Uint8Array,
  sealed: SealedBox,
  aad: Uint8Array,
): Uint8Array | undefined {
  const key = pairwiseKey(port, own, peerPublicKey);
  return key === undefined ? undefined : openWithKey(port, key, sealed, aad);
}

/** sealFor with a pairwise key the caller keeps, to skip the key agreement per message. */
export function sealWithKey(
  port: CryptoPort,
  key: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
): SealedBox {
  const nonce = port.randomBytes(NONCE_BYTES);
  return {
    nonce: encodeBase64url(nonce),
    box: encodeBase64url(port.seal(key, nonce, plaintext, aad)),
  };
}

/** openFrom with a pairwise key the caller keeps. Never throws on what a peer sent. */
export function openWithKey(
  port: CryptoPort,
  key: Uint8Array,
  sealed: SealedBox,
  aad: Uint8Array,
): Uint8Array | undefined {
  if (typeof sealed.nonce !== "string" || typeof sealed.box !== "string") return undefined;
  const nonce = decodeBase64urlOfLength(sealed.nonce, NONCE_BYTES);
  const box = decodeBase64url(sealed.box);
  if (nonce === undefined || box === undefined || box.length < TAG_BYTES) return undefined;
  return port.open(key, nonce, box, aad);
}

/**
 * The associated data of a sealed message: sender, recipient (names ignoring case) and
 * the sender's `ref`. The pairwise key is the same in both directions, so naming the
 * sender and recipient is what stops a box from being reflected back to its sender or
 * passed off as another message; the `ref` ties it to one message, so the same box can
 * go direct or through the server's mailbox and still open only as itself.
 */
export function sealedMessageAad(sender: string, recipient: string, ref: number): Uint8Array {
  return new TextEncoder().encode(
    `chatapp v2 message\n${nameKey(sender)}\n${nameKey(recipient)}\n${ref}`,
  );
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let index = 0; index < length; index++) {
    const difference = (a[index] ?? 0) - (b[index] ?? 0);
    if (difference !== 0) return difference;
  }
  return a.length - b.length;
}
