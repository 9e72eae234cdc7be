import { describe, expect, test } from "bun:test";
import { hkdfSync } from "node:crypto";
import { encodeBase64url } from "../../src/crypto/base64url.ts";
import { keyPairFromSeed, nodeCryptoPort as port } from "../../src/crypto/node-crypto-port.ts";
import {
  openFrom,
  openWithKey,
  pairwiseKey,
  type SealedBox,
  sealedMessageAad,
  sealFor,
  sealWithKey,
} from "../../src/crypto/sealed-box.ts";

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
const hex = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text, "hex"));

const alice = port.generateKeyPair("agreement");
const bob = port.generateKeyPair("agreement");
const carol = port.generateKeyPair("agreement");
const aad = sealedMessageAad("alice", "bob", 7);

function sealedByAliceForBob(text: string): SealedBox {
  const sealed = sealFor(port, alice, bob.publicKey, utf8(text), aad);
  if (sealed === undefined) throw new Error("bob's key was refused");
  return sealed;
}

function tamperedBase64url(text: string, byteIndex: number): string {
  const bytes = Uint8Array.from(Buffer.from(text, "base64url"));
  bytes[byteIndex] = (bytes[byteIndex] ?? 0) ^ 0x80;
  return encodeBase64url(bytes);
}

describe("pairwiseKey", () => {
  test("is HKDF-SHA256 of the X25519 secret, salted with both public keys in byte order", () => {
    const rfcAlice = keyPairFromSeed(
      "agreement",
      hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"),
    );
    const rfcBob = keyPairFromSeed(
      "agreement",
      hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"),
    );
    if (rfcAlice === undefined || rfcBob === undefined) throw new Error("RFC seeds refused");
    const secret = hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
    // RFC 7748 §6.1 keys: Alice's public key starts 0x85, Bob's 0xde, so Alice's comes first.
    expect(rfcAlice.publicKey[0]).toBeLessThan(rfcBob.publicKey[0] ?? 0);
    const salt = Buffer.concat([rfcAlice.publicKey, rfcBob.publicKey]);
    const expected = new Uint8Array(
      hkdfSync("sha256", secret, salt, utf8("chatapp v2 pairwise"), 32),
    );
    expect(pairwiseKey(port, rfcAlice, rfcBob.publicKey)).toEqual(expected);
    expect(pairwiseKey(port, rfcBob, rfcAlice.publicKey)).toEqual(expected);
  });

  test("both sides derive the same key; a third identity derives another", () => {
    const fromAlice = pairwiseKey(port, alice, bob.publicKey);
    expect(fromAlice?.length).toBe(32);
    expect(pairwiseKey(port, bob, alice.publicKey)).toEqual(fromAlice as Uint8Array);
    expect(pairwiseKey(port, carol, bob.publicKey)).not.toEqual(fromAlice as Uint8Array);
  });

  test("a malformed or low-order peer key gives no key", () => {
    expect(pairwiseKey(port, alice, new Uint8Array(32))).toBeUndefined();
    expect(pairwiseKey(port, alice, new Uint8Array(31))).toBeUndefined();
    expect(sealFor(port, alice, new Uint8Array(32), utf8("hi"), aad)).toBeUndefined();
  });
});

describe("sealFor and openFrom", () => {
  test("a box alice seals for bob opens at bob, and not at carol", () => {
    const sealed = sealedByAliceForBob("hello bob");
    expect(openFrom(port, bob, alice.publicKey, sealed, aad)).toEqual(utf8("hello bob"));
    expect(openFrom(port, carol, alice.publicKey, sealed, aad)).toBeUndefined();
  });

  test("a box claimed to be from carol does not open as if from her", () => {
    const sealed = sealedByAliceForBob("it was alice");
    expect(openFrom(port, bob, carol.publicKey, sealed, aad)).toBeUndefined();
  });

  test("the box is ciphertext: the plaintext does not appear in it", () => {
    const sealed = sealedByAliceForBob("a secret plan");
    expect(Buffer.from(sealed.box, "base64url").includes(Buffer.from("a secret plan"))).toBe(false);
    expect(sealed.box).not.toContain("secret");
  });

  test("the nonce is 12 bytes, fresh for every box, and the same text seals differently", () => {
    const nonces = new Set<string>();
    const boxes = new Set<string>();
    for (let index = 0; index < 100; index++) {
      const sealed = sealedByAliceForBob("same");
      expect(Buffer.from(sealed.nonce, "base64url").length).toBe(12);
      nonces.add(sealed.nonce);
      boxes.add(sealed.box);
    }
    expect(nonces.size).toBe(100);
    expect(boxes.size).toBe(100);
  });

  test("a flipped bit anywhere in the box or the nonce makes it fail", () => {
    const sealed = sealedByAliceForBob("tamper with me");
    const boxLength = Buffer.from(sealed.box, "base64url").length;
    for (let index = 0; index < boxLength; index++) {
      const tampered = { nonce: sealed.nonce, box: tamperedBase64url(sealed.box, index) };
      expect(openFrom(port, bob, alice.publicKey, tampered, aad)).toBeUndefined();
    }
    for (let index = 0; index < 12; index++) {
      const tampered = { nonce: tamperedBase64url(sealed.nonce, index), box: sealed.box };
      expect(openFrom(port, bob, alice.publicKey, tampered, aad)).toBeUndefined();
    }
  });

  test("the aad binds sender, recipient and ref: any other claim fails", () => {
    const sealed = sealedByAliceForBob("bound");
    const open = (otherAad: Uint8Array) => openFrom(port, bob, alice.publicKey, sealed, otherAad);
    expect(open(sealedMessageAad("alice", "bob", 7))).toEqual(utf8("bound"));
    expect(open(sealedMessageAad("ALICE", "Bob", 7))).toEqual(utf8("bound"));
    expect(open(sealedMessageAad("alice", "bob", 8))).toBeUndefined();
    expect(open(sealedMessageAad("alice", "carol", 7))).toBeUndefined();
    expect(open(sealedMessageAad("carol", "bob", 7))).toBeUndefined();
    // Reflected: the pairwise key is symmetric, so only the aad stops bob's own box coming back as alice's.
    expect(open(sealedMessageAad("bob", "alice", 7))).toBeUndefined();
    expect(open(new Uint8Array(0))).toBeUndefined();
  });

  test("malformed boxes from the network give undefined, never a throw", () => {
    const sealed = sealedByAliceForBob("x");
    const malformed: SealedBox[] = [
      { nonce: "", box: sealed.box },
      { nonce: sealed.nonce.slice(0, 15), box: sealed.box },
      { nonce: `${sealed.nonce}AA`, box: sealed.box },
      { nonce: "!!!!!!!!!!!!!!!!", box: sealed.box },
      { nonce: sealed.nonce, box: "" },
      { nonce: sealed.nonce, box: sealed.box.slice(0, 20) },
      { nonce: sealed.nonce, box: `${sealed.box}=` },
      { nonce: 12, box: null } as unknown as SealedBox,
    ];
    for (const box of malformed) {
      expect(openFrom(port, bob, alice.publicKey, box, aad)).toBeUndefined();
    }
  });

  test("an empty message seals and opens", () => {
    const sealed = sealFor(port, alice, bob.publicKey, new Uint8Array(0), aad);
    expect(sealed).toBeDefined();
    expect(openFrom(port, bob, alice.publicKey, sealed as SealedBox, aad)).toEqual(
      new Uint8Array(0),
    );
  });

  test("with a kept key, sealWithKey and openWithKey match sealFor and openFrom", () => {
    const key = pairwiseKey(port, alice, bob.publicKey) as Uint8Array;
    const sealed = sealWithKey(port, key, utf8("kept"), aad);
    expect(openFrom(port, bob, alice.publicKey, sealed, aad)).toEqual(utf8("kept"));
    expect(openWithKey(port, key, sealedByAliceForBob("other way"), aad)).toEqual(
      utf8("other way"),
    );
    expect(openWithKey(port, new Uint8Array(32), sealed, aad)).toBeUndefined();
  });
});

describe("sealedMessageAad", () => {
  test("spells out the purpose, the lower-cased names and the ref, one per line", () => {
    expect(new TextDecoder().decode(sealedMessageAad("Alice", "BOB", 42))).toBe(
      "chatapp v2 message\nalice\nbob\n42",
    );
  });
});
