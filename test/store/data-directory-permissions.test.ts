import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ClientRecord } from "../../src/store/offline-store.ts";
import { DATABASE_FILE_NAME, openSqliteStore } from "../../src/store/sqlite-store.ts";

/** The database keeps each client's session key: anyone who reads it can forge that client's MACs. */
const client: ClientRecord = {
  name: "alice",
  ip: "127.0.0.1",
  port: 5001,
  online: true,
  token: "0123456789abcdef0123456789abcdef",
  lastSeen: 1_764_000_000_000,
  sk: "AVE3LK9WemRwDJ8BJUmWDTegn5OnjL6aWJv9iJo-WQU",
  ak: "TdWzr8sA9uEDNM5pOegfPBWU4rkf-ihkYGZt49n25E0",
  sessionKey: "Z98RCdX16rdkP_nkdhXyzqHx4ZApUET5J3AF5AZ58Qk",
};

function modeOf(path: string): string {
  return (statSync(path).mode & 0o777).toString(8);
}

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "chatapp-permissions-"));
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

describe.skipIf(process.platform === "win32")(
  "the data directory keeps session keys private",
  () => {
    test("a new directory is 0700, the database and its WAL and shared memory 0600, whatever the umask", () => {
      const dataDir = join(root, "data");
      const previous = process.umask(0o022);
      try {
        const store = openSqliteStore(dataDir);
        store.apply([{ kind: "put-client", client }]);
        const database = join(dataDir, DATABASE_FILE_NAME);
        expect(modeOf(dataDir)).toBe("700");
        expect([database, `${database}-wal`, `${database}-shm`].map(modeOf)).toEqual([
          "600",
          "600",
          "600",
        ]);
        store.close();
      } finally {
        process.umask(previous);
      }
    });

    test("a database an older server left readable by others is narrowed when it is opened", () => {
      const first = openSqliteStore(root);
      first.apply([{ kind: "put-client", client }]);
      first.close();
      const database = join(root, DATABASE_FILE_NAME);
      chmodSync(database, 0o644);
      writeFileSync(`${database}-wal`, "");
      chmodSync(`${database}-wal`, 0o644);
      const again = openSqliteStore(root);
      expect([database, `${database}-wal`].map(modeOf)).toEqual(["600", "600"]);
      expect(again.load().clients.map((record) => record.sessionKey)).toEqual([client.sessionKey]);
      again.close();
    });
  },
);
