import { afterAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { DATABASE_FILE_NAME } from "../../src/store/sqlite-store.ts";
import {
  binaryProgram,
  ChatSession,
  E2E_TEST_TIMEOUT_MS,
  escapeRegExp,
  freePort,
  killAll,
  LOOPBACK,
  programs,
  type ServerHandle,
  storedLine,
  TABLE_UPDATED,
  testsFor,
  WELCOME,
  waitForTable,
} from "../helpers/process-driver.ts";
import {
  describeWithRedis,
  freeTcpPort,
  RedisServer,
  storedMessagesDrain,
} from "../helpers/redis-server.ts";

afterAll(killAll);

const SAVED = ">>> [Messages received by the server and saved]";
const STORE_FAILED =
  ">>> [The server could not write to its disk; nothing was saved. Try again later.]";
const OFFLINE_BYE = ">>> [You are Offline. Bye.]";
const HTTP_READY = /INFO health and metrics at (http:\S+)\/healthz and /;

/** A redis-server for one test, removed however the test ends. */
async function redisForTest(): Promise<RedisServer & AsyncDisposable> {
  const redis = await RedisServer.start();
  return Object.assign(redis, { [Symbol.asyncDispose]: () => redis.remove() });
}

async function health(url: string): Promise<{ status: number; text: string }> {
  const response = await fetch(`${url}/healthz`);
  return { status: response.status, text: await response.text() };
}

async function waitForHealth(url: string, status: number, timeoutMs = 8_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while ((await health(url)).status !== status) {
    if (performance.now() > deadline) throw new Error(`/healthz did not turn ${status}`);
    await Bun.sleep(50);
  }
}

describeWithRedis("chatapp -s --redis", () => {
  describe.concurrent.each(programs)("%s", (_title, program) => {
    const it = testsFor(program);

    it("a save is kept in Redis and delivered after the server restarts", async () => {
      await using redis = await redisForTest();
      await using chat = await ChatSession.open(program);
      const args = ["--redis", redis.url, "--node-name", "node-a"];
      const first = await chat.startServer({ args });
      await first.process.waitForLine(
        new RegExp(`message store: Redis at ${escapeRegExp(redis.url)}, node node-a `),
      );
      const [x, y] = await chat.startClients(first, ["x", "y"]);
      y.type("dereg y");
      await y.waitForLine(OFFLINE_BYE);
      await waitForTable(x, { x: "online", y: "offline" });
      x.type("send y kept in redis");
      await x.waitForLine(SAVED);

      first.process.kill("SIGTERM");
      expect(await first.process.waitForExit()).toBe(0);
      const second: ServerHandle = await chat.startServer({
        port: first.port,
        dataDir: first.dataDir,
        args,
      });
      await second.process.waitForLine(/\(2 known client\(s\), 1 stored message\(s\)\)$/);
      const mark = y.mark();
      y.type("reg y");
      await y.waitForLine(WELCOME);
      const stored = await y.waitForLine(storedLine("x: ", "kept in redis"));
      await y.waitForLine(TABLE_UPDATED);
      expect(y.linesSince(mark).filter((line) => line.includes("kept in redis"))).toEqual([stored]);
      // The table and the message lived in Redis: the data directory holds no database.
      expect(existsSync(join(first.dataDir, DATABASE_FILE_NAME))).toBe(false);
      await storedMessagesDrain(redis);
    });
  });

  test(
    "Redis down at start: one clear line and exit code 1",
    async () => {
      await using chat = await ChatSession.open(binaryProgram);
      const redisPort = await freeTcpPort();
      const port = await freePort();
      const server = chat.spawn(
        [
          "-s",
          String(port),
          "--data-dir",
          await chat.makeDataDir(),
          "--redis",
          `redis://${LOOPBACK}:${redisPort}/0`,
        ],
        "server",
        port,
      );
      expect(await server.waitForExit()).toBe(1);
      expect(server.lines("stderr")).toEqual([
        `chatapp: cannot open the message store at redis://${LOOPBACK}:${redisPort}/0: Redis is unreachable (Connection closed); check that redis-server runs there and that the URL is right`,
      ]);
      expect(server.lines()).toEqual([]);
    },
    E2E_TEST_TIMEOUT_MS,
  );

  test(
    "Redis stopped while running: a save gets store-failed and /healthz 503; Redis back: the same save succeeds and /healthz 200",
    async () => {
      await using redis = await redisForTest();
      await using chat = await ChatSession.open(binaryProgram);
      const httpPort = await freeTcpPort();
      const server = await chat.startServer({
        args: ["--redis", redis.url, "--http", String(httpPort), "--node-name", "node-a"],
      });
      const url = HTTP_READY.exec(await server.process.waitForLine(HTTP_READY))?.[1] ?? "";
      const [x, y] = await chat.startClients(server, ["x", "y"]);
      y.type("dereg y");
      await y.waitForLine(OFFLINE_BYE);
      await waitForTable(x, { x: "online", y: "offline" });
      expect(await health(url)).toEqual({ status: 200, text: "ok\n" });

      await redis.stop();
      await waitForHealth(url, 503);
      x.type("send y tried while redis is down");
      await x.waitForLine(STORE_FAILED);
      expect(await health(url)).toEqual({
        status: 503,
        text: `Redis at ${redis.url} is unreachable (Connection closed)\n`,
      });
      const metrics = await (await fetch(`${url}/metrics`)).text();
      expect(metrics).toContain('chatapp_redis_reachable{node="node-a"} 0');

      await redis.restart();
      await waitForHealth(url, 200);
      x.type("send y tried while redis is down");
      await x.waitForLine(SAVED);
      expect(await health(url)).toEqual({ status: 200, text: "ok\n" });
      expect(await (await fetch(`${url}/metrics`)).text()).toContain(
        'chatapp_redis_reachable{node="node-a"} 1',
      );

      y.type("reg y");
      await y.waitForLine(WELCOME);
      await y.waitForLine(storedLine("x: ", "tried while redis is down"));
      await y.waitForLine(TABLE_UPDATED);
      expect(y.lines().filter((line) => line.includes("tried while redis is down"))).toHaveLength(
        1,
      );
      // The outage was logged once, and its end once.
      const log = [...server.process.lines(), ...server.process.lines("stderr")];
      expect(log.filter((line) => line.includes("is unreachable"))).toHaveLength(1);
      expect(log.filter((line) => line.includes("is reachable again"))).toHaveLength(1);
    },
    E2E_TEST_TIMEOUT_MS,
  );

  test(
    "Redis frozen (SIGSTOP): a save is answered store-failed within the client's 3 s, not [Server not responding]; thawed, it is saved",
    async () => {
      await using redis = await redisForTest();
      await using chat = await ChatSession.open(binaryProgram);
      const server = await chat.startServer({ args: ["--redis", redis.url] });
      const [x, y] = await chat.startClients(server, ["x", "y"]);
      y.type("dereg y");
      await y.waitForLine(OFFLINE_BYE);
      await waitForTable(x, { x: "online", y: "offline" });

      redis.freeze();
      try {
        const mark = x.mark();
        x.type("send y while redis is frozen");
        await x.waitForLine(STORE_FAILED, { timeoutMs: 4_000 });
        expect(x.linesSince(mark)).toEqual([STORE_FAILED]);
        expect(x.exitCode).toBeUndefined();
      } finally {
        redis.thaw();
      }
      await server.process.waitForLine(/is reachable again/, { timeoutMs: 8_000 });
      x.type("send y while redis is frozen");
      await x.waitForLine(SAVED);
      y.type("reg y");
      await y.waitForLine(storedLine("x: ", "while redis is frozen"));
      await y.waitForLine(TABLE_UPDATED);
      // Sent once more after the failure: shown once, whatever Redis did with the first.
      expect(y.lines().filter((line) => line.includes("while redis is frozen"))).toHaveLength(1);
    },
    E2E_TEST_TIMEOUT_MS,
  );
});
