import { afterAll, describe } from "bun:test";
import { clusterNodes } from "../helpers/deployments.ts";
import { binaryProgram, killAll } from "../helpers/process-driver.ts";
import { describeWithRedis, RedisServer } from "../helpers/redis-server.ts";
import { assignmentCases } from "./assignment-flows.ts";

/*
 * SPEC's cases on the binary with x, y and z at three nodes of a cluster sharing one
 * real redis-server (issue #11, "Done when"): each case its own redis-server.
 */

const started: RedisServer[] = [];

afterAll(async () => {
  await killAll();
  await Promise.all(started.map((redis) => redis.remove()));
});

describeWithRedis("three nodes on one Redis, x, y and z at different nodes", () => {
  describe("dist/chatapp", () => {
    assignmentCases(binaryProgram, async (chat) => {
      const redis = await RedisServer.start();
      started.push(redis);
      return clusterNodes(chat, redis.url, ["a", "b", "c"]);
    });
  });
});
