/**
 * The durable-save baselines of the scale benchmark: bun:sqlite in this process, WAL with
 * synchronous=FULL (what RELIABILITY.md promises), inserting rows shaped like stored
 * messages: one transaction per row, and rows committed in groups.
 */
import { Database } from "bun:sqlite";
import { join } from "node:path";

const SCHEMA = `CREATE TABLE messages (
  id INTEGER PRIMARY KEY,
  recipient TEXT NOT NULL,
  sender TEXT NOT NULL,
  kind TEXT NOT NULL,
  text TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  ref INTEGER NOT NULL
) STRICT`;

/**
 * Rows per second committed in transactions of `batch` rows, over `rows` rows (rounded up
 * to whole batches) in a fresh database under `directory`.
 */
export function commitRate(
  directory: string,
  rows: number,
  batch: number,
  textLength: number,
): number {
  const db = new Database(join(directory, `baseline-${batch}.sqlite`), { create: true });
  try {
    db.run("PRAGMA journal_mode = WAL");
    db.run("PRAGMA synchronous = FULL");
    db.run(SCHEMA);
    const insert = db.prepare(
      "INSERT INTO messages (recipient, sender, kind, text, received_at, ref) VALUES (?, ?, 'direct', ?, ?, ?)",
    );
    const text = "x".repeat(textLength);
    const commit = db.transaction((first: number) => {
      for (let row = first; row < first + batch; row++) {
        insert.run(`r${row % 50}`, `s${row % 50}`, text, Date.now(), row);
      }
    });
    const started = performance.now();
    let done = 0;
    while (done < rows) {
      commit(done);
      done += batch;
    }
    const elapsed = performance.now() - started;
    insert.finalize();
    return (done / elapsed) * 1000;
  } finally {
    db.close();
  }
}
