import { describe, expect, test } from "bun:test";
import { REPLAY_WINDOW, type ReplayVerdict, ReplayWindow } from "../../src/core/replay-window.ts";
import { seededRandom } from "../../src/io/seeded-random.ts";

/** The window as a set of every id taken: what the bitmap must answer like. */
class ReferenceWindow {
  private highest: number | undefined;
  private readonly taken = new Set<number>();

  check(id: number): ReplayVerdict {
    if (this.highest !== undefined && id <= this.highest - REPLAY_WINDOW) return "too-old";
    return this.taken.has(id) ? "seen" : "new";
  }

  take(id: number): void {
    this.taken.add(id);
    if (this.highest === undefined || id > this.highest) this.highest = id;
  }

  release(id: number): void {
    this.taken.delete(id);
  }
}

/**
 * 20,000 ids from `nextId` through the window and the reference, a share of them released
 * instead of taken: every verdict must agree, and so must every id around the end.
 */
function agreesWithReference(
  seed: number,
  releaseShare: number,
  nextId: (random: () => number, highest: number) => number,
): void {
  const random = seededRandom(seed);
  const window = new ReplayWindow();
  const reference = new ReferenceWindow();
  let highest = 5;
  for (let step = 0; step < 20_000; step++) {
    const id = nextId(random, highest);
    const verdict = reference.check(id);
    expect(window.check(id)).toBe(verdict);
    if (random() < releaseShare) {
      window.release(id);
      reference.release(id);
    } else if (verdict === "new") {
      window.take(id);
      reference.take(id);
      highest = Math.max(highest, id);
    }
  }
  for (let id = Math.max(0, highest - 2 * REPLAY_WINDOW); id <= highest + 2; id++) {
    expect(window.check(id)).toBe(reference.check(id));
  }
}

describe("replay window", () => {
  test("an id is new until taken, then seen", () => {
    const window = new ReplayWindow();
    expect(window.check(7)).toBe("new");
    window.take(7);
    expect(window.check(7)).toBe("seen");
    expect(window.check(6)).toBe("new");
    expect(window.check(8)).toBe("new");
  });

  test("ids below the highest and the REPLAY_WINDOW - 1 under it are too old, taken or not", () => {
    const window = new ReplayWindow();
    window.take(5);
    window.take(5 + REPLAY_WINDOW);
    expect(window.check(5)).toBe("too-old");
    expect(window.check(4)).toBe("too-old");
    expect(window.check(6)).toBe("new");
    expect(window.check(5 + REPLAY_WINDOW)).toBe("seen");
  });

  test("an id whose slot an older id used is new, and the older one stays taken", () => {
    const window = new ReplayWindow();
    window.take(100);
    window.take(100 + REPLAY_WINDOW - 1);
    // 100 + REPLAY_WINDOW shares 100's slot: taking it pushes 100 out of the window.
    expect(window.check(100)).toBe("seen");
    expect(window.check(100 + REPLAY_WINDOW)).toBe("new");
    window.take(100 + REPLAY_WINDOW);
    expect(window.check(100 + REPLAY_WINDOW)).toBe("seen");
    expect(window.check(100)).toBe("too-old");
  });

  test("a jump beyond the window forgets every id before it", () => {
    const window = new ReplayWindow();
    for (let id = 1; id <= 50; id++) window.take(id);
    window.take(50 + 3 * REPLAY_WINDOW + 17);
    for (let id = 50 + 2 * REPLAY_WINDOW + 18; id < 50 + 3 * REPLAY_WINDOW + 17; id++) {
      expect(window.check(id)).toBe("new");
    }
  });

  test("a released id is new again; releasing an id above the highest leaves its slot's owner taken", () => {
    const window = new ReplayWindow();
    window.take(10);
    window.take(11);
    window.release(10);
    expect(window.check(10)).toBe("new");
    expect(window.check(11)).toBe("seen");
    window.release(11 + REPLAY_WINDOW);
    expect(window.check(11)).toBe("seen");
  });

  test("ids near 2^53 have their own slots", () => {
    const window = new ReplayWindow();
    const top = Number.MAX_SAFE_INTEGER;
    window.take(top - 1);
    expect(window.check(top)).toBe("new");
    window.take(top);
    expect(window.check(top - 1)).toBe("seen");
    expect(window.check(top - 2)).toBe("new");
    expect(window.check(top - REPLAY_WINDOW)).toBe("too-old");
  });

  test("answers like a set of every id taken when nearly every id is taken, over 20,000 steps", () => {
    // Dense: ids mostly one or a few above the highest, so a slot left uncleared shows.
    agreesWithReference(20261202, 0, (random, highest) => {
      const draw = random();
      if (draw < 0.8) return highest + 1 + Math.floor(random() * 3);
      if (draw < 0.97) return highest - Math.floor(random() * (REPLAY_WINDOW + 2));
      return highest + REPLAY_WINDOW - 2 + Math.floor(random() * 5);
    });
  });

  test("answers like a set of every id taken, over 20,000 random steps", () => {
    // Mostly near the highest, as retransmissions and reordering are; sometimes far ahead.
    agreesWithReference(20261201, 0.1, (random, highest) =>
      random() < 0.05
        ? highest + Math.floor(random() * 3 * REPLAY_WINDOW)
        : Math.max(0, highest - Math.floor(random() * 1.2 * REPLAY_WINDOW) + 4),
    );
  });
});
