import { afterAll, afterEach, beforeAll, beforeEach, expect, test } from "bun:test";
import { StoreOpenError } from "../../src/io/errors.ts";
import type { ClientRecord, StoreChange, StoredMessage } from "../../src/store/offline-store.ts";
import {
  COMMAND_TIMEOUT_MS,
  RedisStore,
  RedisUnavailableError,
} from "../../src/store/redis-store.ts";
import { describeWithRedis, freeTcpPort, RedisServer } from "../helpers/redis-server.ts";

const client = (name: string, online: boolean, extra: object = {}): ClientRecord => ({
  name,
  ip: "127.0.0.1",
  port: 40_000,
  online,
  token: `token-${name}`,
  lastSeen: 1_764_000_000_000,
  sk: `sk-${name}`,
  ak: `ak-${name}`,
  sessionKey: `session-${name}`,
  ...extra,
});

const message = (id: number, extra: object = {}): StoredMessage => ({
  id,
  recipient: "Bob",
  sender: "alice",
  kind: "direct",
  text: `message ${id}`,
  receivedAt: 1_700_000_000_000 + id,
  ref: id,
  ...extra,
});

const putClient = (record: ClientRecord): StoreChange => ({ kind: "put-client", client: record });

describeWithRedis("RedisStore", () => {
  let redis: RedisServer;
  const open: RedisStore[] = [];

  async function connect(node: string): Promise<RedisStore> {
    const store = await RedisStore.connect(redis.url, node);
    open.push(store);
    return store;
  }

  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterAll(() => redis.remove());
  beforeEach(() => redis.flushAll());
  afterEach(async () => {
    await Promise.all(open.splice(0).map((store) => store.close()));
  });

  test("each batch is one stream entry with the node and the changes as given", async () => {
    const a = await connect("node-a");
    expect(await a.lastChangeId()).toBe("0-0");
    const first: StoreChange[] = [
      putClient(client("alice", true)),
      { kind: "put-message", message: message(1) },
    ];
    const second: StoreChange[] = [{ kind: "remove-messages", ids: [1] }];
    await a.apply(first);
    await a.apply(second);
    await a.apply([]);
    const entries = await a.readChanges("0-0", 100);
    expect(entries.map(({ node, changes }) => ({ node, changes }))).toEqual([
      { node: "node-a", changes: first },
      { node: "node-a", changes: second },
    ]);
    expect(await a.lastChangeId()).toBe(entries[1]?.id ?? "missing");
    expect(await a.readChanges(entries[0]?.id ?? "", 100)).toEqual(entries.slice(1));
  });

  test("notes to other nodes travel in the entry of their batch; notes alone change no data", async () => {
    const a = await connect("node-a");
    const probe = { kind: "probe", to: "node-b", name: "bob", probeId: 7 } as const;
    const answer = { kind: "probe-result", to: "node-b", probeId: 8, alive: false } as const;
    await a.apply([], [probe]);
    await a.apply([putClient(client("alice", false))], [answer]);
    const entries = await a.readChanges("0-0", 100);
    expect(entries.map(({ changes, notes }) => ({ changes, notes }))).toEqual([
      { changes: [], notes: [probe] },
      { changes: [putClient(client("alice", false))], notes: [answer] },
    ]);
    expect((await a.loadSummary()).clients.map((c) => c.name)).toEqual(["alice"]);
  });

  test("a blocking read does not stall commits, and wakes for the next entry", async () => {
    const a = await connect("node-a");
    const reading = a.readChanges(await a.lastChangeId(), 5_000);
    const startedAt = performance.now();
    await a.apply([putClient(client("alice", true))]);
    expect(performance.now() - startedAt).toBeLessThan(1_000);
    const entries = await reading;
    expect(entries.map((entry) => entry.changes?.length)).toEqual([1]);
    // Nothing new: the read gives up after its block time with nothing.
    expect(await a.readChanges(entries[0]?.id ?? "", 50)).toEqual([]);
  });

  test("malformed stream entries are skipped, never thrown", async () => {
    const a = await connect("node-a");
    const add = (...fields: string[]) => redis.command("XADD", ["chat:changes", "*", ...fields]);
    await add("node", "x", "changes", "{not json");
    await add("node", "x", "changes", JSON.stringify({ kind: "put-client" }));
    await add("node", "x", "changes", JSON.stringify([{ kind: "drop-everything" }]));
    await add("changes", "[]");
    await add("node", "x", "something", "else");
    // Notes that are not notes are left out; the batch they came with still counts.
    const bad = [{ kind: "probe", to: "a" }, { kind: "wipe", to: "a", probeId: 1 }, 3];
    await add("node", "x", "changes", "[]", "notes", JSON.stringify(bad));
    await add("node", "y", "changes", "[]", "notes", "{broken");
    const entries = await a.readChanges("0-0", 100);
    expect(entries.map(({ node, changes, notes }) => ({ node, changes, notes }))).toEqual([
      { node: "x", changes: [], notes: undefined },
      { node: "y", changes: [], notes: undefined },
    ]);
  });

  test("fields added to records later pass through untouched", async () => {
    const a = await connect("node-a");
    await a.apply([
      putClient(client("alice", true, { node: "node-a" })),
      { kind: "put-message", message: message(7, { snowflake: "123456789012345678" }) },
    ]);
    const summary = await a.loadSummary();
    expect(summary.clients).toEqual([client("alice", true, { node: "node-a" })]);
    expect(await a.readMessages([7])).toEqual([message(7, { snowflake: "123456789012345678" })]);
  });

  test("records broken by hand are left out of what loads", async () => {
    const a = await connect("node-a");
    await a.apply([putClient(client("alice", true)), { kind: "put-message", message: message(1) }]);
    await redis.command("HSET", [
      "chat:clients",
      "bob",
      "{oops",
      "carol",
      JSON.stringify(client("Dave", true)),
    ]);
    await redis.command("HSET", ["chat:messages", "2", "[]", "3", JSON.stringify(message(4))]);
    const summary = await a.loadSummary();
    expect(summary.clients.map((c) => c.name)).toEqual(["alice"]);
    expect(summary.messages.map((m) => m.id)).toEqual([1]);
    expect(await a.readMessages([1, 2, 3])).toEqual([message(1)]);
  });

  test("stored messages sit in their recipient's mailbox until removed", async () => {
    const a = await connect("node-a");
    await a.apply(
      [3, 1, 2].map((id) => ({ kind: "put-message", message: message(id) }) as StoreChange),
    );
    expect(await redis.command("ZRANGE", ["chat:mailbox:bob", "0", "-1"])).toEqual(["1", "2", "3"]);
    await a.apply([{ kind: "remove-messages", ids: [2] }]);
    expect(await redis.command("ZRANGE", ["chat:mailbox:bob", "0", "-1"])).toEqual(["1", "3"]);
  });

  test("claims follow the records: online claims the name for the record's node, offline releases only that node's claim", async () => {
    const a = await connect("node-a");
    const b = await connect("node-b");
    const claims = () => redis.command("HGETALL", ["chat:claims"]);
    await a.apply([putClient(client("Alice", true)), putClient(client("bob", true))]);
    expect(await claims()).toEqual({ alice: "node-a", bob: "node-a" });
    // Another node's offline record leaves node-a's claim alone.
    await b.apply([putClient(client("alice", false)), { kind: "remove-client", name: "BOB" }]);
    expect(await claims()).toEqual({ alice: "node-a", bob: "node-a" });
    await a.apply([putClient(client("alice", false)), { kind: "remove-client", name: "Bob" }]);
    expect(await claims()).toEqual({});
    await b.apply([putClient(client("alice", true))]);
    expect(await claims()).toEqual({ alice: "node-b" });
    // A record that says the client is offline at its own node releases that node's claim,
    // whoever writes it: the node that took a dead one over, or that found its client gone.
    await a.apply([putClient({ ...client("alice", false), node: "node-b" })]);
    expect(await claims()).toEqual({});
  });

  test("claimName takes a free name or its own, refuses another node's unless forced", async () => {
    const a = await connect("node-a");
    const b = await connect("node-b");
    expect(await a.claimName("alice", false)).toBeUndefined();
    expect(await a.claimName("alice", false)).toBeUndefined();
    expect(await b.claimName("alice", false)).toBe("node-a");
    expect(await b.claimName("alice", true)).toBeUndefined();
    expect(await a.claimName("alice", false)).toBe("node-b");
  });

  test("two nodes racing for one free name: exactly one wins", async () => {
    const nodes = await Promise.all(["n1", "n2", "n3", "n4"].map(connect));
    const results = await Promise.all(nodes.map((node) => node.claimName("zed", false)));
    const winners = results.filter((holder) => holder === undefined);
    expect(winners).toHaveLength(1);
    const winner = nodes[results.indexOf(undefined)]?.node;
    expect(results.filter((holder) => holder !== undefined)).toEqual(Array(3).fill(winner));
  });

  test("releaseClaimsOf releases the dead node's names and no others", async () => {
    const a = await connect("node-a");
    const b = await connect("node-b");
    await a.claimName("alice", false);
    await a.claimName("carol", false);
    await b.claimName("bob", false);
    await b.releaseClaimsOf("node-a");
    expect(await redis.command("HGETALL", ["chat:claims"])).toEqual({ bob: "node-b" });
  });

  test("heartbeats expire; only one node wins a takeover", async () => {
    const a = await connect("node-a");
    const b = await connect("node-b");
    const c = await connect("node-c");
    await a.heartbeat(10_000);
    await b.heartbeat(50);
    expect(await c.liveNodes(["node-a", "node-b", "node-c"])).toEqual(
      new Set(["node-a", "node-b"]),
    );
    expect(await c.liveNodes([])).toEqual(new Set());
    await Bun.sleep(120);
    expect(await c.liveNodes(["node-a", "node-b"])).toEqual(new Set(["node-a"]));
    const wins = await Promise.all([a.takeOver("node-b", 5_000), c.takeOver("node-b", 5_000)]);
    expect(wins.filter(Boolean)).toHaveLength(1);
    expect(await a.takeOver("node-b", 5_000)).toBe(false);
  });

  test("a Redis that persists every write gives no durability warning; one that does not gives a line each", async () => {
    const a = await connect("node-a");
    expect(await a.durabilityWarnings()).toEqual([]);
    expect(await a.roundTripSeconds()).toBeGreaterThan(0);
    await redis.command("CONFIG", ["SET", "appendfsync", "everysec"]);
    await redis.command("CONFIG", ["SET", "appendonly", "no"]);
    try {
      const warnings = await a.durabilityWarnings();
      expect(warnings).toHaveLength(2);
      expect(warnings[0]).toContain("appendonly no");
      expect(warnings[1]).toContain("appendfsync everysec");
      for (const line of warnings) expect(line).not.toContain("\n");
    } finally {
      await redis.command("CONFIG", ["SET", "appendonly", "yes"]);
      await redis.command("CONFIG", ["SET", "appendfsync", "always"]);
      await redis.waitForAofRewrite();
    }
  });

  test("a Redis that refuses CONFIG gives one line saying it could not check", async () => {
    await redis.command("ACL", [
      "SETUSER",
      "chat",
      "on",
      ">secret",
      "~*",
      "&*",
      "+@all",
      "-config",
    ]);
    try {
      const store = await RedisStore.connect(
        `redis://chat:secret@127.0.0.1:${redis.port}`,
        "node-a",
      );
      open.push(store);
      const warnings = await store.durabilityWarnings();
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toStartWith(
        `could not check how durably Redis at redis://127.0.0.1:${redis.port} keeps writes`,
      );
      expect(warnings[0]).not.toContain("secret");
    } finally {
      await redis.command("ACL", ["DELUSER", "chat"]);
    }
  });

  test("an unreachable Redis is refused at connect within about 2 s, with one line", async () => {
    const port = await freeTcpPort();
    const startedAt = performance.now();
    let thrown: unknown;
    try {
      await RedisStore.connect(`redis://127.0.0.1:${port}/0`, "node-a");
    } catch (error) {
      thrown = error;
    }
    expect(performance.now() - startedAt).toBeLessThan(3_000);
    expect(thrown).toBeInstanceOf(StoreOpenError);
    const text = (thrown as Error).message;
    expect(text).toStartWith(
      `cannot open the message store at redis://127.0.0.1:${port}/0: Redis is unreachable`,
    );
    expect(text).not.toContain("\n");
  });

  test("Redis stopped: writes are refused and the store says why; started again: it reconnects and writes", async () => {
    const a = await connect("node-a");
    const heard: (string | undefined)[] = [];
    a.onReachability((problem) => heard.push(problem));
    await a.apply([putClient(client("alice", true))]);
    await redis.stop();
    try {
      await expect(a.apply([putClient(client("bob", true))])).rejects.toThrow(
        RedisUnavailableError,
      );
      expect(a.unreachable).toStartWith(`Redis at ${redis.url} is unreachable`);
      await expect(a.apply([putClient(client("bob", true))])).rejects.toThrow("unreachable");
      await expect(a.readChanges("0-0", 10)).rejects.toThrow("unreachable");
    } finally {
      await redis.restart();
    }
    const deadline = Date.now() + 5_000;
    while (a.unreachable !== undefined && Date.now() < deadline) await Bun.sleep(20);
    expect(a.unreachable).toBeUndefined();
    await a.apply([putClient(client("bob", true))]);
    // What was acknowledged before the outage survived it (appendfsync always).
    expect((await a.loadSummary()).clients.map((c) => c.name)).toEqual(["alice", "bob"]);
    expect(heard).toHaveLength(2);
    expect(heard[0]).toContain("unreachable");
    expect(heard[1]).toBeUndefined();
    expect((await a.readChanges("0-0", 10)).length).toBe(2);
  });

  test(
    "Redis frozen (SIGSTOP): a write fails after the command timeout, Redis is reported lost; thawed: it reconnects and writes",
    async () => {
      const a = await connect("node-a");
      const heard: (string | undefined)[] = [];
      a.onReachability((problem) => heard.push(problem));
      await a.apply([putClient(client("alice", true))]);
      redis.freeze();
      const startedAt = performance.now();
      try {
        await expect(a.apply([putClient(client("bob", true))])).rejects.toThrow(
          RedisUnavailableError,
        );
        const waited = performance.now() - startedAt;
        expect(waited).toBeGreaterThanOrEqual(COMMAND_TIMEOUT_MS - 50);
        expect(waited).toBeLessThan(COMMAND_TIMEOUT_MS + 2_000);
        expect(a.unreachable).toBe(
          `Redis at ${redis.url} is unreachable (no answer in ${COMMAND_TIMEOUT_MS / 1000} s)`,
        );
        // Meanwhile commands fail at once rather than wait.
        const quick = performance.now();
        await expect(a.apply([putClient(client("carol", true))])).rejects.toThrow("unreachable");
        expect(performance.now() - quick).toBeLessThan(100);
      } finally {
        redis.thaw();
      }
      const deadline = Date.now() + 8_000;
      while (a.unreachable !== undefined && Date.now() < deadline) await Bun.sleep(20);
      expect(a.unreachable).toBeUndefined();
      await a.apply([putClient(client("dave", true))]);
      const names = (await a.loadSummary()).clients.map((c) => c.name);
      // bob's batch may still have landed once Redis woke: sent, not answered in time.
      expect(names.filter((name) => name !== "bob")).toEqual(["alice", "dave"]);
      expect(heard[0]).toContain("no answer");
      expect(heard.at(-1)).toBeUndefined();
    },
    COMMAND_TIMEOUT_MS * 4,
  );
});
