import { expect, test } from "bun:test";
import { utf8Length } from "../../src/store/offline-store.ts";

test("utf8Length agrees with TextEncoder, lone surrogates counted as U+FFFD", () => {
  const encoder = new TextEncoder();
  const samples = [
    "",
    "ascii",
    "é",
    "€",
    "😀",
    "a\uD800b",
    "\uDC00",
    "\uD83D\uDE00\uD83D",
    "\u0000\u007F\u0080\u07FF\u0800\uFFFF",
  ];
  let seed = 7;
  const random = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  for (let n = 0; n < 2_000; n++) {
    const units = Array.from({ length: Math.floor(random() * 12) }, () =>
      Math.floor(random() * 0x10000),
    );
    samples.push(String.fromCharCode(...units));
  }
  for (const text of samples) expect(utf8Length(text)).toBe(encoder.encode(text).byteLength);
});
