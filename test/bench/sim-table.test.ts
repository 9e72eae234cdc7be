import { describe, expect, test } from "bun:test";
import { SimTable } from "./sim-table.ts";

const on = (name: string) => ({ name, online: true });
const off = (name: string) => ({ name, online: false });

describe("the scale benchmark's table bookkeeping (PROTOCOL.md v5)", () => {
  test("a snapshot is applied once all its parts are held, and only then moves have", () => {
    const table = new SimTable();
    table.setEpoch("00112233aabbccdd");
    expect(table.have).toBe(0);
    expect(table.receive({ version: 7, part: 1, parts: 2, entries: [off("b")] })).toBe(false);
    expect(table.have).toBe(0);
    expect(table.receive({ version: 7, part: 1, parts: 2, entries: [off("b")] })).toBe(false);
    expect(table.receive({ version: 7, part: 0, parts: 2, entries: [] })).toBe(true);
    expect(table.have).toBe(7);
    expect([...table.offline]).toEqual(["b"]);
    expect(table.applied).toBe(1);
  });

  test("a delta applies at or after its base, upserts and removes gone names", () => {
    const table = new SimTable();
    table.receive({ version: 5, part: 0, parts: 1, entries: [off("a"), off("b")] });
    expect(table.receive({ version: 9, base: 4, part: 0, parts: 1, entries: [on("a")] })).toBe(
      true,
    );
    expect(table.have).toBe(9);
    expect(
      table.receive({
        version: 10,
        base: 9,
        part: 0,
        parts: 1,
        entries: [{ name: "b", gone: true }, off("c")],
      }),
    ).toBe(true);
    expect([...table.offline].sort()).toEqual(["c"]);
    expect(table.applied).toBe(3);
  });

  test("a delta from beyond the version held, or a repeat, changes nothing", () => {
    const table = new SimTable();
    expect(table.receive({ version: 3, base: 1, part: 0, parts: 1, entries: [off("a")] })).toBe(
      false,
    );
    expect(table.have).toBe(0);
    table.receive({ version: 5, part: 0, parts: 1, entries: [] });
    expect(table.receive({ version: 8, base: 6, part: 0, parts: 1, entries: [off("a")] })).toBe(
      false,
    );
    expect(table.receive({ version: 6, base: 5, part: 0, parts: 1, entries: [off("a")] })).toBe(
      true,
    );
    expect(table.receive({ version: 6, base: 5, part: 0, parts: 1, entries: [off("a")] })).toBe(
      false,
    );
    expect(table.have).toBe(6);
    expect(table.applied).toBe(2);
  });

  test("a delta in parts is applied when complete; an older snapshot is a late repeat", () => {
    const table = new SimTable();
    table.receive({ version: 2, part: 0, parts: 1, entries: [] });
    expect(table.receive({ version: 4, base: 2, part: 0, parts: 2, entries: [off("a")] })).toBe(
      false,
    );
    expect(table.have).toBe(2);
    expect(table.receive({ version: 4, base: 2, part: 1, parts: 2, entries: [off("b")] })).toBe(
      true,
    );
    expect(table.have).toBe(4);
    expect(table.receive({ version: 3, part: 0, parts: 1, entries: [] })).toBe(false);
    expect([...table.offline].sort()).toEqual(["a", "b"]);
  });

  test("another epoch drops the table held", () => {
    const table = new SimTable();
    table.setEpoch("aaaaaaaaaaaaaaaa");
    table.receive({ version: 9, part: 0, parts: 1, entries: [off("a")] });
    table.setEpoch("aaaaaaaaaaaaaaaa");
    expect(table.have).toBe(9);
    table.setEpoch("bbbbbbbbbbbbbbbb");
    expect(table.have).toBe(0);
    expect(table.offline.size).toBe(0);
    expect(table.receive({ version: 2, part: 0, parts: 1, entries: [] })).toBe(true);
    expect(table.have).toBe(2);
  });

  test("a witness keeps every name: snapshot, deltas that add, take offline and remove", () => {
    const witness = new SimTable({ keepNames: true });
    witness.setEpoch("aaaaaaaaaaaaaaaa");
    witness.receive({ version: 3, part: 0, parts: 2, entries: [on("a"), off("b")] });
    expect(witness.onlineCount).toBe(0);
    witness.receive({ version: 3, part: 1, parts: 2, entries: [on("c")] });
    expect([...(witness.names ?? [])].sort()).toEqual(["a", "b", "c"]);
    expect(witness.onlineCount).toBe(2);
    witness.receive({ version: 4, base: 3, part: 0, parts: 1, entries: [on("d"), on("b")] });
    expect(witness.onlineCount).toBe(4);
    witness.receive({
      version: 5,
      base: 4,
      part: 0,
      parts: 1,
      entries: [off("a"), { name: "c", gone: true }],
    });
    expect([...(witness.names ?? [])].sort()).toEqual(["a", "b", "d"]);
    expect(witness.onlineCount).toBe(2);
    witness.setEpoch("bbbbbbbbbbbbbbbb");
    expect(witness.onlineCount).toBe(0);
  });

  test("a table that is no witness keeps no names", () => {
    const table = new SimTable();
    table.receive({ version: 1, part: 0, parts: 1, entries: [on("a")] });
    expect(table.names).toBeUndefined();
    expect(table.onlineCount).toBeUndefined();
  });
});
