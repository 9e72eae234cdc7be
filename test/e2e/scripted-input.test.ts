import { afterAll, describe, expect } from "bun:test";
import { notices } from "../../src/text/notices.ts";
import {
  ChatSession,
  freePort,
  killAll,
  programs,
  TABLE_UPDATED,
  testsFor,
  WELCOME,
  waitForTable,
} from "../helpers/process-driver.ts";

afterAll(killAll);

const SCRIPT = ["send y hello from a script", "send_all to everyone", "list", "dereg x"];
const READ_MARKER = "quit";
const READ_MARKER_ANSWER = `>>> ${notices.finishingBeforeQuit}`;

describe.concurrent.each(programs)("%s", (_title, program) => {
  const it = testsFor(program);

  it("a whole script given at start, then end of input: every command is carried out, exit 0", async () => {
    await using chat = await ChatSession.open(program);
    const server = await chat.startServer();
    const [y] = await chat.startClients(server, ["y"]);

    // As `chatapp -c x ... < script.txt`: all of it is read before the client has registered.
    // The server is held (SIGSTOP) until the client has shown it read the whole script: a
    // quit at its end is answered at once (it leaves once the commands before it are done).
    server.process.kill("SIGSTOP");
    const x = chat.spawnClient("x", server, await freePort());
    for (const line of [...SCRIPT, READ_MARKER]) x.type(line);
    x.endInput();
    await x.waitForLine(READ_MARKER_ANSWER);
    server.process.kill("SIGCONT");

    expect(await x.waitForExit()).toBe(0);
    const out = x.lines().filter((line) => line !== READ_MARKER_ANSWER);
    expect(out.filter((line) => /No client named|Usage|Unknown command/.test(line))).toEqual([]);
    expect(out[0]).toBe(WELCOME);
    expect(out).toContain(">>> [Message received by y.]");
    expect(out).toContain(">>> [Message received by Server.]");
    expect(out).toContain(">>> [Client table: 2 clients]");
    expect(out).toContain(">>> [You are Offline. Bye.]");
    await y.waitForLine(">>> x: hello from a script");
    await y.waitForLine(">>> [Channel_Message x: to everyone]");
  });

  it("a script typed once registered, then end of input: the client finishes it and exits 0", async () => {
    await using chat = await ChatSession.open(program);
    const server = await chat.startServer();
    const [x, y] = await chat.startClients(server, ["x", "y"]);

    const mark = x.mark();
    for (const line of SCRIPT) x.type(line);
    x.endInput();

    // Leaving waits for the outstanding requests: every answer is printed before the exit.
    expect(await x.waitForExit()).toBe(0);
    const out = x.linesSince(mark);
    for (const expected of [
      ">>> [Message received by y.]",
      ">>> [Message received by Server.]",
      ">>> [Client table: 2 clients]",
      ">>> [You are Offline. Bye.]",
    ]) {
      expect(out.filter((line) => line === expected)).toEqual([expected]);
    }
    expect(out).toContain(">>> [You are Offline. Bye.]");
    await y.waitForLine(">>> x: hello from a script");
    await y.waitForLine(">>> [Channel_Message x: to everyone]");
    await y.waitForLine(TABLE_UPDATED);
    await waitForTable(y, { x: "offline", y: "online" });
  });
});
