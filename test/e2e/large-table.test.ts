import { afterAll, describe, expect } from "bun:test";
import { encodeBase64url } from "../../src/crypto/base64url.ts";
import { MAX_DATAGRAM_BYTES } from "../../src/protocol/messages.ts";
import type { StoreChange } from "../../src/store/offline-store.ts";
import { openSqliteStore } from "../../src/store/sqlite-store.ts";
import {
  ChatSession,
  killAll,
  programs,
  TABLE_UPDATED,
  testsFor,
  waitForTable,
} from "../helpers/process-driver.ts";

afterAll(killAll);

/** Offline names, enough that a snapshot's first part is larger than any other datagram. */
const OFFLINE_NAMES = 600;

function randomKey(): string {
  return encodeBase64url(crypto.getRandomValues(new Uint8Array(32)));
}

/** A data directory whose table already holds OFFLINE_NAMES offline clients. */
function fillTable(dataDir: string): string[] {
  const names = Array.from({ length: OFFLINE_NAMES }, (_, i) => `offline${i}`);
  const store = openSqliteStore(dataDir);
  try {
    const changes: StoreChange[] = names.map((name, i) => ({
      kind: "put-client",
      client: {
        name,
        ip: "127.0.0.1",
        port: 20_000 + i,
        online: false,
        token: i.toString(16).padStart(32, "0"),
        sk: randomKey(),
        ak: randomKey(),
        sessionKey: "",
        lastSeen: Date.now(),
      },
    }));
    store.apply(changes);
  } finally {
    store.close();
  }
  return names;
}

describe.concurrent.each(programs)("%s", (_title, program) => {
  const it = testsFor(program);

  for (const serverIp of ["127.0.0.1", "::1"]) {
    it(`a table of 600 names reaches a new client in large parts (over 32,768 bytes), shown once, over ${serverIp}`, async () => {
      await using chat = await ChatSession.open(program);
      const dataDir = await chat.makeDataDir();
      const names = fillTable(dataDir);
      // The snapshot: 601 entries of about 84 bytes, a first part of about 50 KB.
      expect(OFFLINE_NAMES * 80).toBeGreaterThan(MAX_DATAGRAM_BYTES);
      const server = await chat.startServer({ dataDir });
      const x = await chat.startClient("x", server, { serverIp });
      await x.waitForLine(TABLE_UPDATED);
      const expected = Object.fromEntries([
        ["x", "online" as const],
        ...names.map((name) => [name, "offline" as const]),
      ]);
      await waitForTable(x, expected);
      // One push, applied once; the server never had to fall back to small parts.
      expect(x.lines().filter((line) => line.includes(TABLE_UPDATED))).toHaveLength(1);
      expect(server.process.lines().some((line) => line.includes("no large table part"))).toBe(
        false,
      );
      expect(server.process.lines().some((line) => line.includes("x registered from"))).toBe(true);
    });
  }
});
