import { expect, test } from "bun:test";
import type { ActivityCounts } from "../../src/core/server-effects.ts";
import { ActivitySummary } from "../../src/io/activity-summary.ts";

test("one line says what happened since the last, and nothing when nothing did", () => {
  const counts: ActivityCounts = {
    saved: 0,
    storedForChannel: 0,
    deliveredStored: 0,
    channelPosts: 0,
    registrations: 0,
    storeFailures: 0,
  };
  const summary = new ActivitySummary(counts);
  expect(summary.next(10)).toBeUndefined();
  counts.saved += 1234;
  counts.channelPosts += 300;
  counts.storedForChannel += 900;
  expect(summary.next(10)).toBe(
    "in the last 10 s: 1,234 message(s) saved, 300 channel post(s), 900 channel copies stored for members away",
  );
  expect(summary.next(10)).toBeUndefined();
});
