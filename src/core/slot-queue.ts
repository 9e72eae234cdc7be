/**
 * The order in which keys of a Map were queued, for FifoSet and ExpiringMap: a slot per
 * queuing, each with the stamp its key had then. A slot whose stamp no longer stands for
 * its key in the Map (the key was removed, or queued again with a new stamp) is stale
 * and skipped. The Map itself is never iterated from its start to find its oldest key:
 * JavaScriptCore keeps a Map's deleted slots until it rehashes, and every such pass
 * skips them all again; that made the table-push queue quadratic at 10,000 clients, and
 * a request cost up to 100 µs instead of 15-20 with 100,000 answers kept.
 *
 * After each push the queue holds at most twice as many slots as the Map has keys, plus
 * 1,024: a key removed and queued again, over and over, before it reaches the front (a
 * replayed datagram's id) would otherwise add a slot each time.
 */
export class SlotQueue<K, S> {
  private keys: (K | undefined)[] = [];
  private stamps: (S | undefined)[] = [];
  private head = 0;

  /** `owner`: the Map whose keys are queued, each to the stamp of its live slot. */
  constructor(private readonly owner: ReadonlyMap<K, S>) {}

  /** Slots in the queue, live or stale: what the bound above is about. */
  get length(): number {
    return this.keys.length - this.head;
  }

  /** Queues `key` at the back; `owner` maps it to `stamp` by now. */
  push(key: K, stamp: S): void {
    this.keys.push(key);
    this.stamps.push(stamp);
    if (this.length > 2 * this.owner.size + 1024) this.dropStaleSlots();
  }

  /** The oldest key whose slot still stands; the stale slots before it are dropped. */
  front(): K | undefined {
    while (this.head < this.keys.length) {
      const key = this.keys[this.head] as K;
      if (this.isLive(key, this.stamps[this.head])) return key;
      this.advance();
    }
    return undefined;
  }

  /** Takes the front slot off the queue. */
  advance(): void {
    this.keys[this.head] = undefined;
    this.stamps[this.head] = undefined;
    this.head++;
    if (this.head === this.keys.length) {
      this.keys = [];
      this.stamps = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.keys.length) {
      this.keys = this.keys.slice(this.head);
      this.stamps = this.stamps.slice(this.head);
      this.head = 0;
    }
  }

  /** Keeps each live key's last slot only, in order. */
  private dropStaleSlots(): void {
    const keys: K[] = [];
    const stamps: S[] = [];
    const placed = new Set<K>();
    for (let slot = this.keys.length - 1; slot >= this.head; slot--) {
      const key = this.keys[slot] as K;
      const stamp = this.stamps[slot] as S;
      if (placed.has(key) || !this.isLive(key, stamp)) continue;
      placed.add(key);
      keys.push(key);
      stamps.push(stamp);
    }
    this.keys = keys.reverse();
    this.stamps = stamps.reverse();
    this.head = 0;
  }

  /** Whether a slot still stands for its key: the key is there, mapped to this very stamp. */
  private isLive(key: K, stamp: S | undefined): boolean {
    const current = this.owner.get(key);
    return current === stamp && (current !== undefined || this.owner.has(key));
  }
}
