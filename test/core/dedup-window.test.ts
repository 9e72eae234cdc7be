import { describe, expect, test } from "bun:test";
import { DedupWindow } from "../../src/core/dedup-window.ts";

describe("DedupWindow", () => {
  test("a key is new once, then seen while the window lasts", () => {
    const window = new DedupWindow(1000, 10);
    expect(window.seen("a", 0)).toBe(false);
    expect(window.seen("a", 1)).toBe(true);
    expect(window.seen("b", 1)).toBe(false);
    expect(window.seen("a", 999)).toBe(true);
  });

  test("a key is forgotten keepMs after it was last seen", () => {
    const window = new DedupWindow(1000, 10);
    window.seen("a", 0);
    window.seen("a", 500);
    expect(window.seen("a", 1499)).toBe(true);
    expect(window.seen("b", 2498)).toBe(false);
    expect(window.size).toBe(2);
    // "a" was last seen at 1499: gone at 2499, while "b" stays.
    expect(window.seen("a", 2499)).toBe(false);
    expect(window.seen("b", 2500)).toBe(true);
  });

  test("expired keys are dropped, not just ignored", () => {
    const window = new DedupWindow(100, 1000);
    for (let index = 0; index < 50; index++) window.seen(`k${index}`, index);
    expect(window.size).toBe(50);
    window.seen("late", 1000);
    expect(window.size).toBe(1);
  });

  test("the window never holds more than its size; the oldest key goes first", () => {
    const window = new DedupWindow(60_000, 100);
    for (let index = 0; index < 10_000; index++) {
      window.seen(`k${index}`, index);
      expect(window.size).toBeLessThanOrEqual(100);
    }
    expect(window.size).toBe(100);
    expect(window.seen("k9999", 10_000)).toBe(true);
    expect(window.seen("k9900", 10_000)).toBe(true);
    // Evicted long ago, so new again (and now it evicts the oldest remaining).
    expect(window.seen("k0", 10_000)).toBe(false);
    expect(window.seen("k9901", 10_000)).toBe(false);
  });

  test("seeing a key again refreshes it, so a busy key is not evicted", () => {
    const window = new DedupWindow(60_000, 3);
    window.seen("hot", 0);
    window.seen("a", 1);
    window.seen("b", 2);
    window.seen("hot", 3);
    window.seen("c", 4);
    expect(window.seen("hot", 5)).toBe(true);
    expect(window.seen("a", 6)).toBe(false);
  });
});
