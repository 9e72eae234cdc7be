import { describe, expect, test } from "bun:test";
import { type LoggedClient, TableLog, type TablePushContent } from "../../src/core/table-log.ts";
import { BULK_DELTA_ABOVE_VERSIONS, HEADS_KEPT, TABLE_LOG_LIMIT } from "../../src/core/timing.ts";
import { seededRandom } from "../../src/io/seeded-random.ts";
import type { TableChange, TableEntry } from "../../src/protocol/messages.ts";

const EPOCH = "0123456789abcdef";
const akOf = (name: string, generation = 0) => `${name}-${generation}`.padEnd(43, "A");

function client(index: number, online = true, generation = 0): LoggedClient {
  const name = `c${index}`;
  return {
    key: name,
    name,
    ip: "127.0.0.1",
    port: 10_000 + index,
    online,
    ak: akOf(name, generation),
  };
}

type Table = Map<string, TableEntry>;

/** What a client does with a push (PROTOCOL.md): its entries in order, the last for a name wins. */
function apply(held: Table | undefined, push: TablePushContent): Table {
  const table: Table = push.base === undefined ? new Map() : new Map(held);
  for (const change of push.parts.flat() as TableChange[]) {
    if ("gone" in change) {
      table.delete(change.name);
      continue;
    }
    const ak = change.ak ?? table.get(change.name)?.ak;
    if (ak === undefined) throw new Error(`${change.name} without a key it does not hold`);
    table.set(change.name, { ...change, ak });
  }
  return table;
}

function tableOf(clients: ReadonlyMap<string, LoggedClient>): Table {
  const table: Table = new Map();
  for (const { name, ip, port, online, ak } of clients.values()) {
    table.set(name, { ak, ip, name, online, port });
  }
  return table;
}

/** A server's log with the tables it had at each version, to check a push against. */
function recordingLog(remember: (version: number) => boolean = () => true) {
  const clients = new Map<string, LoggedClient>();
  const log = new TableLog(EPOCH);
  const tables = new Map<number, Table>([[0, new Map()]]);
  const change = (next: LoggedClient): number => {
    clients.set(next.key, next);
    const version = log.recordChange(next);
    if (remember(version)) tables.set(version, tableOf(clients));
    return version;
  };
  const forget = (key: string): number => {
    const name = clients.get(key)?.name ?? key;
    clients.delete(key);
    const version = log.recordForgotten(key, name);
    tables.set(version, tableOf(clients));
    return version;
  };
  return { clients, log, tables, change, forget };
}

describe("pieces: the log cut once into parts that pushes share", () => {
  test("clients left at different versions by a registration storm share every part but the first", () => {
    const { clients, log, tables, change } = recordingLog((version) => version % 100 === 0);
    for (let index = 0; index < 7_000; index++) change(client(index));
    const early = log.pushFor(100, clients);
    const later = log.pushFor(700, clients);
    expect(apply(tables.get(100), early)).toEqual(tableOf(clients));
    expect(apply(tables.get(700), later)).toEqual(tableOf(clients));
    // The same part objects, so serialised and hashed once (codec and MAC caches key on them).
    const shared = later.parts.slice(1);
    expect(shared.length).toBeGreaterThanOrEqual(8);
    for (const part of shared) expect(early.parts).toContain(part);
    expect(later.parts.slice(1).every((part) => part.length > 0)).toBe(true);
  });

  test("clients far behind at one base share the part before the pieces too, and still end as the table is", () => {
    const { clients, log, tables, change, forget } = recordingLog((version) => version === 2_000);
    for (let index = 0; index < 2_000; index++) change(client(index));
    // A burst: 1,000 go offline, so clients that held version 2,000 are far behind.
    for (let index = 0; index < 1_000; index++) change(client(index, false));
    const first = log.pushFor(2_000, clients);
    const second = log.pushFor(2_000, clients);
    expect(first.base).toBe(2_000);
    expect(second.parts[0]).toBe(first.parts[0] as TableChange[]);
    expect(apply(tables.get(2_000), second)).toEqual(tableOf(clients));
    // Entries of that first part change again, one is forgotten, one comes back with another key.
    for (let index = 0; index < 50; index++) change(client(index, true));
    forget("c60");
    change(client(61, true, 1));
    const third = log.pushFor(2_000, clients);
    expect(third.parts[0]).toBe(first.parts[0] as TableChange[]);
    expect(apply(tables.get(2_000), third)).toEqual(tableOf(clients));
  });

  test("what only speeds up bursts can be let go (a quiet server): later pushes still end as the table is", () => {
    const { clients, log, tables, change } = recordingLog((version) => version % 500 === 0);
    for (let index = 0; index < 2_000; index++) change(client(index));
    for (let index = 0; index < 600; index++) change(client(index, false));
    for (const base of [500, 2_000, 2_500]) log.pushFor(base, clients);
    log.pushFor(undefined, clients);
    expect(log.piecesKept.pieces).toBeGreaterThan(0);
    expect(log.keptDeltas.deltas).toBeGreaterThan(0);
    log.letGoOfCaches();
    expect(log.piecesKept).toEqual({ pieces: 0, changes: 0 });
    expect(log.keptDeltas).toEqual({ deltas: 0, entries: 0 });
    for (let index = 600; index < 700; index++) change(client(index, false));
    for (const base of [500, 2_000, 2_500]) {
      expect(apply(tables.get(base), log.pushFor(base, clients))).toEqual(tableOf(clients));
    }
    expect(apply(undefined, log.pushFor(undefined, clients))).toEqual(tableOf(clients));
  });

  test("a first part is kept only when it is one part: after the pieces are cut anew, old bases' span the table", () => {
    const { clients, log, tables, change } = recordingLog((version) => version % 100 === 0);
    for (let index = 0; index < 3_000; index++) change(client(index));
    for (let index = 0; index < 2_000; index++) change(client(index, false));
    log.letGoOfCaches();
    for (let index = 0; index < 600; index++) change(client(index, true));
    for (let base = 3_000; base < 4_600; base += 100) {
      expect(apply(tables.get(base), log.pushFor(base, clients))).toEqual(tableOf(clients));
    }
    const kept = log.keptHeads;
    expect(kept.heads).toBeLessThanOrEqual(HEADS_KEPT);
    // Each kept head is one part at most, not the 1,000-2,600 changes before the cut.
    expect(kept.parts).toBeLessThanOrEqual(kept.heads);
  });

  test("joiners are given the kept snapshot and the pieces since: one push, at the newest version", () => {
    const { clients, log, tables, change } = recordingLog((version) => version > 2_000);
    for (let index = 0; index < 2_000; index++) change(client(index));
    const first = log.pushFor(undefined, clients);
    expect(first.version).toBe(log.version);
    // Changes short of a sixteenth of the table: the next joiner gets the same snapshot parts and the changes after.
    for (let index = 2_000; index < 2_100; index++) change(client(index));
    change(client(5, false));
    const second = log.pushFor(undefined, clients);
    expect(second.version).toBe(log.version);
    expect(second.base).toBeUndefined();
    for (const part of first.parts) expect(second.parts).toContain(part);
    expect(apply(undefined, second)).toEqual(tableOf(clients));
    expect(tables.get(log.version)).toEqual(tableOf(clients));
  });

  test("a snapshot built on pieces may name a forgotten client; applied in order, it is not in the table", () => {
    const { clients, log, change, forget } = recordingLog();
    for (let index = 0; index < 1_000; index++) change(client(index));
    log.pushFor(undefined, clients);
    forget("c3");
    const push = log.pushFor(undefined, clients);
    const names = push.parts.flat().map((entry) => entry.name);
    expect(names.filter((name) => name === "c3")).toHaveLength(2);
    expect(apply(undefined, push).has("c3")).toBe(false);
    expect(apply(undefined, push)).toEqual(tableOf(clients));
  });

  test("a key that changed is never shown from a piece sealed before: the new one comes last", () => {
    const { clients, log, tables, change } = recordingLog((version) => version === 1);
    for (let index = 0; index < 1_000; index++) change(client(index));
    log.pushFor(1, clients);
    // c10 comes back with another key.
    log.forgetKey("c10");
    change(client(10, true, 1));
    for (let index = 1_000; index < 1_400; index++) change(client(index));
    const push = log.pushFor(1, clients);
    expect(apply(tables.get(1), push).get("c10")?.ak).toBe(akOf("c10", 1));
    expect(apply(tables.get(1), push)).toEqual(tableOf(clients));
  });

  test("when the changes outnumber the entries (a few names changing over and over), a snapshot is smaller", () => {
    const { clients, log, change } = recordingLog();
    for (let index = 0; index < 100; index++) change(client(index));
    const base = log.version;
    for (let round = 0; round < 10; round++) {
      for (let index = 0; index < 100; index++) change(client(index, round % 2 === 0));
    }
    expect(log.version - base).toBeGreaterThan(BULK_DELTA_ABOVE_VERSIONS);
    const push = log.pushFor(base, clients);
    expect(push.base).toBeUndefined();
    expect(push.parts.flat().length).toBeLessThanOrEqual(2 * clients.size);
    expect(apply(undefined, push)).toEqual(tableOf(clients));
  });

  test("what the pieces keep does not grow with the number of changes, only with the table", () => {
    const { clients, log, change } = recordingLog(() => false);
    for (let index = 0; index < 2_000; index++) change(client(index));
    for (let round = 0; round < 20; round++) {
      for (let index = 0; index < 2_000; index++) change(client(index, round % 2 === 1));
      // A client far behind asks each round: pieces are read and sealed.
      log.pushFor(log.version - 300, clients);
      // Those older than the table's size in changes are let go (plus the piece that straddles the bound).
      expect(log.piecesKept.changes).toBeLessThanOrEqual(clients.size + 300);
    }
    expect(log.version).toBe(42_000);
    expect(log.piecesKept.pieces).toBeGreaterThan(0);
  });

  test("once the log is cut (more than TABLE_LOG_LIMIT changes), pieces go on from where it begins", () => {
    const remembered = (version: number) => version % 997 === 0;
    const { clients, log, tables, change } = recordingLog(remembered);
    for (let index = 0; index < 600; index++) change(client(index));
    let pushes = 0;
    while (log.version < TABLE_LOG_LIMIT + 20_000) {
      const index = log.version % 600;
      change(client(index, (log.version / 600) % 2 < 1));
      if (log.version % 5_000 === 0) {
        // A client 400 changes behind: pieces, read past where the log was cut.
        const base = [...tables.keys()].filter((version) => version <= log.version - 400).pop();
        if (base === undefined || !log.canDeltaFrom(EPOCH, base)) continue;
        const push = log.pushFor(base, clients);
        expect(apply(tables.get(base), push)).toEqual(tableOf(clients));
        pushes++;
      }
    }
    expect(pushes).toBeGreaterThan(20);
    expect(log.piecesKept.changes).toBeLessThanOrEqual(clients.size + 300);
  });

  test("any client, at any version, ends at the table as it is: 3,000 random changes", () => {
    const random = seededRandom(8);
    const { clients, log, tables, change, forget } = recordingLog();
    const generations = new Map<number, number>();
    for (let step = 0; step < 3_000; step++) {
      const index = Math.floor(random() * 400);
      const roll = random();
      if (roll < 0.1 && clients.has(`c${index}`)) {
        forget(`c${index}`);
      } else if (roll < 0.15 && clients.has(`c${index}`)) {
        const generation = (generations.get(index) ?? 0) + 1;
        generations.set(index, generation);
        log.forgetKey(`c${index}`);
        change(client(index, true, generation));
      } else {
        change(client(index, random() < 0.7, generations.get(index) ?? 0));
      }
      if (step % 7 === 0) {
        const base = random() < 0.2 ? undefined : Math.floor(random() * log.version);
        const push = log.pushFor(base, clients);
        const held = base === undefined ? undefined : tables.get(base);
        // A kept delta may end a few versions back (the next push brings the rest).
        expect(apply(held, push)).toEqual(tables.get(push.version) ?? new Map());
        if (push.base === undefined || log.version - push.base > BULK_DELTA_ABOVE_VERSIONS) {
          expect(push.version).toBe(log.version);
        }
      }
    }
  });
});
