import type { TableChange, TableEntry, TableEntryChange } from "../protocol/messages.ts";
import { bytesOnWire } from "../protocol/table-entries-json.ts";
import { type CurrentEntry, type LogEntry, TablePieces } from "./table-pieces.ts";
import {
  BULK_DELTA_ABOVE_VERSIONS,
  DELTA_ENTRIES_KEPT,
  DELTA_REUSE_MIN_VERSIONS,
  DELTAS_KEPT,
  HEADS_KEPT,
  TABLE_LOG_LIMIT,
  TABLE_PART_BYTES,
  TABLE_SMALL_PART_BYTES,
} from "./timing.ts";

/** What the log needs of a client: its name and how it looks in the table. */
export interface LoggedClient {
  readonly key: string;
  readonly name: string;
  readonly ip: string;
  readonly port: number;
  readonly online: boolean;
  readonly ak: string;
}

/** One push: a snapshot when `base` is undefined, else the changes after `base`; in parts. */
export interface TablePushContent {
  readonly version: number;
  readonly base: number | undefined;
  readonly parts: readonly (readonly TableChange[])[];
}

/**
 * The client table as a versioned change log (XMPP roster versioning): every change of
 * one entry is a new version, and a client at version v needs only the entries changed
 * after v. The log keeps the last TABLE_LOG_LIMIT changes; a client further behind gets
 * a snapshot. A push built for one base is kept while the table moves on by a few
 * versions, so every client at that base is sent the same entries, serialised once: in
 * a burst of changes, clients move together from one shared delta to the next instead
 * of each getting one built for it alone. A client far behind, and one that joins, get
 * the log's shared pieces (table-pieces.ts) after a part or a snapshot built for many.
 */
export class TableLog {
  version = 0;
  /** Deltas can start from any version from here on. */
  private oldestBase = 0;
  private entries: LogEntry[] = [];
  /** Deltas by base, oldest built first. */
  private readonly cache = new Map<number, TablePushContent>();
  private cachedEntries = 0;
  /**
   * The last snapshot, kept across changes while the table has not moved on by more
   * than a sixteenth of its size: a client that joins gets it and the pieces since, in
   * one push, rather than a snapshot built and serialised for it alone.
   */
  private snapshot: TablePushContent | undefined;
  /**
   * Each entry's agreement key and the version it entered the table with: a client at
   * that version or later holds it, and a delta to it leaves the key out.
   */
  private readonly keysSince = new Map<string, { readonly ak: string; readonly since: number }>();
  /** The log cut into shared parts, for clients far behind and after a kept snapshot. */
  private readonly pieces = new TablePieces(0);
  /**
   * The first parts of deltas to clients far behind, by base, with the piece boundary
   * they end at: when a burst of changes leaves thousands of clients at one version,
   * the part before the pieces is built once for all of them, not once each.
   */
  private readonly heads = new Map<
    number,
    { readonly boundary: number; readonly parts: readonly TableChange[][] }
  >();

  constructor(readonly epoch: string) {}

  /** A client's entry changed (registered, went offline, moved): returns its new version. */
  recordChange(client: LoggedClient): number {
    const version = this.append(client.key, client.name);
    if (this.keysSince.get(client.key)?.ak !== client.ak) {
      this.keysSince.set(client.key, { ak: client.ak, since: version });
    }
    return version;
  }

  /** A client was forgotten: deltas say so until the change leaves the log. */
  recordForgotten(key: string, name: string): number {
    this.keysSince.delete(key);
    return this.append(key, name);
  }

  /**
   * The entry's key changed before its change is recorded (a name back with stored
   * messages, announced once they are delivered): until then every push carries it.
   */
  forgetKey(key: string): void {
    this.keysSince.delete(key);
    this.letGoOfCaches();
  }

  /**
   * Kept deltas, first parts, pieces and the kept snapshot only save work in a burst;
   * at 10,000 clients they hold about 10 MB. Pushes after this build them again.
   */
  letGoOfCaches(): void {
    this.cache.clear();
    this.cachedEntries = 0;
    this.heads.clear();
    this.pieces.reset(this.version);
    this.snapshot = undefined;
  }

  /**
   * The table changed in a way that is not yet a version (a client back online whose
   * stored messages are on their way): a snapshot built before it is stale.
   */
  forgetSnapshot(): void {
    this.snapshot = undefined;
  }

  /** The deltas kept for reuse, and their entries in all. */
  get keptDeltas(): { readonly deltas: number; readonly entries: number } {
    return { deltas: this.cache.size, entries: this.cachedEntries };
  }

  /** Whether a client holding `version` of `epoch` can be brought up to date with a delta. */
  canDeltaFrom(epoch: string | undefined, version: number | undefined): version is number {
    return (
      epoch === this.epoch &&
      version !== undefined &&
      version >= this.oldestBase &&
      version <= this.version
    );
  }

  /**
   * What a client holding `base` needs (a snapshot when `base` is undefined or too old).
   * Snapshots and deltas to clients far behind end at the newest version; a kept delta
   * may end a few versions back, but never before `notBefore`, the last change of the
   * client's own entry: a table that shows it as it was before it registered would
   * mislead it.
   */
  pushFor(
    base: number | undefined,
    clients: ReadonlyMap<string, LoggedClient>,
    notBefore = 0,
  ): TablePushContent {
    if (!this.canDeltaFrom(this.epoch, base)) return this.currentSnapshot(clients);
    if (this.version - base > BULK_DELTA_ABOVE_VERSIONS) {
      const bulk = this.bulkDelta(base, clients);
      if (bulk) return bulk;
    }
    const cached = this.cache.get(base);
    if (cached && this.isReusable(cached, base, clients.size, notBefore)) return cached;
    const changes = this.changesAfter(base, clients);
    const content = { version: this.version, base, parts: cutIntoParts(changes) };
    this.forgetDelta(base);
    if (changes.length <= DELTA_ENTRIES_KEPT / 2) {
      this.cache.set(base, content);
      this.cachedEntries += changes.length;
      this.pruneCache(clients.size);
    }
    return content;
  }

  /**
   * A delta built earlier still serves: it brings the client forward (or nothing has
   * changed since), it is at most a few versions old, and it does not show the client's
   * own entry as it was before its last change.
   */
  private isReusable(
    cached: TablePushContent,
    base: number,
    tableSize: number,
    notBefore: number,
  ): boolean {
    if (cached.version === this.version) return true;
    return (
      cached.version > base &&
      cached.version >= notBefore &&
      this.version - cached.version <= deltaReuseVersions(tableSize)
    );
  }

  /**
   * Deltas too old to reuse go; of the rest, the newest built, at most DELTAS_KEPT of
   * them and DELTA_ENTRIES_KEPT entries in all (each is kept with its serialised text).
   */
  private pruneCache(tableSize: number): void {
    const oldest = this.version - deltaReuseVersions(tableSize);
    for (const [base, content] of this.cache) {
      const fits = this.cache.size <= DELTAS_KEPT && this.cachedEntries <= DELTA_ENTRIES_KEPT;
      if (fits && content.version >= oldest) break;
      this.forgetDelta(base);
    }
  }

  private forgetDelta(base: number): void {
    const content = this.cache.get(base);
    if (!content) return;
    this.cache.delete(base);
    this.cachedEntries -= entriesIn(content.parts);
  }

  /**
   * A delta for a client far behind: the changes up to the next piece, built for its
   * base, then the shared pieces and tail. Undefined when its base is in the last piece
   * (a plain delta is as small); a snapshot when the pieces hold more changes than the
   * table has entries (a storm of changes to few names).
   */
  private bulkDelta(
    base: number,
    clients: ReadonlyMap<string, LoggedClient>,
  ): TablePushContent | undefined {
    if (this.version - base > clients.size) return this.currentSnapshot(clients);
    this.sealPieces(clients);
    const boundary = this.pieces.boundaryFrom(base);
    if (boundary === undefined) return undefined;
    const shared = this.pieces.partsFrom(boundary, this.version);
    if (entriesIn(shared) > clients.size) return this.currentSnapshot(clients);
    const head = this.headFor(base, boundary, clients);
    const parts = head.length > 0 ? [...head, ...shared] : shared;
    return { version: this.version, base, parts };
  }

  /**
   * The changes after `base` up to the piece boundary, as parts; kept for the next
   * client at `base`. An entry that changed again since it was built is in a later
   * piece or the tail, and applied after it: the push still ends as the table is.
   */
  private headFor(
    base: number,
    boundary: number,
    clients: ReadonlyMap<string, LoggedClient>,
  ): readonly TableChange[][] {
    const kept = this.heads.get(base);
    this.heads.delete(base);
    if (kept?.boundary === boundary) {
      this.heads.set(base, kept);
      return kept.parts;
    }
    const changes = this.changesAfter(base, clients, boundary);
    const parts = changes.length > 0 ? cutIntoParts(changes) : [];
    // Right after the pieces were cut anew, a base before them has a head up to the
    // whole table: that one is not worth keeping.
    if (parts.length > 1) return parts;
    this.heads.set(base, { boundary, parts });
    if (this.heads.size > HEADS_KEPT) {
      const oldest = this.heads.keys().next().value;
      if (oldest !== undefined) this.heads.delete(oldest);
    }
    return parts;
  }

  /** The first parts kept, and their parts in all. */
  get keptHeads(): { readonly heads: number; readonly parts: number } {
    let parts = 0;
    for (const head of this.heads.values()) parts += head.parts.length;
    return { heads: this.heads.size, parts };
  }

  /**
   * The kept snapshot, then the pieces since it: one push that ends at the current
   * version, of parts built once. A new snapshot is built once the table has moved on
   * by a sixteenth of its size since the last, and the pieces are cut where it ends.
   */
  private currentSnapshot(clients: ReadonlyMap<string, LoggedClient>): TablePushContent {
    let kept = this.snapshot;
    if (
      !kept ||
      kept.version < this.oldestBase ||
      this.version - kept.version > Math.floor(clients.size / 16) ||
      !this.pieces.beginsAt(kept.version)
    ) {
      kept = { version: this.version, base: undefined, parts: cutIntoParts(snapshotOf(clients)) };
      this.sealPieces(clients, this.version);
      this.snapshot = kept;
    }
    if (kept.version === this.version) return kept;
    this.sealPieces(clients);
    return {
      version: this.version,
      base: undefined,
      parts: [...kept.parts, ...this.pieces.partsFrom(kept.version, this.version)],
    };
  }

  /**
   * Reads the log's new changes into pieces, and lets go of those that no push can use:
   * a client behind by more changes than the table has entries gets a snapshot, so
   * pieces older than that are never sent, and what is kept does not grow with the
   * number of changes.
   */
  private sealPieces(clients: ReadonlyMap<string, LoggedClient>, endingAt?: number): void {
    const current = currentEntryOf(clients);
    if (endingAt === undefined) this.pieces.seal(this.entries, this.version, current);
    else this.pieces.sealAt(this.entries, endingAt, current);
    this.pieces.dropBefore(Math.max(this.oldestBase, this.version - clients.size));
  }

  /** The changes the pieces hold, for the bound on what they keep. */
  get piecesKept(): { readonly pieces: number; readonly changes: number } {
    return this.pieces.kept;
  }

  private append(key: string, name: string): number {
    this.version++;
    this.entries.push({ version: this.version, key, name });
    if (this.entries.length > TABLE_LOG_LIMIT) {
      const dropped = this.entries.length - TABLE_LOG_LIMIT / 2;
      this.oldestBase = this.entries[dropped - 1]?.version ?? this.oldestBase;
      this.entries = this.entries.slice(dropped);
      this.pieces.dropBefore(this.oldestBase);
    }
    return this.version;
  }

  /** The changes after `base` (up to `through`), each key once, as it is now. */
  private changesAfter(
    base: number,
    clients: ReadonlyMap<string, LoggedClient>,
    through = this.version,
  ): TableChange[] {
    const changed: TableChange[] = [];
    const seen = new Set<string>();
    const first = this.entries[0]?.version ?? 0;
    // Newest first, so each key is taken once.
    for (let index = through - first; index >= 0; index--) {
      const entry = this.entries[index];
      if (!entry || entry.version <= base) break;
      if (seen.has(entry.key)) continue;
      seen.add(entry.key);
      const client = clients.get(entry.key);
      changed.push(client ? this.deltaEntry(client, base) : { gone: true, name: entry.name });
    }
    return changed.reverse();
  }

  /** The entry, without the key a client holding `base` already has. */
  private deltaEntry(client: LoggedClient, base: number): TableEntryChange {
    const known = this.keysSince.get(client.key);
    if (known === undefined || known.ak !== client.ak || known.since > base) {
      return tableEntry(client);
    }
    const { name, ip, port, online } = client;
    return { ip, name, online, port };
  }
}

/**
 * How far the table may have moved on past a kept delta: a client given it is behind
 * again by at most this many changes, which its next push brings.
 */
function deltaReuseVersions(tableSize: number): number {
  return Math.max(DELTA_REUSE_MIN_VERSIONS, Math.floor(tableSize / 64));
}

/** The entry a snapshot or piece carries: every field, its key included. */
export function tableEntry({ name, ip, port, online, ak }: LoggedClient): TableEntry {
  return { ak, ip, name, online, port };
}

/** What a piece says of a change: the entry as it is now, key included, or `gone`. */
function currentEntryOf(clients: ReadonlyMap<string, LoggedClient>): CurrentEntry {
  return (entry: LogEntry) => {
    const client = clients.get(entry.key);
    return client ? tableEntry(client) : { gone: true, name: entry.name };
  };
}

function entriesIn(parts: readonly (readonly TableChange[])[]): number {
  let entries = 0;
  for (const part of parts) entries += part.length;
  return entries;
}

function snapshotOf(clients: ReadonlyMap<string, LoggedClient>): TableEntry[] {
  return [...clients.values()].map(tableEntry);
}

function cutIntoParts(
  changes: readonly TableChange[],
  partBytes = TABLE_PART_BYTES,
): TableChange[][] {
  const parts: TableChange[][] = [[]];
  let bytes = 0;
  for (const change of changes) {
    const size = bytesOnWire(change);
    const current = parts[parts.length - 1];
    if (current && current.length > 0 && bytes + size > partBytes) {
      parts.push([change]);
      bytes = size;
    } else {
      current?.push(change);
      bytes += size;
    }
  }
  return parts;
}

/** A part cut again for a client sent small parts; kept, so that all such clients share the same arrays (and bytes). */
const smallPartsOf = new WeakMap<readonly TableChange[], readonly (readonly TableChange[])[]>();

/** `part` as parts of at most TABLE_SMALL_PART_BYTES (itself when it is no larger). */
export function inSmallParts(part: readonly TableChange[]): readonly (readonly TableChange[])[] {
  let small = smallPartsOf.get(part);
  if (small === undefined) {
    const cut = cutIntoParts(part, TABLE_SMALL_PART_BYTES);
    small = cut.length === 1 ? [part] : cut;
    smallPartsOf.set(part, small);
  }
  return small;
}
