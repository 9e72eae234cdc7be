import { ExpiringMap } from "./expiring-map.ts";

/**
 * Remembers recently seen message keys for a while, so that a retransmission is
 * recognised and acknowledged again without being acted on twice (CoAP §4.5).
 * Bounded in time and in size: the oldest keys go first.
 */
export class DedupWindow {
  private readonly expiries: ExpiringMap<string, number>;

  constructor(
    private readonly keepMs: number,
    maxKeys: number,
  ) {
    this.expiries = new ExpiringMap((expiresAt) => expiresAt, maxKeys);
  }

  /** True if `key` was seen within the window; records it either way. */
  seen(key: string, now: number): boolean {
    this.expiries.forgetExpired(now);
    const known = this.expiries.has(key);
    this.expiries.set(key, now + this.keepMs);
    return known;
  }

  get size(): number {
    return this.expiries.size;
  }
}
