import { afterAll, describe, expect } from "bun:test";
import {
  type ChatProcess,
  ChatSession,
  checkTimestamp,
  killAll,
  programs,
  storedLine,
  testsFor,
  WELCOME,
  waitForTable,
} from "../helpers/process-driver.ts";

afterAll(killAll);

const SAVED = ">>> [Messages received by the server and saved]";
const YOU_HAVE_MESSAGES = ">>> [You have messages]";

interface SilentLeave {
  readonly how: string;
  readonly leave: (client: ChatProcess) => void;
  /** Whether the client comes back on the port it had, or on another one. */
  readonly samePort: boolean;
}

const silentLeaves: readonly SilentLeave[] = [
  { how: "ctrl+c (SIGINT)", leave: (client) => client.kill("SIGINT"), samePort: true },
  { how: "terminal closed (SIGHUP)", leave: (client) => client.kill("SIGHUP"), samePort: false },
  { how: "end of stdin", leave: (client) => client.endInput(), samePort: true },
  { how: "SIGTERM", leave: (client) => client.kill("SIGTERM"), samePort: false },
  { how: "the quit command", leave: (client) => client.type("quit"), samePort: true },
];

function stampOf(line: string, pattern: RegExp): string {
  return pattern.exec(line)?.[1] ?? "";
}

describe.concurrent.each(programs)("%s", (_title, program) => {
  const it = testsFor(program);

  for (const { how, leave, samePort } of silentLeaves) {
    it(`after a silent leave by ${how} the messages for the client wait at the server`, async () => {
      await using chat = await ChatSession.open(program);
      const startedAt = Date.now();
      const server = await chat.startServer();
      const [x, y, z] = await chat.startClients(server, ["x", "y", "z"]);

      leave(y);
      expect(await y.waitForExit()).toBe(0);
      expect(y.lines("stderr")).toEqual([]);

      x.type("send y hi y");
      await x.waitForLine(">>> [No ACK from y, message sent to server.]");
      await x.waitForLine(SAVED);
      await waitForTable(z, { x: "online", y: "offline", z: "online" });

      z.type("send_all while y was gone");
      await z.waitForLine(">>> [Message received by Server.]");
      await x.waitForLine(">>> [Channel_Message z: while y was gone]");

      const back = await chat.startClient("y", server, samePort ? { port: y.port } : {});
      const direct = storedLine("x: ", "hi y");
      const channel = storedLine("Channel-Message z: ", "while y was gone");
      await back.waitForLine(YOU_HAVE_MESSAGES);
      const first = await back.waitForLine(direct);
      const second = await back.waitForLine(channel);
      expect(back.lines().slice(0, 4)).toEqual([WELCOME, YOU_HAVE_MESSAGES, first, second]);
      checkTimestamp(stampOf(first, direct), startedAt, Date.now());
      checkTimestamp(stampOf(second, channel), startedAt, Date.now());
      expect(stampOf(first, direct) <= stampOf(second, channel)).toBe(true);

      // The others learn where y is now, and can reach it there directly.
      await waitForTable(x, { x: "online", y: "online", z: "online" });
      x.type("send y welcome back");
      await back.waitForLine(">>> x: welcome back");
      await x.waitForLine(">>> [Message received by y.]");
    });
  }

  it("a channel member killed outright is probed, and the channel message is stored for it", async () => {
    await using chat = await ChatSession.open(program);
    const startedAt = Date.now();
    const server = await chat.startServer();
    const [x, y] = await chat.startClients(server, ["x", "y"]);

    y.kill("SIGKILL");
    await y.waitForExit();
    x.type("send_all anyone there?");
    await x.waitForLine(">>> [Message received by Server.]");
    // The server finds y gone and pushes the table with y offline.
    await waitForTable(x, { x: "online", y: "offline" });

    const back = await chat.startClient("y", server);
    const channel = storedLine("Channel-Message x: ", "anyone there?");
    await back.waitForLine(YOU_HAVE_MESSAGES);
    const stored = await back.waitForLine(channel);
    checkTimestamp(stampOf(stored, channel), startedAt, Date.now());
    expect(back.lines().filter((line) => line.includes("anyone there?"))).toEqual([stored]);
  });
});
