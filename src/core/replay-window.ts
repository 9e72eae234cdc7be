/** Ids per session and direction that count as seen below the highest (IPsec, WireGuard). */
export const REPLAY_WINDOW = 1024;

const BITS_PER_WORD = 32;

export type ReplayVerdict = "new" | "seen" | "too-old";

/**
 * The ids one session has used in one direction: the highest and the REPLAY_WINDOW - 1
 * below it. A new id is taken; one already taken is a retransmission or a replay; one
 * below the window cannot be told apart from a replay and is refused.
 *
 * One bit per id in the window, on a ring indexed by id (RFC 6479): a 128-byte bitmap a
 * session whatever it sends, none before its first request. A Set of the ids taken cost
 * 131 KB for a session that had sent 2,000 requests, and JavaScriptCore kept the space
 * after the old ids were deleted.
 */
export class ReplayWindow {
  // Plain fields, not #private ones: a state snapshot (and a deep copy of it) sees them.
  private highest: number | undefined;
  /** Made with the first id: most sessions of a crowd only register, and so take none. */
  private taken: Uint32Array | undefined;

  check(id: number): ReplayVerdict {
    if (this.highest === undefined || id > this.highest) return "new";
    if (id <= this.highest - REPLAY_WINDOW) return "too-old";
    return this.isTaken(id) ? "seen" : "new";
  }

  /** Records `id` (checked "new"). */
  take(id: number): void {
    if (this.highest === undefined || id > this.highest) {
      this.forgetUpTo(id);
      this.highest = id;
    }
    this.mark(id, true);
  }

  /** Gives an id back, as when the work it asked for was undone (the store refused it). */
  release(id: number): void {
    if (this.check(id) === "seen") this.mark(id, false);
  }

  /** Clears the slots that ids above the highest, up to `id`, are about to reuse. */
  private forgetUpTo(id: number): void {
    const from = this.highest === undefined ? id : this.highest + 1;
    if (id - from >= REPLAY_WINDOW) {
      this.taken?.fill(0);
      return;
    }
    for (let slot = from; slot <= id; slot++) this.mark(slot, false);
  }

  private isTaken(id: number): boolean {
    return ((this.taken?.[wordOf(id)] ?? 0) & bitOf(id)) !== 0;
  }

  private mark(id: number, taken: boolean): void {
    this.taken ??= new Uint32Array(REPLAY_WINDOW / BITS_PER_WORD);
    const word = this.taken[wordOf(id)] ?? 0;
    this.taken[wordOf(id)] = taken ? word | bitOf(id) : word & ~bitOf(id);
  }
}

function wordOf(id: number): number {
  return Math.floor((id % REPLAY_WINDOW) / BITS_PER_WORD);
}

function bitOf(id: number): number {
  return 1 << (id % BITS_PER_WORD);
}
