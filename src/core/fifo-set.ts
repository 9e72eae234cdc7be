import { SlotQueue } from "./slot-queue.ts";

/**
 * A queue of distinct keys: add at the back (once), take from the front, remove
 * anywhere, all O(1) (amortised: now and then an add drops the slots that deleted keys
 * left). Its order is a SlotQueue, not a Set iterated from its start (see there why).
 */
export class FifoSet<T> {
  /** Each queued item, to the stamp of its live slot. */
  private readonly members = new Map<T, number>();
  private nextStamp = 0;
  private readonly order = new SlotQueue<T, number>(this.members);

  get size(): number {
    return this.members.size;
  }

  has(item: T): boolean {
    return this.members.has(item);
  }

  /** Slots still in the queue, stale ones included: after each add of a new key, at most twice the size plus 1,024. */
  get queued(): number {
    return this.order.length;
  }

  add(item: T): void {
    if (this.members.has(item)) return;
    const stamp = this.nextStamp++;
    this.members.set(item, stamp);
    this.order.push(item, stamp);
  }

  delete(item: T): void {
    // Its slot stays behind and is skipped when it reaches the front, or dropped sooner.
    this.members.delete(item);
  }

  /** The oldest item still queued, taken off the queue. */
  shift(): T | undefined {
    const item = this.order.front();
    if (item === undefined) return undefined;
    this.members.delete(item);
    this.order.advance();
    return item;
  }
}
