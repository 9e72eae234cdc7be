import type { NodeNote } from "../core/server-effects.ts";
import type { StoreChange } from "../store/offline-store.ts";

export type CommitOutcome =
  | { readonly ok: true; readonly commits: readonly number[] }
  | { readonly ok: false; readonly commits: readonly number[]; readonly error: unknown };

/** The one thing group commit needs of a store; a synchronous store answers in the same turn. */
export interface CommitTarget {
  apply(changes: readonly StoreChange[], notes?: readonly NodeNote[]): void | Promise<void>;
}

/**
 * Group commit: the changes of every step taken in one turn of the event loop go to the
 * store in one transaction (one fsync), as PostgreSQL's group commit and Redis's
 * `appendfsync always` do it; then the core hears which commits are on disk.
 *
 * A store that answers later (Redis) has at most one transaction in flight: what the
 * core adds meanwhile waits and goes in the next one, so outcomes are reported in the
 * order the commits were added. A synchronous store (SQLite) is called without an await.
 *
 * When a transaction fails, the core takes back the messages it stored; what it cannot
 * take back (a client's state, a removal of delivered messages) is written again with
 * the next transaction, so the disk catches up once it has room.
 */
export class GroupCommit {
  #waiting: {
    readonly commit: number;
    readonly changes: readonly StoreChange[];
    readonly notes: readonly NodeNote[];
  }[] = [];
  #carried: StoreChange[] = [];
  #scheduled = false;
  #inFlight = false;
  /** Commits added so far, and how many of them have been reported: for whenCommitted. */
  #added = 0;
  #reported = 0;
  #afterCommits: { readonly upTo: number; readonly run: () => void }[] = [];
  #idle: (() => void)[] = [];

  /** `measure` hears of every transaction, for the metrics: how long it took, how many commits. */
  constructor(
    private readonly store: CommitTarget,
    private readonly report: (outcome: CommitOutcome) => void,
    private readonly measure?: (transaction: CommitTiming) => void,
  ) {}

  /** `notes` (a cluster's, for other nodes) go in the same transaction; a failed one loses them, as a lost datagram would be. */
  add(commit: number, changes: readonly StoreChange[], notes: readonly NodeNote[] = []): void {
    this.#waiting.push({ commit, changes, notes });
    this.#added++;
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.flush());
  }

  /**
   * Runs `run` once every commit added so far has been reported (in a later turn when
   * none is pending): a read then sees what they wrote, and its answer cannot overtake
   * a reply that waited for them.
   */
  whenCommitted(run: () => void): void {
    if (this.#reported === this.#added) {
      setImmediate(run);
      return;
    }
    this.#afterCommits.push({ upTo: this.#added, run });
  }

  /** Commits what is waiting now; also called before the store closes. */
  flush(): void {
    this.#scheduled = false;
    if (this.#inFlight) return;
    const batch = this.#waiting;
    if (batch.length === 0) return;
    this.#waiting = [];
    const upTo = this.#added;
    const commits = batch.map((entry) => entry.commit);
    const changes = [...this.#carried, ...batch.flatMap((entry) => entry.changes)];
    const startedAt = performance.now();
    const finish = (error: { readonly cause: unknown } | undefined) => {
      const seconds = secondsSince(startedAt);
      if (error === undefined) {
        this.#carried = [];
        this.measure?.({ ok: true, commits: commits.length, seconds });
        this.report({ ok: true, commits });
      } else {
        this.#carried = changesToWriteAgain(changes);
        this.measure?.({ ok: false, commits: commits.length, seconds });
        this.report({ ok: false, commits, error: error.cause });
      }
      this.#reported = upTo;
      this.#runAfterCommits();
    };
    let pending: void | Promise<void>;
    try {
      const notes = batch.flatMap((entry) => entry.notes);
      pending = notes.length > 0 ? this.store.apply(changes, notes) : this.store.apply(changes);
    } catch (cause) {
      finish({ cause });
      return;
    }
    if (!(pending instanceof Promise)) {
      finish(undefined);
      return;
    }
    this.#inFlight = true;
    const settle = (error: { readonly cause: unknown } | undefined) => {
      this.#inFlight = false;
      finish(error);
      if (this.#waiting.length > 0) this.flush();
      else this.#wakeIdle();
    };
    pending.then(
      () => settle(undefined),
      (cause: unknown) => settle({ cause }),
    );
  }

  /** Commits what is waiting and resolves once no transaction is in flight: before closing. */
  async settle(): Promise<void> {
    this.flush();
    if (!this.#inFlight) return;
    await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  get carriedChanges(): number {
    return this.#carried.length;
  }

  #runAfterCommits(): void {
    const due = this.#afterCommits.filter((entry) => entry.upTo <= this.#reported);
    if (due.length === 0) return;
    this.#afterCommits = this.#afterCommits.filter((entry) => entry.upTo > this.#reported);
    for (const entry of due) entry.run();
  }

  #wakeIdle(): void {
    const waiting = this.#idle;
    this.#idle = [];
    for (const resolve of waiting) resolve();
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
