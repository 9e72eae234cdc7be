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
  for (const key of ["a", "b", "c"]) queue.add(key);
  for (let round = 0; round < 100_000; round++) {
    queue.add("again");
    queue.delete("again");
    expect(queue.queued).toBeLessThanOrEqual(2 * (queue.size + 1) + 1024);
  }
  queue.add("again");
  expect(queue.size).toBe(4);
  // The keys that stayed keep their order through every drop of stale slots.
  expect([queue.shift(), queue.shift(), queue.shift(), queue.shift(), queue.shift()]).toEqual([
    "a",
    "b",
    "c",
    "again",
    undefined,
  ]);
});

test("against a plain array over random adds, deletes and shifts, the same keys come out in the same order", () => {
  // Few shifts among many deletes and adds again: stale slots pile up and are dropped,
  // many times over, between shifts that check the order.
  for (let seed = 1; seed <= 25; seed++) {
    let state = seed;
    const random = (below: number) => {
      state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
      return Math.floor((state / 2_147_483_648) * below);
    };
    const queue = new FifoSet<number>();
    let reference: number[] = [];
    const shifted: (number | undefined)[] = [];
    const expected: (number | undefined)[] = [];
    let sweeps = 0;
    for (let step = 0; step < 60_000; step++) {
      const key = random(16);
      const action = random(100_000);
      if (action < 50_000) {
        const isNew = !reference.includes(key);
        const before = queue.queued;
        queue.add(key);
        if (isNew) {
          reference.push(key);
          if (queue.queued < before) sweeps++;
          if (queue.queued > 2 * queue.size + 1024) {
            throw new Error(`${queue.queued} slots for ${queue.size} keys (seed ${seed})`);
          }
        }
      } else if (action < 99_990) {
        queue.delete(key);
        reference = reference.filter((kept) => kept !== key);
      } else {
        shifted.push(queue.shift());
        expected.push(reference.shift());
      }
      if (queue.size !== reference.length) throw new Error(`size at step ${step} (seed ${seed})`);
    }
    for (let key = queue.shift(); key !== undefined; key = queue.shift()) shifted.push(key);
    expected.push(...reference);
    expect(shifted).toEqual(expected);
    expect(sweeps).toBeGreaterThan(0);
  }
});
