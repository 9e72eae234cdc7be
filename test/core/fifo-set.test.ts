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
