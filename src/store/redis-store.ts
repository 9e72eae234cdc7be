import { RedisClient } from "bun";
import type { NodeNote } from "../core/server-effects.ts";
import { StoreOpenError } from "../io/errors.ts";
import { nameKey } from "../protocol/names.ts";
import type { AsyncOfflineStore } from "./async-store.ts";
import type {
  ClientRecord,
  ServerSnapshot,
  StoreChange,
  StoredMessage,
  StoredSummary,
} from "./offline-store.ts";
import { summaryOf } from "./offline-store.ts";
import { APPLY_CHANGES, CLAIM_NAME, LOAD_SUMMARY, RELEASE_CLAIMS_OF } from "./redis-scripts.ts";
import { checkStoreChanges, clientProblem, messageProblem } from "./store-records.ts";

/** The shared stream of changes and notes; trimmed approximately to this many entries. */
export const CHANGES_STREAM = "chat:changes";
const STREAM_MAXLEN = "1000000";
const CONNECT_TIMEOUT_MS = 2_000;
const RECONNECT_FIRST_MS = 100;
const RECONNECT_MAX_MS = 2_000;
/**
 * A command Redis has not answered in this long counts as lost: a Redis that is frozen
 * (stopped, swapping, a disk that hangs) rather than gone would otherwise hold every
 * commit, and every answer waiting for one, for ever. It is shorter than the 3 s a client
 * retries a request, so the user hears `store-failed`, not `[Server not responding]`.
 * The connection is dropped and made again; a batch sent but not answered may still be
 * carried out once Redis wakes: a save retried after it is stored once more under a new
 * id, and the recipient shows it once (its client knows the sender's ref).
 */
export const COMMAND_TIMEOUT_MS = 2_000;
/** Entries one readChanges returns at most. */
const READ_BATCH = 1_000;

/** One entry of the change stream: a batch of changes a node committed, or a note between nodes. */
export interface ChangeEntry {
  readonly id: string;
  readonly node: string;
  readonly changes?: StoreChange[];
  /** Notes to other nodes that travelled with the changes; malformed ones are left out. */
  readonly notes?: NodeNote[];
}

/** Said when Redis cannot be reached now; the store reconnects on its own. */
export class RedisUnavailableError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = "RedisUnavailableError";
  }
}

/**
 * The store of a cluster node: the table, the stored messages and the names' claims in
 * Redis, and every committed batch appended to one stream that every node reads. It is
 * storage and transport only: what to do with other nodes' changes is the caller's.
 *
 * Keys (prefix `chat:`): `clients` (hash name key → ClientRecord JSON), `client-order`
 * (sorted set, order of first registration), `messages` (hash id → StoredMessage JSON),
 * `message-mailbox` (hash id → recipient's name key), `mailbox:<name key>` (sorted set of
 * ids), `claims` (hash name key → node), `changes` (stream), `node:<node>` (heartbeat),
 * `takeover:<node>`. Records are kept as the JSON they came in, so fields added later
 * pass through untouched.
 */
export class RedisStore implements AsyncOfflineStore {
  readonly #client: RedisClient;
  /** For XREAD BLOCK only: a blocking read on the commands' connection would stall commits. */
  #reader: RedisClient | undefined;
  #closed = false;
  #unreachable: string | undefined;
  #reconnectDelayMs = RECONNECT_FIRST_MS;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #listeners: ((problem: string | undefined) => void)[] = [];

  private constructor(
    readonly url: string,
    readonly node: string,
    /** Where Redis is, for messages: no password. */
    readonly where: string,
    client: RedisClient,
  ) {
    this.#client = client;
    client.onclose = (error) => this.#lost(error);
  }

  /** Connects and checks Redis answers; rejects with StoreOpenError and a one-line reason. */
  static async connect(url: string, node: string): Promise<RedisStore> {
    const where = describeRedisUrl(url);
    const client = newClient(url);
    try {
      await withTimeout(client.connect(), CONNECT_TIMEOUT_MS + 500, "no answer");
      await withTimeout(client.send("PING", []), CONNECT_TIMEOUT_MS, "no answer to PING");
    } catch (error) {
      client.close();
      throw new StoreOpenError(
        where,
        `Redis is unreachable (${reasonOf(error)}); check that redis-server runs there and that the URL is right`,
      );
    }
    return new RedisStore(url, node, where, client);
  }

  /** Why Redis cannot be reached now, or undefined while it can. */
  get unreachable(): string | undefined {
    return this.#unreachable;
  }

  /** Hears when Redis is lost (with the reason) and when it is back (undefined). */
  onReachability(listener: (problem: string | undefined) => void): void {
    this.#listeners.push(listener);
  }

  async loadSummary(): Promise<ServerSnapshot> {
    const [order, clientFields, messageFields] = (await this.#send("EVAL", [
      LOAD_SUMMARY,
      "0",
    ])) as [string[], string[], string[]];
    const byKey = new Map<string, ClientRecord>();
    for (const [key, json] of pairs(clientFields)) {
      const client = parseClient(json);
      if (client !== undefined && nameKey(client.name) === key) byKey.set(key, client);
    }
    const clients: ClientRecord[] = [];
    for (const key of order) {
      const client = byKey.get(key);
      if (client === undefined) continue;
      clients.push(client);
      byKey.delete(key);
    }
    // A record without a place in the order (a hand edit) still loads, last.
    clients.push(...byKey.values());
    const messages: StoredSummary[] = [];
    for (const [id, json] of pairs(messageFields)) {
      const message = parseMessage(json);
      if (message !== undefined && String(message.id) === id) messages.push(summaryOf(message));
    }
    messages.sort((a, b) => a.id - b.id);
    return { clients, messages };
  }

  async readMessages(ids: readonly number[]): Promise<StoredMessage[]> {
    if (ids.length === 0) {
      this.#assertOpen();
      return [];
    }
    const values = (await this.#send("HMGET", ["chat:messages", ...ids.map(String)])) as (
      | string
      | null
    )[];
    const found: StoredMessage[] = [];
    values.forEach((json, index) => {
      const message = json === null ? undefined : parseMessage(json);
      if (message !== undefined && message.id === ids[index]) found.push(message);
    });
    return found.sort((a, b) => a.id - b.id);
  }

  /**
   * Writes the changes and appends them to the stream in one atomic script; name claims
   * follow the records: online claims the name for this node, offline or removed
   * releases it if it is this node's.
   */
  async apply(changes: readonly StoreChange[], notes: readonly NodeNote[] = []): Promise<void> {
    this.#assertOpen();
    checkStoreChanges(changes);
    if (changes.length === 0 && notes.length === 0) return;
    const args = [
      APPLY_CHANGES,
      "0",
      this.node,
      JSON.stringify(changes),
      STREAM_MAXLEN,
      notes.length === 0 ? "" : JSON.stringify(notes),
    ];
    for (const change of changes) {
      switch (change.kind) {
        case "put-client": {
          const client = wellFormed(change.client);
          args.push(
            "C",
            nameKey(client.name),
            JSON.stringify(client),
            client.online ? "1" : "0",
            client.node ?? this.node,
          );
          break;
        }
        case "remove-client":
          args.push("R", nameKey(change.name));
          break;
        case "put-message": {
          const message = wellFormed(change.message);
          args.push("M", String(message.id), JSON.stringify(message), nameKey(message.recipient));
          break;
        }
        case "remove-messages":
          for (const id of change.ids) args.push("D", String(id));
          break;
        default:
          change satisfies never;
      }
    }
    await this.#send("EVAL", args);
  }

  /** The stream's last entry id, "0-0" when it has none. */
  async lastChangeId(): Promise<string> {
    const last = (await this.#send("XREVRANGE", [CHANGES_STREAM, "+", "-", "COUNT", "1"])) as [
      string,
      unknown,
    ][];
    return last[0]?.[0] ?? "0-0";
  }

  /**
   * Entries after `afterId`, waiting up to `blockMs` for one (0: wait without end) on a
   * connection of its own. Malformed entries are left out, never thrown.
   */
  async readChanges(afterId: string, blockMs: number): Promise<ChangeEntry[]> {
    this.#assertOpen();
    let reader = this.#reader;
    if (reader === undefined) {
      reader = newClient(this.url);
      this.#reader = reader;
    }
    try {
      if (!reader.connected) {
        await withTimeout(reader.connect(), CONNECT_TIMEOUT_MS + 500, "no answer");
      }
      const block = Math.max(0, Math.floor(blockMs));
      const read = reader.send("XREAD", [
        "COUNT",
        String(READ_BATCH),
        "BLOCK",
        String(block),
        "STREAMS",
        CHANGES_STREAM,
        afterId,
      ]);
      const reply: unknown =
        block === 0 ? await read : await withTimeout(read, block + COMMAND_TIMEOUT_MS, "no answer");
      return streamEntries(reply).flatMap((entry) => {
        const parsed = parseChangeEntry(entry);
        return parsed === undefined ? [] : [parsed];
      });
    } catch (error) {
      if (this.#closed) throw new Error("The message store is closed.");
      if (isNoAnswer(error)) {
        // A reader that waits for ever is made anew for the next read.
        this.#reader = undefined;
        reader.close();
      }
      throw this.#explain(error);
    }
  }

  /**
   * Claims a name for this node if it is unclaimed, already this node's, or `force`;
   * otherwise leaves it and returns the node that holds it.
   */
  async claimName(key: string, force: boolean): Promise<string | undefined> {
    const holder: unknown = await this.#send("EVAL", [
      CLAIM_NAME,
      "0",
      key,
      this.node,
      force ? "1" : "0",
    ]);
    return typeof holder === "string" ? holder : undefined;
  }

  async releaseClaimsOf(deadNode: string): Promise<void> {
    await this.#send("EVAL", [RELEASE_CLAIMS_OF, "0", deadNode]);
  }

  /** A slot (0–63) for this run of the node, distinct from those of the nodes started just before it. */
  async nextNodeSlot(): Promise<number> {
    const count = Number(await this.#send("INCR", ["chat:node-seq"]));
    return Number.isSafeInteger(count) ? count % 64 : 0;
  }

  /** This node is alive for the next `ttlMs`. */
  async heartbeat(ttlMs: number): Promise<void> {
    await this.#send("SET", [
      `chat:node:${this.node}`,
      String(Date.now()),
      "PX",
      String(Math.max(1, Math.floor(ttlMs))),
    ]);
  }

  /** Those of `nodes` whose heartbeat has not expired. */
  async liveNodes(nodes: readonly string[]): Promise<Set<string>> {
    if (nodes.length === 0) {
      this.#assertOpen();
      return new Set();
    }
    const beats = (await this.#send(
      "MGET",
      nodes.map((node) => `chat:node:${node}`),
    )) as (string | null)[];
    return new Set(nodes.filter((_, index) => beats[index] !== null));
  }

  /** True for the one node that wins the right to take over `deadNode` for `ttlMs`. */
  async takeOver(deadNode: string, ttlMs: number): Promise<boolean> {
    const reply: unknown = await this.#send("SET", [
      `chat:takeover:${deadNode}`,
      this.node,
      "NX",
      "PX",
      String(Math.max(1, Math.floor(ttlMs))),
    ]);
    return reply === "OK";
  }

  async roundTripSeconds(): Promise<number> {
    const startedAt = performance.now();
    await this.#send("PING", []);
    return (performance.now() - startedAt) / 1000;
  }

  /** One line for each setting under which a crash of Redis may lose acknowledged writes. */
  async durabilityWarnings(): Promise<string[]> {
    let appendonly: string | undefined;
    let appendfsync: string | undefined;
    try {
      appendonly = configValue(await this.#send("CONFIG", ["GET", "appendonly"]), "appendonly");
      appendfsync = configValue(await this.#send("CONFIG", ["GET", "appendfsync"]), "appendfsync");
    } catch (error) {
      return [
        `could not check how durably Redis at ${this.where} keeps writes (${reasonOf(error)}); use appendonly yes and appendfsync always`,
      ];
    }
    const warnings: string[] = [];
    if (appendonly !== "yes") {
      warnings.push(
        `Redis at ${this.where} has appendonly ${appendonly ?? "unknown"}: a crash of Redis loses every acknowledged save since its last snapshot (set appendonly yes)`,
      );
    }
    if (appendfsync !== "always") {
      warnings.push(
        `Redis at ${this.where} has appendfsync ${appendfsync ?? "unknown"}: a crash of its machine may lose up to ${appendfsync === "everysec" ? "the last second of" : "the last 30 seconds or more of"} acknowledged saves (set appendfsync always)`,
      );
    }
    return warnings;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#reconnectTimer);
    this.#client.onclose = null;
    this.#client.close();
    if (this.#reader) {
      this.#reader.onclose = null;
      this.#reader.close();
    }
  }

  async #send(command: string, args: string[]): Promise<unknown> {
    this.#assertOpen();
    if (this.#unreachable !== undefined) throw new RedisUnavailableError(this.#unreachable);
    try {
      return await withTimeout(this.#client.send(command, args), COMMAND_TIMEOUT_MS, "no answer");
    } catch (error) {
      if (isNoAnswer(error) && !this.#closed) {
        // Frozen rather than gone: the connection is dropped, which reports Redis lost
        // and reconnects; commands fail at once meanwhile.
        this.#lost(new Error(`no answer in ${COMMAND_TIMEOUT_MS / 1000} s`));
        this.#client.close();
      }
      throw this.#explain(error);
    }
  }

  /** A lost connection said in words; an error Redis answered passes as it is. */
  #explain(error: unknown): unknown {
    if (this.#closed) return new Error("The message store is closed.");
    const code = errorCode(error);
    if (code === "ERR_REDIS_SERVER_ERROR") return error;
    return new RedisUnavailableError(`Redis at ${this.where} is unreachable (${reasonOf(error)})`);
  }

  #lost(error: Error | undefined): void {
    if (this.#closed || this.#unreachable !== undefined) return;
    this.#unreachable = `Redis at ${this.where} is unreachable (${reasonOf(error)})`;
    this.#reconnectDelayMs = RECONNECT_FIRST_MS;
    this.#tell(this.#unreachable);
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    const delay = this.#reconnectDelayMs;
    this.#reconnectDelayMs = Math.min(RECONNECT_MAX_MS, delay * 2);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      void this.#reconnect();
    }, delay);
    this.#reconnectTimer.unref();
  }

  async #reconnect(): Promise<void> {
    if (this.#closed) return;
    try {
      await withTimeout(this.#client.connect(), CONNECT_TIMEOUT_MS + 500, "no answer");
      await withTimeout(this.#client.send("PING", []), CONNECT_TIMEOUT_MS, "no answer to PING");
    } catch {
      if (!this.#closed) this.#scheduleReconnect();
      return;
    }
    if (this.#closed) return;
    this.#unreachable = undefined;
    this.#tell(undefined);
  }

  #tell(problem: string | undefined): void {
    for (const listener of this.#listeners) {
      try {
        listener(problem);
      } catch {
        // A listener's failure is its own; the store carries on.
      }
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error("The message store is closed.");
  }
}

function newClient(url: string): RedisClient {
  // Commands while disconnected fail at once (the user hears store-failed) instead of
  // waiting in a queue; reconnecting, with backoff, is the store's.
  return new RedisClient(url, {
    connectionTimeout: CONNECT_TIMEOUT_MS,
    autoReconnect: false,
    enableOfflineQueue: false,
  });
}

/** `redis://host:port/db` without user or password, for messages. */
export function describeRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname === "/" ? "" : parsed.pathname}`;
  } catch {
    return "the given Redis URL";
  }
}

/** Strings as UTF-8 storage keeps them (a lone surrogate becomes U+FFFD), other fields as they are. */
function wellFormed<T extends object>(record: T): T {
  const copy: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(record)) {
    copy[key] = typeof value === "string" ? value.toWellFormed() : value;
  }
  return copy as T;
}

function parseJson(json: string): unknown {
  try {
    return JSON.parse(json);
  } catch {
    return undefined;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function parseClient(json: string): ClientRecord | undefined {
  const value = parseJson(json);
  if (!isRecord(value)) return undefined;
  const client = value as unknown as ClientRecord;
  return clientProblem(client) === undefined ? client : undefined;
}

function parseMessage(json: string): StoredMessage | undefined {
  const value = parseJson(json);
  if (!isRecord(value)) return undefined;
  const message = value as unknown as StoredMessage;
  return messageProblem(message) === undefined ? message : undefined;
}

function* pairs(flat: readonly string[]): Generator<[string, string]> {
  for (let i = 0; i + 1 < flat.length; i += 2) yield [flat[i] as string, flat[i + 1] as string];
}

/** XREAD's reply as [id, fields] entries: RESP3 gives a map by stream, RESP2 an array. */
function streamEntries(reply: unknown): unknown[] {
  if (reply === null || reply === undefined) return [];
  if (Array.isArray(reply)) {
    return reply.flatMap((stream) =>
      Array.isArray(stream) && Array.isArray(stream[1]) ? (stream[1] as unknown[]) : [],
    );
  }
  if (typeof reply === "object") {
    const entries = (reply as Record<string, unknown>)[CHANGES_STREAM];
    return Array.isArray(entries) ? entries : [];
  }
  return [];
}

function parseChangeEntry(entry: unknown): ChangeEntry | undefined {
  if (!Array.isArray(entry) || typeof entry[0] !== "string" || !Array.isArray(entry[1])) {
    return undefined;
  }
  const id = entry[0];
  const fields = new Map<string, string>();
  for (const [key, value] of pairs(entry[1].map(String))) fields.set(key, value);
  const node = fields.get("node");
  if (node === undefined || node === "") return undefined;
  const changesJson = fields.get("changes");
  if (changesJson === undefined) return undefined;
  const changes = parseJson(changesJson);
  if (!Array.isArray(changes)) return undefined;
  try {
    checkStoreChanges(changes as StoreChange[]);
  } catch {
    return undefined;
  }
  const notes = parseNotes(fields.get("notes"));
  return { id, node, changes: changes as StoreChange[], ...(notes.length > 0 ? { notes } : {}) };
}

/** Notes between nodes, as the core's types say; anything else is left out. */
function parseNotes(json: string | undefined): NodeNote[] {
  if (json === undefined) return [];
  const notes = parseJson(json);
  if (!Array.isArray(notes)) return [];
  return notes.filter(isNodeNote);
}

function isNodeNote(value: unknown): value is NodeNote {
  if (typeof value !== "object" || value === null) return false;
  const note = value as Record<string, unknown>;
  if (typeof note.to !== "string" || !Number.isSafeInteger(note.probeId)) return false;
  if (note.kind === "probe") return typeof note.name === "string";
  if (note.kind === "probe-result") return typeof note.alive === "boolean";
  return false;
}

/** CONFIG GET's value: RESP3 gives a map, RESP2 a flat array. */
function configValue(reply: unknown, name: string): string | undefined {
  if (Array.isArray(reply)) {
    const index = reply.indexOf(name);
    return index >= 0 && typeof reply[index + 1] === "string" ? reply[index + 1] : undefined;
  }
  if (typeof reply === "object" && reply !== null) {
    const value = (reply as Record<string, unknown>)[name];
    return typeof value === "string" ? value : undefined;
  }
  return undefined;
}

function withTimeout<T>(promise: Promise<T>, ms: number, reason: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new NoAnswerError(reason)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Redis did not answer within the time given. */
class NoAnswerError extends Error {}

function isNoAnswer(error: unknown): boolean {
  return error instanceof NoAnswerError;
}

function errorCode(error: unknown): string | undefined {
  return typeof error === "object" && error !== null && "code" in error
    ? String((error as { code: unknown }).code)
    : undefined;
}

function reasonOf(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error ?? "connection closed");
  return (text.split("\n", 1)[0] ?? "").trim() || "connection closed";
}
