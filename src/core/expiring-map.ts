import { SlotQueue } from "./slot-queue.ts";

/**
 * A map whose entries expire in the order they were set, and which holds at most `limit`
 * of them (the oldest goes first). Expired entries are found from the front of a
 * SlotQueue, never by iterating the Map (see there why): forgetting the server's expired
 * answers that way made a request cost up to 100 µs instead of 15-20 once 100,000
 * answers were kept. A slot stands for its key while the key is set to the very value it
 * was queued with.
 */
export class ExpiringMap<K, V> {
  private readonly entries = new Map<K, V>();
  /** Keys in the order they were set, each with the value it was set to then. */
  private readonly order = new SlotQueue<K, V>(this.entries);

  constructor(
    private readonly expiresAt: (value: V) => number,
    private readonly limit: number,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  get(key: K): V | undefined {
    return this.entries.get(key);
  }

  has(key: K): boolean {
    return this.entries.has(key);
  }

  /**
   * Sets `key` as the newest entry: a key set again expires with its new value (set again
   * to the same value, as a number can be, it may keep its earlier place).
   */
  set(key: K, value: V): void {
    if (!this.entries.has(key) && this.entries.size >= this.limit) this.dropOldest();
    this.entries.set(key, value);
    this.order.push(key, value);
  }

  delete(key: K): boolean {
    // Its slot in the queue stays behind and is skipped when it reaches the front.
    return this.entries.delete(key);
  }

  values(): MapIterator<V> {
    return this.entries.values();
  }

  /** Slots in the queue, live or stale: after each set, at most twice the size plus 1,024. */
  get queued(): number {
    return this.order.length;
  }

  /** Forgets the entries expired at `now`, from the oldest; stops at the first that is not. */
  forgetExpired(now: number): void {
    for (let key = this.order.front(); key !== undefined; key = this.order.front()) {
      const value = this.entries.get(key) as V;
      if (this.expiresAt(value) > now) return;
      this.entries.delete(key);
      this.order.advance();
    }
  }

  private dropOldest(): void {
    const key = this.order.front();
    if (key === undefined) return;
    this.entries.delete(key);
    this.order.advance();
  }
}
