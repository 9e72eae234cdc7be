/**
 * Base64url without padding (RFC 4648 §5), the one text form of keys, nonces and
 * sealed boxes on the wire. Decoding is strict: each byte string has exactly one
 * accepted spelling, so a key can be compared as text and no two strings name it.
 */

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

const VALUES = new Map<string, number>(Array.from(ALPHABET, (char, index) => [char, index]));

export function encodeBase64url(bytes: Uint8Array): string {
  let text = "";
  let bits = 0;
  let bitCount = 0;
  for (const byte of bytes) {
    bits = (bits << 8) | byte;
    bitCount += 8;
    while (bitCount >= 6) {
      bitCount -= 6;
      text += ALPHABET[(bits >> bitCount) & 63];
    }
    bits &= (1 << bitCount) - 1;
  }
  if (bitCount > 0) text += ALPHABET[(bits << (6 - bitCount)) & 63];
  return text;
}

/** The bytes, or undefined for anything that is not canonical unpadded base64url. */
export function decodeBase64url(text: string): Uint8Array | undefined {
  if (text.length % 4 === 1) return undefined;
  const bytes = new Uint8Array(Math.floor((text.length * 6) / 8));
  let bits = 0;
  let bitCount = 0;
  let index = 0;
  for (const char of text) {
    const value = VALUES.get(char);
    if (value === undefined) return undefined;
    bits = (bits << 6) | value;
    bitCount += 6;
    if (bitCount >= 8) {
      bitCount -= 8;
      bytes[index++] = (bits >> bitCount) & 255;
    }
    bits &= (1 << bitCount) - 1;
  }
  // Leftover bits must be zero, or "AB" and "AC" would both decode to the same byte.
  if (bits !== 0) return undefined;
  return bytes;
}

/** The bytes when `text` encodes exactly `length` of them (e.g. a 43-character key), else undefined. */
export function decodeBase64urlOfLength(text: string, length: number): Uint8Array | undefined {
  const bytes = decodeBase64url(text);
  return bytes?.length === length ? bytes : undefined;
}
