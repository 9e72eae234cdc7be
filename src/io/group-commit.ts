import type { OfflineStore, StoreChange } from "../store/offline-store.ts";

export type CommitOutcome =
  | { readonly ok: true; readonly commits: readonly number[] }
  | { readonly ok: false; readonly commits: readonly number[]; readonly error: unknown };

/**
 * Group commit: the changes of every step taken in one turn of the event loop go to the
 * store in one transaction (one fsync), as PostgreSQL's group commit and Redis's
 * `appendfsync always` do it; then the core hears which commits are on disk.
 *
 * When a transaction fails, the core takes back the messages it stored; what it cannot
 * take back (a client's state, a removal of delivered messages) is written again with
 * the next transaction, so the disk catches up once it has room.
 */
export class GroupCommit {
  #waiting: { readonly commit: number; readonly changes: readonly StoreChange[] }[] = [];
  #carried: StoreChange[] = [];
  #scheduled = false;

  /** `measure` hears of every transaction, for the metrics: how long it took, how many commits. */
  constructor(
    private readonly store: OfflineStore,
    private readonly report: (outcome: CommitOutcome) => void,
    private readonly measure?: (transaction: CommitTiming) => void,
  ) {}

  add(commit: number, changes: readonly StoreChange[]): void {
    this.#waiting.push({ commit, changes });
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.flush());
  }

  /** Commits what is waiting now; also called before the store closes. */
  flush(): void {
    this.#scheduled = false;
    const batch = this.#waiting;
    if (batch.length === 0) return;
    this.#waiting = [];
    const commits = batch.map((entry) => entry.commit);
    const changes = [...this.#carried, ...batch.flatMap((entry) => entry.changes)];
    const startedAt = performance.now();
    try {
      this.store.apply(changes);
      this.#carried = [];
    } catch (error) {
      this.#carried = changesToWriteAgain(changes);
      this.measure?.({ ok: false, commits: commits.length, seconds: secondsSince(startedAt) });
      this.report({ ok: false, commits, error });
      return;
    }
    this.measure?.({ ok: true, commits: commits.length, seconds: secondsSince(startedAt) });
    this.report({ ok: true, commits });
  }

  get carriedChanges(): number {
    return this.#carried.length;
  }
}

export interface CommitTiming {
  readonly ok: boolean;
  /** The steps' commits in this one transaction. */
  readonly commits: number;
  readonly seconds: number;
}

function secondsSince(startedAt: number): number {
  return (performance.now() - startedAt) / 1000;
}

/** A client's latest state and every removal; stored messages are the core's to take back. */
function changesToWriteAgain(changes: readonly StoreChange[]): StoreChange[] {
  const latestClient = new Map<string, StoreChange>();
  const removals: StoreChange[] = [];
  for (const change of changes) {
    switch (change.kind) {
      case "put-client":
        latestClient.set(change.client.name.toLowerCase(), change);
        break;
      case "remove-client":
        latestClient.set(change.name.toLowerCase(), change);
        break;
      case "remove-messages":
        removals.push(change);
        break;
      case "put-message":
        break;
      default:
        change satisfies never;
    }
  }
  return [...latestClient.values(), ...removals];
}
