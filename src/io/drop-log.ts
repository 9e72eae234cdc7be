import type { DropCounts } from "../core/server-effects.ts";
import { normaliseIp } from "../protocol/address.ts";
import type { Address } from "../protocol/messages.ts";

export type DropReason = keyof DropCounts | "oversized";

const reasonText: Record<DropReason, string> = {
  malformed: "malformed",
  unauthenticated: "unauthenticated",
  unexpected: "unexpected",
  rateLimited: "over the rate limit",
  replayed: "a replay",
  oversized: "oversized or truncated",
};

export interface DropLogOptions {
  readonly write: (text: string) => void;
  /** Lines about single datagrams per window; the rest are summed up when it ends. */
  readonly linesPerWindow?: number;
  readonly windowMs?: number;
  /** Calls `run` once, `ms` from now (a real timer in the server, a fake one in tests). */
  readonly schedule: (ms: number, run: () => void) => void;
}

/**
 * `--verbose`: each dropped datagram as it arrives, with its source, size and
 * reason. A flood gets its first lines and then one summary a window, so it cannot
 * flood the log as well.
 */
export class DropLog {
  readonly #write: (text: string) => void;
  readonly #linesPerWindow: number;
  readonly #windowMs: number;
  readonly #schedule: (ms: number, run: () => void) => void;
  #windowEndsAt = Number.NEGATIVE_INFINITY;
  #linesInWindow = 0;
  #unshown = new Map<DropReason, number>();

  constructor(options: DropLogOptions) {
    this.#write = options.write;
    this.#linesPerWindow = options.linesPerWindow ?? 10;
    this.#windowMs = options.windowMs ?? 1000;
    this.#schedule = options.schedule;
  }

  record(from: Address, bytes: number, reason: DropReason, now: number): void {
    if (now >= this.#windowEndsAt) {
      this.flush();
      this.#windowEndsAt = now + this.#windowMs;
      this.#linesInWindow = 0;
    }
    if (this.#linesInWindow < this.#linesPerWindow) {
      this.#linesInWindow++;
      this.#write(
        `dropped a datagram from ${formatAddress(from)} (${bytes} bytes): ${reasonText[reason]}`,
      );
      return;
    }
    if (this.#unshown.size === 0) {
      const endsAt = this.#windowEndsAt;
      // A window that already gave way to the next one was summed up when it did.
      this.#schedule(endsAt - now, () => {
        if (this.#windowEndsAt === endsAt) this.flush();
      });
    }
    this.#unshown.set(reason, (this.#unshown.get(reason) ?? 0) + 1);
  }

  /** Writes the summary of what was not shown, if anything was not. */
  flush(): void {
    if (this.#unshown.size === 0) return;
    let total = 0;
    const parts: string[] = [];
    for (const [reason, count] of this.#unshown) {
      total += count;
      parts.push(`${count} ${reasonText[reason]}`);
    }
    this.#unshown = new Map();
    this.#write(
      `dropped ${total} more datagram${total === 1 ? "" : "s"} without a line each: ${parts.join(", ")}`,
    );
  }
}

/** The reasons whose counts went up between two readings, once per datagram counted. */
export function dropsBetween(before: DropCounts, after: DropCounts): DropReason[] {
  const reasons: DropReason[] = [];
  for (const reason of Object.keys(after) as (keyof DropCounts)[]) {
    for (let n = before[reason]; n < after[reason]; n++) reasons.push(reason);
  }
  return reasons;
}

export function formatAddress(address: Address): string {
  const ip = normaliseIp(address.ip);
  return ip.includes(":") ? `[${ip}]:${address.port}` : `${ip}:${address.port}`;
}
