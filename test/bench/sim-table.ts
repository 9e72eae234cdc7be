/**
 * What one simulated client knows of the server's table, kept as PROTOCOL.md v5 ("The
 * client table: a versioned change log") says, but without the entries themselves: the
 * version it holds (the `have` of its acks), and the names it holds as offline, which is
 * all the benchmark asks of a table. 10,000 clients holding 10,000 entries each would
 * cost the swarm more than the server, so only a few witnesses keep every name
 * (`keepNames`): the cluster benchmark asks one client per node whether its table is full.
 */

/** One entry of a `table` push, as far as the bookkeeping needs it. */
export interface EntryChange {
  readonly name: string;
  readonly online?: boolean;
  readonly gone?: boolean;
}

/**
 * The entries of a part's `clients` as they travel (PROTOCOL.md, "Entries"): arrays
 * `[name, ip, port, online, ak?]`, and `[name]` for a forgotten name. Anything else is skipped.
 */
export function entriesFromWire(clients: unknown): EntryChange[] {
  if (!Array.isArray(clients)) return [];
  const changes: EntryChange[] = [];
  for (const entry of clients) {
    if (!Array.isArray(entry) || typeof entry[0] !== "string") continue;
    const [name, , , online] = entry as unknown[];
    if (entry.length === 1) changes.push({ name: name as string, gone: true });
    else if (typeof online === "boolean") changes.push({ name: name as string, online });
  }
  return changes;
}

/** One datagram of a push: a snapshot part (no `base`) or a delta part. */
export interface TablePart {
  readonly version: number;
  readonly base?: number;
  /** 0-based; 0 of 1 when the push is one datagram. */
  readonly part: number;
  readonly parts: number;
  /**
   * Every entry, in order (a name may come again: the last says how it is); a snapshot
   * may give only the names it shows offline (the others are online).
   */
  readonly entries: readonly EntryChange[];
  /** Every entry is online: it changes nothing in a table that shows none offline. */
  readonly quiet?: boolean;
}

/** Parts a client keeps unread at most: past this it reads them, so they are not all kept. */
const UNREAD_PARTS_AT_MOST = 256;

interface Assembly {
  readonly version: number;
  readonly base: number | undefined;
  readonly parts: number;
  readonly received: Map<number, TablePart>;
}

export class SimTable {
  /** The epoch the version belongs to, from `registered`. */
  epoch: string | undefined;
  /** False until a snapshot of this epoch was applied. */
  holds = false;
  /** The version held; 0 while nothing is held. What every `table` ack says in `have`. */
  version = 0;
  /** Complete pushes applied: a real client prints `[Client table updated.]` for each. */
  applied = 0;
  /** Names this client's table shows offline, once the parts applied since are read. */
  private readonly offlineNames = new Set<string>();
  /**
   * Entries of pushes applied but not yet read into `offlineNames`: reading them is the
   * swarm's biggest cost when 1,000 of 10,000 leave (9 million set operations), and
   * only the check after a fan-out asks, so it waits until then, not inside the times.
   */
  private readonly unread: (readonly EntryChange[])[] = [];
  /** Every name the table holds, online or not; kept only by a witness. */
  readonly names: Set<string> | undefined;
  private assembly: Assembly | undefined;

  /** `keepNames`: fed every entry of a snapshot, it keeps every name the table holds. */
  constructor({ keepNames = false }: { keepNames?: boolean } = {}) {
    this.names = keepNames ? new Set() : undefined;
  }

  /** Names held online; undefined unless the table keeps names. */
  get onlineCount(): number | undefined {
    return this.names === undefined ? undefined : this.names.size - this.offline.size;
  }

  /** Names this client's table shows offline. */
  get offline(): ReadonlySet<string> {
    for (const entries of this.unread) this.upsert(entries);
    this.unread.length = 0;
    return this.offlineNames;
  }

  /** `registered` names the epoch; a table of another epoch is worth nothing. */
  setEpoch(epoch: string | undefined): void {
    if (epoch === undefined || epoch === this.epoch) return;
    if (this.epoch !== undefined) {
      this.holds = false;
      this.version = 0;
      this.offlineNames.clear();
      this.unread.length = 0;
      this.names?.clear();
      this.assembly = undefined;
    }
    this.epoch = epoch;
  }

  /** The version to send as `have` (0: nothing held). */
  get have(): number {
    return this.holds ? this.version : 0;
  }

  /**
   * Takes one part; returns true when it completed a push that was applied. A delta is
   * applied when the version held is at least its `base`; one the client cannot apply
   * is left, and the ack's `have` tells the server where the client is.
   */
  receive(part: TablePart): boolean {
    if (part.parts < 1 || part.part < 0 || part.part >= part.parts) return false;
    if (!this.applicable(part)) return false;
    let assembly = this.assembly;
    if (
      !assembly ||
      assembly.version !== part.version ||
      assembly.base !== part.base ||
      assembly.parts !== part.parts
    ) {
      // A newer push replaces one still being gathered; an older one is a late repeat.
      if (assembly && part.version < assembly.version) return false;
      assembly = { version: part.version, base: part.base, parts: part.parts, received: new Map() };
      this.assembly = assembly;
    }
    assembly.received.set(part.part, part);
    if (assembly.received.size < assembly.parts) return false;
    this.assembly = undefined;
    // In part order: a later entry for a name overrides an earlier one.
    const parts: TablePart[] = [];
    for (let index = 0; index < assembly.parts; index++) {
      const received = assembly.received.get(index);
      if (received) parts.push(received);
    }
    if (assembly.base === undefined) {
      this.offlineNames.clear();
      this.unread.length = 0;
      this.names?.clear();
    }
    const quiet = parts.every((received) => received.quiet === true);
    if (this.names !== undefined) {
      for (const received of parts) this.upsert(received.entries);
    } else if (!quiet || this.offlineNames.size > 0 || this.unread.length > 0) {
      for (const received of parts) this.unread.push(received.entries);
      if (this.unread.length > UNREAD_PARTS_AT_MOST) void this.offline;
    }
    this.holds = true;
    this.version = assembly.version;
    this.applied++;
    return true;
  }

  private applicable(part: TablePart): boolean {
    if (part.base === undefined) return !this.holds || part.version > this.version;
    return this.holds && this.version >= part.base && part.version > this.version;
  }

  private upsert(entries: readonly EntryChange[]): void {
    for (const entry of entries) {
      if (entry.gone === true) {
        this.offlineNames.delete(entry.name);
        this.names?.delete(entry.name);
        continue;
      }
      if (entry.online === true) this.offlineNames.delete(entry.name);
      else if (entry.online === false) this.offlineNames.add(entry.name);
      this.names?.add(entry.name);
    }
  }
}
