import { nameKey } from "../protocol/names.ts";
import {
  type ClientRecord,
  type OfflineStore,
  type ServerSnapshot,
  type StoreChange,
  type StoredMessage,
  type StoreSnapshot,
  summaryOf,
} from "./offline-store.ts";
import {
  checkStoreChanges,
  copyClient,
  copyMessage,
  InvalidStoreChangeError,
} from "./store-records.ts";

/** An OfflineStore that keeps everything in memory, with the same semantics as the SQLite store. */
export class MemoryStore implements OfflineStore {
  readonly #clients = new Map<string, ClientRecord>();
  readonly #messages = new Map<number, StoredMessage>();
  #closed = false;

  load(): StoreSnapshot {
    this.#assertOpen();
    const clients = [...this.#clients.values()].map(copyClient);
    const messages = [...this.#messages.values()].sort((a, b) => a.id - b.id).map(copyMessage);
    return { clients, messages };
  }

  loadSummary(): ServerSnapshot {
    const { clients, messages } = this.load();
    return { clients, messages: messages.map(summaryOf) };
  }

  readMessages(ids: readonly number[]): StoredMessage[] {
    this.#assertOpen();
    const found: StoredMessage[] = [];
    for (const id of [...ids].sort((a, b) => a - b)) {
      const message = this.#messages.get(id);
      if (message) found.push(copyMessage(message));
    }
    return found;
  }

  apply(changes: readonly StoreChange[]): void {
    this.#assertOpen();
    checkStoreChanges(changes);
    this.#checkMessageIds(changes);
    for (const change of changes) {
      switch (change.kind) {
        case "put-client":
          this.#clients.set(nameKey(change.client.name), copyClient(change.client));
          break;
        case "put-message":
          this.#messages.set(change.message.id, copyMessage(change.message));
          break;
        case "remove-messages":
          for (const id of change.ids) this.#messages.delete(id);
          break;
        case "remove-client":
          this.#clients.delete(nameKey(change.name));
          break;
        default:
          change satisfies never;
      }
    }
  }

  close(): void {
    this.#closed = true;
  }

  /** A duplicate id fails the whole batch, as the primary key does in SQLite, so it is found before writing. */
  #checkMessageIds(changes: readonly StoreChange[]): void {
    const added = new Set<number>();
    const removed = new Set<number>();
    changes.forEach((change, index) => {
      if (change.kind === "put-message") {
        const { id } = change.message;
        if (added.has(id) || (this.#messages.has(id) && !removed.has(id))) {
          throw new InvalidStoreChangeError(index, `message id ${id} is already stored`);
        }
        added.add(id);
      } else if (change.kind === "remove-messages") {
        for (const id of change.ids) {
          added.delete(id);
          removed.add(id);
        }
      }
    });
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error("The message store is closed.");
  }
}

export function createMemoryStore(initial?: StoreSnapshot): OfflineStore {
  const store = new MemoryStore();
  if (initial !== undefined) {
    store.apply([
      ...initial.clients.map((client): StoreChange => ({ kind: "put-client", client })),
      ...initial.messages.map((message): StoreChange => ({ kind: "put-message", message })),
    ]);
  }
  return store;
}
