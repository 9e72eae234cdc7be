import type { ServerInput } from "../core/server-effects.ts";
import type { ServerState } from "../core/server-state.ts";
import { nameKey } from "../protocol/names.ts";
import type { ChangeEntry, RedisStore } from "../store/redis-store.ts";

/** How often a node says it is alive, and how long that lasts (docs/CLUSTER.md). */
export const HEARTBEAT_EVERY_MS = 1_000;
export const HEARTBEAT_TTL_MS = 3_000;
/** How long the node that takes over a dead one holds that right: no other node repeats it meanwhile. */
const TAKEOVER_HOLD_MS = 30_000;
/** How long one blocking read of the shared log waits before it is made again. */
const READ_BLOCK_MS = 1_000;
/** After a failed read, the next one waits this long, doubling up to the cap. */
const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 2_000;

export interface ClusterLinkOptions {
  readonly store: RedisStore;
  /** Steps the core. */
  readonly feed: (input: ServerInput) => void;
  /** Nodes that hold online clients in the table now: the ones whose heartbeats matter. */
  readonly nodesInUse: () => Iterable<string>;
  readonly log: { warn(text: string): void; info(text: string): void };
}

/**
 * The shell of a cluster node: reads the shared log and feeds what other nodes committed
 * to the core, answers the core's name claims, beats for this node and takes over nodes
 * that stopped beating. Every decision is the core's; this only carries things.
 */
export class ClusterLink {
  #running = true;
  #lastId: string;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  /** Reads that failed in a row; a failure that lasts while Redis answers commands is logged once. */
  #readFailures = 0;
  /**
   * Since when this node's own beats have got through without a break. After an outage
   * of Redis every heartbeat has lapsed; a node judges others only once they have had a
   * full lifetime of a heartbeat to beat again.
   */
  #beatingSince: number | undefined;

  constructor(
    private readonly options: ClusterLinkOptions,
    /** The log's last entry before the node loaded its state: it reads from there on. */
    startAfter: string,
  ) {
    this.#lastId = startAfter;
  }

  start(): void {
    void this.#readLoop();
    void this.#beat();
    this.#heartbeat = setInterval(() => void this.#beat(), HEARTBEAT_EVERY_MS);
  }

  stop(): void {
    this.#running = false;
    if (this.#heartbeat) clearInterval(this.#heartbeat);
  }

  /** The core's `claim` effect: Redis decides; a holder whose node is down counts for nothing. */
  async claim(claim: number, name: string, force: boolean): Promise<void> {
    const { store, feed } = this.options;
    const key = nameKey(name);
    let answer: { granted: boolean; failed?: boolean };
    try {
      let holder = await store.claimName(key, force);
      if (holder !== undefined && !(await store.liveNodes([holder])).has(holder)) {
        holder = await store.claimName(key, true);
      }
      answer = { granted: holder === undefined };
    } catch {
      // Redis is unreachable: no name can be given away safely now.
      answer = { granted: false, failed: true };
    }
    if (this.#running) feed({ kind: "claim-done", claim, ...answer });
  }

  async #readLoop(): Promise<void> {
    let retryMs = RETRY_FIRST_MS;
    while (this.#running) {
      let entries: ChangeEntry[];
      try {
        entries = await this.options.store.readChanges(this.#lastId, READ_BLOCK_MS);
      } catch (error) {
        if (!this.#running) return;
        // A lost Redis is reported once by the store (whose connection may notice a moment
        // after the reader's); a failure that outlasts that is the reader's own.
        this.#readFailures++;
        if (this.#readFailures === 3 && this.options.store.unreachable === undefined) {
          this.options.log.warn(`cannot read the cluster's log: ${reasonOf(error)}; retrying`);
        }
        await sleep(retryMs);
        retryMs = Math.min(RETRY_MAX_MS, retryMs * 2);
        continue;
      }
      this.#readFailures = 0;
      retryMs = RETRY_FIRST_MS;
      for (const entry of entries) {
        if (!this.#running) return;
        this.#lastId = entry.id;
        if (entry.node === this.options.store.node) continue;
        this.options.feed({
          kind: "remote-changes",
          node: entry.node,
          changes: entry.changes ?? [],
          notes: entry.notes ?? [],
        });
      }
    }
  }

  /** Says this node is alive; finds nodes that are not, and takes over one that nobody has. */
  async #beat(): Promise<void> {
    const { store, feed, nodesInUse, log } = this.options;
    try {
      await store.heartbeat(HEARTBEAT_TTL_MS);
      const now = performance.now();
      this.#beatingSince ??= now;
      if (now - this.#beatingSince < HEARTBEAT_TTL_MS + HEARTBEAT_EVERY_MS) return;
      const nodes = [...new Set(nodesInUse())].filter((node) => node !== store.node);
      if (nodes.length === 0) return;
      const alive = await store.liveNodes(nodes);
      for (const node of nodes) {
        if (alive.has(node) || !(await store.takeOver(node, TAKEOVER_HOLD_MS))) continue;
        log.warn(`node ${node} has not beaten for ${HEARTBEAT_TTL_MS / 1000} s: taking it over`);
        await store.releaseClaimsOf(node);
        if (this.#running) feed({ kind: "node-gone", node });
      }
    } catch {
      // Redis is unreachable: the store reports it once; the next beat tries again.
      this.#beatingSince = undefined;
    }
  }
}

/** The nodes the table says hold online clients. */
export function* nodesWithOnlineClients(state: ServerState): Iterable<string> {
  for (const client of state.clients.values()) {
    if (client.online && client.node !== undefined) yield client.node;
  }
}

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
