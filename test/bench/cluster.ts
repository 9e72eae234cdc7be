/**
 * Benchmark 6 (issue #11 item 8): one node against three nodes on one Redis. The scale
 * benchmark's swarm (one UDP socket per simulated client, 127.0.0.1 only) runs against
 * three setups in turn, split evenly across the nodes: one node on SQLite (the default),
 * one node on Redis, three nodes on Redis. Each setup gets a fresh redis-server
 * (`appendonly yes`, `appendfsync always`) and a fresh swarm; the figures print side by
 * side.
 *
 * Alone: `bun test/bench/cluster.ts [--quick] [--clients N] [--source]`.
 * It never fails on a time; it exits 1 only when something broke (registrations or saves
 * that failed, a phase past its generous bound), after printing what it has.
 */
import { REDIS_INSTALL_HINT, REDIS_SERVER, RedisServer } from "../helpers/redis-server.ts";
import { runBenchAlone } from "./bench-script.ts";
import {
  openFileLimit,
  type ProcessGroup,
  type ProcessUsage,
  type Program,
  processUsage,
  startServer,
  udpReceiveBufferErrors,
} from "./processes.ts";
import {
  convergeBoundMs,
  durableSaves,
  failedAnswers,
  fanOut,
  Problems,
  SPARE_FILES,
  serverWarnings,
  settle,
} from "./scale.ts";
import {
  type Cell,
  type ColumnsRow,
  count,
  formatCell,
  median,
  megabytes,
  ms,
  NONE,
  percentile,
  perSecond,
  printColumns,
  seconds,
} from "./stats.ts";
import { type SimClient, Swarm } from "./swarm.ts";

export interface ClusterOptions {
  readonly clients: number;
  /** Registrations (handshakes) outstanding at once, over the whole swarm. */
  readonly registerWindow: number;
  readonly saveSenders: number;
  readonly savesPerSender: number;
  /** Saves each sender has outstanding at once. */
  readonly saveWindow: number;
}

export function clusterOptions(quick: boolean, clients?: number): ClusterOptions {
  return {
    clients: clients ?? (quick ? 300 : 10_000),
    registerWindow: 64,
    saveSenders: 50,
    savesPerSender: quick ? 20 : 200,
    saveWindow: 8,
  };
}

interface Setup {
  readonly label: string;
  readonly nodes: number;
  readonly redis: boolean;
}

const SETUPS: readonly Setup[] = [
  { label: "1 node, SQLite", nodes: 1, redis: false },
  { label: "1 node, Redis", nodes: 1, redis: true },
  { label: "3 nodes, Redis", nodes: 3, redis: true },
];

/** How far from converged the swarm was at the bound, and when it got there after all. */
interface Unconverged {
  readonly behind: number;
  readonly short: number;
  readonly lateMs: number | undefined;
}

/** What one setup measured; undefined where the phase did not finish. */
interface Figures {
  /** The setup keeps its store in Redis (so Redis's figures apply). */
  readonly redis: boolean;
  readonly registerMs: number;
  readonly slowestRegistrationMs: number;
  readonly medianRegistrationMs: number;
  readonly p99RegistrationMs: number;
  readonly convergeMs: number | undefined;
  readonly unconverged: Unconverged | undefined;
  readonly kernelDrops: number | undefined;
  readonly fanOutMs: number | undefined;
  /** The slowest member at the sender's node, and at the other nodes. */
  readonly fanOutLocal: Cell;
  readonly fanOutRemote: Cell;
  readonly fanOutAckMs: number | undefined;
  readonly wronglyOffline: number;
  readonly savesPerSecond: number;
  readonly savesAcked: number;
  readonly savesFailed: number;
  readonly saveAckMedianMs: number;
  readonly serverRssRegistered: number | undefined;
  readonly serverRssEnd: number | undefined;
  readonly serverPeakRss: number | undefined;
  readonly serverCpuSeconds: number | undefined;
  readonly redisRssRegistered: number | undefined;
  readonly redisRssEnd: number | undefined;
  readonly redisCpuSeconds: number | undefined;
}

/** Sums one figure over the nodes; undefined if any node's /proc entry was gone. */
function overNodes(
  usages: readonly (ProcessUsage | undefined)[],
  pick: (usage: ProcessUsage) => number,
): number | undefined {
  let total = 0;
  for (const usage of usages) {
    if (!usage) return undefined;
    total += pick(usage);
  }
  return total;
}

/**
 * `INFO <section>` of a Redis, as field → number (text fields are left out); empty, with
 * the reason in `notes`, when Redis does not answer (a figure is then n/a, not the run).
 */
async function redisInfo(
  redis: RedisServer,
  section: string,
  notes: string[],
): Promise<Map<string, number>> {
  const fields = new Map<string, number>();
  let text: string;
  try {
    text = String(await redis.command("INFO", [section]));
  } catch (error) {
    notes.push(
      `Redis did not answer INFO ${section}: ${error instanceof Error ? error.message : String(error)}`,
    );
    return fields;
  }
  for (const line of text.split("\n")) {
    const [key, value] = line.trim().split(":");
    const number = Number(value);
    if (key && value !== undefined && value !== "" && Number.isFinite(number))
      fields.set(key, number);
  }
  return fields;
}

async function redisRss(
  redis: RedisServer | undefined,
  notes: string[],
): Promise<number | undefined> {
  return redis ? (await redisInfo(redis, "memory", notes)).get("used_memory_rss") : undefined;
}

async function redisCpu(
  redis: RedisServer | undefined,
  notes: string[],
): Promise<number | undefined> {
  if (!redis) return undefined;
  const cpu = await redisInfo(redis, "cpu", notes);
  const user = cpu.get("used_cpu_user");
  const system = cpu.get("used_cpu_sys");
  return user === undefined || system === undefined ? undefined : user + system;
}

/** The latest arrival of post `ref` among `members`, after `startedAt`. */
function slowestArrival(members: readonly SimClient[], ref: number, startedAt: number): Cell {
  if (members.length === 0) return NONE;
  let latest = startedAt;
  for (const member of members) {
    const at = member.posts.get(ref);
    if (at === undefined) return "not all reached";
    latest = Math.max(latest, at);
  }
  return ms(latest - startedAt);
}

async function runSetup(
  group: ProcessGroup,
  program: Program,
  setup: Setup,
  options: ClusterOptions,
  problems: Problems,
  /** Lines for the notes under the table. */
  warnings: string[],
): Promise<Figures> {
  const size = options.clients;
  const redis = setup.redis ? await RedisServer.start() : undefined;
  // redis-server is no child of the group: an interrupted run must not leave it behind.
  const killRedis = () => void redis?.kill();
  process.on("exit", killRedis);
  let opened: Swarm | undefined;
  const dataDirs: string[] = [];
  try {
    const swarm = await Swarm.open(size, "s", setup.nodes);
    opened = swarm;
    const nodes = [];
    for (let index = 0; index < setup.nodes; index++) {
      const dataDir = await group.makeDataDir();
      dataDirs.push(dataDir);
      const args = redis ? ["--redis", redis.url, "--node-name", `n${index + 1}`] : [];
      nodes.push(await startServer(group, program, dataDir, args));
    }
    swarm.useServers(nodes.map((node) => node.port));
    const pids = nodes.map((node) => node.server.process.pid);
    const usageNow = () => pids.map((pid) => processUsage(pid));
    const atStart = usageNow();
    const redisCpuAtStart = await redisCpu(redis, warnings);

    const dropsBefore = udpReceiveBufferErrors();
    const registerStarted = performance.now();
    const registration = await swarm.registerAll(swarm.clients, options.registerWindow);
    const registerMs = registration.lastAt - registerStarted;
    if (registration.failed.length > 0) {
      problems.add(
        `${setup.label}: ${registration.failed.length} registration(s) failed, e.g. ${registration.failed.slice(0, 3).join("; ")}`,
      );
    }
    const convergedAt = await swarm.converged(convergeBoundMs(size));
    const convergeMs =
      convergedAt === undefined ? undefined : Math.max(0, convergedAt - registration.lastAt);
    // Slow is a figure, not a failure: past the bound, say how far from converged the
    // swarm was and wait once more (the later phases measure a settled table). Only a
    // table still not full then counts as broken.
    let unconverged: Unconverged | undefined;
    if (convergedAt === undefined) {
      const behind = swarm.behind();
      const short = swarm.witnessesShort();
      const lateAt = await swarm.converged(convergeBoundMs(size));
      unconverged = {
        behind,
        short,
        lateMs: lateAt === undefined ? undefined : lateAt - registration.lastAt,
      };
      if (lateAt === undefined) {
        problems.add(
          `${setup.label}: tables not full ${(2 * convergeBoundMs(size)) / 1000} s after the registrations (${swarm.behind()} client(s) behind their node's version, ${swarm.witnessesShort()} node(s) whose table lacks online clients)`,
        );
      }
    }
    const dropsAfter = udpReceiveBufferErrors();
    const registered = usageNow();
    const redisRssRegistered = await redisRss(redis, warnings);

    // One post at the first node, timed until every member at every node has it.
    const sender = swarm.clients[0] as SimClient;
    const fan = await fanOut(swarm, sender, problems);
    const members = swarm.online.filter((client) => client !== sender);
    const local = members.filter((member) => member.serverPort === sender.serverPort);
    const remote = members.filter((member) => member.serverPort !== sender.serverPort);

    // Durable saves: 50 senders, each to its own offline recipient, spread over the nodes.
    const senders = swarm.clients.slice(0, options.saveSenders);
    const recipients = swarm.clients.slice(size - options.saveSenders);
    const left = await Promise.all(recipients.map((client) => swarm.deregister(client)));
    if (failedAnswers(left, "ack") > 0) {
      problems.add(
        `${setup.label}: ${failedAnswers(left, "ack")} deregistration(s) of save recipients failed`,
      );
    }
    await settle(
      swarm,
      convergeBoundMs(size),
      `${setup.label}: recipients going offline`,
      problems,
    );
    const saves = await durableSaves(
      swarm,
      senders,
      recipients,
      options.savesPerSender,
      options.saveWindow,
    );
    if (saves.failed > 0) {
      problems.add(`${setup.label}: ${saves.failed} save(s) were not acknowledged`);
    }
    const atEnd = usageNow();
    const redisRssEnd = await redisRss(redis, warnings);
    const redisCpuAtEnd = await redisCpu(redis, warnings);
    for (const node of nodes) {
      warnings.push(
        ...serverWarnings(node.server.stdout.lines, node.server.stderr.lines).map(
          (text) => `${setup.label}: ${text}`,
        ),
      );
    }
    const serverCpuStart = overNodes(atStart, (usage) => usage.cpuSeconds);
    const serverCpuEnd = overNodes(atEnd, (usage) => usage.cpuSeconds);
    return {
      redis: redis !== undefined,
      registerMs,
      slowestRegistrationMs: registration.slowestMs,
      medianRegistrationMs: median(registration.answersMs),
      p99RegistrationMs: percentile(registration.answersMs, 0.99),
      convergeMs,
      unconverged,
      kernelDrops:
        dropsBefore === undefined || dropsAfter === undefined
          ? undefined
          : dropsAfter - dropsBefore,
      fanOutMs: fan.reachMs,
      fanOutLocal: slowestArrival(local, fan.ref, fan.startedAt),
      fanOutRemote: slowestArrival(remote, fan.ref, fan.startedAt),
      fanOutAckMs: fan.ackMs,
      wronglyOffline: fan.wronglyOffline,
      savesPerSecond: saves.perSecond,
      savesAcked: saves.acked,
      savesFailed: saves.failed,
      saveAckMedianMs: saves.medianAckMs,
      serverRssRegistered: overNodes(registered, (usage) => usage.rssBytes),
      serverRssEnd: overNodes(atEnd, (usage) => usage.rssBytes),
      serverPeakRss: overNodes(atEnd, (usage) => usage.peakRssBytes),
      serverCpuSeconds:
        serverCpuStart === undefined || serverCpuEnd === undefined
          ? undefined
          : serverCpuEnd - serverCpuStart,
      redisRssRegistered,
      redisRssEnd,
      redisCpuSeconds:
        redisCpuAtStart === undefined || redisCpuAtEnd === undefined
          ? undefined
          : redisCpuAtEnd - redisCpuAtStart,
    };
  } finally {
    opened?.close();
    await group.killAll();
    await redis?.remove();
    process.off("exit", killRedis);
    for (const dataDir of dataDirs) await group.removeDataDir(dataDir);
  }
}

function optional(value: number | undefined, cell: (value: number) => Cell): Cell {
  return value === undefined ? "n/a" : cell(value);
}

function printFigures(
  options: ClusterOptions,
  setups: readonly Setup[],
  results: readonly (Figures | string)[],
  notes: readonly string[],
): void {
  const size = options.clients;
  const row = (what: string, pick: (figures: Figures) => Cell): ColumnsRow => ({
    what,
    cells: results.map((result) => (typeof result === "string" ? result : pick(result))),
  });
  const rows: ColumnsRow[] = [
    row(`registration of ${size} (window ${options.registerWindow})`, (f) =>
      seconds(f.registerMs / 1000),
    ),
    row("…registrations/s", (f) => perSecond((size / Math.max(1, f.registerMs)) * 1000)),
    row("…registration answer: median / 99th percentile / slowest", (f) =>
      [f.medianRegistrationMs, f.p99RegistrationMs, f.slowestRegistrationMs]
        .map((value) => formatCell(ms(value)))
        .join(" / "),
    ),
    row("convergence after the last registration (every table full)", (f) =>
      convergenceCell(f, convergeBoundMs(size)),
    ),
    row("kernel UDP receive-buffer drops, registration + convergence", (f) =>
      optional(f.kernelDrops, count),
    ),
    row(`fan-out: one post reaching all ${size - 1} others`, (f) => optional(f.fanOutMs, ms)),
    row("…the slowest member at the sender's node", (f) => f.fanOutLocal),
    row("…the slowest member at another node", (f) => f.fanOutRemote),
    row("fan-out: sender's ack", (f) => optional(f.fanOutAckMs, ms)),
    row("fan-out: members wrongly shown offline (must be 0)", (f) => count(f.wronglyOffline)),
    row(
      `durable saves/s, ${options.saveSenders} senders × ${options.savesPerSender}, ${options.saveWindow} outstanding each`,
      (f) => perSecond(f.savesPerSecond),
    ),
    row("…saves acknowledged / not", (f) => `${f.savesAcked} / ${f.savesFailed}`),
    row("…ack time, median", (f) => ms(f.saveAckMedianMs)),
    row("server RSS after registration (sum over nodes)", (f) =>
      optional(f.serverRssRegistered, megabytes),
    ),
    row("server RSS at the end / peak (sum over nodes)", (f) =>
      f.serverRssEnd === undefined || f.serverPeakRss === undefined
        ? "n/a"
        : `${formatMb(f.serverRssEnd)} / ${formatMb(f.serverPeakRss)}`,
    ),
    row("Redis RSS after registration / at the end", (f) =>
      f.redis ? `${optionalMb(f.redisRssRegistered)} / ${optionalMb(f.redisRssEnd)}` : NONE,
    ),
    row("server CPU, whole run (sum over nodes)", (f) => optional(f.serverCpuSeconds, seconds)),
    row("Redis CPU, whole run", (f) => (f.redis ? optional(f.redisCpuSeconds, seconds) : NONE)),
  ];
  printColumns(
    `6. One node against three nodes on one Redis: ${size} clients`,
    setups.map((setup) => setup.label),
    rows,
    notes,
  );
}

function convergenceCell(figures: Figures, boundMs: number): Cell {
  const { convergeMs, unconverged } = figures;
  if (convergeMs !== undefined) return seconds(convergeMs / 1000);
  if (!unconverged) return "n/a";
  const late =
    unconverged.lateMs === undefined
      ? "never"
      : `${formatCell(seconds(unconverged.lateMs / 1000))}`;
  const short = unconverged.short > 0 ? `, ${unconverged.short} node(s) short` : "";
  return `${unconverged.behind} behind${short} at ${boundMs / 1000} s; full at ${late}`;
}

function formatMb(value: number): string {
  return `${(value / 1_048_576).toFixed(1)} MB`;
}

function optionalMb(value: number | undefined): string {
  return value === undefined ? "n/a" : formatMb(value);
}

/** Runs the three setups one after another; throws (after printing the table) if any broke. */
export async function benchCluster(
  group: ProcessGroup,
  program: Program,
  options: ClusterOptions,
): Promise<void> {
  const problems = new Problems();
  const size = options.clients;
  const nodesAtMost = Math.max(...SETUPS.map((setup) => setup.nodes));
  const minimum = options.saveSenders * 2 + nodesAtMost;
  if (size < minimum) {
    throw new Error(`the cluster benchmark needs at least ${minimum} clients, got ${size}`);
  }
  const limit = openFileLimit();
  if (limit !== undefined && limit < size + SPARE_FILES) {
    throw new Error(
      `${size} clients need ${size + SPARE_FILES} open files; this process may open ${limit}: run \`ulimit -n ${size + SPARE_FILES}\` (or more) first`,
    );
  }
  const haveRedis = REDIS_SERVER !== "";
  if (!haveRedis) {
    if (process.env.CHATAPP_REQUIRE_REDIS === "1") {
      throw new Error("CHATAPP_REQUIRE_REDIS=1 but redis-server is not installed");
    }
    console.log(`\n6. Cluster: ${REDIS_INSTALL_HINT.replace("tests are", "setups are")}`);
  }
  console.log(`\n6. One node against three nodes on one Redis: ${size} clients (running…)`);
  const results: (Figures | string)[] = [];
  const warnings: string[] = [];
  for (const setup of SETUPS) {
    if (setup.redis && !haveRedis) {
      results.push("no redis-server");
      continue;
    }
    const started = performance.now();
    try {
      results.push(await runSetup(group, program, setup, options, problems, warnings));
    } catch (error) {
      results.push("broken");
      problems.add(`${setup.label}: ${error instanceof Error ? error.message : String(error)}`);
    }
    console.log(`  ${setup.label}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
  printFigures(options, SETUPS, results, [
    `chatapp: ${program.label} -s, ${size} clients simulated in this process (one socket each), client i at node i mod n.`,
    "Each setup: fresh data directories, a fresh redis-server (appendonly yes, appendfsync always) and a fresh swarm; setups run one after another.",
    "Every table full: each client holds its node's latest version, and one witness per node holds every online client online.",
    'Fan-out: posted at the first node; "another node": the slowest member registered at any other node.',
    "Saves: each sender to its own offline recipient (client i at node i mod n), acked after the store committed.",
    "Redis RSS: INFO memory used_memory_rss; Redis CPU: INFO cpu, user + system.",
    "kernel drops are /proc/net/snmp RcvbufErrors: machine-wide, other processes' drops count too.",
    ...warnings.slice(0, 8),
  ]);
  if (problems.list.length > 0) throw new Error(problems.list.join("\n"));
}

const USAGE = "usage: bun test/bench/cluster.ts [--quick] [--clients N] [--source]";

async function main(): Promise<number> {
  return runBenchAlone(
    "cluster",
    USAGE,
    { "--clients": { needs: "a whole number of clients", wholeNumber: true } },
    (group, program, { quick, numbers }) =>
      benchCluster(group, program, clusterOptions(quick, numbers.get("--clients"))),
  );
}

if (import.meta.main) process.exit(await main());
