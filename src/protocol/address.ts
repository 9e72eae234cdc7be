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

/** How people write an address: `127.0.0.1:6001`, and `[::1]:6001` for IPv6 (RFC 3986). */
export function formatAddress(address: Address): string {
  const ip = normaliseIp(address.ip);
  return ip.includes(":") ? `[${ip}]:${address.port}` : `${ip}:${address.port}`;
}

export function isLoopback(ip: string): boolean {
  const plain = normaliseIp(ip);
  return plain === "::1" || plain.startsWith("127.");
}

export function ipFamily(ip: string): "IPv4" | "IPv6" {
  return normaliseIp(ip).includes(":") ? "IPv6" : "IPv4";
}

/**
 * The same peer: the same address, or the same port on loopback in either family. A
 * dual-stack socket holds its port for both, and a datagram to an IPv4 peer leaves from
 * 127.0.0.1 even when its sender registered as ::1.
 */
export function samePeer(a: Address, b: Address): boolean {
  return sameAddress(a, b) || (a.port === b.port && isLoopback(a.ip) && isLoopback(b.ip));
}
