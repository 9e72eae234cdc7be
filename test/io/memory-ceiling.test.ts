import { describe, expect, test } from "bun:test";
import { memoryCeiling } from "../../src/io/memory-ceiling.ts";

describe("memory ceiling", () => {
  test("collects only once the process grew past the headroom since the last collection", () => {
    let rss = 100;
    const collections: number[] = [];
    const ceiling = memoryCeiling(
      () => rss,
      () => {
        collections.push(rss);
        rss = 110; // what a collection gives back
      },
      50,
    );
    rss = 150;
    ceiling.check();
    expect(collections).toEqual([]);
    rss = 151;
    ceiling.check();
    expect(collections).toEqual([151]);
    // The new baseline is what was left after it: 110 + 50.
    rss = 160;
    ceiling.check();
    expect(collections).toEqual([151]);
    rss = 161;
    ceiling.check();
    expect(collections).toEqual([151, 161]);
  });

  test("the first quiet check after a busy one collects, once, and says it is the quiet kind", () => {
    let rss = 100;
    const collections: string[] = [];
    const ceiling = memoryCeiling(
      () => rss,
      (quiet) => {
        collections.push(`${rss}${quiet ? " quiet" : ""}`);
        rss = 100;
      },
      50,
    );
    // Quiet from the start: nothing to give back.
    ceiling.check(true);
    expect(collections).toEqual([]);
    rss = 130;
    ceiling.check(false);
    expect(collections).toEqual([]);
    ceiling.check(true);
    expect(collections).toEqual(["130 quiet"]);
    rss = 120;
    ceiling.check(true);
    expect(collections).toEqual(["130 quiet"]);
    // A collection for growth while busy leaves nothing for the quiet check after it.
    rss = 151;
    ceiling.check(false);
    expect(collections).toEqual(["130 quiet", "151"]);
    ceiling.check(true);
    expect(collections).toEqual(["130 quiet", "151"]);
  });

  test("a load that comes and goes is collected when quiet at most once per so many checks", () => {
    const rss = 100;
    let collections = 0;
    const ceiling = memoryCeiling(
      () => rss,
      (quiet) => {
        if (quiet) collections++;
      },
      50,
      5,
    );
    for (let second = 0; second < 20; second++) ceiling.check(second % 2 === 1);
    // Quiet at seconds 1, then not before 5 checks later: 1, 7, 13, 19.
    expect(collections).toBe(4);
  });

  test("once quiet for settledAfter checks in a row, it collects once more, and not again until busy", () => {
    const collections: number[] = [];
    let check = 0;
    const ceiling = memoryCeiling(
      () => 100,
      (quiet) => {
        if (quiet) collections.push(check);
      },
      50,
      5,
      8,
    );
    const run = (quiet: boolean, checks: number) => {
      for (let i = 0; i < checks; i++) {
        check++;
        ceiling.check(quiet);
      }
    };
    run(true, 20);
    expect(collections).toEqual([]);
    run(false, 3);
    run(true, 20);
    // Busy at checks 21-23: turned quiet at 24, quiet 8 checks in a row at 31.
    expect(collections).toEqual([24, 31]);
    run(true, 12);
    expect(collections).toEqual([24, 31]);
    // Busy at 56 and 60: quiet at 57, again at 62 (5 checks after 57), settled at 68.
    run(false, 1);
    run(true, 3);
    run(false, 1);
    run(true, 10);
    expect(collections).toEqual([24, 31, 57, 62, 68]);
  });
});
