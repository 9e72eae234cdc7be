/**
 * Base64url without padding (RFC 4648 §5), the one text form of keys, nonces and
 * sealed boxes on the wire. Decoding is strict: each byte string has exactly one
 * accepted spelling, so a key can be compared as text and no two strings name it.
 */

/** The alphabet, and nothing else: the native decoder would also skip whitespace. */
const CANONICAL_TEXT = /^[A-Za-z0-9_-]*$/;

// The engine's own codec (TC39 "Uint8Array to/from base64"): a MAC per datagram and
// sealed boxes of up to 16 KB made a character-by-character loop a visible cost.
export function encodeBase64url(bytes: Uint8Array): string {
  return bytes.toBase64({ alphabet: "base64url", omitPadding: true });
}

/** The bytes, or undefined for anything that is not canonical unpadded base64url. */
export function decodeBase64url(text: string): Uint8Array | undefined {
  if (text.length % 4 === 1 || !CANONICAL_TEXT.test(text)) return undefined;
  const padding = "==".slice(0, (4 - (text.length % 4)) % 4);
  try {
    // "strict": leftover bits must be zero, or "AB" and "AC" would both decode to one byte.
    return Uint8Array.fromBase64(text + padding, {
      alphabet: "base64url",
      lastChunkHandling: "strict",
    });
  } catch {
    return undefined;
  }
}

/** The bytes when `text` encodes exactly `length` of them (e.g. a 43-character key), else undefined. */
export function decodeBase64urlOfLength(text: string, length: number): Uint8Array | undefined {
  const bytes = decodeBase64url(text);
  return bytes?.length === length ? bytes : undefined;
}
