/**
 * A map whose entries expire in the order they were set, and which holds at most `limit`
 * of them (the oldest goes first). Expired entries are found from the front of a queue of
 * its own, never by iterating the Map: JavaScriptCore keeps a Map's deleted slots until it
 * rehashes, and every iteration from the start skips them all again. Forgetting the
 * server's expired answers that way made a request cost up to 100 µs instead of 15-20
 * once 100,000 answers were kept. After each `set`, the queue holds at most twice as many
 * slots as there are entries, plus 1,024 (deletions leave theirs until the front or the
 * next compaction).
 */
export class ExpiringMap<K, V> {
  private readonly entries = new Map<K, V>();
  /** Keys in the order they were set, each with the value it was set to then. */
  private queuedKeys: (K | undefined)[] = [];
  private queuedValues: (V | undefined)[] = [];
  private head = 0;

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
    this.queuedKeys.push(key);
    this.queuedValues.push(value);
    if (this.queuedKeys.length - this.head > 2 * this.entries.size + 1024) this.dropStaleSlots();
  }

  delete(key: K): boolean {
    // Its slot in the queue stays behind and is skipped when it reaches the front.
    return this.entries.delete(key);
  }

  values(): MapIterator<V> {
    return this.entries.values();
  }

  /** Slots in the queue, live or stale: what the bound above is about. */
  get queued(): number {
    return this.queuedKeys.length - this.head;
  }

  /** Forgets the entries expired at `now`, from the oldest; stops at the first that is not. */
  forgetExpired(now: number): void {
    for (let key = this.frontKey(); key !== undefined; key = this.frontKey()) {
      const value = this.entries.get(key) as V;
      if (this.expiresAt(value) > now) return;
      this.entries.delete(key);
      this.advance();
    }
  }

  private dropOldest(): void {
    const key = this.frontKey();
    if (key === undefined) return;
    this.entries.delete(key);
    this.advance();
  }

  /** The oldest live key, after skipping slots of keys deleted or set again since. */
  private frontKey(): K | undefined {
    while (this.head < this.queuedKeys.length) {
      const key = this.queuedKeys[this.head] as K;
      const value = this.queuedValues[this.head];
      if (this.isLive(key, value)) return key;
      this.advance();
    }
    return undefined;
  }

  /**
   * Keeps each live key's last slot only. A key set again and again (a replayed datagram's
   * id) would otherwise add a slot each time, freed only when it reached the front.
   */
  private dropStaleSlots(): void {
    const keys: K[] = [];
    const values: V[] = [];
    const placed = new Set<K>();
    for (let slot = this.queuedKeys.length - 1; slot >= this.head; slot--) {
      const key = this.queuedKeys[slot] as K;
      const value = this.queuedValues[slot] as V;
      if (placed.has(key) || !this.isLive(key, value)) continue;
      placed.add(key);
      keys.push(key);
      values.push(value);
    }
    this.queuedKeys = keys.reverse();
    this.queuedValues = values.reverse();
    this.head = 0;
  }

  /** Whether a slot still stands for its key: the key is there, set to this very value. */
  private isLive(key: K, value: V | undefined): boolean {
    const current = this.entries.get(key);
    return current === value && (current !== undefined || this.entries.has(key));
  }

  private advance(): void {
    this.queuedKeys[this.head] = undefined;
    this.queuedValues[this.head] = undefined;
    this.head++;
    if (this.head === this.queuedKeys.length) {
      this.queuedKeys = [];
      this.queuedValues = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queuedKeys.length) {
      this.queuedKeys = this.queuedKeys.slice(this.head);
      this.queuedValues = this.queuedValues.slice(this.head);
      this.head = 0;
    }
  }
}
