/** Randomness for the core, which never calls a random source itself. */
export function randomHex(bytes: number): string {
  const buffer = new Uint8Array(bytes);
  crypto.getRandomValues(buffer);
  return Array.from(buffer, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** A random starting message id below 2^48, far from the top of the safe integer range. */
export function randomRequestId(): number {
  return Number.parseInt(randomHex(6), 16);
}
