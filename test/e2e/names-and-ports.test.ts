import { afterAll, describe, expect } from "bun:test";
import {
  ChatSession,
  freePort,
  killAll,
  programs,
  SERVER_LISTENING,
  TABLE_UPDATED,
  testsFor,
  WELCOME,
  waitForTable,
} from "../helpers/process-driver.ts";

afterAll(killAll);

/** What a stack trace or an unhandled error report looks like on stderr. */
const CRASH = /^\s+at |error:|Error:|panic/;

describe.concurrent.each(programs)("%s", (_title, program) => {
  const it = testsFor(program);

  it("over IPv6 loopback (::1): register, chat directly, store and deliver", async () => {
    await using chat = await ChatSession.open(program);
    const server = await chat.startServer();
    const x = await chat.startClient("x", server, { serverIp: "::1" });
    const y = await chat.startClient("y", server, { serverIp: "::1" });
    await waitForTable(x, { x: "online", y: "online" });
    await waitForTable(y, { x: "online", y: "online" });
    x.type("send y over six");
    await y.waitForLine(">>> x: over six");
    await x.waitForLine(">>> [Message received by y.]");
    y.type("dereg y");
    await y.waitForLine(">>> [You are Offline. Bye.]");
    await waitForTable(x, { x: "online", y: "offline" });
    x.type("send y kept for later");
    await x.waitForLine(">>> [Messages received by the server and saved]");
    y.type("reg y");
    await y.waitForLine(">>> [You have messages]");
    await y.waitForLine(/^>>> x: \S+ kept for later$/);
  });

  it("a name held by a live client is refused: a clear message, a non-zero exit", async () => {
    await using chat = await ChatSession.open(program);
    const server = await chat.startServer();
    const [x] = await chat.startClients(server, ["x"]);

    const newcomer = chat.spawnClient("x", server, await freePort(), "second client x");
    await newcomer.waitForLine(">>> [The name x is in use by another online client.]");
    expect(await newcomer.waitForExit()).not.toBe(0);
    expect(newcomer.lines()).not.toContain(WELCOME);
    expect(newcomer.lines("stderr").filter((line) => CRASH.test(line))).toEqual([]);

    // The holder keeps its name and its session.
    const y = await chat.startClient("y", server);
    await waitForTable(x, { x: "online", y: "online" });
    await waitForTable(y, { x: "online", y: "online" });
    y.type("send x still yours");
    await x.waitForLine(">>> y: still yours");
    await y.waitForLine(">>> [Message received by x.]");
  });

  it("two clients starting at once with one name: exactly one gets it", async () => {
    await using chat = await ChatSession.open(program);
    const server = await chat.startServer();
    const [first, second] = await Promise.all([freePort(), freePort()]);
    const rivals = [
      chat.spawnClient("x", server, first, "client x (first)"),
      chat.spawnClient("x", server, second, "client x (second)"),
    ];
    const outcomes = await Promise.all(
      rivals.map((rival) =>
        rival.waitForLine(
          /^>>> \[(Welcome, You are registered\.|The name x is in use by another online client\.)\]$/,
        ),
      ),
    );
    expect(outcomes.toSorted()).toEqual([
      ">>> [The name x is in use by another online client.]",
      WELCOME,
    ]);
    const loser = rivals[outcomes.indexOf(WELCOME) === 0 ? 1 : 0];
    expect(await loser?.waitForExit()).not.toBe(0);
    const winner = rivals[outcomes.indexOf(WELCOME)];
    expect(winner?.exitCode).toBeUndefined();
  });

  it("a name held by a client that was killed is given to the newcomer", async () => {
    await using chat = await ChatSession.open(program);
    const server = await chat.startServer();
    const [x, y] = await chat.startClients(server, ["x", "y"]);

    x.kill("SIGKILL");
    await x.waitForExit();
    const newcomer = await chat.startClient("x", server);
    await newcomer.waitForLine(TABLE_UPDATED);
    await waitForTable(y, { x: "online", y: "online" });

    // y's table now holds the newcomer's address.
    y.type("send x are you the new x?");
    await newcomer.waitForLine(">>> y: are you the new x?");
    await y.waitForLine(">>> [Message received by x.]");
  });

  it("a client port already in use: a clear message, a non-zero exit, no stack trace", async () => {
    await using chat = await ChatSession.open(program);
    const server = await chat.startServer();
    const [x] = await chat.startClients(server, ["x"]);

    const late = chat.spawnClient("y", server, x.port);
    const code = await late.waitForExit();
    expect(code).not.toBe(0);
    expect(late.lines("stderr")).toEqual([
      `chatapp: port ${x.port} is already in use: choose another port or stop the program that holds it`,
    ]);
    expect(late.lines()).toEqual([]);
    expect(x.exitCode).toBeUndefined();
  });

  it("a server port already in use: a clear message, a non-zero exit, no stack trace", async () => {
    await using chat = await ChatSession.open(program);
    const server = await chat.startServer();
    const dataDir = await chat.makeDataDir();

    const second = chat.spawn(
      ["-s", String(server.port), "--data-dir", dataDir],
      "second server",
      server.port,
    );
    const code = await second.waitForExit();
    expect(code).not.toBe(0);
    expect(second.lines("stderr")).toEqual([
      `chatapp: port ${server.port} is already in use: choose another port or stop the program that holds it`,
    ]);
    expect(second.lines().filter((line) => SERVER_LISTENING.test(line))).toEqual([]);
    expect(second.lines().filter((line) => CRASH.test(line))).toEqual([]);
    expect(server.process.exitCode).toBeUndefined();
  });
});
