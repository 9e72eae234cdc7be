import { afterAll, describe, expect } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { openSqliteStore } from "../../src/store/sqlite-store.ts";
import {
  ChatSession,
  killAll,
  programs,
  storedLine,
  testsFor,
  WELCOME,
  waitForTable,
} from "../helpers/process-driver.ts";

afterAll(killAll);

const SECRET = "the vault code is 4417, behind the zebra umbrella";
const CHANNEL_TEXT = "channel posts stay readable by the server";

/** Which files of the directory hold `text` in UTF-8, byte for byte. */
function filesHolding(dir: string, text: string): string[] {
  const needle = Buffer.from(text, "utf8");
  return readdirSync(dir).filter((name) => readFileSync(join(dir, name)).includes(needle));
}

describe.concurrent.each(programs)("%s", (_title, program) => {
  const it = testsFor(program);

  it("the server's data directory never holds the text of a saved message, which its recipient reads after reg", async () => {
    await using chat = await ChatSession.open(program);
    const server = await chat.startServer();
    const [x, y] = await chat.startClients(server, ["x", "y"]);

    y.type("dereg y");
    await y.waitForLine(">>> [You are Offline. Bye.]");
    await waitForTable(x, { x: "online", y: "offline" });
    x.type(`send y ${SECRET}`);
    await x.waitForLine(">>> [Messages received by the server and saved]");
    x.type(`send_all ${CHANNEL_TEXT}`);
    await x.waitForLine(">>> [Message received by Server.]");

    // While it runs (database and write-ahead log) and once it has stopped.
    expect(filesHolding(server.dataDir, SECRET)).toEqual([]);
    expect(filesHolding(server.dataDir, CHANNEL_TEXT)).not.toEqual([]);
    server.process.kill("SIGTERM");
    expect(await server.process.waitForExit()).toBe(0);
    expect(filesHolding(server.dataDir, SECRET)).toEqual([]);
    const store = openSqliteStore(server.dataDir);
    try {
      const direct = store.load().messages.filter((message) => message.kind === "direct");
      // It is there, sealed: the box, its nonce and x's key, and no text.
      expect(direct).toMatchObject([{ sender: "x", recipient: "y", text: "" }]);
      expect(direct[0]?.sealed?.box.length).toBeGreaterThan(SECRET.length);
    } finally {
      store.close();
    }

    const again = await chat.startServer({ port: server.port, dataDir: server.dataDir });
    const mark = y.mark();
    y.type("reg y");
    await y.waitForLine(WELCOME);
    await y.waitForLine(storedLine("x: ", SECRET));
    await y.waitForLine(storedLine("Channel-Message x: ", CHANNEL_TEXT));
    expect(y.linesSince(mark).filter((line) => line.includes(SECRET))).toHaveLength(1);
    expect(filesHolding(again.dataDir, SECRET)).toEqual([]);
  });
});
