/** Allows `ratePerSecond` events on average and bursts of up to `burst`; time comes in as `now`. */
export class TokenBucket {
  private allowance: number;
  private updatedAt: number | undefined;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
  ) {
    this.allowance = burst;
  }

  /** Takes one token if there is one. */
  take(now: number): boolean {
    this.refill(now);
    if (this.allowance < 1) return false;
    this.allowance -= 1;
    return true;
  }

  /** When the next token will be there (as of the last take). */
  readyAt(): number {
    const since = this.updatedAt ?? 0;
    if (this.allowance >= 1) return since;
    return since + Math.ceil(((1 - this.allowance) * 1000) / this.ratePerSecond);
  }

  private refill(now: number): void {
    if (this.updatedAt !== undefined && now > this.updatedAt) {
      const earned = ((now - this.updatedAt) * this.ratePerSecond) / 1000;
      this.allowance = Math.min(this.burst, this.allowance + earned);
    }
    if (this.updatedAt === undefined || now > this.updatedAt) this.updatedAt = now;
  }
}
