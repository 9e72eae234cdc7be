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

/** An asynchronous store whose transactions finish when the test says, one by one. */
function slowStore() {
  const inner = createMemoryStore();
  const pending: { changes: readonly StoreChange[]; finish: (error?: Error) => void }[] = [];
  const store = {
    pending,
    inFlight: 0,
    maxInFlight: 0,
    apply(changes: readonly StoreChange[]): Promise<void> {
      store.inFlight++;
      store.maxInFlight = Math.max(store.maxInFlight, store.inFlight);
      return new Promise<void>((resolve, reject) => {
        pending.push({
          changes,
          finish: (error) => {
            store.inFlight--;
            if (error) return reject(error);
            inner.apply(changes);
            resolve();
          },
        });
      });
    },
  };
  return { store, inner };
}

test("an asynchronous store has one transaction in flight; commits added meanwhile go in the next, reported in order", async () => {
  const { store, inner } = slowStore();
  const outcomes: CommitOutcome[] = [];
  const commits = new GroupCommit(store, (outcome) => outcomes.push(outcome));
  commits.add(1, [message(1)]);
  commits.add(2, [message(2)]);
  await settleTurn();
  expect(store.pending).toHaveLength(1);
  commits.add(3, [message(3)]);
  await settleTurn();
  commits.add(4, [message(4)]);
  await settleTurn();
  // Still only the first: 3 and 4 wait for it.
  expect(store.pending).toHaveLength(1);
  expect(outcomes).toEqual([]);
  store.pending[0]?.finish();
  await settleTurn();
  expect(outcomes).toEqual([{ ok: true, commits: [1, 2] }]);
  expect(store.pending).toHaveLength(2);
  expect(store.pending[1]?.changes).toEqual([message(3), message(4)]);
  store.pending[1]?.finish(new Error("Redis is unreachable"));
  await settleTurn();
  expect(outcomes).toEqual([
    { ok: true, commits: [1, 2] },
    { ok: false, commits: [3, 4], error: new Error("Redis is unreachable") },
  ]);
  expect(store.maxInFlight).toBe(1);
  expect(inner.load().messages.map((m) => m.id)).toEqual([1, 2]);
});

test("an asynchronous store's failed client states are written again with the next transaction", async () => {
  const { store, inner } = slowStore();
  const outcomes: CommitOutcome[] = [];
  const commits = new GroupCommit(store, (outcome) => outcomes.push(outcome));
  commits.add(1, [client("x", true), message(1)]);
  await settleTurn();
  store.pending[0]?.finish(new Error("down"));
  await settleTurn();
  expect(commits.carriedChanges).toBe(1);
  commits.add(2, [message(2)]);
  await settleTurn();
  expect(store.pending[1]?.changes).toEqual([client("x", true), message(2)]);
  store.pending[1]?.finish();
  await settleTurn();
  expect(outcomes.map((o) => o.ok)).toEqual([false, true]);
  expect(inner.load().clients.map((c) => c.name)).toEqual(["x"]);
});

test("a read waits for the commits added before it, and not for those added after", async () => {
  const { store } = slowStore();
  const events: string[] = [];
  const commits = new GroupCommit(store, (outcome) => events.push(`commit ${outcome.commits}`));
  commits.add(1, [message(1)]);
  commits.whenCommitted(() => events.push("read after 1"));
  await settleTurn();
  commits.add(2, [message(2)]);
  commits.whenCommitted(() => events.push("read after 2"));
  store.pending[0]?.finish();
  await settleTurn();
  expect(events).toEqual(["commit 1", "read after 1"]);
  store.pending[1]?.finish();
  await settleTurn();
  expect(events).toEqual(["commit 1", "read after 1", "commit 2", "read after 2"]);
  commits.whenCommitted(() => events.push("read with nothing pending"));
  expect(events).toHaveLength(4);
  await settleTurn();
  expect(events.at(-1)).toBe("read with nothing pending");
});

test("with a synchronous store a read runs right after the commit of its turn", async () => {
  const store = countingStore();
  const events: string[] = [];
  const commits = new GroupCommit(store, (outcome) => events.push(`commit ${outcome.commits}`));
  commits.add(1, [message(1)]);
  commits.whenCommitted(() => events.push(`read sees ${store.load().messages.length}`));
  await settleTurn();
  expect(events).toEqual(["commit 1", "read sees 1"]);
});

test("settle waits for the transaction in flight and commits what waits behind it", async () => {
  const { store, inner } = slowStore();
  const commits = new GroupCommit(store, () => {});
  commits.add(1, [message(1)]);
  await settleTurn();
  commits.add(2, [message(2)]);
  let settled = false;
  const settling = commits.settle().then(() => {
    settled = true;
  });
  store.pending[0]?.finish();
  await settleTurn();
  expect(settled).toBe(false);
  store.pending[1]?.finish();
  await settling;
  expect(inner.load().messages.map((m) => m.id)).toEqual([1, 2]);
});
