import type { NodeNote } from "../core/server-effects.ts";
import type { OfflineStore, ServerSnapshot, StoreChange, StoredMessage } from "./offline-store.ts";

/**
 * A store that answers later: a store over the network, such as Redis. The same contract
 * as OfflineStore: `apply` resolves only once the changes are committed, all of them or
 * none, and rejects when they were not written.
 */
export interface AsyncOfflineStore {
  loadSummary(): Promise<ServerSnapshot>;
  /** The committed messages with these ids (those not stored are left out), by id. */
  readMessages(ids: readonly number[]): Promise<StoredMessage[]>;
  /** `notes`: a cluster's messages between nodes, which travel with the changes. */
  apply(changes: readonly StoreChange[], notes?: readonly NodeNote[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * What the server runs on: either kind of store. A synchronous store is called without
 * an `await`, so the embedded SQLite path costs no extra turn of the event loop.
 */
export type ServerStore = OfflineStore | AsyncOfflineStore;

/** Runs `then` on a value now, or on a promise's value once it settles; errors go to `fail`. */
export function whenSettled<T>(
  run: () => T | Promise<T>,
  then: (value: T) => void,
  fail: (error: unknown) => void,
): void {
  let result: T | Promise<T>;
  try {
    result = run();
  } catch (error) {
    fail(error);
    return;
  }
  if (result instanceof Promise) result.then(then, fail);
  else then(result);
}
