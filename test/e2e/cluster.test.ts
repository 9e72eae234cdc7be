import { afterAll, expect, test } from "bun:test";
import { clusterNodes } from "../helpers/deployments.ts";
import {
  binaryProgram,
  ChatSession,
  E2E_TEST_TIMEOUT_MS,
  freePort,
  killAll,
  storedLine,
  WELCOME,
  waitForTable,
} from "../helpers/process-driver.ts";
import { describeWithRedis, RedisServer, storedMessagesDrain } from "../helpers/redis-server.ts";

/*
 * Three real `chatapp -s --redis` nodes on one real redis-server, with x, y and z at
 * different nodes, driven through stdin and stdout like users (docs/CLUSTER.md).
 */

afterAll(killAll);

const SAVED = ">>> [Messages received by the server and saved]";
const OFFLINE_BYE = ">>> [You are Offline. Bye.]";
const YOU_HAVE_MESSAGES = ">>> [You have messages]";
const CHANNEL_ACK = ">>> [Message received by Server.]";

async function redisForTest(): Promise<RedisServer & AsyncDisposable> {
  const redis = await RedisServer.start();
  return Object.assign(redis, { [Symbol.asyncDispose]: () => redis.remove() });
}

/** Nodes a, b and c on one Redis, with x at a, y at b and z at c, all online in every table. */
async function xyzAtThreeNodes(chat: ChatSession, redis: RedisServer) {
  const deployment = await clusterNodes(chat, redis.url, ["a", "b", "c"]);
  const [x, y, z] = await deployment.startClients(["x", "y", "z"]);
  if (!x || !y || !z) throw new Error("three clients");
  return { x, y, z, b: deployment.serverOf("y"), c: deployment.serverOf("z") };
}

describeWithRedis("a cluster of three nodes on one Redis", () => {
  test(
    "SPEC's flows with x, y and z at three different nodes, and a Redis restart in between",
    async () => {
      await using redis = await redisForTest();
      await using chat = await ChatSession.open(binaryProgram);
      const { x, y, z, b, c } = await xyzAtThreeNodes(chat, redis);
      const everyone = { x: "online", y: "online", z: "online" } as const;

      // Direct chat between clients of different nodes.
      x.type("send y hello across nodes");
      await y.waitForLine(/^>>> x: .*hello across nodes$/);
      await x.waitForLine(">>> [Message received by y.]");

      // dereg at b reaches a's and c's clients; a save at a waits for y in Redis.
      y.type("dereg y");
      await y.waitForLine(OFFLINE_BYE);
      await waitForTable(x, { ...everyone, y: "offline" });
      await waitForTable(z, { ...everyone, y: "offline" });
      x.type("send y kept while you were away");
      await x.waitForLine(SAVED);

      // A channel post at c: stored for y (offline), delivered live to x at a.
      z.type("send_all hello channel");
      await z.waitForLine(CHANNEL_ACK);
      await x.waitForLine(">>> [Channel_Message z: hello channel]");

      // Redis restarts (its append-only file keeps everything): the nodes carry on.
      await redis.stop();
      await b.process.waitForLine(/is unreachable/, { stream: "stderr" });
      await redis.restart();
      await b.process.waitForLine(/is reachable again/);
      const mark = y.mark();
      y.type("reg y");
      await y.waitForLine(WELCOME);
      await y.waitForLine(YOU_HAVE_MESSAGES);
      await y.waitForLine(storedLine("x: ", "kept while you were away"));
      await y.waitForLine(storedLine("Channel-Message z: ", "hello channel"));
      await waitForTable(x, everyone);
      await waitForTable(z, everyone);
      const lines = y.linesSince(mark);
      expect(lines.filter((line) => line.includes("kept while you were away"))).toHaveLength(1);
      expect(lines.filter((line) => line.includes("hello channel"))).toHaveLength(1);

      // After the restart the shared log still carries posts between nodes.
      x.type("send_all after the restart");
      await x.waitForLine(CHANNEL_ACK);
      await y.waitForLine(">>> [Channel_Message x: after the restart]");
      await z.waitForLine(">>> [Channel_Message x: after the restart]");
      await storedMessagesDrain(redis);

      // A name online at one node is refused at another while its holder answers.
      const impostor = chat.spawnClient("y", c, await freePort(), "impostor y");
      await impostor.waitForLine(">>> [The name y is in use by another online client.]");
      expect(await impostor.waitForExit()).toBe(1);
    },
    E2E_TEST_TIMEOUT_MS,
  );

  test(
    "a node SIGKILLed: its clients go offline everywhere within seconds, and nothing acknowledged is lost or doubled",
    async () => {
      await using redis = await redisForTest();
      await using chat = await ChatSession.open(binaryProgram);
      const { x, y, z, b, c } = await xyzAtThreeNodes(chat, redis);
      const everyone = { x: "online", y: "online", z: "online" } as const;

      b.process.kill("SIGKILL");
      await y.stop();
      const killedAt = performance.now();
      await waitForTable(x, { ...everyone, y: "offline" });
      await waitForTable(z, { ...everyone, y: "offline" });
      // The heartbeat lasts 3 s and is checked every second.
      expect(performance.now() - killedAt).toBeLessThan(8_000);

      const saves = 5;
      for (let n = 1; n <= saves; n++) {
        x.type(`send y saved after b died ${n}`);
        await x.waitForLine(SAVED);
      }
      z.type("send_all posted after b died");
      await z.waitForLine(CHANNEL_ACK);

      const again = await chat.startClient("y", c);
      await again.waitForLine(YOU_HAVE_MESSAGES);
      for (let n = 1; n <= saves; n++) {
        await again.waitForLine(storedLine("x: ", `saved after b died ${n}`));
      }
      await again.waitForLine(storedLine("Channel-Message z: ", "posted after b died"));
      await waitForTable(x, everyone);
      const shown = again.lines().filter((line) => line.includes("after b died"));
      expect(shown).toHaveLength(saves + 1);
      await storedMessagesDrain(redis);
    },
    E2E_TEST_TIMEOUT_MS,
  );
});
