import { expect, test } from "bun:test";
import { FifoSet } from "../../src/core/fifo-set.ts";

test("keys come out once each, oldest first; removed ones never", () => {
  const queue = new FifoSet<string>();
  for (const key of ["a", "b", "a", "c", "d"]) queue.add(key);
  queue.delete("b");
  expect(queue.size).toBe(3);
  expect(queue.shift()).toBe("a");
  queue.add("a");
  expect([queue.shift(), queue.shift(), queue.shift(), queue.shift()]).toEqual([
    "c",
    "d",
    "a",
    undefined,
  ]);
  expect(queue.size).toBe(0);
});

test("a re-added key goes to the back, even if a deleted copy of it is still in front", () => {
  const queue = new FifoSet<number>();
  queue.add(1);
  queue.add(2);
  queue.delete(1);
  queue.add(1);
  expect([queue.shift(), queue.shift(), queue.shift()]).toEqual([2, 1, undefined]);
});

test("through many rounds of adds and shifts, every key comes out once, in order", () => {
  const queue = new FifoSet<number>();
  const out: number[] = [];
  for (let round = 0; round < 100; round++) {
    for (let i = 0; i < 100; i++) queue.add(round * 100 + i);
    if (round % 3 === 0) queue.delete(round * 100 + 50);
    for (let i = 0; i < 90; i++) {
      const key = queue.shift();
      if (key !== undefined) out.push(key);
    }
  }
  for (let key = queue.shift(); key !== undefined; key = queue.shift()) out.push(key);
  const expected = Array.from({ length: 10_000 }, (_, k) => k).filter(
    (k) => !(k % 100 === 50 && Math.floor(k / 100) % 3 === 0),
  );
  expect(out).toEqual(expected);
  expect(queue.size).toBe(0);
});

test("a key deleted and added again before it reaches the front does not grow the queue without bound", () => {
  const queue = new FifoSet<string>();
  queue.add("first");
  for (let round = 0; round < 100_000; round++) {
    queue.add("again");
    queue.delete("again");
  }
  queue.add("again");
  expect(queue.size).toBe(2);
  expect(queue.queued).toBeLessThanOrEqual(2 * queue.size + 1024 + 1);
  expect([queue.shift(), queue.shift(), queue.shift()]).toEqual(["first", "again", undefined]);
});

test("against a plain array over random adds, deletes and shifts, the same keys come out in the same order", () => {
  let seed = 7;
  const random = (below: number) => {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    return Math.floor((seed / 2_147_483_648) * below);
  };
  // Few shifts among many deletes and adds again: stale slots pile up and are dropped.
  const queue = new FifoSet<number>();
  let reference: number[] = [];
  const shifted: (number | undefined)[] = [];
  const expected: (number | undefined)[] = [];
  let largestQueued = 0;
  let largestAllowed = 0;
  for (let step = 0; step < 200_000; step++) {
    const key = random(16);
    const action = random(100_000);
    if (action < 50_000) {
      queue.add(key);
      if (!reference.includes(key)) reference.push(key);
    } else if (action < 99_990) {
      queue.delete(key);
      reference = reference.filter((kept) => kept !== key);
    } else {
      shifted.push(queue.shift());
      expected.push(reference.shift());
    }
    if (queue.size !== reference.length) throw new Error(`size ${queue.size} at step ${step}`);
    largestQueued = Math.max(largestQueued, queue.queued);
    largestAllowed = Math.max(largestAllowed, 2 * queue.size + 1024 + 1);
  }
  expect(shifted).toEqual(expected);
  expect(shifted.length).toBeGreaterThan(10);
  expect(largestQueued).toBeLessThanOrEqual(largestAllowed);
  expect(largestQueued).toBeGreaterThan(1024); // the stale slots did pile up to the bound
});
