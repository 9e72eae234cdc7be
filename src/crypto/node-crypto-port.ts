import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
  randomBytes,
  sign,
  timingSafeEqual,
  verify,
} from "node:crypto";
import {
  type CryptoPort,
  type KeyKind,
  type KeyPair,
  NONCE_BYTES,
  type PrivateKeyHandle,
  PUBLIC_KEY_BYTES,
  SEAL_KEY_BYTES,
  SIGNATURE_BYTES,
  TAG_BYTES,
} from "../core/crypto-port.ts";
import { fingerprintInput, formatFingerprint } from "./fingerprint.ts";

/** DER headers that turn a raw 32-byte key into PKCS#8 / SPKI (RFC 8410), by algorithm OID. */
const DER_PREFIXES = {
  signing: {
    private: fromHex("302e020100300506032b657004220420"),
    public: fromHex("302a300506032b6570032100"),
  },
  agreement: {
    private: fromHex("302e020100300506032b656e04220420"),
    public: fromHex("302a300506032b656e032100"),
  },
} as const;

const NODE_KEY_TYPES = { signing: "ed25519", agreement: "x25519" } as const;

const PUBLIC_KEY_CACHE_SIZE = 1024;

/** Private keys stay here; a handle is only the key to this map, so it carries no bytes. */
const privateKeys = new WeakMap<object, KeyObject>();

/** Imported public keys, so a busy server does not parse the same key for every request. */
const publicKeyCache = new Map<string, KeyObject | undefined>();

/** The port the shell gives the core: node:crypto, all synchronous. */
export const nodeCryptoPort: CryptoPort = {
  generateKeyPair<Kind extends KeyKind>(kind: Kind): KeyPair<Kind> {
    const pair =
      kind === "signing" ? generateKeyPairSync("ed25519") : generateKeyPairSync("x25519");
    return {
      publicKey: rawPublicKey(pair.publicKey),
      privateKey: issueHandle(kind, pair.privateKey),
    };
  },

  sign(privateKey, bytes) {
    return plain(sign(null, bytes, keyObjectOf(privateKey, "signing")));
  },

  verify(publicKey, bytes, signature) {
    if (signature.length !== SIGNATURE_BYTES) return false;
    const key = importPublicKey("signing", publicKey);
    if (key === undefined) return false;
    try {
      return verify(null, bytes, key, signature);
    } catch {
      return false;
    }
  },

  agree(ownPrivateKey, peerPublicKey) {
    const privateKey = keyObjectOf(ownPrivateKey, "agreement");
    const publicKey = importPublicKey("agreement", peerPublicKey);
    if (publicKey === undefined) return undefined;
    try {
      const secret = plain(diffieHellman({ privateKey, publicKey }));
      return secret.some((byte) => byte !== 0) ? secret : undefined;
    } catch {
      // A low-order peer key makes the all-zero secret, which OpenSSL and BoringSSL refuse.
      return undefined;
    }
  },

  deriveKey(secret, salt, info, length) {
    const infoBytes = typeof info === "string" ? new TextEncoder().encode(info) : info;
    return new Uint8Array(hkdfSync("sha256", secret, salt, infoBytes, length));
  },

  seal(key, nonce, plaintext, aad) {
    checkSealSizes(key, nonce);
    const cipher = createCipheriv("aes-256-gcm", key, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(aad);
    const head = cipher.update(plaintext);
    const tail = cipher.final();
    const tag = cipher.getAuthTag();
    const sealed = new Uint8Array(head.length + tail.length + tag.length);
    sealed.set(head);
    sealed.set(tail, head.length);
    sealed.set(tag, head.length + tail.length);
    return sealed;
  },

  open(key, nonce, sealed, aad) {
    // GCM itself accepts any nonce length; only 12 bytes is ours, so anything else is forged.
    if (key.length !== SEAL_KEY_BYTES || nonce.length !== NONCE_BYTES) return undefined;
    if (sealed.length < TAG_BYTES) return undefined;
    try {
      const decipher = createDecipheriv("aes-256-gcm", key, nonce, { authTagLength: TAG_BYTES });
      decipher.setAAD(aad);
      decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
      const head = decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES));
      const tail = decipher.final();
      const plaintext = new Uint8Array(head.length + tail.length);
      plaintext.set(head);
      plaintext.set(tail, head.length);
      return plaintext;
    } catch {
      return undefined;
    }
  },

  mac(key, bytes) {
    // Bun's own hasher: a MAC is made or checked for every datagram, and node:crypto's
    // createHmac costs half as much again (0.58 µs against 0.38 for one ack).
    return plain(new Bun.CryptoHasher("sha256", key).update(bytes).digest());
  },

  equalSecrets(a, b) {
    return a.length === b.length && timingSafeEqual(a, b);
  },

  randomBytes(length) {
    return plain(randomBytes(length));
  },

  fingerprint(...publicKeys) {
    return formatFingerprint(createHash("sha256").update(fingerprintInput(publicKeys)).digest());
  },
};

/**
 * Shell side only: a key pair from a stored 32-byte private key (the Ed25519 seed or the
 * X25519 scalar, RFC 8032 / RFC 7748), or undefined when `seed` is not 32 bytes.
 */
export function keyPairFromSeed<Kind extends KeyKind>(
  kind: Kind,
  seed: Uint8Array,
): KeyPair<Kind> | undefined {
  if (seed.length !== PUBLIC_KEY_BYTES) return undefined;
  const privateKey = createPrivateKey({
    key: Buffer.concat([DER_PREFIXES[kind].private, seed]),
    format: "der",
    type: "pkcs8",
  });
  return {
    publicKey: rawPublicKey(createPublicKey(privateKey)),
    privateKey: issueHandle(kind, privateKey),
  };
}

/** Shell side only: the 32 bytes to store for a private key, the inverse of keyPairFromSeed. */
export function privateKeySeed(handle: PrivateKeyHandle): Uint8Array {
  const der = keyObjectOf(handle, handle.kind).export({ format: "der", type: "pkcs8" });
  return plain(der.subarray(der.length - PUBLIC_KEY_BYTES));
}

function issueHandle<Kind extends KeyKind>(
  kind: Kind,
  keyObject: KeyObject,
): PrivateKeyHandle<Kind> {
  const handle = Object.freeze({ kind });
  privateKeys.set(handle, keyObject);
  return handle as unknown as PrivateKeyHandle<Kind>;
}

function keyObjectOf(handle: PrivateKeyHandle, kind: KeyKind): KeyObject {
  const keyObject = privateKeys.get(handle);
  if (keyObject === undefined || keyObject.asymmetricKeyType !== NODE_KEY_TYPES[kind]) {
    throw new TypeError(`this is not a ${kind} private key issued by the node crypto port`);
  }
  return keyObject;
}

function rawPublicKey(publicKey: KeyObject): Uint8Array {
  const der = publicKey.export({ format: "der", type: "spki" });
  return plain(der.subarray(der.length - PUBLIC_KEY_BYTES));
}

function importPublicKey(kind: KeyKind, raw: Uint8Array): KeyObject | undefined {
  if (raw.length !== PUBLIC_KEY_BYTES) return undefined;
  const cacheKey = `${kind}:${Buffer.from(raw).toString("hex")}`;
  if (publicKeyCache.has(cacheKey)) return publicKeyCache.get(cacheKey);
  let key: KeyObject | undefined;
  try {
    key = createPublicKey({
      key: Buffer.concat([DER_PREFIXES[kind].public, raw]),
      format: "der",
      type: "spki",
    });
  } catch {
    key = undefined;
  }
  if (publicKeyCache.size >= PUBLIC_KEY_CACHE_SIZE) {
    const oldest = publicKeyCache.keys().next().value;
    if (oldest !== undefined) publicKeyCache.delete(oldest);
  }
  publicKeyCache.set(cacheKey, key);
  return key;
}

function checkSealSizes(key: Uint8Array, nonce: Uint8Array): void {
  if (key.length !== SEAL_KEY_BYTES) {
    throw new RangeError(`a sealing key is ${SEAL_KEY_BYTES} bytes, not ${key.length}`);
  }
  if (nonce.length !== NONCE_BYTES) {
    throw new RangeError(`a nonce is ${NONCE_BYTES} bytes, not ${nonce.length}`);
  }
}

/** A plain Uint8Array copy, so callers never hold a Buffer that shares a pooled allocation. */
/** A copy that is a plain Uint8Array, not a Buffer (the typed-array constructor copies in one go; `Uint8Array.from` walks it as an iterable, twice as slow per MAC). */
function plain(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}

function fromHex(hex: string): Buffer {
  return Buffer.from(hex, "hex");
}
