import { afterAll, describe, expect } from "bun:test";
import {
  ChatSession,
  escapeRegExp,
  killAll,
  programs,
  testsFor,
} from "../helpers/process-driver.ts";

afterAll(killAll);

/** A line of the server log written to a pipe: ISO-8601 UTC time, level, text. */
const LOG_LINE = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z) (INFO|WARN|ERROR|DEBUG) \S/;

function checkTimes(lines: readonly string[], from: number, to: number): void {
  expect(lines.length).toBeGreaterThan(0);
  for (const line of lines) {
    const time = LOG_LINE.exec(line)?.[1];
    if (time === undefined) throw new Error(`not a timed log line: ${JSON.stringify(line)}`);
    const at = Date.parse(time);
    expect(at).toBeGreaterThanOrEqual(from);
    expect(at).toBeLessThanOrEqual(to);
  }
}

describe.concurrent.each(programs)("%s", (_title, program) => {
  const it = testsFor(program);

  it("the server log to a pipe: every line starts with an ISO-8601 UTC time", async () => {
    const from = Date.now();
    await using chat = await ChatSession.open(program);
    const server = await chat.startServer();
    const client = await chat.startClient("a1", server);
    const registered = await server.process.waitForLine(
      new RegExp(`^\\S+ INFO a1 registered from ${escapeRegExp(`127.0.0.1:${client.port}`)}$`),
    );
    expect(registered).toMatch(LOG_LINE);
    server.process.kill("SIGTERM");
    expect(await server.process.waitForExit()).toBe(0);
    const to = Date.now();
    checkTimes(server.process.lines("stdout"), from, to);
    expect(server.process.lines("stdout").at(-1)).toMatch(/ INFO server stopped \(SIGTERM\)$/);
  });

  it("--verbose logs a dropped datagram as it arrives: source, size, reason", async () => {
    await using chat = await ChatSession.open(program);
    const server = await chat.startServer({ args: ["--verbose"] });
    const peer = await Bun.udpSocket({ hostname: "127.0.0.1" });
    try {
      peer.send("not json", server.port, "127.0.0.1");
      const line = await server.process.waitForLine(
        new RegExp(
          `^\\S+ DEBUG dropped a datagram from ${escapeRegExp(`127.0.0.1:${peer.port}`)} \\(8 bytes\\): malformed$`,
        ),
      );
      expect(line).toMatch(LOG_LINE);
    } finally {
      peer.close();
    }
  });

  it("without --verbose a dropped datagram is not logged", async () => {
    await using chat = await ChatSession.open(program);
    const server = await chat.startServer();
    const peer = await Bun.udpSocket({ hostname: "127.0.0.1" });
    try {
      peer.send("not json", server.port, "127.0.0.1");
      // A client registering afterwards is logged, so the datagram before it was handled.
      await chat.startClient("after", server);
      await server.process.waitForLine(/ INFO after registered from /);
      expect(server.process.lines("stdout").join("\n")).not.toContain("dropped");
    } finally {
      peer.close();
    }
  });
});
