import { afterAll, describe, expect } from "bun:test";
import { helpLines } from "../../src/core/client-commands.ts";
import {
  ChatSession,
  freePort,
  killAll,
  programs,
  testsFor,
  waitForTable,
} from "../helpers/process-driver.ts";

afterAll(killAll);

const LAST_HELP_LINE = `>>> ${helpLines.at(-1)}`;

describe.concurrent.each(programs)("%s", (_title, program) => {
  const it = testsFor(program);

  it("with the server gone: send_all gives up and carries on, dereg gives up and exits, leaving works", async () => {
    await using chat = await ChatSession.open(program);
    const server = await chat.startServer();
    const [x, y, z, w] = await chat.startClients(server, ["x", "y", "z", "w"]);
    server.process.kill("SIGKILL");
    await server.process.waitForExit();

    // A client started now never gets an answer to its registration.
    const late = chat.spawnClient("v", server, await freePort());

    const xMark = x.mark();
    const yMark = y.mark();
    const sentAt = performance.now();
    x.type("send_all is anyone there?");
    y.type("dereg y");
    // z and w each have a request out (help answers at once, so the line before it was read).
    for (const client of [z, w]) {
      client.type(`send_all ${client.label} is waiting`);
      client.type("help");
    }
    await Promise.all([z.waitForLine(LAST_HELP_LINE), w.waitForLine(LAST_HELP_LINE)]);

    // A signal leaves at once, whatever is outstanding; the end of input lets it finish first.
    z.kill("SIGINT");
    w.endInput();
    expect(await z.waitForExit()).toBe(0);
    expect(performance.now() - sentAt).toBeLessThan(2_000);
    expect(z.lines()).not.toContain(">>> [Server not responding.]");

    await x.waitForLine(">>> [Server not responding.]", { timeoutMs: 8_000 });
    const channelWaitedMs = performance.now() - sentAt;
    await y.waitForLine(">>> [Server not responding]", { timeoutMs: 8_000 });
    const deregWaitedMs = performance.now() - sentAt;
    await y.waitForLine(">>> [Exiting]");
    await w.waitForLine(">>> [Server not responding.]", { timeoutMs: 8_000 });
    expect(await w.waitForExit()).toBe(0);

    await late.waitForLine(">>> [Server not responding]", { timeoutMs: 8_000 });
    await late.waitForLine(">>> [Exiting]");
    expect(await late.waitForExit()).not.toBe(0);
    expect(late.lines()).toEqual([">>> [Server not responding]", ">>> [Exiting]"]);

    expect(await y.waitForExit()).not.toBe(0);
    expect(y.linesSince(yMark)).toEqual([">>> [Server not responding]", ">>> [Exiting]"]);
    for (const waited of [channelWaitedMs, deregWaitedMs]) {
      expect(waited).toBeGreaterThanOrEqual(2_500);
      expect(waited).toBeLessThanOrEqual(6_000);
    }

    // x keeps running, and once the server is back (same port, same data) its session works.
    expect(x.linesSince(xMark)).toEqual([">>> [Server not responding.]"]);
    expect(x.exitCode).toBeUndefined();
    await chat.startServer({ port: server.port, dataDir: server.dataDir });
    x.type("send_all back again");
    await x.waitForLine(">>> [Message received by Server.]");
    // The server finds y, z and w gone when it forwards the message, and says so.
    await waitForTable(x, { x: "online", y: "offline", z: "offline", w: "offline" });
  });
});
