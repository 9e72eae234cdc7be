import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canMountPrivately } from "../helpers/private-mount.ts";
import {
  binaryProgram,
  ChatSession,
  E2E_TEST_TIMEOUT_MS,
  escapeRegExp,
  killAll,
  waitForTable,
} from "../helpers/process-driver.ts";
import { fillDisk, serverOnSmallDisk } from "../helpers/small-disk.ts";

afterAll(killAll);

const SAVED = ">>> [Messages received by the server and saved]";
const STORE_FAILED =
  ">>> [The server could not write to its disk; nothing was saved. Try again later.]";

test.skipIf(!canMountPrivately())(
  "a full disk: saves are refused as store-failed, never falsely acknowledged, and work again once there is room",
  async () => {
    const mountPoint = mkdtempSync(join(tmpdir(), "chatapp-small-disk-"));
    await using serverSide = await ChatSession.open(serverOnSmallDisk(mountPoint));
    await using chat = await ChatSession.open(binaryProgram);
    const server = await serverSide.startServer({ dataDir: join(mountPoint, "data") });
    const [x, y] = await chat.startClients(server, ["x", "y"]);
    y.type("dereg y");
    await y.waitForLine(">>> [You are Offline. Bye.]");
    await waitForTable(x, { x: "online", y: "offline" });

    const filler = `/proc/${server.process.pid}/root${mountPoint}/filler`;
    fillDisk(filler);
    const big = "é".repeat(3_990);
    const answers: string[] = [];
    for (let n = 1; n <= 3; n++) {
      const mark = x.mark();
      x.type(`send y refused ${n} ${big}`);
      const line = await x.waitForLine(
        new RegExp(`^(${escapeRegExp(SAVED)}|${escapeRegExp(STORE_FAILED)})$`),
      );
      answers.push(line);
      expect(x.linesSince(mark)).not.toContain(">>> [Server not responding]");
    }
    expect(answers).toContain(STORE_FAILED);
    expect(server.process.exitCode).toBeUndefined();

    rmSync(filler);
    x.type("send y kept once there was room");
    await x.waitForLine(SAVED);

    const mark = y.mark();
    y.type("reg y");
    await y.waitForLine(">>> [Client table updated.]");
    const shown = y.linesSince(mark).join("\n");
    expect(shown).toContain("kept once there was room");
    // Exactly the saves that were acknowledged arrive; none of the refused ones.
    const acknowledged = answers.filter((answer) => answer === SAVED).length;
    expect(shown.match(/refused \d/g)?.length ?? 0).toBe(acknowledged);
  },
  E2E_TEST_TIMEOUT_MS,
);
