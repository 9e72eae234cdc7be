import { expect, test } from "bun:test";
import { type CommitOutcome, GroupCommit } from "../../src/io/group-commit.ts";
import { createMemoryStore } from "../../src/store/memory-store.ts";
import type { OfflineStore, StoreChange } from "../../src/store/offline-store.ts";

/** A store that counts transactions and can refuse them, as a full disk does. */
function countingStore(): OfflineStore & { transactions: number; refuse: boolean } {
  const inner = createMemoryStore();
  const store = {
    transactions: 0,
    refuse: false,
    load: () => inner.load(),
    loadSummary: () => inner.loadSummary(),
    readMessages: (ids: readonly number[]) => inner.readMessages(ids),
    close: () => inner.close(),
    apply(changes: readonly StoreChange[]) {
      if (store.refuse) throw new Error("database or disk is full");
      store.transactions++;
      inner.apply(changes);
    },
  };
  return store;
}

const client = (name: string, online: boolean): StoreChange => ({
  kind: "put-client",
  client: {
    name,
    ip: "127.0.0.1",
    port: 6000,
    online,
    token: "t",
    lastSeen: 0,
    sk: "",
    ak: "",
    sessionKey: "",
  },
});
const message = (id: number): StoreChange => ({
  kind: "put-message",
  message: {
    id,
    recipient: "y",
    sender: "x",
    kind: "direct",
    text: `m${id}`,
    receivedAt: 1,
    ref: id,
  },
});

function settleTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

test("the changes of one turn go to the store in one transaction, and every commit is reported", async () => {
  const store = countingStore();
  const outcomes: CommitOutcome[] = [];
  const commits = new GroupCommit(store, (outcome) => outcomes.push(outcome));
  for (let commit = 1; commit <= 50; commit++) commits.add(commit, [message(commit)]);
  expect(store.transactions).toBe(0);
  await settleTurn();
  expect(store.transactions).toBe(1);
  expect(outcomes).toEqual([{ ok: true, commits: Array.from({ length: 50 }, (_, i) => i + 1) }]);
  expect(store.load().messages).toHaveLength(50);
});

test("a refused transaction reports failure; client states are written again with the next one", async () => {
  const store = countingStore();
  const outcomes: CommitOutcome[] = [];
  const commits = new GroupCommit(store, (outcome) => outcomes.push(outcome));
  store.refuse = true;
  commits.add(1, [client("x", true), message(1)]);
  commits.add(2, [client("x", false)]);
  await settleTurn();
  expect(outcomes).toEqual([
    { ok: false, commits: [1, 2], error: new Error("database or disk is full") },
  ]);
  expect(commits.carriedChanges).toBe(1);
  store.refuse = false;
  commits.add(3, [message(2)]);
  await settleTurn();
  expect(outcomes.at(-1)).toEqual({ ok: true, commits: [3] });
  const loaded = store.load();
  // x's latest state reached the disk; the refused message did not (the core took it back).
  expect(loaded.clients.map((c) => `${c.name}:${c.online}`)).toEqual(["x:false"]);
  expect(loaded.messages.map((m) => m.id)).toEqual([2]);
});

test("every transaction is measured: how many commits it held, whether it went through, how long it took", async () => {
  const store = countingStore();
  const measured: { ok: boolean; commits: number; seconds: number }[] = [];
  const commits = new GroupCommit(
    store,
    () => {},
    (transaction) => measured.push(transaction),
  );
  commits.add(1, [message(1)]);
  commits.add(2, [message(2)]);
  commits.add(3, [message(3)]);
  await settleTurn();
  store.refuse = true;
  commits.add(4, [message(4)]);
  await settleTurn();
  expect(measured.map(({ ok, commits }) => ({ ok, commits }))).toEqual([
    { ok: true, commits: 3 },
    { ok: false, commits: 1 },
  ]);
  for (const { seconds } of measured) {
    expect(seconds).toBeGreaterThanOrEqual(0);
    expect(seconds).toBeLessThan(1);
  }
});
