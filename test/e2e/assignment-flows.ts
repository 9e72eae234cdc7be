import { expect } from "bun:test";
import type { Deployment } from "../helpers/deployments.ts";
import {
  type ChatProcess,
  ChatSession,
  checkTimestamp,
  type Program,
  storedLine,
  TABLE_UPDATED,
  testsFor,
  WELCOME,
  waitForTable,
} from "../helpers/process-driver.ts";

/*
 * The assignment's end-to-end cases (SPEC.md), written once and run on one server
 * (assignment-cases.test.ts) and on three nodes of a cluster with x, y and z at
 * different nodes (assignment-cases-cluster.test.ts).
 */

const OFFLINE_BYE = ">>> [You are Offline. Bye.]";
const SAVED = ">>> [Messages received by the server and saved]";
const YOU_HAVE_MESSAGES = ">>> [You have messages]";

async function threeClients(
  deployment: Deployment,
): Promise<[ChatProcess, ChatProcess, ChatProcess]> {
  const [x, y, z] = await deployment.startClients(["x", "y", "z"]);
  if (!x || !y || !z) throw new Error("three clients");
  return [x, y, z];
}

async function twoClients(deployment: Deployment): Promise<[ChatProcess, ChatProcess]> {
  const [x, y] = await deployment.startClients(["x", "y"]);
  if (!x || !y) throw new Error("two clients");
  return [x, y];
}

export function assignmentCases(
  program: Program,
  deploy: (chat: ChatSession) => Promise<Deployment>,
): void {
  const it = testsFor(program);

  it("case 1: register, chat in all six directions, dereg, offline messages, reg", async () => {
    await using chat = await ChatSession.open(program);
    const startedAt = Date.now();
    const deployment = await deploy(chat);
    const [x, y, z] = await threeClients(deployment);
    for (const client of [x, y, z]) {
      expect(client.lines().slice(0, 2)).toEqual([WELCOME, TABLE_UPDATED]);
    }

    const clients = [
      ["x", x],
      ["y", y],
      ["z", z],
    ] as const;
    for (const [from, sender] of clients) {
      for (const [to, recipient] of clients) {
        if (from === to) continue;
        sender.type(`send ${to} hi ${to}`);
        await recipient.waitForLine(`>>> ${from}: hi ${to}`);
        await sender.waitForLine(`>>> [Message received by ${to}.]`);
      }
    }

    x.type("dereg x");
    await x.waitForLine(OFFLINE_BYE);
    for (const other of [y, z]) {
      await other.waitForLine(TABLE_UPDATED);
      await waitForTable(other, { x: "offline", y: "online", z: "online" });
    }
    expect(x.exitCode).toBeUndefined();

    for (const [from, sender] of [
      ["y", y],
      ["z", z],
    ] as const) {
      const mark = sender.mark();
      sender.type(`send x while you were away, from ${from}`);
      await sender.waitForLine(SAVED);
      // x is offline in the local table: straight to the server, no 500 ms wait, no "No ACK".
      expect(sender.linesSince(mark)).toEqual([SAVED]);
    }

    const mark = x.mark();
    x.type("reg x");
    await x.waitForLine(WELCOME);
    await x.waitForLine(YOU_HAVE_MESSAGES);
    const fromY = await x.waitForLine(storedLine("y: ", "while you were away, from y"));
    const fromZ = await x.waitForLine(storedLine("z: ", "while you were away, from z"));
    const stampY = storedLine("y: ", "while you were away, from y").exec(fromY)?.[1] ?? "";
    const stampZ = storedLine("z: ", "while you were away, from z").exec(fromZ)?.[1] ?? "";
    checkTimestamp(stampY, startedAt, Date.now());
    checkTimestamp(stampZ, startedAt, Date.now());
    expect(stampY <= stampZ).toBe(true);
    expect(x.linesSince(mark).slice(0, 4)).toEqual([WELCOME, YOU_HAVE_MESSAGES, fromY, fromZ]);
    for (const other of [y, z])
      await waitForTable(other, { x: "online", y: "online", z: "online" });
  });

  it("case 2: the server (x's, in a cluster) is gone; a save is retried for ~3 s, then [Server not responding] and exit", async () => {
    await using chat = await ChatSession.open(program);
    const deployment = await deploy(chat);
    const [x, y] = await twoClients(deployment);
    const server = deployment.serverOf("x");

    y.type("dereg y");
    await y.waitForLine(OFFLINE_BYE);
    await waitForTable(x, { x: "online", y: "offline" });
    server.process.kill("SIGKILL");
    await server.process.waitForExit();

    const mark = x.mark();
    const sentAt = performance.now();
    x.type("send y are you there?");
    await x.waitForLine(">>> [Server not responding]", { timeoutMs: 8_000 });
    const waitedMs = performance.now() - sentAt;
    await x.waitForLine(">>> [Exiting]");
    const code = await x.waitForExit();

    expect(code).not.toBe(0);
    expect(x.linesSince(mark)).toEqual([">>> [Server not responding]", ">>> [Exiting]"]);
    expect(x.lines()).not.toContain(SAVED);
    expect(waitedMs).toBeGreaterThanOrEqual(2_500);
    expect(waitedMs).toBeLessThanOrEqual(6_000);
  });

  it("case 3: send_all reaches every other member, not the sender", async () => {
    await using chat = await ChatSession.open(program);
    const deployment = await deploy(chat);
    const [x, y, z] = await threeClients(deployment);

    x.type("send_all hello all");
    await x.waitForLine(">>> [Message received by Server.]");
    await y.waitForLine(">>> [Channel_Message x: hello all]");
    await z.waitForLine(">>> [Channel_Message x: hello all]");

    // A barrier: anything the server sent x with the channel message came before this.
    y.type("send x done");
    await x.waitForLine(">>> y: done");
    expect(x.lines().filter((line) => line.includes("Channel_Message"))).toEqual([]);
    for (const member of [y, z]) {
      expect(member.lines().filter((line) => line.includes("Channel_Message"))).toEqual([
        ">>> [Channel_Message x: hello all]",
      ]);
    }
  });
}
