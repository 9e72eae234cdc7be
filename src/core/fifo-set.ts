/**
 * A queue of distinct keys: add at the back (once), take from the front, remove
 * anywhere, all O(1) (amortised: now and then an add drops the slots that deleted
 * keys left). A Set iterated from its start after many deletions at the front skips
 * every deleted slot again on each pass (JavaScriptCore keeps them until a rehash),
 * which made the table-push queue quadratic at 10,000 clients.
 */
export class FifoSet<T> {
  private items: (T | undefined)[] = [];
  private head = 0;
  /** Each queued item and where its live slot is (counted from the first ever added). */
  private readonly members = new Map<T, number>();
  private dropped = 0;

  get size(): number {
    return this.members.size;
  }

  has(item: T): boolean {
    return this.members.has(item);
  }

  /** Slots still in the queue, stale ones included: after each add of a new key, at most twice the size plus 1,024. */
  get queued(): number {
    return this.items.length - this.head;
  }

  add(item: T): void {
    if (this.members.has(item)) return;
    this.members.set(item, this.dropped + this.items.length);
    this.items.push(item);
    if (this.items.length - this.head > 2 * this.members.size + 1024) this.dropStaleSlots();
  }

  delete(item: T): void {
    // Its slot stays behind and is skipped when it reaches the front, or dropped sooner.
    this.members.delete(item);
  }

  /** The oldest item still queued, taken off the queue. */
  shift(): T | undefined {
    while (this.head < this.items.length) {
      const slot = this.dropped + this.head;
      const item = this.items[this.head];
      this.items[this.head] = undefined;
      this.head++;
      if (item !== undefined && this.members.get(item) === slot) {
        this.members.delete(item);
        this.compact();
        return item;
      }
    }
    this.dropped += this.items.length;
    this.items = [];
    this.head = 0;
    return undefined;
  }

  /** A key deleted and added again before it reaches the front leaves a stale slot each time. */
  private dropStaleSlots(): void {
    const live: T[] = [];
    for (let index = this.head; index < this.items.length; index++) {
      const item = this.items[index];
      if (item !== undefined && this.members.get(item) === this.dropped + index) live.push(item);
    }
    this.dropped += this.items.length;
    this.items = live;
    this.head = 0;
    for (const [index, item] of live.entries()) this.members.set(item, this.dropped + index);
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.dropped += this.head;
      this.head = 0;
    }
  }
}
