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
});
