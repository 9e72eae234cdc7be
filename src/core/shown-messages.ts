import { nameKey } from "../protocol/names.ts";
import { DedupWindow } from "./dedup-window.ts";

/** The name of one message, whichever way a copy of it comes: its sender and the sender's id for it. */
export function shownKey(sender: string, ref: number): string {
  return `${nameKey(sender)}#${ref}`;
}

/**
 * The messages this user has been shown: by this process (bounded in time and number),
 * and by earlier processes of the same identity, as the shell read them from its
 * `.shown` file. A message in either is not shown again, so a copy the server kept
 * because an earlier process's ack was lost does not appear twice after a restart.
 */
export class ShownMessages {
  private readonly before: ReadonlySet<string>;
  private readonly recent: DedupWindow;

  constructor(before: Iterable<string>, keepMs: number, maxKeys: number) {
    this.before = new Set(before);
    this.recent = new DedupWindow(keepMs, maxKeys);
  }

  /** True the first time a message is offered (show it); false for every later copy. */
  firstSight(sender: string, ref: number, now: number): boolean {
    const key = shownKey(sender, ref);
    if (this.before.has(key)) return false;
    return !this.recent.seen(key, now);
  }
}
