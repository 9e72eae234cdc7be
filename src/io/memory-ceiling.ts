import { timing } from "../core/timing.ts";

/**
 * JavaScriptCore lets the heap of a busy server grow long before it collects: at 10,000
 * clients the same run peaked anywhere from 380 MB to 920 MB of RSS, nearly all of it
 * garbage, and gave it back only after ten idle seconds. So the server checks its RSS
 * every second and runs a full collection once it has grown by more than the headroom
 * since the last one. A collection of the heap of 10,000 clients pauses the event loop
 * for about 70 ms (up to about 200 ms while a registration storm is being served):
 * well inside the 500 ms a peer waits before it asks again.
 */
export const MEMORY_CHECK_EVERY_MS = 1_000;
export const MEMORY_HEADROOM_BYTES = 48 * 1024 * 1024;
/**
 * A check that saw fewer datagrams than this finds the server quiet. The first quiet
 * check after a busy one collects and gives free memory back (`Bun.shrink`): after a
 * registration storm of 10,000 clients the process otherwise stayed at 150-200 MB
 * until the engine's own idle collection, 5-10 s later, took it to 120 MB. At a quiet
 * moment the pause costs no one anything.
 */
export const QUIET_DATAGRAMS_PER_CHECK = 100;
/**
 * Checks between two quiet collections, at least: a load that hovers around the quiet
 * threshold would otherwise have the heap of 10,000 clients collected every other second.
 * Not more: with 30, a burst within half a minute of the last one (the phases of the
 * scale benchmark) left the server at 157-183 MB 3 s after it; with 10, 142 MB.
 */
export const QUIET_COLLECTION_EVERY_CHECKS = 10;
/**
 * Quiet checks in a row after which the server collects once more: by then the answers it
 * kept for retransmissions (timing.replyCacheMs) have expired. After 500,000 requests from
 * 500 clients they were 40 MB of heap, which the collection as it turned quiet still held,
 * and the process stayed at about 200 MB.
 */
export const SETTLED_AFTER_QUIET_CHECKS =
  Math.ceil(timing.replyCacheMs / MEMORY_CHECK_EVERY_MS) + 1;

export interface MemoryCeiling {
  /** Once a check: collects if the process grew by more than the headroom, has just turned quiet, or has settled. */
  check(quiet?: boolean): void;
}

export function memoryCeiling(
  rssBytes: () => number,
  collect: (quiet: boolean) => void,
  headroom = MEMORY_HEADROOM_BYTES,
  quietEvery = QUIET_COLLECTION_EVERY_CHECKS,
  settledAfter = SETTLED_AFTER_QUIET_CHECKS,
): MemoryCeiling {
  let baseline = rssBytes();
  let busySinceCollection = false;
  let checksSinceQuietCollection = quietEvery;
  let quietChecksInARow = 0;
  let busySinceSettled = false;
  return {
    check(quiet = false) {
      checksSinceQuietCollection++;
      quietChecksInARow = quiet ? quietChecksInARow + 1 : 0;
      const turnedQuiet = quiet && busySinceCollection && checksSinceQuietCollection >= quietEvery;
      const settled = busySinceSettled && quietChecksInARow >= settledAfter;
      if (!quiet) {
        busySinceCollection = true;
        busySinceSettled = true;
      }
      if (!turnedQuiet && !settled && rssBytes() - baseline <= headroom) return;
      collect(turnedQuiet || settled);
      busySinceCollection = false;
      if (turnedQuiet || settled) checksSinceQuietCollection = 0;
      if (settled) busySinceSettled = false;
      baseline = rssBytes();
    },
  };
}
