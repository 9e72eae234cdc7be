import { nameKey } from "../protocol/names.ts";
import type { ServerSnapshot, StoreChange } from "../store/offline-store.ts";
import { RedisStore } from "../store/redis-store.ts";
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
    const release = releaseChanges(store.loadSummary(), name);
    if (release.changes.length > 0) store.apply(release.changes);
    return release.outcome;
  } finally {
    store.close();
  }
}

/** The node name the operator's tool writes to the change stream under. */
export const RELEASE_NODE = "release-name";

/**
 * The same in the Redis of `--redis`: the record, its stored messages and its claim go,
 * in one transaction that lands in the change stream, where nodes that follow it see it.
 * A single `--redis` server keeps its table in memory: stop it first, as with SQLite.
 */
export async function releaseNameInRedis(url: string, name: string): Promise<ReleaseOutcome> {
  const store = await RedisStore.connect(url, RELEASE_NODE);
  try {
    const release = releaseChanges(await store.loadSummary(), name);
    if (release.changes.length === 0) return release.outcome;
    // Taken over first so that removing the record releases it (a claim goes only with its holder's record).
    await store.claimName(nameKey(name), true);
    await store.apply(release.changes);
    return release.outcome;
  } finally {
    await store.close();
  }
}

function releaseChanges(
  { clients, messages }: ServerSnapshot,
  name: string,
): { readonly outcome: ReleaseOutcome; readonly changes: readonly StoreChange[] } {
  const key = nameKey(name);
  const client = clients.find((record) => nameKey(record.name) === key);
  if (!client) return { outcome: { released: undefined, droppedMessages: 0 }, changes: [] };
  const ids = messages
    .filter((message) => nameKey(message.recipient) === key)
    .map((message) => message.id);
  return {
    outcome: { released: client.name, droppedMessages: ids.length },
    changes: [
      { kind: "remove-messages", ids },
      { kind: "remove-client", name: client.name },
    ],
  };
}
