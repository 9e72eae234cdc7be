import { afterAll, describe, expect } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { notices } from "../../src/text/notices.ts";
import {
  type ChatProcess,
  ChatSession,
  escapeRegExp,
  freePort,
  killAll,
  LOOPBACK,
  programs,
  type ServerHandle,
  storedLine,
  TABLE_UPDATED,
  testsFor,
  WELCOME,
  waitForTable,
} from "../helpers/process-driver.ts";
import { UdpRelay } from "../helpers/udp-relay.ts";

afterAll(killAll);

const shown = (line: string): string => `>>> ${line}`;
const KEY_CHANGED = /^>>> \[WARNING: the key of y changed from (\S+) to (\S+)\. /;
const FINGERPRINT = /key ([a-z2-7]{4}(?:-[a-z2-7]{4}){7})\]$/;

describe.concurrent.each(programs)("%s", (_title, program) => {
  const it = testsFor(program);

  it("a name released and taken by a new identity: its peer warns, refuses, and sends again after trust", async () => {
    await using chat = await ChatSession.open(program);
    const server = await chat.startServer();
    const [x, y] = await chat.startClients(server, ["x", "y"]);
    x.type("whois y");
    const before = FINGERPRINT.exec(await x.waitForLine(/^>>> \[y: /))?.[1];
    expect(before).toBeDefined();

    // y lost its identity file; the operator releases the name on the stopped server.
    const newY = await yTakenByNewIdentity(chat, server, y);
    const warning = KEY_CHANGED.exec(await x.waitForLine(KEY_CHANGED, { timeoutMs: 10_000 }));
    expect(warning?.[1]).toBe(before);
    newY.type("whois y");
    const own = FINGERPRINT.exec(await newY.waitForLine(/^>>> \[y \(you\): /))?.[1];
    // What the new y reads out is the key x is warned about, not the one x knew.
    expect(own).toBe(warning?.[2]);
    expect(own).not.toBe(before);

    x.type("send y are you the same y?");
    await x.waitForLine(shown(notices.notSendingChangedKey("y")));
    x.type("trust y");
    await x.waitForLine(shown(notices.trustedNewKey("y", own ?? "")));
    const knownKeys = readFileSync(join(chat.configHome, "chatapp", "x.known-keys"), "utf8");
    expect(knownKeys).toMatch(/^y \S{43} \S+Z$/m);
    x.type("send y welcome back");
    await x.waitForLine(shown(notices.messageReceivedBy("y")));
    await newY.waitForLine(">>> x: welcome back");
    expect(newY.lines()).not.toContain(">>> x: are you the same y?");
    expect(x.lines().filter((line) => KEY_CHANGED.test(line))).toHaveLength(1);
  });

  it("stored messages from a name released and taken by a new identity: the old key's show, the new key's are refused with a warning", async () => {
    await using chat = await ChatSession.open(program);
    const server = await chat.startServer();
    const [x, y] = await chat.startClients(server, ["x", "y"]);
    x.type("whois y");
    const before = FINGERPRINT.exec(await x.waitForLine(/^>>> \[y: /))?.[1];
    x.type("dereg x");
    await x.waitForLine(shown(notices.offlineBye));
    await waitForTable(y, { x: "offline", y: "online" });
    y.type("send x sealed with the first key");
    await y.waitForLine(shown(notices.savedByServer));

    const newY = await yTakenByNewIdentity(chat, server, y);
    newY.type("whois y");
    const own = FINGERPRINT.exec(await newY.waitForLine(/^>>> \[y \(you\): /))?.[1];
    newY.type("send x sealed with the new key");
    await newY.waitForLine(shown(notices.savedByServer));

    x.type("reg x");
    await x.waitForLine(storedLine("y: ", "sealed with the first key"));
    await x.waitForLine(shown(notices.storedKeyRefused("y", 1, own ?? "", before ?? "")), {
      timeoutMs: 10_000,
    });
    await x.waitForLine(KEY_CHANGED);
    expect(x.lines().some((line) => line.includes("sealed with the new key"))).toBe(false);
    // Sent again once x accepts the new key, it shows.
    x.type("trust y");
    await x.waitForLine(shown(notices.trustedNewKey("y", own ?? "")));
    newY.type("send x sealed with the new key, again");
    await x.waitForLine(">>> y: sealed with the new key, again");
  });

  it("a client started again does not show what its last process showed, even if the server still held it", async () => {
    await using chat = await ChatSession.open(program);
    const server = await chat.startServer();
    const x = await chat.startClient("x", server);
    // y reaches the server through a relay that can lose y's acknowledgements.
    const relay = await UdpRelay.open(server.port);
    try {
      const yPort = await freePort();
      const y = chat.spawn(
        ["-c", "y", LOOPBACK, String(relay.port), String(yPort)],
        "client y via relay",
        yPort,
      );
      await y.waitForLine(WELCOME);
      await waitForTable(x, { x: "online", y: "online" });
      y.type("dereg y");
      await y.waitForLine(shown(notices.offlineBye));
      await waitForTable(x, { x: "online", y: "offline" });
      x.type("send y kept for you");
      await x.waitForLine(shown(notices.savedByServer));

      // y is shown the stored message, but its ack never reaches the server; then it dies.
      relay.loseFromClient = (message) => message?.type === "ack";
      y.type("reg y");
      await y.waitForLine(storedLine("x: ", "kept for you"));
      await relay.firstLoss;
      y.kill("SIGKILL");
      await y.waitForExit();
      const shownFile = readFileSync(join(chat.configHome, "chatapp", "y.shown"), "utf8");
      expect(shownFile).toMatch(/^x \d+$/m);

      const again = await chat.startClient("y", server);
      await again.waitForLine(TABLE_UPDATED, { timeoutMs: 10_000 });
      // The server delivered it (stored batches come before the table), and it was not shown.
      expect(again.lines()).toEqual([WELCOME, TABLE_UPDATED]);
      again.type("dereg y");
      await again.waitForLine(shown(notices.offlineBye));
      const mark = again.mark();
      again.type("reg y");
      await again.waitForLine(WELCOME);
      await again.waitForLine(TABLE_UPDATED);
      // Delivered once: the server holds nothing more for y.
      expect(again.linesSince(mark)).toEqual([WELCOME, TABLE_UPDATED]);
      expect(
        again.lines().some((line) => new RegExp(escapeRegExp("kept for you")).test(line)),
      ).toBe(false);
    } finally {
      relay.close();
    }
  });
});

/**
 * y lost its identity file: y stops, the operator releases the name on the stopped
 * server, and y starts again under a new identity file; resolves once it is registered.
 */
async function yTakenByNewIdentity(
  chat: ChatSession,
  server: ServerHandle,
  y: ChatProcess,
): Promise<ChatProcess> {
  y.kill("SIGINT");
  await y.waitForExit();
  server.process.kill("SIGTERM");
  expect(await server.process.waitForExit()).toBe(0);
  const release = chat.spawn(["--release-name", "y", "--data-dir", server.dataDir], "release", 0);
  expect(await release.waitForExit()).toBe(0);
  const restarted = await chat.startServer({ port: server.port, dataDir: server.dataDir });
  const newFile = join(await chat.makeDataDir(), "y-again.identity");
  const port = await freePort();
  const newY = chat.spawn(
    ["-c", "y", LOOPBACK, String(restarted.port), String(port), "--identity", newFile],
    "client y, new identity",
    port,
  );
  await newY.waitForLine(WELCOME);
  return newY;
}
