import { Database, SQLiteError, type SQLQueryBindings, type Statement } from "bun:sqlite";
import { chmodSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { StoreOpenError } from "../io/errors.ts";
import { nameKey } from "../protocol/names.ts";
import type {
  ClientRecord,
  OfflineStore,
  ServerSnapshot,
  StoreChange,
  StoredMessage,
  StoredSummary,
  StoreSnapshot,
} from "./offline-store.ts";
import {
  checkStoreChanges,
  clientProblem,
  copyClient,
  copyMessage,
  messageProblem,
} from "./store-records.ts";

export const DATABASE_FILE_NAME = "chatapp.sqlite";
const SCHEMA_VERSION = 4;
const BUSY_TIMEOUT_MS = 5_000;
export const LOCK_FILE_NAME = "chatapp.lock";

// STRICT tables refuse values of the wrong type instead of storing them.
const CURRENT_SCHEMA = `
  CREATE TABLE IF NOT EXISTS clients (
    name_key TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    ip TEXT NOT NULL,
    port INTEGER NOT NULL,
    online INTEGER NOT NULL CHECK (online IN (0, 1)),
    token TEXT NOT NULL,
    last_seen INTEGER NOT NULL DEFAULT 0,
    sk TEXT NOT NULL DEFAULT '',
    ak TEXT NOT NULL DEFAULT '',
    session_key TEXT NOT NULL DEFAULT ''
  ) STRICT;
  CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    recipient TEXT NOT NULL,
    sender TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('direct', 'channel')),
    text TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    ref INTEGER NOT NULL,
    sealed_n TEXT NOT NULL DEFAULT '',
    sealed_box TEXT NOT NULL DEFAULT '',
    sender_ak TEXT NOT NULL DEFAULT ''
  ) STRICT;
`;

/** Version 2 remembers when each client was last seen, to forget names after a retention period. */
const MIGRATE_V1_TO_V2 = (now: number) => `
  ALTER TABLE clients ADD COLUMN last_seen INTEGER NOT NULL DEFAULT 0;
  UPDATE clients SET last_seen = ${Math.floor(now)};
`;

/**
 * Version 3 binds each name to its keys (trust on first use) and keeps the session key.
 * Names registered before have no key: the first registration with one binds it.
 */
const MIGRATE_V2_TO_V3 = `
  ALTER TABLE clients ADD COLUMN sk TEXT NOT NULL DEFAULT '';
  ALTER TABLE clients ADD COLUMN ak TEXT NOT NULL DEFAULT '';
  ALTER TABLE clients ADD COLUMN session_key TEXT NOT NULL DEFAULT '';
`;

/**
 * Version 4 keeps direct messages sealed: the nonce and box the server cannot open, and
 * the sender's key to open them with ('' for a channel message, whose text is in clear).
 * Messages stored before are kept as they were and delivered in clear.
 */
const MIGRATE_V3_TO_V4 = `
  ALTER TABLE messages ADD COLUMN sealed_n TEXT NOT NULL DEFAULT '';
  ALTER TABLE messages ADD COLUMN sealed_box TEXT NOT NULL DEFAULT '';
  ALTER TABLE messages ADD COLUMN sender_ak TEXT NOT NULL DEFAULT '';
`;

const MESSAGE_COLUMNS =
  "id, recipient, sender, kind, text, received_at, ref, sealed_n, sealed_box, sender_ak";

type Row = Record<string, unknown>;
type ClientParams = [
  {
    nameKey: string;
    name: string;
    ip: string;
    port: number;
    online: number;
    token: string;
    lastSeen: number;
    sk: string;
    ak: string;
    sessionKey: string;
  },
];
type MessageParams = [
  {
    id: number;
    recipient: string;
    sender: string;
    kind: string;
    text: string;
    receivedAt: number;
    ref: number;
    sealedN: string;
    sealedBox: string;
    senderAk: string;
  },
];

/** The server's durable store in one SQLite file, written in WAL mode with synchronous=FULL. */
export class SqliteStore implements OfflineStore {
  readonly #db: Database;
  readonly #begin: Statement<Row, []>;
  readonly #commit: Statement<Row, []>;
  readonly #rollback: Statement<Row, []>;
  readonly #putClient: Statement<Row, ClientParams>;
  readonly #putMessage: Statement<Row, MessageParams>;
  readonly #removeMessage: Statement<Row, [{ id: number }]>;
  readonly #removeClient: Statement<Row, [{ nameKey: string }]>;
  readonly #selectClients: Statement<Row, []>;
  readonly #selectMessages: Statement<Row, []>;
  readonly #selectSummaries: Statement<Row, []>;
  readonly #selectMessage: Statement<Row, [{ id: number }]>;
  readonly #statements: { finalize(): void }[] = [];
  #closed = false;

  readonly #lock: Database | undefined;

  /** Takes an open database whose schema is current; prefer openSqliteStore. */
  constructor(db: Database, lock?: Database) {
    this.#db = db;
    this.#lock = lock;
    const prepare = <P extends SQLQueryBindings[]>(sql: string) => {
      const statement = db.prepare<Row, P>(sql);
      this.#statements.push(statement);
      return statement;
    };
    try {
      this.#begin = prepare<[]>("BEGIN IMMEDIATE");
      this.#commit = prepare<[]>("COMMIT");
      this.#rollback = prepare<[]>("ROLLBACK");
      this.#putClient = prepare<ClientParams>(
        `INSERT INTO clients (name_key, name, ip, port, online, token, last_seen, sk, ak, session_key)
         VALUES ($nameKey, $name, $ip, $port, $online, $token, $lastSeen, $sk, $ak, $sessionKey)
         ON CONFLICT (name_key) DO UPDATE SET
           name = excluded.name, ip = excluded.ip, port = excluded.port,
           online = excluded.online, token = excluded.token, last_seen = excluded.last_seen,
           sk = excluded.sk, ak = excluded.ak, session_key = excluded.session_key`,
      );
      this.#putMessage = prepare<MessageParams>(
        `INSERT INTO messages (id, recipient, sender, kind, text, received_at, ref, sealed_n, sealed_box, sender_ak)
         VALUES ($id, $recipient, $sender, $kind, $text, $receivedAt, $ref, $sealedN, $sealedBox, $senderAk)`,
      );
      // One id per execution: any number of ids, no limit on bound variables.
      this.#removeMessage = prepare<[{ id: number }]>("DELETE FROM messages WHERE id = $id");
      this.#removeClient = prepare<[{ nameKey: string }]>(
        "DELETE FROM clients WHERE name_key = $nameKey",
      );
      this.#selectClients = prepare<[]>(
        "SELECT name_key, name, ip, port, online, token, last_seen, sk, ak, session_key FROM clients ORDER BY rowid",
      );
      this.#selectMessages = prepare<[]>(`SELECT ${MESSAGE_COLUMNS} FROM messages ORDER BY id`);
      // The size in UTF-8 as stored: length() of a BLOB counts bytes. Sealed fields are ASCII.
      this.#selectSummaries = prepare<[]>(
        `SELECT id, recipient, sender, kind, received_at, ref, sealed_box <> '' AS sealed,
           length(CAST(text AS BLOB)) + length(sealed_n) + length(sealed_box) + length(sender_ak) AS text_bytes
         FROM messages ORDER BY id`,
      );
      this.#selectMessage = prepare<[{ id: number }]>(
        `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE id = $id`,
      );
    } catch (error) {
      this.#finalizeAll();
      throw error;
    }
  }

  load(): StoreSnapshot {
    this.#assertOpen();
    return {
      clients: this.#valid(this.#selectClients, clientFromRow),
      messages: this.#valid(this.#selectMessages, messageFromRow),
    };
  }

  loadSummary(): ServerSnapshot {
    this.#assertOpen();
    // 100,000 summaries name a few thousand clients: each name is kept once, not per row.
    const names = new Map<string, string>();
    const intern = (text: string): string => {
      const known = names.get(text);
      if (known !== undefined) return known;
      names.set(text, text);
      return text;
    };
    return {
      clients: this.#valid(this.#selectClients, clientFromRow),
      messages: this.#valid(this.#selectSummaries, (row) => summaryFromRow(row, intern)),
    };
  }

  /**
   * The rows a query returns that make valid records; a row a hand edit broke is skipped.
   * Read one at a time: all 100,000 rows at once were garbage as large as what is kept.
   */
  #valid<T>(query: Statement<Row, []>, fromRow: (row: Row) => T | undefined): T[] {
    const records: T[] = [];
    for (const row of query.iterate()) {
      const record = fromRow(row);
      if (record !== undefined) records.push(record);
    }
    return records;
  }

  readMessages(ids: readonly number[]): StoredMessage[] {
    this.#assertOpen();
    const found: StoredMessage[] = [];
    for (const id of [...ids].sort((a, b) => a - b)) {
      const row = this.#selectMessage.get({ id });
      const message = row ? messageFromRow(row) : undefined;
      if (message !== undefined) found.push(message);
    }
    return found;
  }

  apply(changes: readonly StoreChange[]): void {
    this.#assertOpen();
    checkStoreChanges(changes);
    if (changes.length === 0) return;
    this.#begin.run();
    try {
      for (const change of changes) this.#write(change);
      this.#commit.run();
    } catch (error) {
      // A failed COMMIT may already have rolled back on its own.
      if (this.#db.inTransaction) {
        try {
          this.#rollback.run();
        } catch {
          // The original error says more than the rollback's.
        }
      }
      throw error;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#finalizeAll();
    // Unfinalized statements would keep the connection, and its -wal/-shm files, alive.
    this.#db.close(true);
    this.#lock?.close(true);
  }

  #write(change: StoreChange): void {
    switch (change.kind) {
      case "put-client": {
        const client = copyClient(change.client);
        this.#putClient.run({
          nameKey: nameKey(client.name),
          name: client.name,
          ip: client.ip,
          port: client.port,
          online: client.online ? 1 : 0,
          token: client.token,
          lastSeen: client.lastSeen,
          sk: client.sk,
          ak: client.ak,
          sessionKey: client.sessionKey,
        });
        return;
      }
      case "remove-client":
        this.#removeClient.run({ nameKey: nameKey(change.name) });
        return;
      case "put-message": {
        const { sealed, ...message } = copyMessage(change.message);
        this.#putMessage.run({
          ...message,
          sealedN: sealed?.n ?? "",
          sealedBox: sealed?.box ?? "",
          senderAk: sealed?.ak ?? "",
        });
        return;
      }
      case "remove-messages":
        for (const id of change.ids) this.#removeMessage.run({ id });
        return;
      default:
        change satisfies never;
    }
  }

  #finalizeAll(): void {
    for (const statement of this.#statements) statement.finalize();
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error("The message store is closed.");
  }
}

/** Opens (creating if needed) `<dataDir>/chatapp.sqlite`; throws StoreOpenError with a reason a user can act on. */
export function openSqliteStore(dataDir: string): OfflineStore {
  try {
    mkdirSync(dataDir, { recursive: true, mode: PRIVATE_DIRECTORY_MODE });
  } catch (error) {
    throw new StoreOpenError(dataDir, directoryProblem(error));
  }
  const lock = takeDirectoryLock(dataDir);
  const path = join(dataDir, DATABASE_FILE_NAME);
  let db: Database;
  try {
    db = new Database(path, { create: true, readwrite: true, strict: true });
  } catch (error) {
    lock.close(true);
    throw new StoreOpenError(path, databaseProblem(error));
  }
  try {
    keepPrivate(path);
    prepareDatabase(db);
    return new SqliteStore(db, lock);
  } catch (error) {
    try {
      db.close(true);
      lock.close(true);
    } catch {
      // The reason it could not be opened matters more.
    }
    if (error instanceof StoreOpenError) throw error;
    throw new StoreOpenError(path, databaseProblem(error));
  }
}

const PRIVATE_DIRECTORY_MODE = 0o700;
const PRIVATE_FILE_MODE = 0o600;

/**
 * The database holds every client's session key: whoever reads it can make any client's
 * MACs and the server's. So it is readable by the server's user only, whatever the umask;
 * SQLite gives its WAL and shared-memory files the database's mode when it creates them,
 * and those an older server left are narrowed here too.
 */
function keepPrivate(path: string): void {
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    try {
      chmodSync(file, PRIVATE_FILE_MODE);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
  }
}

/**
 * One server per data directory: two would each keep their own table in memory and
 * drift apart. A small SQLite file in exclusive locking mode is the lock: the first
 * write takes it, the process keeps it until it closes or dies, and the message
 * database itself stays readable by other tools meanwhile.
 */
function takeDirectoryLock(dataDir: string): Database {
  const path = join(dataDir, LOCK_FILE_NAME);
  let lock: Database;
  try {
    lock = new Database(path, { create: true, readwrite: true });
  } catch (error) {
    throw new StoreOpenError(path, databaseProblem(error));
  }
  try {
    lock.run("PRAGMA busy_timeout = 300");
    lock.run("PRAGMA locking_mode = EXCLUSIVE");
    lock.run("PRAGMA user_version = 1");
    return lock;
  } catch (error) {
    lock.close(true);
    const code = error instanceof SQLiteError ? error.code : undefined;
    if (code?.startsWith("SQLITE_BUSY") || code?.startsWith("SQLITE_LOCKED")) {
      throw new StoreOpenError(
        dataDir,
        "another chatapp server is using this data directory; stop it, or give this one its own --data-dir",
      );
    }
    throw new StoreOpenError(path, databaseProblem(error));
  }
}

function prepareDatabase(db: Database): void {
  db.run(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
  // Where WAL is impossible (no shared memory) SQLite keeps its rollback journal, still durable with synchronous=FULL.
  db.run("PRAGMA journal_mode = WAL");
  db.run("PRAGMA synchronous = FULL");
  // IMMEDIATE: two servers starting on the same directory must not both create the schema.
  db.run("BEGIN IMMEDIATE");
  try {
    const version = pragmaValue(db, "user_version");
    if (version === 0) db.run(CURRENT_SCHEMA);
    else if (version === 1) {
      db.run(MIGRATE_V1_TO_V2(Date.now()) + MIGRATE_V2_TO_V3 + MIGRATE_V3_TO_V4);
    } else if (version === 2) db.run(MIGRATE_V2_TO_V3 + MIGRATE_V3_TO_V4);
    else if (version === 3) db.run(MIGRATE_V3_TO_V4);
    else if (version !== SCHEMA_VERSION) {
      throw new StoreOpenError(
        db.filename,
        `the database has schema version ${String(version)}, and this chatapp knows only version ${SCHEMA_VERSION}`,
      );
    }
    // Written even when unchanged: SQLite opens a read-only file read-only without a word, and this write finds out now.
    db.run(`PRAGMA user_version = ${SCHEMA_VERSION}`);
    db.run("COMMIT");
  } catch (error) {
    if (db.inTransaction) {
      try {
        db.run("ROLLBACK");
      } catch {
        // The original error says more than the rollback's.
      }
    }
    throw error;
  }
  const damage = structuralProblems(db);
  if (damage.length > 0) {
    const summary = damage
      .flatMap((finding) => finding.split("\n"))
      .filter((line) => !line.startsWith("***"))
      .slice(0, 3)
      .join("; ");
    throw new StoreOpenError(
      db.filename,
      `the database is damaged (${summary}); move it away to start with an empty store`,
    );
  }
}

/** quick_check's findings, minus failed CHECK constraints: load() skips such rows, so they need not stop the server. */
function structuralProblems(db: Database): string[] {
  const statement = db.prepare<Row, []>("PRAGMA quick_check");
  try {
    return statement
      .values()
      .map((row) => String(row[0]))
      .filter((finding) => finding !== "ok" && !finding.startsWith("CHECK constraint failed"));
  } finally {
    statement.finalize();
  }
}

function pragmaValue(db: Database, name: string): unknown {
  const statement = db.prepare<Row, []>(`PRAGMA ${name}`);
  try {
    return Object.values(statement.get() ?? {})[0];
  } finally {
    statement.finalize();
  }
}

function errorCode(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null || !("code" in error)) return undefined;
  return typeof error.code === "string" ? error.code : undefined;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function directoryProblem(error: unknown): string {
  switch (errorCode(error)) {
    case "EEXIST":
      return "it is a file, not a directory";
    case "ENOTDIR":
      return "a part of the path is a file, not a directory";
    case "EACCES":
    case "EPERM":
      return "permission denied while creating the directory";
    case "EROFS":
      return "the file system is read-only";
    case "ENOSPC":
      return "the disk is full";
    default:
      return errorMessage(error);
  }
}

function databaseProblem(error: unknown): string {
  const code = error instanceof SQLiteError ? error.code : errorCode(error);
  switch (code?.replace(/^(SQLITE_[A-Z]+)_.*$/, "$1")) {
    case "SQLITE_NOTADB":
      return "the file is not a SQLite database (it may be damaged); move it away to start with an empty store";
    case "SQLITE_CORRUPT":
      return "the database is damaged; move it away to start with an empty store";
    case "SQLITE_CANTOPEN":
      return "the file cannot be opened; check that the path is not a directory and that the directory is writable";
    case "SQLITE_BUSY":
    case "SQLITE_LOCKED":
      return "another process keeps the database locked";
    case "SQLITE_READONLY":
    case "SQLITE_PERM":
    case "SQLITE_AUTH":
      return "the database cannot be written; check the permissions of the file and its directory";
    case "SQLITE_FULL":
      return "the disk is full";
    case "SQLITE_IOERR":
      return `an I/O error occurred (${errorMessage(error)})`;
    default:
      return errorMessage(error);
  }
}

function clientFromRow(row: Row): ClientRecord | undefined {
  const { name_key, name, ip, port, online, token, last_seen, sk, ak, session_key } = row;
  if (online !== 0 && online !== 1) return undefined;
  const client = {
    name,
    ip,
    port,
    online: online === 1,
    token,
    lastSeen: last_seen,
    sk,
    ak,
    sessionKey: session_key,
  } as ClientRecord;
  if (clientProblem(client) !== undefined || name_key !== nameKey(client.name)) {
    return undefined;
  }
  return client;
}

/** A summary is loaded only for a row that would load as a whole message (its content aside). */
function summaryFromRow(row: Row, intern: (text: string) => string): StoredSummary | undefined {
  // Whether it is sealed, not the box: 100,000 boxes read at startup would be garbage.
  const { text_bytes, sealed, ...rest } = row;
  const content =
    sealed === 0
      ? { text: "x", sealed_n: "", sealed_box: "", sender_ak: "" }
      : { text: "", sealed_n: "x", sealed_box: "x", sender_ak: "x" };
  const checked = messageFromRow({ ...rest, ...content });
  if (checked === undefined || typeof text_bytes !== "number") return undefined;
  const { text: _text, sealed: _sealed, ...summary } = checked;
  return {
    ...summary,
    recipient: intern(summary.recipient),
    sender: intern(summary.sender),
    kind: intern(summary.kind) as StoredSummary["kind"],
    textBytes: text_bytes,
  };
}

function messageFromRow(row: Row): StoredMessage | undefined {
  const { id, recipient, sender, kind, text, received_at, ref, sealed_n, sealed_box, sender_ak } =
    row;
  const message = {
    id,
    recipient,
    sender,
    kind,
    text,
    receivedAt: received_at,
    ref,
    ...(sealed_box === "" ? {} : { sealed: { n: sealed_n, box: sealed_box, ak: sender_ak } }),
  } as StoredMessage;
  return messageProblem(message) === undefined ? message : undefined;
}
