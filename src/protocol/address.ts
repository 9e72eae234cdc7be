import type { Address } from "./messages.ts";

export function sameAddress(a: Address, b: Address): boolean {
  return a.port === b.port && normaliseIp(a.ip) === normaliseIp(b.ip);
}

/** A dual-stack socket shows IPv4 peers as `::ffff:a.b.c.d`; the table holds plain `a.b.c.d`. */
export function normaliseIp(ip: string): string {
  return ip.startsWith("::ffff:") && ip.includes(".") ? ip.slice(7) : ip;
}

export function addressKey(address: Address): string {
  return `${normaliseIp(address.ip)}|${address.port}`;
}
