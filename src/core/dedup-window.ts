/**
 * Remembers recently seen message keys for a while, so that a retransmission is
 * recognised and acknowledged again without being acted on twice (CoAP §4.5).
 * Bounded in time and in size: the oldest keys go first.
 */
export class DedupWindow {
  private readonly expiries = new Map<string, number>();

  constructor(
    private readonly keepMs: number,
    private readonly maxKeys: number,
  ) {}

  /** True if `key` was seen within the window; records it either way. */
  seen(key: string, now: number): boolean {
    this.forgetExpired(now);
    const known = this.expiries.has(key);
    this.expiries.delete(key);
    this.expiries.set(key, now + this.keepMs);
    if (this.expiries.size > this.maxKeys) {
      const oldest = this.expiries.keys().next().value;
      if (oldest !== undefined) this.expiries.delete(oldest);
    }
    return known;
  }

  get size(): number {
    return this.expiries.size;
  }

  private forgetExpired(now: number): void {
    for (const [key, expiresAt] of this.expiries) {
      if (expiresAt > now) break;
      this.expiries.delete(key);
    }
  }
}
