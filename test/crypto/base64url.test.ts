import { describe, expect, test } from "bun:test";
import {
  decodeBase64url,
  decodeBase64urlOfLength,
  encodeBase64url,
} from "../../src/crypto/base64url.ts";

const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);

describe("base64url without padding", () => {
  test("RFC 4648 §10 vectors, without their padding", () => {
    const vectors: [string, string][] = [
      ["", ""],
      ["f", "Zg"],
      ["fo", "Zm8"],
      ["foo", "Zm9v"],
      ["foob", "Zm9vYg"],
      ["fooba", "Zm9vYmE"],
      ["foobar", "Zm9vYmFy"],
    ];
    for (const [plain, encoded] of vectors) {
      const data = new TextEncoder().encode(plain);
      expect(encodeBase64url(data)).toBe(encoded);
      expect(decodeBase64url(encoded)).toEqual(data);
    }
  });

  test("the URL-safe alphabet: '-' and '_' in place of '+' and '/'", () => {
    expect(encodeBase64url(bytes(0xfb, 0xff, 0xbf))).toBe("-_-_");
    expect(decodeBase64url("-_-_")).toEqual(bytes(0xfb, 0xff, 0xbf));
    expect(decodeBase64url("+/+/")).toBeUndefined();
  });

  test("it agrees with Buffer's base64url on random data of every length up to 100", () => {
    for (let length = 0; length <= 100; length++) {
      const data = crypto.getRandomValues(new Uint8Array(length));
      const encoded = encodeBase64url(data);
      expect(encoded).toBe(Buffer.from(data).toString("base64url"));
      expect(decodeBase64url(encoded)).toEqual(data);
    }
  });

  test("a 32-byte key is 43 characters", () => {
    expect(encodeBase64url(new Uint8Array(32)).length).toBe(43);
  });

  test("anything but the one canonical spelling is refused", () => {
    expect(decodeBase64url("Zg==")).toBeUndefined();
    expect(decodeBase64url("Zh")).toBeUndefined();
    expect(decodeBase64url("Zm9")).toBeUndefined();
    expect(decodeBase64url("Z")).toBeUndefined();
    expect(decodeBase64url("Zm 9v")).toBeUndefined();
    expect(decodeBase64url("Zm9v\n")).toBeUndefined();
    expect(decodeBase64url("Zm9\u00e9")).toBeUndefined();
  });

  test("decodeBase64urlOfLength accepts only the expected number of bytes", () => {
    const key = encodeBase64url(new Uint8Array(32).fill(7));
    expect(decodeBase64urlOfLength(key, 32)).toEqual(new Uint8Array(32).fill(7));
    expect(decodeBase64urlOfLength(key, 31)).toBeUndefined();
    expect(decodeBase64urlOfLength(key.slice(0, 42), 32)).toBeUndefined();
    expect(decodeBase64urlOfLength("not base64!", 8)).toBeUndefined();
  });
});
