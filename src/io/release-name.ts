import { nameKey } from "../protocol/names.ts";
import { openSqliteStore } from "../store/sqlite-store.ts";

export interface ReleaseOutcome {
  /** The name as it was registered, or undefined when the directory holds no such name. */
  readonly released: string | undefined;
  /** Stored messages dropped with it: sealed to the lost key, nobody can read them. */
  readonly droppedMessages: number;
}

/**
 * The operator's way out when a user lost the key a name is bound to: the name, its key
 * and what was stored for it leave the data directory, and the next registration of the
 * name binds the key it shows. The server must be stopped (the directory's lock says so).
 */
export function releaseName(dataDir: string, name: string): ReleaseOutcome {
  const store = openSqliteStore(dataDir);
  try {
    const { clients, messages } = store.load();
    const key = nameKey(name);
    const client = clients.find((record) => nameKey(record.name) === key);
    if (!client) return { released: undefined, droppedMessages: 0 };
    const ids = messages
      .filter((message) => nameKey(message.recipient) === key)
      .map((message) => message.id);
    store.apply([
      { kind: "remove-messages", ids },
      { kind: "remove-client", name: client.name },
    ]);
    return { released: client.name, droppedMessages: ids.length };
  } finally {
    store.close();
  }
}
