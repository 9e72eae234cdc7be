import { describe, expect, test } from "bun:test";
import { ExpiringMap } from "../../src/core/expiring-map.ts";

interface Kept {
  readonly expiresAt: number;
  readonly text: string;
}

const kept = (expiresAt: number, text = "") => ({ expiresAt, text });

function map(limit = 100): ExpiringMap<string, Kept> {
  return new ExpiringMap<string, Kept>((value) => value.expiresAt, limit);
}

describe("expiring map", () => {
  test("forgets what expired, from the oldest, and keeps the rest", () => {
    const entries = map();
    entries.set("a", kept(10));
    entries.set("b", kept(20));
    entries.set("c", kept(30));
    entries.forgetExpired(20);
    expect(entries.has("a")).toBe(false);
    expect(entries.has("b")).toBe(false);
    expect(entries.get("c")?.expiresAt).toBe(30);
    expect(entries.size).toBe(1);
  });

  test("a key deleted, or set again, expires with its latest value only", () => {
    const entries = map();
    entries.set("a", kept(10, "first"));
    entries.set("b", kept(11));
    entries.delete("b");
    entries.set("a", kept(50, "again"));
    entries.set("b", kept(60));
    entries.forgetExpired(20);
    expect(entries.get("a")?.text).toBe("again");
    expect(entries.has("b")).toBe(true);
    entries.forgetExpired(55);
    expect(entries.has("a")).toBe(false);
    expect(entries.has("b")).toBe(true);
  });

  test("past its limit the oldest live entry goes first", () => {
    const entries = map(3);
    entries.set("a", kept(10));
    entries.set("b", kept(11));
    entries.set("c", kept(12));
    entries.delete("a");
    entries.set("d", kept(13));
    entries.set("e", kept(14));
    expect([...entries.values()].map((value) => value.expiresAt).sort()).toEqual([12, 13, 14]);
    entries.set("c", kept(15, "set again, not added"));
    expect(entries.size).toBe(3);
    expect(entries.get("d")?.expiresAt).toBe(13);
  });

  test("a key set again and again does not grow its queue past twice the entries, plus 1,024", () => {
    const entries = map(100_000);
    entries.set("other", kept(1));
    for (let copy = 0; copy < 100_000; copy++) {
      entries.set("replayed", kept(2 + copy));
      expect(entries.queued).toBeLessThanOrEqual(2 * entries.size + 1024 + 1);
    }
    expect(entries.size).toBe(2);
    // The compaction kept each key's latest value, in order: "other" still expires first.
    entries.forgetExpired(1);
    expect(entries.has("other")).toBe(false);
    expect(entries.get("replayed")?.expiresAt).toBe(100_001);
  });

  test("answers like a plain map over 50,000 random steps", () => {
    let seed = 7;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed / 2_147_483_648;
    };
    const entries = map(50);
    const reference = new Map<string, Kept>();
    let now = 0;
    let fullSteps = 0;
    for (let step = 0; step < 50_000; step++) {
      now += random() * 2;
      const key = `k${Math.floor(random() * 80)}`;
      const draw = random();
      if (draw < 0.6) {
        const value = kept(now + 100);
        if (!reference.has(key) && reference.size >= 50) {
          const oldest = reference.keys().next().value;
          if (oldest !== undefined) reference.delete(oldest);
        }
        reference.delete(key);
        reference.set(key, value);
        entries.set(key, value);
      } else if (draw < 0.7) {
        expect(entries.delete(key)).toBe(reference.delete(key));
      } else {
        for (const [oldKey, value] of reference) {
          if (value.expiresAt > now) break;
          reference.delete(oldKey);
        }
        entries.forgetExpired(now);
      }
      expect(entries.size).toBe(reference.size);
      expect(entries.get(key)).toBe(reference.get(key));
      expect(entries.queued).toBeLessThanOrEqual(2 * entries.size + 1025);
      if (reference.size === 50) fullSteps++;
    }
    const times = (values: Iterable<Kept>) =>
      [...values].map((value) => value.expiresAt).sort((a, b) => a - b);
    expect(times(entries.values())).toEqual(times(reference.values()));
    expect(fullSteps).toBeGreaterThan(1000);
  });
});
