/**
 * The server's memory with many clients and stored messages on disk: it keeps an index
 * of them, not their texts (PROTOCOL.md, "Durability"). Then as many clients again come
 * online (a swarm) while the messages stay stored: issue #8's "RSS with 10,000 clients
 * online and 100,000 stored messages". Baseline: the same server with an empty store, in
 * the same run. Alone: `bun test/bench/stored-memory.ts [--quick]`.
 */

import { MEMORY_CHECK_EVERY_MS, SETTLED_AFTER_QUIET_CHECKS } from "../../src/io/memory-ceiling.ts";
import type { StoreChange } from "../../src/store/offline-store.ts";
import { openSqliteStore } from "../../src/store/sqlite-store.ts";
import {
  binaryProgram,
  type ProcessGroup,
  type Program,
  processUsage,
  sourceProgram,
  startServer,
} from "./processes.ts";
import { Problems, settle } from "./scale.ts";
import { bytes, count, megabytes, NONE, printTable, type Row } from "./stats.ts";
import { Swarm } from "./swarm.ts";

/** What a settled server is measured after: what a burst left behind is given back by then. */
const SETTLED_AFTER_MS = 3_000;
/** And again once it has been quiet long enough for its quiet collections (src/io/memory-ceiling.ts). */
const QUIET_AFTER_MS = (SETTLED_AFTER_QUIET_CHECKS + 2) * MEMORY_CHECK_EVERY_MS;

export interface StoredMemoryOptions {
  readonly clients: number;
  readonly messages: number;
  readonly textLength: number;
}

export function storedMemoryOptions(quick: boolean): StoredMemoryOptions {
  return quick
    ? { clients: 1_000, messages: 10_000, textLength: 1_000 }
    : { clients: 10_000, messages: 100_000, textLength: 1_000 };
}

function fill(dataDir: string, { clients, messages, textLength }: StoredMemoryOptions): void {
  const store = openSqliteStore(dataDir);
  try {
    const now = Date.now();
    const changes: StoreChange[] = [];
    for (let i = 0; i < clients; i++) {
      changes.push({
        kind: "put-client",
        client: {
          name: `c${i}`,
          ip: "127.0.0.1",
          port: 20_000 + (i % 40_000),
          online: false,
          token: i.toString(16).padStart(32, "0"),
          sk: "",
          ak: "",
          sessionKey: "",
          lastSeen: now,
        },
      });
    }
    for (let i = 0; i < messages; i++) {
      changes.push({
        kind: "put-message",
        message: {
          id: i + 1,
          recipient: `c${i % clients}`,
          sender: `c${(i * 7) % clients}`,
          kind: "direct",
          text: `stored message ${i} `.padEnd(textLength, "x"),
          receivedAt: now,
          ref: i + 1,
        },
      });
    }
    store.apply(changes);
  } finally {
    store.close();
  }
}

async function residentAfterStart(group: ProcessGroup, program: Program, dataDir: string) {
  const { server } = await startServer(group, program, dataDir);
  // Started means loaded: the "data directory" line follows the load.
  await server.stdout.next((line) => line.includes("data directory"), 30_000);
  const usage = processUsage(server.process.pid);
  await group.stop(server.process);
  return usage;
}

/** RSS once `clients` more have registered and the table has settled, and the peak meanwhile. */
async function residentWithClientsOnline(
  group: ProcessGroup,
  program: Program,
  dataDir: string,
  clients: number,
): Promise<
  { settled: number; quiet: number; peak: number; problems: readonly string[] } | undefined
> {
  const swarm = await Swarm.open(clients, "s");
  const problems = new Problems();
  const { server, port } = await startServer(group, program, dataDir);
  try {
    await server.stdout.next((line) => line.includes("data directory"), 30_000);
    swarm.useServers([port]);
    const { failed } = await swarm.registerAll(swarm.clients, 64);
    if (failed.length > 0) problems.add(`${failed.length} registrations failed`);
    await settle(swarm, 120_000, "registration", problems);
    await Bun.sleep(SETTLED_AFTER_MS);
    const settled = processUsage(server.process.pid);
    await Bun.sleep(QUIET_AFTER_MS - SETTLED_AFTER_MS);
    const quiet = processUsage(server.process.pid);
    if (!settled || !quiet) return undefined;
    return {
      settled: settled.rssBytes,
      quiet: quiet.rssBytes,
      peak: settled.peakRssBytes,
      problems: problems.list,
    };
  } finally {
    swarm.close();
    await group.stop(server.process);
  }
}

export async function benchStoredMemory(
  group: ProcessGroup,
  program: Program,
  options: StoredMemoryOptions,
): Promise<void> {
  const full = await group.makeDataDir();
  const empty = await group.makeDataDir();
  try {
    fill(full, options);
    const loaded = await residentAfterStart(group, program, full);
    const baseline = await residentAfterStart(group, program, empty);
    const online = await residentWithClientsOnline(group, program, full, options.clients);
    const onlineBaseline = await residentWithClientsOnline(group, program, empty, options.clients);
    if (!loaded || !baseline || !online || !onlineBaseline) {
      throw new Error("the server's memory could not be read");
    }
    const rows: Row[] = [
      { what: "clients in the table", chatapp: count(options.clients), baseline: count(0) },
      { what: "stored messages on disk", chatapp: count(options.messages), baseline: count(0) },
      { what: "text of each message", chatapp: bytes(options.textLength), baseline: NONE },
      {
        what: "server RSS once started",
        chatapp: megabytes(loaded.rssBytes),
        baseline: megabytes(baseline.rssBytes),
      },
      {
        what: "server peak RSS (VmHWM)",
        chatapp: megabytes(loaded.peakRssBytes),
        baseline: megabytes(baseline.peakRssBytes),
      },
      {
        what: `…${options.clients.toLocaleString("en-US")} more online, settled`,
        chatapp: megabytes(online.settled),
        baseline: megabytes(onlineBaseline.settled),
      },
      {
        what: `…the same, quiet ${QUIET_AFTER_MS / 1000} s`,
        chatapp: megabytes(online.quiet),
        baseline: megabytes(onlineBaseline.quiet),
      },
      {
        what: "…peak RSS while they registered",
        chatapp: megabytes(online.peak),
        baseline: megabytes(onlineBaseline.peak),
      },
    ];
    const problems = [...online.problems, ...onlineBaseline.problems];
    printTable(`5. Memory with ${options.messages.toLocaleString("en-US")} stored messages`, rows, [
      `baseline: the same server starting on an empty data directory.`,
      `the texts alone are ${((options.messages * options.textLength) / 1_048_576).toFixed(0)} MB: the server keeps an index and reads them when it delivers.`,
      `online: a swarm of ${options.clients.toLocaleString("en-US")} more registers (other names) and the table settles; RSS ${SETTLED_AFTER_MS / 1000} s later, and again after the server's quiet collections. Issue #8's target: ≤ 150 MB with 10,000 online and 100,000 stored.`,
      ...problems.map((problem) => `! ${problem}`),
    ]);
    // The figures of a swarm that could not all register measure nothing: the run breaks, as section 4's does.
    if (problems.length > 0) throw new Error(problems.join("\n"));
  } finally {
    await group.removeDataDir(full);
    await group.removeDataDir(empty);
  }
}

if (import.meta.main) {
  const { ProcessGroup: Group } = await import("./processes.ts");
  const group = new Group();
  try {
    const program = binaryProgram ?? sourceProgram;
    await benchStoredMemory(group, program, storedMemoryOptions(process.argv.includes("--quick")));
  } finally {
    await group.cleanUp();
  }
}
