import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AsyncOfflineStore } from "../../src/store/async-store.ts";
import { createMemoryStore } from "../../src/store/memory-store.ts";
import type {
  ClientRecord,
  OfflineStore,
  ServerSnapshot,
  StoreChange,
  StoredMessage,
  StoreSnapshot,
} from "../../src/store/offline-store.ts";
import { RedisStore } from "../../src/store/redis-store.ts";
import { openSqliteStore } from "../../src/store/sqlite-store.ts";
import { InvalidStoreChangeError } from "../../src/store/store-records.ts";
import { describeWithRedis, RedisServer } from "../helpers/redis-server.ts";

/** Every store through the asynchronous interface, with `load` built from what it offers. */
interface ContractStore {
  load(): Promise<StoreSnapshot>;
  loadSummary(): Promise<ServerSnapshot>;
  readMessages(ids: readonly number[]): Promise<StoredMessage[]>;
  apply(changes: readonly StoreChange[]): Promise<void>;
  close(): Promise<void>;
}

interface StoreFixture {
  open(): Promise<ContractStore>;
  cleanup(): Promise<void>;
}

function fromSync(store: OfflineStore): ContractStore {
  return {
    load: async () => store.load(),
    loadSummary: async () => store.loadSummary(),
    readMessages: async (ids) => store.readMessages(ids),
    apply: async (changes) => store.apply(changes),
    close: async () => store.close(),
  };
}

function fromAsync(store: AsyncOfflineStore): ContractStore {
  return {
    async load() {
      const summary = await store.loadSummary();
      const messages = await store.readMessages(summary.messages.map((m) => m.id));
      return { clients: summary.clients, messages };
    },
    loadSummary: () => store.loadSummary(),
    readMessages: (ids) => store.readMessages(ids),
    apply: (changes) => store.apply(changes),
    close: () => store.close(),
  };
}

const memoryFixture = (): StoreFixture => ({
  open: async () => fromSync(createMemoryStore()),
  cleanup: async () => {},
});

const sqliteFixture = (): StoreFixture => {
  const dir = mkdtempSync(join(tmpdir(), "chatapp-store-"));
  return {
    open: async () => fromSync(openSqliteStore(dir)),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
};

function client(name: string, overrides: Partial<ClientRecord> = {}): ClientRecord {
  return {
    name,
    ip: "127.0.0.1",
    port: 40_000,
    online: true,
    token: `token-${name}`,
    lastSeen: 1_764_000_000_000,
    sk: `sk-${name}`,
    ak: `ak-${name}`,
    sessionKey: `session-${name}`,
    ...overrides,
  };
}

function message(id: number, overrides: Partial<StoredMessage> = {}): StoredMessage {
  return {
    id,
    recipient: "bob",
    sender: "alice",
    kind: "direct",
    text: `message ${id}`,
    receivedAt: 1_700_000_000_000 + id,
    ref: id,
    ...overrides,
  };
}

const putClient = (record: ClientRecord): StoreChange => ({ kind: "put-client", client: record });
const putMessage = (record: StoredMessage): StoreChange => ({
  kind: "put-message",
  message: record,
});
const removeMessages = (ids: number[]): StoreChange => ({ kind: "remove-messages", ids });
const ids = async (store: ContractStore): Promise<number[]> =>
  (await store.load()).messages.map((m) => m.id);

function storeContract(makeFixture: () => StoreFixture | Promise<StoreFixture>): void {
  let fixture: StoreFixture;
  let store: ContractStore;

  beforeEach(async () => {
    fixture = await makeFixture();
    store = await fixture.open();
  });

  afterEach(async () => {
    await store.close();
    await fixture.cleanup();
  });

  test("a new store loads empty", async () => {
    expect(await store.load()).toEqual({ clients: [], messages: [] });
  });

  test("an empty batch changes nothing", async () => {
    await store.apply([putMessage(message(1))]);
    await store.apply([]);
    expect(await ids(store)).toEqual([1]);
  });

  test("put-client stores every field, upserts by name, and keeps the order of first registration", async () => {
    await store.apply([putClient(client("bob", { online: false, port: 1024, token: "" }))]);
    await store.apply([putClient(client("Alice"))]);
    await store.apply([
      putClient(
        client("bob", {
          online: true,
          port: 65_535,
          ip: "::1",
          token: "t2",
          sk: "sk-bob-2",
          ak: "ak-bob-2",
          sessionKey: "session-bob-2",
        }),
      ),
    ]);
    expect((await store.load()).clients).toEqual([
      {
        name: "bob",
        ip: "::1",
        port: 65_535,
        online: true,
        token: "t2",
        lastSeen: 1_764_000_000_000,
        sk: "sk-bob-2",
        ak: "ak-bob-2",
        sessionKey: "session-bob-2",
      },
      client("Alice"),
    ]);
  });

  test("names are case-insensitive: a later spelling replaces the earlier record", async () => {
    await store.apply([putClient(client("Alice", { port: 5000 })), putClient(client("Émile"))]);
    await store.apply([putClient(client("alice", { port: 6000, online: false }))]);
    await store.apply([putClient(client("éMILE", { token: "new" }))]);
    expect((await store.load()).clients).toEqual([
      client("alice", { port: 6000, online: false }),
      client("éMILE", { token: "new" }),
    ]);
  });

  test("messages come back ordered by id, whatever the order they were put in", async () => {
    await store.apply([putMessage(message(50)), putMessage(message(3))]);
    await store.apply([putMessage(message(7, { kind: "channel", recipient: "carol" }))]);
    await store.apply([putMessage(message(1))]);
    const { messages } = await store.load();
    expect(messages.map((m) => m.id)).toEqual([1, 3, 7, 50]);
    expect(messages[2]).toEqual(message(7, { kind: "channel", recipient: "carol" }));
  });

  test("remove-messages removes exactly the given ids and ignores unknown ones", async () => {
    await store.apply([1, 2, 3, 4, 5].map((id) => putMessage(message(id))));
    await store.apply([removeMessages([2, 4, 99])]);
    expect(await ids(store)).toEqual([1, 3, 5]);
    await store.apply([removeMessages([])]);
    expect(await ids(store)).toEqual([1, 3, 5]);
  });

  test("remove-messages handles more ids than SQLite binds in one statement", async () => {
    const count = 40_000;
    const all = Array.from({ length: count }, (_, i) => i + 1);
    await store.apply(all.map((id) => putMessage(message(id))));
    await store.apply([removeMessages(all.filter((id) => id !== 12_345))]);
    expect(await ids(store)).toEqual([12_345]);
  });

  test("a message id can be removed and reused within one batch", async () => {
    await store.apply([putMessage(message(1))]);
    await store.apply([removeMessages([1]), putMessage(message(1, { text: "again" }))]);
    expect((await store.load()).messages).toEqual([message(1, { text: "again" })]);
  });

  test("a batch whose last change reuses a stored id leaves nothing behind", async () => {
    await store.apply([putClient(client("alice")), putMessage(message(1))]);
    const before = await store.load();
    await expect(
      store.apply([
        putClient(client("carol")),
        putClient(client("ALICE", { online: false })),
        removeMessages([1]),
        putMessage(message(2)),
        putMessage(message(2)),
      ]),
    ).rejects.toThrow();
    expect(await store.load()).toEqual(before);
    await expect(
      store.apply([putClient(client("dave")), putMessage(message(3)), putMessage(message(1))]),
    ).rejects.toThrow();
    expect(await store.load()).toEqual(before);
    await store.apply([putMessage(message(3))]);
    expect(await ids(store)).toEqual([1, 3]);
  });

  test.each([
    ["a fractional id", putMessage(message(1.5))],
    ["a NaN id", putMessage(message(Number.NaN))],
    ["an unknown kind", putMessage({ ...message(9), kind: "group" } as unknown as StoredMessage)],
    ["a missing text", putMessage({ ...message(9), text: undefined } as unknown as StoredMessage)],
    ["a fractional receivedAt", putMessage(message(9, { receivedAt: 1.25 }))],
    ["an empty client name", putClient(client(""))],
    ["a port out of range", putClient(client("x", { port: 70_000 }))],
    ["a non-integer id to remove", removeMessages([1, Number.POSITIVE_INFINITY])],
    ["an unknown change", { kind: "drop-everything" } as unknown as StoreChange],
  ])("a batch with %s is refused before anything is written", async (_, bad) => {
    await store.apply([putMessage(message(1))]);
    await expect(
      store.apply([putClient(client("zed")), putMessage(message(2)), bad]),
    ).rejects.toThrow(InvalidStoreChangeError);
    expect(await store.load()).toEqual({ clients: [], messages: [message(1)] });
  });

  test("the server's summary holds every message but its text, and texts are read by id", async () => {
    await store.apply([
      putMessage(message(3, { text: "three" })),
      putMessage(message(1, { text: "one 😀" })),
      putMessage(message(2, { text: "two" })),
    ]);
    const summary = await store.loadSummary();
    // The size on disk, in UTF-8: "one " and a 4-byte emoji.
    expect(summary.messages.map((m) => [m.id, m.textBytes])).toEqual([
      [1, 8],
      [2, 3],
      [3, 5],
    ]);
    expect(summary.messages.every((m) => !("text" in m))).toBe(true);
    // By id, ascending, leaving out ids the store does not hold.
    expect((await store.readMessages([3, 99, 1])).map((m) => [m.id, m.text])).toEqual([
      [1, "one 😀"],
      [3, "three"],
    ]);
    expect(await store.readMessages([])).toEqual([]);
  });

  test("a sealed direct message keeps its nonce, box and sender's key, and its size counts them", async () => {
    const sealed = { n: "N".repeat(16), box: "B".repeat(120), ak: "K".repeat(43) };
    const stored = message(4, { text: "", sealed });
    await store.apply([
      putMessage(stored),
      putMessage(message(5, { kind: "channel", text: "plain" })),
    ]);
    expect((await store.load()).messages).toEqual([
      stored,
      message(5, { kind: "channel", text: "plain" }),
    ]);
    expect(await store.readMessages([4])).toEqual([stored]);
    const summary = (await store.loadSummary()).messages;
    expect(summary.map((m) => [m.id, m.textBytes])).toEqual([
      [4, 16 + 120 + 43],
      [5, 5],
    ]);
    expect(summary.every((m) => !("sealed" in m))).toBe(true);
  });

  test("a sealed message with a text in clear as well, or sealed on the channel, is refused", async () => {
    const sealed = { n: "N".repeat(16), box: "B".repeat(120), ak: "K".repeat(43) };
    for (const bad of [
      message(6, { text: "leaked", sealed }),
      message(7, { kind: "channel", text: "", sealed }),
      message(8, { text: "", sealed: { ...sealed, box: "" } }),
    ]) {
      await expect(store.apply([putMessage(bad)])).rejects.toThrow(InvalidStoreChangeError);
    }
    expect((await store.load()).messages).toEqual([]);
  });

  test("text with any Unicode round-trips exactly", async () => {
    const long = "Ωמ😀\u0000".repeat(1000);
    const texts = [
      "emoji 👩‍👩‍👧‍👦 🏳️‍🌈 flags 🇫🇷 and skin tones 👍🏽",
      "RTL: مرحبا بالعالم — שלום עולם \u202eevil\u202c \u2067isolate\u2069",
      "NUL\u0000in\u0000the\u0000middle",
      "escapes \u001b[31mred\u001b[0m \u001b]0;title\u0007 \u009b1m C1 \r\n\t\b\f\v",
      "combining e\u0301 vs é, ZWJ \u200d, BOM \ufeff, noncharacter \uffff, astral 𝕏",
      "",
      "   leading and trailing spaces   ",
      long,
    ];
    expect(long.length).toBe(5000);
    await store.apply(
      texts.map((text, i) =>
        putMessage(message(i + 1, { text, sender: "Zoë 😀", recipient: "سارا" })),
      ),
    );
    await store.apply([putClient(client("Zoë 😀\u0000", { token: "tok\u001b" }))]);
    const { clients, messages } = await store.load();
    expect(messages.map((m) => m.text)).toEqual(texts);
    expect(messages.every((m) => m.sender === "Zoë 😀" && m.recipient === "سارا")).toBe(true);
    expect(clients).toEqual([client("Zoë 😀\u0000", { token: "tok\u001b" })]);
  });

  test("a text of exactly 4000 characters round-trips", async () => {
    const text = "a😀ب".repeat(1000);
    expect(text.length).toBe(4000);
    await store.apply([putMessage(message(1, { text }))]);
    expect((await store.load()).messages[0]?.text).toBe(text);
  });

  test("a lone surrogate comes back as U+FFFD, as UTF-8 storage has it", async () => {
    await store.apply([putMessage(message(1, { text: "cut \ud83d" }))]);
    expect((await store.load()).messages[0]?.text).toBe("cut \ufffd");
  });

  test("load returns copies that do not alias the store", async () => {
    const record = { ...client("alice") };
    await store.apply([putClient(record), putMessage(message(1))]);
    (record as { port: number }).port = 1;
    const first = await store.load();
    (first.messages as StoredMessage[]).pop();
    (first.clients[0] as { online: boolean }).online = false;
    expect(await store.load()).toEqual({ clients: [client("alice")], messages: [message(1)] });
  });

  test("a closed store refuses to work", async () => {
    await store.close();
    await expect(store.apply([putMessage(message(1))])).rejects.toThrow("closed");
    await expect(store.load()).rejects.toThrow("closed");
    await store.close();
  });
}

describe("memory store contract", () => storeContract(memoryFixture));
describe("sqlite store contract", () => storeContract(sqliteFixture));
describeWithRedis("redis store contract", () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterAll(() => redis.remove());
  storeContract(() => ({
    async open() {
      await redis.flushAll();
      return fromAsync(await RedisStore.connect(redis.url, "contract-node"));
    },
    cleanup: async () => {},
  }));
});

describe("createMemoryStore", () => {
  test("starts from an initial snapshot and keeps its own copy of it", () => {
    const initial = { clients: [client("bob")], messages: [message(2), message(1)] };
    const store = createMemoryStore(initial);
    initial.messages.pop();
    expect(store.load()).toEqual({ clients: [client("bob")], messages: [message(1), message(2)] });
  });

  test("refuses an initial snapshot with duplicate message ids", () => {
    expect(() => createMemoryStore({ clients: [], messages: [message(1), message(1)] })).toThrow(
      InvalidStoreChangeError,
    );
  });
});
