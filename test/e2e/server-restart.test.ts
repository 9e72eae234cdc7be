import { afterAll, describe, expect } from "bun:test";
import {
  ChatSession,
  checkTimestamp,
  killAll,
  programs,
  type ServerHandle,
  storedLine,
  TABLE_UPDATED,
  testsFor,
  WELCOME,
  waitForTable,
} from "../helpers/process-driver.ts";

afterAll(killAll);

const OFFLINE_BYE = ">>> [You are Offline. Bye.]";
const YOU_HAVE_MESSAGES = ">>> [You have messages]";

describe.concurrent.each(programs)("%s", (_title, program) => {
  const it = testsFor(program);

  it("stored messages survive a server restart and are delivered once", async () => {
    await using chat = await ChatSession.open(program);
    const startedAt = Date.now();
    const first = await chat.startServer();
    const [x, y] = await chat.startClients(first, ["x", "y"]);

    x.type("dereg x");
    await x.waitForLine(OFFLINE_BYE);
    await waitForTable(y, { x: "offline", y: "online" });
    y.type("send x kept on disk");
    await y.waitForLine(">>> [Messages received by the server and saved]");

    const restart = async (server: ServerHandle): Promise<ServerHandle> => {
      server.process.kill("SIGTERM");
      expect(await server.process.waitForExit()).toBe(0);
      return await chat.startServer({ port: server.port, dataDir: server.dataDir });
    };
    const second = await restart(first);

    const mark = x.mark();
    x.type("reg x");
    await x.waitForLine(WELCOME);
    const pattern = storedLine("y: ", "kept on disk");
    const stored = await x.waitForLine(pattern);
    checkTimestamp(pattern.exec(stored)?.[1] ?? "", startedAt, Date.now());
    await x.waitForLine(TABLE_UPDATED);
    expect(x.linesSince(mark)).toEqual([WELCOME, YOU_HAVE_MESSAGES, stored, TABLE_UPDATED]);
    await waitForTable(y, { x: "online", y: "online" });

    // Once: neither the same server nor the next one delivers it again.
    await restart(second);
    for (let round = 0; round < 2; round++) {
      x.type("dereg x");
      await x.waitForLine(OFFLINE_BYE);
      const again = x.mark();
      x.type("reg x");
      await x.waitForLine(WELCOME);
      await x.waitForLine(TABLE_UPDATED);
      expect(x.linesSince(again)).toEqual([WELCOME, TABLE_UPDATED]);
    }
    expect(x.lines().filter((line) => line.includes("kept on disk"))).toEqual([stored]);

    // y's session survived the restarts too.
    await waitForTable(y, { x: "online", y: "online" });
    y.type("send_all still here");
    await y.waitForLine(">>> [Message received by Server.]");
    await x.waitForLine(">>> [Channel_Message y: still here]");
  });
});
