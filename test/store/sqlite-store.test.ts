import { Database } from "bun:sqlite";
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StoreOpenError } from "../../src/io/errors.ts";
import type { ClientRecord, StoredMessage } from "../../src/store/offline-store.ts";
import {
  DATABASE_FILE_NAME,
  LOCK_FILE_NAME,
  openSqliteStore,
} from "../../src/store/sqlite-store.ts";
import { withReadOnly } from "../helpers/private-mount.ts";

const STORE_MODULE = join(import.meta.dir, "../../src/store/sqlite-store.ts");

const alice: ClientRecord = {
  name: "Alice",
  ip: "127.0.0.1",
  port: 5001,
  online: true,
  token: "t",
  lastSeen: 1_764_000_000_000,
  sk: "AVE3LK9WemRwDJ8BJUmWDTegn5OnjL6aWJv9iJo-WQU",
  ak: "TdWzr8sA9uEDNM5pOegfPBWU4rkf-ihkYGZt49n25E0",
  sessionKey: "Z98RCdX16rdkP_nkdhXyzqHx4ZApUET5J3AF5AZ58Qk",
};
const note: StoredMessage = {
  id: 1,
  recipient: "bob",
  sender: "Alice",
  kind: "channel",
  text: "hi 😀",
  receivedAt: 1_700_000_000_000,
  ref: 9,
};

let dir: string;
let dbPath: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "chatapp-sqlite-"));
  dbPath = join(dir, DATABASE_FILE_NAME);
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function expectOpenError(dataDir: string, reason: RegExp): StoreOpenError {
  let thrown: unknown;
  try {
    openSqliteStore(dataDir).close();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(StoreOpenError);
  const error = thrown as StoreOpenError;
  expect(error.message).toStartWith("cannot open the message store at ");
  expect(error.message).toMatch(reason);
  return error;
}

/** Runs a child bun that writes through the store and dies without closing it. */
async function writeAndDie(ending: string): Promise<Bun.Subprocess> {
  const script = `
    const { openSqliteStore } = await import(${JSON.stringify(STORE_MODULE)});
    const store = openSqliteStore(${JSON.stringify(dir)});
    store.apply([
      { kind: "put-client", client: ${JSON.stringify(alice)} },
      { kind: "put-message", message: ${JSON.stringify(note)} },
    ]);
    ${ending}
  `;
  const child = Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" });
  await child.exited;
  return child;
}

describe("sqlite store on disk", () => {
  test("creates the data directory, recursively, with the database inside", () => {
    const nested = join(dir, "a", "b", "data");
    const store = openSqliteStore(nested);
    store.close();
    expect(statSync(join(nested, DATABASE_FILE_NAME)).isFile()).toBe(true);
  });

  test("uses WAL, schema version 4, and leaves no -wal/-shm files after close", () => {
    const store = openSqliteStore(dir);
    store.apply([{ kind: "put-client", client: alice }]);
    expect(existsSync(`${dbPath}-wal`)).toBe(true);
    store.close();
    expect(readdirSync(dir).sort()).toEqual([LOCK_FILE_NAME, DATABASE_FILE_NAME].sort());

    const db = new Database(dbPath, { readonly: true });
    try {
      expect(db.prepare("PRAGMA journal_mode").get()).toEqual({ journal_mode: "wal" });
      expect(db.prepare("PRAGMA user_version").get()).toEqual({ user_version: 4 });
    } finally {
      db.close(true);
    }
  });

  test("data survives close and reopen", () => {
    const first = openSqliteStore(dir);
    first.apply([
      { kind: "put-client", client: alice },
      { kind: "put-message", message: note },
      { kind: "put-message", message: { ...note, id: 2, kind: "direct" } },
    ]);
    first.apply([{ kind: "remove-messages", ids: [1] }]);
    first.close();

    const second = openSqliteStore(dir);
    try {
      expect(second.load()).toEqual({
        clients: [alice],
        messages: [{ ...note, id: 2, kind: "direct" }],
      });
    } finally {
      second.close();
    }
  });

  test("one server per data directory: a second store is refused while the first is open", () => {
    const first = openSqliteStore(dir);
    try {
      first.apply([{ kind: "put-message", message: note }]);
      expect(() => openSqliteStore(dir)).toThrow(
        new StoreOpenError(
          dir,
          "another chatapp server is using this data directory; stop it, or give this one its own --data-dir",
        ),
      );
    } finally {
      first.close();
    }
    const second = openSqliteStore(dir);
    try {
      expect(second.load().messages).toEqual([note]);
    } finally {
      second.close();
    }
  });

  test.each([
    ["exits without closing", "process.exit(0);"],
    ["is killed with SIGKILL", 'process.kill(process.pid, "SIGKILL");'],
  ])("a commit survives a process that %s", async (_, ending) => {
    const child = await writeAndDie(ending);
    if (ending.includes("SIGKILL")) {
      expect(child.signalCode).toBe("SIGKILL");
      // The -wal file left behind shows the commit is only in the log; reopening must recover it.
      expect(existsSync(`${dbPath}-wal`)).toBe(true);
    } else {
      expect(child.exitCode).toBe(0);
    }

    const store = openSqliteStore(dir);
    try {
      expect(store.load()).toEqual({ clients: [alice], messages: [note] });
    } finally {
      store.close();
    }
    expect(readdirSync(dir).sort()).toEqual([LOCK_FILE_NAME, DATABASE_FILE_NAME].sort());
  });

  test("a version 2 database (before identities) is migrated: its names are bound to no key yet", () => {
    const db = new Database(dbPath, { create: true });
    try {
      db.run(`
        CREATE TABLE clients (
          name_key TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL, ip TEXT NOT NULL,
          port INTEGER NOT NULL, online INTEGER NOT NULL CHECK (online IN (0, 1)),
          token TEXT NOT NULL, last_seen INTEGER NOT NULL DEFAULT 0
        ) STRICT;
        CREATE TABLE messages (
          id INTEGER PRIMARY KEY, recipient TEXT NOT NULL, sender TEXT NOT NULL,
          kind TEXT NOT NULL CHECK (kind IN ('direct', 'channel')), text TEXT NOT NULL,
          received_at INTEGER NOT NULL, ref INTEGER NOT NULL
        ) STRICT;
        INSERT INTO clients VALUES ('alice', 'Alice', '127.0.0.1', 5001, 1, 't', 1764000000000);
        INSERT INTO messages VALUES (1, 'bob', 'alice', 'direct', 'hi', 10, 1);
        PRAGMA user_version = 2;
      `);
    } finally {
      db.close(true);
    }
    const store = openSqliteStore(dir);
    try {
      expect(store.load()).toEqual({
        clients: [{ ...alice, sk: "", ak: "", sessionKey: "" }],
        messages: [
          {
            id: 1,
            recipient: "bob",
            sender: "alice",
            kind: "direct",
            text: "hi",
            receivedAt: 10,
            ref: 1,
          },
        ],
      });
      store.apply([{ kind: "put-client", client: alice }]);
      expect(store.load().clients).toEqual([alice]);
    } finally {
      store.close();
    }
    const check = new Database(dbPath, { readonly: true });
    try {
      expect(check.prepare("PRAGMA user_version").get()).toEqual({ user_version: 4 });
    } finally {
      check.close(true);
    }
  });

  test("a version 3 database (before sealing) is migrated: its messages stay as they were, in clear", () => {
    const v3 = openSqliteStore(dir);
    v3.close();
    const db = new Database(dbPath);
    try {
      // Back to version 3's messages table, holding a message saved in clear.
      db.run(`
        DROP TABLE messages;
        CREATE TABLE messages (
          id INTEGER PRIMARY KEY, recipient TEXT NOT NULL, sender TEXT NOT NULL,
          kind TEXT NOT NULL CHECK (kind IN ('direct', 'channel')), text TEXT NOT NULL,
          received_at INTEGER NOT NULL, ref INTEGER NOT NULL
        ) STRICT;
        INSERT INTO messages VALUES (1, 'bob', 'alice', 'direct', 'hi', 10, 1);
        PRAGMA user_version = 3;
      `);
    } finally {
      db.close(true);
    }
    const store = openSqliteStore(dir);
    const before = { id: 1, recipient: "bob", sender: "alice", kind: "direct" as const };
    const sealed = { n: "N".repeat(16), box: "B".repeat(40), ak: "K".repeat(43) };
    try {
      expect(store.load().messages).toEqual([{ ...before, text: "hi", receivedAt: 10, ref: 1 }]);
      store.apply([
        {
          kind: "put-message",
          message: { ...before, id: 2, text: "", receivedAt: 11, ref: 2, sealed },
        },
      ]);
      expect(store.readMessages([2])).toEqual([
        { ...before, id: 2, text: "", receivedAt: 11, ref: 2, sealed },
      ]);
    } finally {
      store.close();
    }
    const check = new Database(dbPath, { readonly: true });
    try {
      expect(check.prepare("PRAGMA user_version").get()).toEqual({ user_version: 4 });
    } finally {
      check.close(true);
    }
  });

  test("rows that a hand edit made invalid are skipped on load", () => {
    const keys = [alice.sk, alice.ak, alice.sessionKey].join("', '");
    openSqliteStore(dir).close();
    const db = new Database(dbPath);
    try {
      db.run("PRAGMA ignore_check_constraints = ON");
      db.run(
        `INSERT INTO messages (id, recipient, sender, kind, text, received_at, ref) VALUES
           (1, 'bob', 'alice', 'direct', 'good', 10, 1),
           (2, 'bob', 'alice', 'group', 'bad kind', 11, 2),
           (3, '', 'alice', 'channel', 'no recipient', 12, 3)`,
      );
      db.run(
        `INSERT INTO clients (name_key, name, ip, port, online, token, sk, ak, session_key) VALUES
           ('alice', 'Alice', '127.0.0.1', 5001, 1, 't', '${keys}'),
           ('bob', 'Bob', '127.0.0.1', 5002, 7, 't', '${keys}'),
           ('carl', 'Carol', '127.0.0.1', 5003, 0, 't', '${keys}'),
           ('dave', 'Dave', '127.0.0.1', 99999, 0, 't', '${keys}')`,
      );
    } finally {
      db.close(true);
    }
    const store = openSqliteStore(dir);
    try {
      expect(store.load()).toEqual({
        // A row without a time of last sight counts as seen at the epoch: forgettable.
        clients: [{ ...alice, lastSeen: 0 }],
        messages: [
          {
            id: 1,
            recipient: "bob",
            sender: "alice",
            kind: "direct",
            text: "good",
            receivedAt: 10,
            ref: 1,
          },
        ],
      });
    } finally {
      store.close();
    }
  });
});

describe("sqlite store open errors", () => {
  test("the data directory is a regular file", () => {
    const file = join(dir, "not-a-dir");
    writeFileSync(file, "x");
    const error = expectOpenError(file, /it is a file, not a directory/);
    expect(error.path).toBe(file);
  });

  test("a part of the data directory's path is a regular file", () => {
    const file = join(dir, "not-a-dir");
    writeFileSync(file, "x");
    expectOpenError(join(file, "data"), /a part of the path is a file/);
  });

  test("the database path is a directory", () => {
    mkdirSync(dbPath);
    const error = expectOpenError(dir, /cannot be opened/);
    expect(error.path).toBe(dbPath);
  });

  test("the database file is not a database", () => {
    writeFileSync(dbPath, "this is a text file, not SQLite\n".repeat(200));
    expectOpenError(dir, /not a SQLite database/);
  });

  test("the database file is damaged after its header", () => {
    const store = openSqliteStore(dir);
    store.apply(
      Array.from({ length: 2000 }, (_, i) => ({
        kind: "put-message" as const,
        message: { ...note, id: i + 1, text: `message ${i} `.repeat(20) },
      })),
    );
    store.close();
    const fd = openSync(dbPath, "r+");
    try {
      writeSync(fd, Buffer.alloc(64 * 1024, 0xab), 0, 64 * 1024, 4096);
    } finally {
      closeSync(fd);
    }
    expectOpenError(dir, /damaged/);
  });

  test("the database has a schema version this program does not know", () => {
    const db = new Database(dbPath);
    db.run("PRAGMA user_version = 99");
    db.close(true);
    expectOpenError(dir, /schema version 99/);
  });

  test("the data directory is not writable", () => {
    if (process.getuid?.() !== 0) {
      chmodSync(dir, 0o500);
      try {
        expectOpenError(dir, /cannot be opened|cannot be written/);
      } finally {
        chmodSync(dir, 0o700);
      }
      return;
    }
    // Root writes through any permission bits; a read-only mount of its own stops it.
    const script = `import { openSqliteStore } from ${JSON.stringify(STORE_MODULE)};
      try { openSqliteStore(${JSON.stringify(dir)}); console.log("opened"); }
      catch (error) { console.log(error instanceof Error ? error.message : String(error)); }`;
    const result = Bun.spawnSync(withReadOnly(dir, [process.execPath, "-e", script]));
    expect(result.stderr.toString()).toBe("");
    expect(result.stdout.toString()).toMatch(/cannot be opened|cannot be written/);
  });
});
