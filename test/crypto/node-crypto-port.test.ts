import { describe, expect, test } from "bun:test";
import type { PrivateKeyHandle } from "../../src/core/crypto-port.ts";
import {
  keyPairFromSeed,
  nodeCryptoPort as port,
  privateKeySeed,
} from "../../src/crypto/node-crypto-port.ts";

const hex = (text: string): Uint8Array =>
  Uint8Array.from(Buffer.from(text.replace(/\s/g, ""), "hex"));
const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex");
const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);

function signingPair(seedHex: string) {
  const pair = keyPairFromSeed("signing", hex(seedHex));
  if (pair === undefined) throw new Error("the test seed is not 32 bytes");
  return pair;
}

function agreementPair(seedHex: string) {
  const pair = keyPairFromSeed("agreement", hex(seedHex));
  if (pair === undefined) throw new Error("the test seed is not 32 bytes");
  return pair;
}

function flipBit(bytes: Uint8Array, index: number): Uint8Array {
  const copy = Uint8Array.from(bytes);
  copy[index] = (copy[index] ?? 0) ^ 1;
  return copy;
}

describe("Ed25519 (RFC 8032 §7.1, test 1)", () => {
  const seed = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
  const publicKey = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
  const signature =
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

  test("the seed gives the published public key and signature of the empty message", () => {
    const pair = signingPair(seed);
    expect(toHex(pair.publicKey)).toBe(publicKey);
    expect(toHex(port.sign(pair.privateKey, new Uint8Array(0)))).toBe(signature);
  });

  test("the published signature verifies; a flipped bit in message, signature or key does not", () => {
    const message = new Uint8Array(0);
    expect(port.verify(hex(publicKey), message, hex(signature))).toBe(true);
    expect(port.verify(hex(publicKey), Uint8Array.of(0), hex(signature))).toBe(false);
    for (const index of [0, 31, 32, 63]) {
      expect(port.verify(hex(publicKey), message, flipBit(hex(signature), index))).toBe(false);
    }
    expect(port.verify(flipBit(hex(publicKey), 0), message, hex(signature))).toBe(false);
  });

  test("malformed keys and signatures give false, never a throw", () => {
    const pair = port.generateKeyPair("signing");
    const message = utf8("hello");
    const good = port.sign(pair.privateKey, message);
    expect(port.verify(pair.publicKey, message, good)).toBe(true);
    for (const badSignature of [
      new Uint8Array(0),
      good.subarray(0, 63),
      new Uint8Array(65),
      new Uint8Array(64),
    ]) {
      expect(port.verify(pair.publicKey, message, badSignature)).toBe(false);
    }
    for (const badKey of [
      new Uint8Array(0),
      pair.publicKey.subarray(0, 31),
      new Uint8Array(33),
      new Uint8Array(32).fill(255),
    ]) {
      expect(port.verify(badKey, message, good)).toBe(false);
    }
  });

  test("a fresh key pair signs what its public key verifies, and the seed round-trips", () => {
    const pair = port.generateKeyPair("signing");
    expect(pair.privateKey.kind).toBe("signing");
    expect(pair.publicKey.length).toBe(32);
    const restored = keyPairFromSeed("signing", privateKeySeed(pair.privateKey));
    expect(restored?.publicKey).toEqual(pair.publicKey);
    const other = port.generateKeyPair("signing");
    const signature = port.sign(pair.privateKey, utf8("x"));
    expect(port.verify(pair.publicKey, utf8("x"), signature)).toBe(true);
    expect(port.verify(other.publicKey, utf8("x"), signature)).toBe(false);
  });
});

describe("X25519 (RFC 7748 §6.1)", () => {
  const alicePrivate = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
  const alicePublic = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
  const bobPrivate = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
  const bobPublic = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
  const shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";

  test("both sides derive the published public keys and shared secret", () => {
    const alice = agreementPair(alicePrivate);
    const bob = agreementPair(bobPrivate);
    expect(toHex(alice.publicKey)).toBe(alicePublic);
    expect(toHex(bob.publicKey)).toBe(bobPublic);
    expect(toHex(port.agree(alice.privateKey, hex(bobPublic)) ?? new Uint8Array(0))).toBe(shared);
    expect(toHex(port.agree(bob.privateKey, hex(alicePublic)) ?? new Uint8Array(0))).toBe(shared);
  });

  test("a low-order or malformed peer key gives undefined, never a throw", () => {
    const alice = agreementPair(alicePrivate);
    const lowOrderPoints = [new Uint8Array(32), Uint8Array.of(1, ...new Uint8Array(31))];
    for (const peer of [
      ...lowOrderPoints,
      new Uint8Array(0),
      new Uint8Array(31),
      new Uint8Array(33),
    ]) {
      expect(port.agree(alice.privateKey, peer)).toBeUndefined();
    }
  });

  test("a signing handle is refused where an agreement key is needed", () => {
    const signing = port.generateKeyPair("signing");
    const forged = signing.privateKey as unknown as PrivateKeyHandle<"agreement">;
    expect(() => port.agree(forged, hex(bobPublic))).toThrow(TypeError);
  });

  test("a handle made outside the port is refused", () => {
    const forged = { kind: "signing" } as unknown as PrivateKeyHandle<"signing">;
    expect(() => port.sign(forged, utf8("x"))).toThrow(
      "not a signing private key issued by the node crypto port",
    );
  });

  test("a handle carries no key bytes that could leak into a log or a message", () => {
    const pair = port.generateKeyPair("agreement");
    expect(JSON.stringify(pair.privateKey)).toBe('{"kind":"agreement"}');
    expect(Object.keys(pair.privateKey)).toEqual(["kind"]);
  });
});

describe("HKDF-SHA256 (RFC 5869 A.1) and HMAC-SHA256 (RFC 4231 test 1)", () => {
  test("test case 1 gives the published output keying material", () => {
    const okm = port.deriveKey(
      hex("0b".repeat(22)),
      hex("000102030405060708090a0b0c"),
      hex("f0f1f2f3f4f5f6f7f8f9"),
      42,
    );
    expect(toHex(okm)).toBe(
      "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
    );
  });

  test("a string info is its UTF-8 bytes", () => {
    const secret = hex("0b".repeat(22));
    expect(port.deriveKey(secret, new Uint8Array(0), "chatapp v2 pairwise", 32)).toEqual(
      port.deriveKey(secret, new Uint8Array(0), utf8("chatapp v2 pairwise"), 32),
    );
    expect(port.deriveKey(secret, new Uint8Array(0), "a", 32)).not.toEqual(
      port.deriveKey(secret, new Uint8Array(0), "b", 32),
    );
  });

  test("HMAC of 'Hi There' under twenty 0x0b bytes is the published MAC", () => {
    expect(toHex(port.mac(hex("0b".repeat(20)), utf8("Hi There")))).toBe(
      "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
    );
  });

  test("equalSecrets compares contents, and any length difference is inequality, not a throw", () => {
    expect(port.equalSecrets(hex("0102"), hex("0102"))).toBe(true);
    expect(port.equalSecrets(hex("0102"), hex("0103"))).toBe(false);
    expect(port.equalSecrets(hex("0102"), hex("010203"))).toBe(false);
    expect(port.equalSecrets(new Uint8Array(0), new Uint8Array(0))).toBe(true);
  });
});

describe("AES-256-GCM (McGrew-Viega test case 16)", () => {
  const key = hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
  const nonce = hex("cafebabefacedbaddecaf888");
  const plaintext = hex(
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
  );
  const aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
  const sealedHex =
    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662" +
    "76fc6ece0f4e1768cddf8853bb2d551b";

  test("seal gives the published ciphertext followed by the tag, and open returns the plaintext", () => {
    const sealed = port.seal(key, nonce, plaintext, aad);
    expect(toHex(sealed)).toBe(sealedHex);
    expect(port.open(key, nonce, hex(sealedHex), aad)).toEqual(plaintext);
  });

  test("a flipped bit in ciphertext, tag, aad, nonce or key makes open return undefined", () => {
    const sealed = hex(sealedHex);
    expect(port.open(key, nonce, flipBit(sealed, 0), aad)).toBeUndefined();
    expect(port.open(key, nonce, flipBit(sealed, plaintext.length - 1), aad)).toBeUndefined();
    expect(port.open(key, nonce, flipBit(sealed, sealed.length - 1), aad)).toBeUndefined();
    expect(port.open(key, nonce, flipBit(sealed, plaintext.length), aad)).toBeUndefined();
    expect(port.open(key, nonce, sealed, flipBit(aad, 5))).toBeUndefined();
    expect(port.open(key, flipBit(nonce, 11), sealed, aad)).toBeUndefined();
    expect(port.open(flipBit(key, 31), nonce, sealed, aad)).toBeUndefined();
  });

  test("wrong sizes make open return undefined, never a throw", () => {
    const sealed = hex(sealedHex);
    expect(port.open(key.subarray(0, 16), nonce, sealed, aad)).toBeUndefined();
    expect(port.open(new Uint8Array(0), nonce, sealed, aad)).toBeUndefined();
    expect(port.open(key, nonce.subarray(0, 11), sealed, aad)).toBeUndefined();
    expect(port.open(key, new Uint8Array(16), sealed, aad)).toBeUndefined();
    expect(port.open(key, nonce, sealed.subarray(0, 15), aad)).toBeUndefined();
    expect(port.open(key, nonce, new Uint8Array(0), aad)).toBeUndefined();
    expect(port.open(key, nonce, sealed.subarray(0, sealed.length - 1), aad)).toBeUndefined();
  });

  test("an empty plaintext seals to a bare tag that opens to empty", () => {
    const sealed = port.seal(key, nonce, new Uint8Array(0), aad);
    expect(sealed.length).toBe(16);
    expect(port.open(key, nonce, sealed, aad)).toEqual(new Uint8Array(0));
  });

  test("seal refuses a key or nonce of the wrong size, which is a bug in the caller", () => {
    expect(() => port.seal(key.subarray(0, 31), nonce, plaintext, aad)).toThrow(RangeError);
    expect(() => port.seal(key, nonce.subarray(0, 8), plaintext, aad)).toThrow(
      "a nonce is 12 bytes, not 8",
    );
  });
});

describe("randomBytes and fingerprint", () => {
  test("randomBytes gives the length asked, different each time, as a plain Uint8Array", () => {
    const first = port.randomBytes(16);
    const second = port.randomBytes(16);
    expect(first.length).toBe(16);
    expect(first.constructor).toBe(Uint8Array);
    expect(first).not.toEqual(second);
  });

  test("a fingerprint is 8 groups of 4 lower-case base32 characters", () => {
    const fingerprint = port.fingerprint(port.randomBytes(32), port.randomBytes(32));
    expect(fingerprint).toMatch(/^[a-z2-7]{4}(-[a-z2-7]{4}){7}$/);
  });

  test("it is the first 160 bits of SHA-256 over the label and the length-prefixed keys", () => {
    const signing = hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
    const agreement = hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    const input = Buffer.concat([
      utf8("chatapp v2 fingerprint"),
      Uint8Array.of(32),
      signing,
      Uint8Array.of(32),
      agreement,
    ]);
    const digest = new Bun.CryptoHasher("sha256").update(input).digest();
    const bits = Array.from(digest.subarray(0, 20), (byte) =>
      byte.toString(2).padStart(8, "0"),
    ).join("");
    const characters =
      bits
        .match(/.{5}/g)
        ?.map((chunk) => "abcdefghijklmnopqrstuvwxyz234567"[Number.parseInt(chunk, 2)]) ?? [];
    const expected = characters.join("").match(/.{4}/g)?.join("-");
    expect(port.fingerprint(signing, agreement)).toBe(expected ?? "");
  });

  test("it changes with either key and with their order", () => {
    const a = port.randomBytes(32);
    const b = port.randomBytes(32);
    const reference = port.fingerprint(a, b);
    expect(port.fingerprint(a, b)).toBe(reference);
    expect(port.fingerprint(b, a)).not.toBe(reference);
    expect(port.fingerprint(flipBit(a, 0), b)).not.toBe(reference);
    expect(port.fingerprint(a, flipBit(b, 31))).not.toBe(reference);
    // Length prefixes keep one 64-byte key apart from two 32-byte keys with the same bytes.
    expect(port.fingerprint(Uint8Array.from([...a, ...b]))).not.toBe(reference);
  });
});
