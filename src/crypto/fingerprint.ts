/**
 * Fingerprints a person compares by eye or reads aloud: SHA-256 over a domain label
 * and the public keys, each preceded by its length (so no two lists of keys give the
 * same input); the first 160 bits of the digest in lower-case RFC 4648 base32, as 8
 * groups of 4 characters joined by "-". Base32 has no look-alike pairs such as 0/O
 * or 1/l, and 160 bits leave a forger searching 2^160 keys for a second match.
 * One "-"-joined word is selected whole by a double click and never wraps mid-group.
 */

const DOMAIN = new TextEncoder().encode("chatapp v2 fingerprint");
const BASE32 = "abcdefghijklmnopqrstuvwxyz234567";
export const FINGERPRINT_BITS = 160;
const GROUP_LENGTH = 4;

/** The bytes whose SHA-256 digest is the fingerprint. */
export function fingerprintInput(publicKeys: readonly Uint8Array[]): Uint8Array {
  const length = publicKeys.reduce((total, key) => total + 1 + key.length, DOMAIN.length);
  const input = new Uint8Array(length);
  input.set(DOMAIN);
  let offset = DOMAIN.length;
  for (const key of publicKeys) {
    if (key.length > 255)
      throw new RangeError(`a public key of ${key.length} bytes is too long to fingerprint`);
    input[offset++] = key.length;
    input.set(key, offset);
    offset += key.length;
  }
  return input;
}

/** "xxxx-xxxx-xxxx-xxxx-xxxx-xxxx-xxxx-xxxx" from a SHA-256 digest. */
export function formatFingerprint(digest: Uint8Array): string {
  let text = "";
  let bits = 0;
  let bitCount = 0;
  for (const byte of digest.subarray(0, FINGERPRINT_BITS / 8)) {
    bits = (bits << 8) | byte;
    bitCount += 8;
    while (bitCount >= 5) {
      bitCount -= 5;
      text += BASE32[(bits >> bitCount) & 31];
    }
    bits &= (1 << bitCount) - 1;
  }
  const groups = text.match(new RegExp(`.{${GROUP_LENGTH}}`, "g")) ?? [];
  return groups.join("-");
}
