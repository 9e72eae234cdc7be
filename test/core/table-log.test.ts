import { describe, expect, test } from "bun:test";
import { type LoggedClient, TableLog } from "../../src/core/table-log.ts";
import {
  DELTA_ENTRIES_KEPT,
  DELTA_REUSE_MIN_VERSIONS,
  DELTAS_KEPT,
} from "../../src/core/timing.ts";

const AK = "A".repeat(43);

function tableOf(count: number): Map<string, LoggedClient> {
  const clients = new Map<string, LoggedClient>();
  for (let index = 0; index < count; index++) {
    const name = `c${index}`;
    clients.set(name, {
      key: name,
      name,
      ip: "127.0.0.1",
      port: 10_000 + index,
      online: true,
      ak: AK,
    });
  }
  return clients;
}

/** Registers every client, then returns a function that takes one of them offline. */
function loggedTable(count: number) {
  const clients = tableOf(count);
  const log = new TableLog("0123456789abcdef");
  const entryVersions = new Map<string, number>();
  for (const client of clients.values()) entryVersions.set(client.key, log.recordChange(client));
  const goOffline = (index: number): number => {
    const key = `c${index}`;
    const client = clients.get(key);
    if (!client) throw new Error(`no client ${key}`);
    const offline = { ...client, online: false };
    clients.set(key, offline);
    const version = log.recordChange(offline);
    entryVersions.set(key, version);
    return version;
  };
  return { clients, log, goOffline, entryVersions };
}

function namesIn(content: { parts: readonly (readonly { name: string }[])[] }): string[] {
  return content.parts.flat().map((entry) => entry.name);
}

describe("deltas kept across changes", () => {
  test("clients at one base get the same delta while the table moves on by a few versions", () => {
    const { clients, log, goOffline } = loggedTable(100);
    const base = log.version;
    goOffline(1);
    goOffline(2);
    const first = log.pushFor(base, clients);
    expect(first.version).toBe(base + 2);
    expect(namesIn(first)).toEqual(["c1", "c2"]);
    goOffline(3);
    // Another client at the same base, one change later: the same delta, serialised once.
    expect(log.pushFor(base, clients)).toBe(first);
    for (let index = 4; index < 4 + DELTA_REUSE_MIN_VERSIONS; index++) goOffline(index);
    // Moved on past the bound: built anew, with every change since the base.
    const later = log.pushFor(base, clients);
    expect(later).not.toBe(first);
    expect(later.version).toBe(log.version);
    expect(namesIn(later)).toHaveLength(3 + DELTA_REUSE_MIN_VERSIONS);
  });

  test("a kept delta never shows a client's own entry as it was before its last change", () => {
    const { clients, log, goOffline } = loggedTable(50);
    const base = log.version;
    goOffline(1);
    const kept = log.pushFor(base, clients);
    const own = goOffline(7);
    const forSeven = log.pushFor(base, clients, own);
    expect(forSeven).not.toBe(kept);
    expect(namesIn(forSeven)).toEqual(["c1", "c7"]);
  });

  test("an empty delta is not given again once the table has moved: it would bring nothing", () => {
    const { clients, log, goOffline } = loggedTable(50);
    const base = log.version;
    const empty = log.pushFor(base, clients);
    expect(namesIn(empty)).toEqual([]);
    goOffline(3);
    const next = log.pushFor(base, clients);
    expect(next.version).toBe(base + 1);
    expect(namesIn(next)).toEqual(["c3"]);
  });

  test("what is kept stays bounded, however many bases ask", () => {
    const { clients, log, goOffline } = loggedTable(2_000);
    const firstBase = log.version;
    for (let index = 0; index < 1_500; index++) {
      goOffline(index);
      // A client at each version so far asks: many bases, deltas of every size.
      log.pushFor(firstBase + Math.floor(index / 2), clients);
      const kept = log.keptDeltas;
      expect(kept.deltas).toBeLessThanOrEqual(DELTAS_KEPT);
      expect(kept.entries).toBeLessThanOrEqual(DELTA_ENTRIES_KEPT);
    }
    expect(log.keptDeltas.deltas).toBeGreaterThan(0);
  });

  test("every client ends at the newest version, taking kept deltas one after another", () => {
    const { clients, log, goOffline } = loggedTable(300);
    let held = log.version;
    const shownOffline = new Set<string>();
    let pushes = 0;
    for (let index = 0; index < 200; index++) {
      goOffline(index);
      if (index % 3 === 0) {
        const push = log.pushFor(held, clients);
        for (const name of namesIn(push)) shownOffline.add(name);
        held = push.version;
        pushes++;
      }
    }
    while (held !== log.version) {
      const push = log.pushFor(held, clients);
      expect(push.version).toBeGreaterThan(held);
      for (const name of namesIn(push)) shownOffline.add(name);
      held = push.version;
      pushes++;
    }
    expect(shownOffline.size).toBe(200);
    expect(pushes).toBeLessThan(200);
  });
});
