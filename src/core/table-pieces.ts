import type { TableChange } from "../protocol/messages.ts";
import { bytesOnWire } from "../protocol/table-entries-json.ts";
import { TABLE_PART_BYTES } from "./timing.ts";

/** One change of the log: the version it made and whose entry it was. */
export interface LogEntry {
  readonly version: number;
  readonly key: string;
  readonly name: string;
}

/** One part's worth of consecutive changes, `after` < version ≤ `through`, every key in full. */
export interface Piece {
  readonly after: number;
  readonly through: number;
  readonly changes: readonly TableChange[];
}

/** How the pieces read an entry as it is now, with its key (`gone` if forgotten). */
export type CurrentEntry = (entry: LogEntry) => TableChange;

/**
 * The change log cut into pieces once, each the size of one part and shared by every
 * push that needs it. A client far behind (a registration storm leaves each client at
 * its own version) gets the few changes up to the next piece, then the same pieces and
 * tail as everyone else: what was built, serialised and hashed once per client at
 * O(table) each is now built once, and only the head of each datagram is per client.
 *
 * A piece holds each entry as it was when the piece was sealed, not as it is now: an
 * entry that changed since appears again in a later piece or the tail, and a client
 * applies a push's entries in order, so the last one wins. Every entry carries its key
 * (`ak`), since a piece does not know which keys its many readers hold.
 */
export class TablePieces {
  private pieces: Piece[] = [];
  /** Changes read since the last piece: the next piece once they fill a part. */
  private pending: TableChange[] = [];
  private pendingBytes = 0;
  private pendingThrough: number;
  /** What the pending changes were given out as at one version (a copy: pieces never change). */
  private tail: { readonly version: number; readonly changes: readonly TableChange[] } | undefined;

  /** `start`: the version the first piece begins after. */
  constructor(private start: number) {
    this.pendingThrough = start;
  }

  /** The version the pieces run up to (where the tail begins). */
  get sealedThrough(): number {
    return this.pieces[this.pieces.length - 1]?.through ?? this.start;
  }

  /** The sealed pieces and the changes they and the unsealed rest hold. */
  get kept(): { readonly pieces: number; readonly changes: number } {
    let changes = this.pending.length;
    for (const piece of this.pieces) changes += piece.changes.length;
    return { pieces: this.pieces.length, changes };
  }

  /**
   * Reads the changes of the log past those read before, sealing a piece each time
   * they fill a part. `log` is the kept log, one entry per version from its first on.
   */
  seal(log: readonly LogEntry[], version: number, current: CurrentEntry): void {
    const first = log[0]?.version;
    if (first === undefined || version <= this.pendingThrough) return;
    for (let index = this.pendingThrough + 1 - first; index < log.length; index++) {
      const entry = log[index];
      if (!entry) break;
      const change = current(entry);
      const size = bytesOnWire(change);
      if (this.pending.length > 0 && this.pendingBytes + size > TABLE_PART_BYTES) {
        this.closePiece();
      }
      this.pending.push(change);
      this.pendingBytes += size;
      this.pendingThrough = entry.version;
    }
  }

  /**
   * Ends the current piece at `version` even if it is short: a snapshot at `version`
   * is then followed by whole pieces only.
   */
  sealAt(log: readonly LogEntry[], version: number, current: CurrentEntry): void {
    this.seal(log, version, current);
    if (this.pending.length > 0 && this.pendingThrough === version) this.closePiece();
  }

  /** Whether a piece (or the tail) begins right after `version`. */
  beginsAt(version: number): boolean {
    if (version === this.sealedThrough) return true;
    const index = this.indexFrom(version);
    return index !== undefined && this.pieces[index]?.after === version;
  }

  /** The first piece boundary at or after `version`; undefined if the tail holds it. */
  boundaryFrom(version: number): number | undefined {
    const index = this.indexFrom(version);
    return index === undefined ? undefined : this.pieces[index]?.after;
  }

  /**
   * The changes from `boundary` (a piece's start) to `version` (up to which `seal` has
   * read): the pieces, then the tail, each one part.
   */
  partsFrom(boundary: number, version: number): (readonly TableChange[])[] {
    const parts: (readonly TableChange[])[] = [];
    const index = this.indexFrom(boundary);
    if (index !== undefined) {
      for (let at = index; at < this.pieces.length; at++) {
        const piece = this.pieces[at];
        if (piece) parts.push(piece.changes);
      }
    }
    const tail = this.tailAt(version);
    if (tail.length > 0) parts.push(tail);
    return parts;
  }

  /** The log was cut at `oldestBase`: pieces that begin before it go. */
  dropBefore(oldestBase: number): void {
    if (this.pendingThrough < oldestBase) {
      this.reset(oldestBase);
      return;
    }
    const keep = this.pieces.findIndex((piece) => piece.after >= oldestBase);
    if (keep === -1) {
      this.start = this.sealedThrough;
      this.pieces = [];
    } else {
      if (keep > 0) this.pieces = this.pieces.slice(keep);
    }
  }

  /** Starts again after `start` (an entry changed without a new version: pieces hold it as it was). */
  reset(start: number): void {
    this.start = start;
    this.pieces = [];
    this.pending = [];
    this.pendingBytes = 0;
    this.pendingThrough = start;
    this.tail = undefined;
  }

  private closePiece(): void {
    this.pieces.push({
      after: this.sealedThrough,
      through: this.pendingThrough,
      changes: this.pending,
    });
    this.pending = [];
    this.pendingBytes = 0;
    this.tail = undefined;
  }

  private tailAt(version: number): readonly TableChange[] {
    if (this.tail?.version !== version) this.tail = { version, changes: this.pending.slice() };
    return this.tail.changes;
  }

  /** The index of the first piece that begins at or after `version`. */
  private indexFrom(version: number): number | undefined {
    let low = 0;
    let high = this.pieces.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((this.pieces[middle]?.after ?? 0) < version) low = middle + 1;
      else high = middle;
    }
    return low < this.pieces.length ? low : undefined;
  }
}
