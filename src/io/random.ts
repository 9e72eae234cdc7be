import { createHmac } from "node:crypto";
import { addressKey } from "../protocol/address.ts";
import { type Address, COOKIE_LENGTH } from "../protocol/messages.ts";

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

/** Registration cookies: an HMAC of the address and the period under a secret that never leaves the process. */
export function cookieMaker(secret: string): (address: Address, period: number) => string {
  return (address, period) =>
    createHmac("sha256", secret)
      .update(`${addressKey(address)}#${period}`)
      .digest("hex")
      .slice(0, COOKIE_LENGTH);
}
