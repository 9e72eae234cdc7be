import { afterAll, describe, expect } from "bun:test";
import { commandUsage } from "../../src/core/client-commands.ts";
import { notices } from "../../src/text/notices.ts";
import {
  ChatSession,
  killAll,
  LOOPBACK,
  programs,
  testsFor,
  waitForTable,
} from "../helpers/process-driver.ts";

afterAll(killAll);

/** Non-SPEC explanations come from notices.ts, the one place they are worded. */
const shown = (text: string): string => `>>> ${text}`;

const badCommands: readonly (readonly [typed: string, explanation: string])[] = [
  ["frobnicate now", shown(notices.unknownCommand("frobnicate"))],
  ["send", shown(notices.usage(commandUsage.send))],
  ["send y", shown(notices.usage(commandUsage.send))],
  ["send_all", shown(notices.usage(commandUsage.sendAll))],
  ["dereg", shown(notices.usage(commandUsage.dereg))],
  ["dereg y", shown(notices.notYourName("x"))],
  ["reg x", shown(notices.alreadyRegistered)],
  ["send nobody hi", shown(notices.unknownRecipient("nobody"))],
  ["list every thing", shown(notices.usage(commandUsage.list))],
];

const json = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));
const text = (value: string): Uint8Array => new TextEncoder().encode(value);
const ZERO_TOKEN = "0".repeat(32);
/** What a stack trace or an unhandled error report looks like. */
const CRASH = /^\s+at |error|panic|uncaught/i;

/** Datagrams no chatapp ever sends, or sends only from somewhere else. */
const garbage: readonly Uint8Array[] = [
  new Uint8Array(0),
  crypto.getRandomValues(new Uint8Array(700)),
  new Uint8Array([0xff, 0xfe, 0xfd, 0x00, 0x7b]),
  text("hello"),
  text("{"),
  text(`${"[".repeat(20_000)}${"]".repeat(20_000)}`),
  text("A".repeat(60_000)),
  json(null),
  json([1, 2, 3]),
  json({ v: 5, type: "register", id: 1, name: "mallory" }),
  json({ v: 5, type: "register", id: -1, name: "x" }),
  json({ v: 5, type: "nonsense", id: 1 }),
  json({ v: 5, type: "ack", id: 1 }),
  json({ v: 5, type: "chat", id: 7, from: "y", to: "x", text: "spoofed chat" }),
  json({ v: 5, type: "table", id: 8, version: 99, part: 0, parts: 1, clients: [] }),
  json({ v: 5, type: "channel-message", id: 9, from: "y", text: "spoofed channel" }),
  json({ v: 5, type: "deregister", id: 10, token: ZERO_TOKEN }),
  json({ v: 5, type: "save", id: 11, token: ZERO_TOKEN, to: "x", text: "spoofed save" }),
  json({ v: 5, type: "channel", id: 12, token: ZERO_TOKEN, text: "spoofed channel" }),
  text('{"__proto__":{"polluted":true},"v":5,"type":"probe","id":13}'),
];

async function sendGarbage(ports: readonly number[]): Promise<void> {
  const socket = await Bun.udpSocket({
    hostname: LOOPBACK,
    socket: {
      data() {},
      error() {},
    },
  });
  try {
    for (const port of ports) {
      for (const datagram of garbage) socket.send(datagram, port, LOOPBACK);
    }
  } finally {
    socket.close();
  }
}

describe.concurrent.each(programs)("%s", (_title, program) => {
  const it = testsFor(program);

  it("bad commands get a one-line explanation each, and the client carries on", async () => {
    await using chat = await ChatSession.open(program);
    const server = await chat.startServer();
    const [x, y] = await chat.startClients(server, ["x", "y"]);

    const mark = x.mark();
    for (const [typed, explanation] of badCommands) {
      x.type(typed);
      await x.waitForLine(explanation);
    }
    expect(x.linesSince(mark)).toEqual(badCommands.map(([, explanation]) => explanation));

    x.type("send y still fine");
    await y.waitForLine(">>> x: still fine");
    await x.waitForLine(">>> [Message received by y.]");
    expect(x.exitCode).toBeUndefined();
  });

  it("commands that make no sense while offline are refused, and reg brings the client back", async () => {
    await using chat = await ChatSession.open(program);
    const server = await chat.startServer();
    const [x, y] = await chat.startClients(server, ["x", "y"]);
    x.type("dereg x");
    await x.waitForLine(">>> [You are Offline. Bye.]");

    const refusals = [
      ["send y hi", shown(notices.notRegistered)],
      ["send_all hi", shown(notices.notRegistered)],
      ["dereg x", shown(notices.alreadyOffline)],
      ["reg y", shown(notices.notYourName("x"))],
    ] as const;
    const mark = x.mark();
    for (const [typed, explanation] of refusals) {
      x.type(typed);
      await x.waitForLine(explanation);
    }
    expect(x.linesSince(mark)).toEqual(refusals.map(([, explanation]) => explanation));

    x.type("reg x");
    await x.waitForLine(">>> [Welcome, You are registered.]");
    await waitForTable(y, { x: "online", y: "online" });
    y.type("send x welcome back");
    await x.waitForLine(">>> y: welcome back");
  });

  it("garbage datagrams to the server and the clients crash nothing and change nothing", async () => {
    await using chat = await ChatSession.open(program);
    const server = await chat.startServer();
    const [x, y] = await chat.startClients(server, ["x", "y"]);

    const mark = x.mark();
    await sendGarbage([server.port, x.port]);

    // Sent after the garbage, so x has handled all of it by the time this shows.
    y.type("send x after the noise");
    await x.waitForLine(">>> y: after the noise");
    expect(x.linesSince(mark)).toEqual([">>> y: after the noise"]);

    // The server still registers, relays and keeps the sessions the spoofs aimed at.
    const z = await chat.startClient("z", server);
    for (const client of [x, y, z])
      await waitForTable(client, { x: "online", y: "online", z: "online" });
    x.type("send_all still standing");
    await x.waitForLine(">>> [Message received by Server.]");
    await y.waitForLine(">>> [Channel_Message x: still standing]");
    await z.waitForLine(">>> [Channel_Message x: still standing]");
    x.type("send y and chatting");
    await y.waitForLine(">>> x: and chatting");
    await x.waitForLine(">>> [Message received by y.]");

    for (const child of [server.process, x, y]) {
      expect(child.exitCode).toBeUndefined();
      expect(child.lines("stderr").filter((line) => CRASH.test(line))).toEqual([]);
    }
    expect(x.lines("stderr")).toEqual([]);
    expect(x.lines().filter((line) => line.includes("spoofed"))).toEqual([]);
  });
});
