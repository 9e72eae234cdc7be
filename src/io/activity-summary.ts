import type { ActivityCounts } from "../core/server-effects.ts";

/**
 * One log line for what happened since the last one, instead of a line per message:
 * at thousands of saves a second, a line each costs more than the saves.
 */
export class ActivitySummary {
  #last: ActivityCounts;

  constructor(private readonly counts: Readonly<ActivityCounts>) {
    this.#last = { ...counts };
  }

  /** The line for what changed since the last call, or undefined if nothing did. */
  next(periodSeconds: number): string | undefined {
    const now = { ...this.counts };
    const last = this.#last;
    this.#last = now;
    const parts: string[] = [];
    const add = (count: number, what: string) => {
      if (count > 0) parts.push(`${count.toLocaleString("en-US")} ${what}`);
    };
    add(now.registrations - last.registrations, "registration(s)");
    add(now.saved - last.saved, "message(s) saved");
    add(now.channelPosts - last.channelPosts, "channel post(s)");
    add(now.storedForChannel - last.storedForChannel, "channel copies stored for members away");
    add(now.deliveredStored - last.deliveredStored, "stored message(s) delivered");
    add(now.storeFailures - last.storeFailures, "refused write(s) to the store");
    if (parts.length === 0) return undefined;
    return `in the last ${periodSeconds} s: ${parts.join(", ")}`;
  }
}
