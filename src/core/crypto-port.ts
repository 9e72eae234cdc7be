/**
 * The cryptography the pure core may use, injected by the shell like every other
 * source of randomness. All of it is synchronous. Public keys, secrets, nonces and
 * signatures are plain bytes; private keys are opaque handles, so a core can sign
 * and agree keys without ever holding (or logging, or sending) private key bytes.
 */

/** Ed25519 keys sign (a name proves itself to the server); X25519 keys agree pairwise secrets. */
export type KeyKind = "signing" | "agreement";

declare const privateKeyBrand: unique symbol;

/**
 * A private key held by the port. Only the port that issued a handle can use it;
 * turning it back into bytes is a shell-side operation (see node-crypto-port.ts).
 */
export interface PrivateKeyHandle<Kind extends KeyKind = KeyKind> {
  readonly kind: Kind;
  readonly [privateKeyBrand]: true;
}

export interface KeyPair<Kind extends KeyKind> {
  /** The raw 32-byte public key, as it travels (base64url without padding, 43 characters). */
  readonly publicKey: Uint8Array;
  readonly privateKey: PrivateKeyHandle<Kind>;
}

export type SigningKeyPair = KeyPair<"signing">;
export type AgreementKeyPair = KeyPair<"agreement">;

/** Sizes in bytes of everything the port produces or expects. */
export const PUBLIC_KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;
export const SEAL_KEY_BYTES = 32;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
export const MAC_BYTES = 32;

export interface CryptoPort {
  /** A fresh key pair from the port's random source. */
  generateKeyPair<Kind extends KeyKind>(kind: Kind): KeyPair<Kind>;
  /** Ed25519 signature (64 bytes) of `bytes`. */
  sign(privateKey: PrivateKeyHandle<"signing">, bytes: Uint8Array): Uint8Array;
  /** True only for a valid Ed25519 signature; false for anything malformed, never a throw. */
  verify(publicKey: Uint8Array, bytes: Uint8Array, signature: Uint8Array): boolean;
  /**
   * The X25519 shared secret (32 bytes), or undefined when the peer's key is malformed or
   * of low order (the secret would be all zeros, known to anyone). Never throws.
   */
  agree(
    ownPrivateKey: PrivateKeyHandle<"agreement">,
    peerPublicKey: Uint8Array,
  ): Uint8Array | undefined;
  /** HKDF-SHA256 (RFC 5869); `info` as a string is taken as UTF-8. */
  deriveKey(
    secret: Uint8Array,
    salt: Uint8Array,
    info: string | Uint8Array,
    length: number,
  ): Uint8Array;
  /**
   * AES-256-GCM of `plaintext` bound to `aad`: ciphertext followed by the 16-byte tag.
   * Throws only on a key or nonce of the wrong size (a bug in the caller, not peer input).
   */
  seal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array;
  /** The plaintext, or undefined when anything fails to authenticate or has the wrong size. Never throws. */
  open(
    key: Uint8Array,
    nonce: Uint8Array,
    sealed: Uint8Array,
    aad: Uint8Array,
  ): Uint8Array | undefined;
  /** HMAC-SHA256 (32 bytes). */
  mac(key: Uint8Array, bytes: Uint8Array): Uint8Array;
  /** True when two MACs (or any secrets) are equal, in time that does not depend on where they differ. */
  equalSecrets(a: Uint8Array, b: Uint8Array): boolean;
  randomBytes(length: number): Uint8Array;
  /**
   * A short fingerprint a person can read aloud and compare: the first 160 bits of
   * SHA-256 over the keys, in lower-case RFC 4648 base32, as 8 groups of 4 joined by
   * "-" (e.g. "k7qx-2m4b-..."). See src/crypto/fingerprint.ts for the construction.
   */
  fingerprint(...publicKeys: Uint8Array[]): string;
}
