import { afterAll, beforeAll, beforeEach, expect, test } from "bun:test";
import { type CliDeps, runCli } from "../../src/cli/run-cli.ts";
import type { ClientRecord, StoreChange } from "../../src/store/offline-store.ts";
import { RedisStore } from "../../src/store/redis-store.ts";
import { notices } from "../../src/text/notices.ts";
import { describeWithRedis, RedisServer } from "../helpers/redis-server.ts";

const alice: ClientRecord = {
  name: "Alice",
  ip: "127.0.0.1",
  port: 5001,
  online: true,
  token: "t",
  lastSeen: 1_764_000_000_000,
  sk: "sk-old",
  ak: "ak-old",
  sessionKey: "s",
};

const storedFor = (recipient: string, id: number): StoreChange => ({
  kind: "put-message",
  message: {
    id,
    recipient,
    sender: "bob",
    kind: "direct",
    text: `sealed to the lost key ${id}`,
    receivedAt: 1_700_000_000_000,
    ref: id,
  },
});

function cli(): { deps: CliDeps; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  const refuse = async (): Promise<number> => {
    throw new Error("no server or client runs for --release-name");
  };
  return {
    out,
    err,
    deps: {
      runServer: refuse,
      runClient: refuse,
      writeOut: (text) => out.push(text),
      writeErr: (text) => err.push(text),
    },
  };
}

describeWithRedis("--release-name --redis", () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterAll(() => redis.remove());
  beforeEach(() => redis.flushAll());

  test("the record, its stored messages and its claim leave Redis, through the change stream", async () => {
    const node = await RedisStore.connect(redis.url, "node-a");
    try {
      await node.apply([
        { kind: "put-client", client: alice },
        { kind: "put-client", client: { ...alice, name: "bob" } },
        storedFor("alice", 1),
        storedFor("ALICE", 2),
        storedFor("bob", 3),
      ]);
      const after = await node.lastChangeId();
      const { deps, out, err } = cli();
      expect(await runCli(["--release-name", "ALICE", "--redis", redis.url], deps)).toBe(0);
      expect(err).toEqual([]);
      expect(out).toEqual([notices.released("Alice", 2)]);
      const summary = await node.loadSummary();
      expect(summary.clients.map((c) => c.name)).toEqual(["bob"]);
      expect(summary.messages.map((m) => m.id)).toEqual([3]);
      expect(await redis.command("HGETALL", ["chat:claims"])).toEqual({ bob: "node-a" });
      const entries = await node.readChanges(after, 100);
      expect(entries.map((entry) => entry.node)).toEqual(["release-name"]);
      expect(entries[0]?.changes).toEqual([
        { kind: "remove-messages", ids: [1, 2] },
        { kind: "remove-client", name: "Alice" },
      ]);
    } finally {
      await node.close();
    }
  });

  test("a name Redis does not hold: one line naming where it looked, exit code 1", async () => {
    const { deps, out, err } = cli();
    expect(await runCli(["--release-name", "zed", "--redis", `${redis.url}/0`], deps)).toBe(1);
    expect(out).toEqual([]);
    expect(err).toEqual([`chatapp: no name zed is bound in Redis at ${redis.url}/0`]);
  });
});
