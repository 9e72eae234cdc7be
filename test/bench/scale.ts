/**
 * Benchmark 4 (issue #8 item 10): a swarm of simulated clients in this process (one UDP
 * socket each, 127.0.0.1 only) against the real server process, phase by phase:
 * registration, convergence of the table, the cost of single table changes, churn,
 * channel fan-out, durable saves beside bun:sqlite baselines, the server's RSS and CPU.
 *
 * Alone: `bun test/bench/scale.ts [--quick] [--clients N] [--source]`.
 * It never fails on a time; it exits 1 only when something broke (a phase that did not
 * finish within its generous bound, registrations that failed), after printing what it has.
 */

import { MEMORY_CHECK_EVERY_MS, SETTLED_AFTER_QUIET_CHECKS } from "../../src/io/memory-ceiling.ts";
import { runBenchAlone } from "./bench-script.ts";
import { commitRate } from "./commit-baseline.ts";
import { watchTheLoop } from "./loop-watch.ts";
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
  bytes,
  type Cell,
  count,
  median,
  megabytes,
  ms,
  NONE,
  perSecond,
  printTable,
  type Row,
  seconds,
} from "./stats.ts";
import {
  type Answer,
  difference,
  type PreparedRequest,
  type SimClient,
  Swarm,
  type SwarmCounters,
} from "./swarm.ts";

export interface ScaleOptions {
  readonly sizes: readonly number[];
  /** Registrations (handshakes) outstanding at once. */
  readonly registerWindow: number;
  /** Registrations started per second at most; undefined: only the window paces them. */
  readonly registerRate: number | undefined;
  /** Deregister/register cycles of one client, for the cost of a single change. */
  readonly cycles: number;
  /** Clients that leave and come back at once. */
  readonly churn: number;
  readonly saveSenders: number;
  readonly savesPerSender: number;
  /** Saves each sender has outstanding at once. */
  readonly saveWindow: number;
  /** Clients that keep sending requests, and how many each, for the server under a steady load. */
  readonly sustainedSenders: number;
  readonly sustainedPerSender: number;
}

export function scaleOptions(
  quick: boolean,
  clients?: number,
  registerRate?: number,
): ScaleOptions {
  return {
    sizes: clients !== undefined ? [clients] : quick ? [200, 1000] : [1000, 10_000],
    registerWindow: 64,
    registerRate,
    cycles: quick ? 5 : 20,
    churn: 10,
    saveSenders: 50,
    savesPerSender: quick ? 100 : 400,
    saveWindow: 8,
    sustainedSenders: 500,
    sustainedPerSender: quick ? 40 : 1_000,
  };
}

/** Sockets this process needs besides the swarm's (stdio, pipes, the baseline database). */
export const SPARE_FILES = 256;
const SAVE_TEXT_LENGTH = 32;
const FAN_OUT_TEXT = "scale fan-out: one post to every member";
/** Generous bounds: past them a phase counts as broken, not slow. */
export function convergeBoundMs(size: number): number {
  return Math.max(30_000, size * 10);
}
const CHANGE_BOUND_MS = 30_000;
const SETTLE_BEFORE_RSS_MS = 3_000;
/** Long enough for the server's collection once its kept answers have expired. */
const SETTLED_AFTER_LOAD_MS = (SETTLED_AFTER_QUIET_CHECKS + 2) * MEMORY_CHECK_EVERY_MS;
/** A name no one registers: a save to it is answered at once with an error, nothing stored. */
const NO_ONE = "no-one-by-this-name";

export class Problems {
  readonly list: string[] = [];
  add(text: string): void {
    this.list.push(text);
    console.log(`  ! ${text}`);
  }
}

export async function settle(
  swarm: Swarm,
  boundMs: number,
  what: string,
  problems: Problems,
): Promise<number | undefined> {
  const at = await swarm.converged(boundMs);
  if (at === undefined) {
    problems.add(
      `${what}: did not converge in ${Math.round(boundMs / 1000)} s (${swarm.behind()} client(s) behind version ${swarm.maxVersion})`,
    );
  }
  return at;
}

export function failedAnswers(answers: readonly (Answer | undefined)[], expected: string): number {
  return answers.filter((answer) => answer?.type !== expected).length;
}

interface ChangeCost {
  readonly changes: number;
  readonly counters: SwarmCounters;
  readonly settleMs: number[];
  readonly failed: number;
}

/** `cycles` × (deregister one client, settle, register it again with epoch and have, settle). */
async function singleChanges(
  swarm: Swarm,
  client: SimClient,
  cycles: number,
  problems: Problems,
): Promise<ChangeCost> {
  const before = swarm.snapshot();
  const settleMs: number[] = [];
  let failed = 0;
  for (let cycle = 0; cycle < cycles; cycle++) {
    for (const step of ["deregister", "register"] as const) {
      const started = performance.now();
      const answer =
        step === "deregister" ? await swarm.deregister(client) : await swarm.register(client);
      if (answer?.type !== (step === "deregister" ? "ack" : "registered")) failed++;
      const at = await settle(swarm, CHANGE_BOUND_MS, `single change (${step})`, problems);
      if (at === undefined)
        return {
          changes: settleMs.length,
          counters: difference(swarm.snapshot(), before),
          settleMs,
          failed: failed + 1,
        };
      settleMs.push(Math.max(0, at - started));
    }
  }
  return {
    changes: settleMs.length,
    counters: difference(swarm.snapshot(), before),
    settleMs,
    failed,
  };
}

export interface FanOut {
  readonly ref: number;
  /** performance.now() when the post was sent. */
  readonly startedAt: number;
  readonly reachMs: number | undefined;
  readonly ackMs: number | undefined;
  readonly reached: number;
  readonly wronglyOffline: number;
  readonly counters: SwarmCounters;
  /** The swarm's longest event-loop stall until every member had the post (loop-watch.ts). */
  readonly swarmStallMs: number;
}

/**
 * One post from `sender`, timed until every one of `members` (all other online
 * clients unless told) has it.
 */
export async function fanOut(
  swarm: Swarm,
  sender: SimClient,
  problems: Problems,
  among?: readonly SimClient[],
): Promise<FanOut> {
  const members = among ?? swarm.online.filter((client) => client !== sender);
  const others = members.length;
  swarm.shownOffline.clear();
  swarm.watchOffline = true;
  const before = swarm.snapshot();
  const stopWatching = watchTheLoop();
  const started = performance.now();
  const { ref, answer } = swarm.post(sender, FAN_OUT_TEXT);
  const bound = Math.max(10_000, others * 2);
  let reachMs: number | undefined;
  while (performance.now() - started < bound) {
    if (members.every((member) => member.posts.has(ref))) {
      reachMs = performance.now() - started;
      break;
    }
    await Bun.sleep(2);
  }
  const swarmStallMs = stopWatching();
  const acked = await answer;
  const counters = difference(swarm.snapshot(), before);
  if (reachMs === undefined) {
    problems.add(
      `fan-out: ${members.filter((member) => member.posts.has(ref)).length} of ${others} members had the post after ${bound / 1000} s`,
    );
  }
  // Members marked offline on the way are table changes: let them arrive before counting.
  await swarm.converged(5_000);
  swarm.watchOffline = false;
  const wrongly = new Set([...swarm.shownOffline, ...swarm.heldOffline()]);
  return {
    ref,
    startedAt: started,
    reachMs,
    ackMs: acked?.type === "ack" ? acked.ms : undefined,
    reached: members.filter((member) => member.posts.has(ref)).length,
    wronglyOffline: wrongly.size,
    counters,
    swarmStallMs,
  };
}

export interface Saves {
  readonly perSecond: number;
  readonly acked: number;
  readonly failed: number;
  readonly medianAckMs: number;
  /** This process's CPU while the saves went out and were answered, their writing not included. */
  readonly swarmCpuSeconds: number;
}

/** Each sender saves `count` messages to its own offline recipient, `window` outstanding. */
export async function durableSaves(
  swarm: Swarm,
  senders: readonly SimClient[],
  recipients: readonly SimClient[],
  perSender: number,
  window: number,
  /** Called as the timed span starts, once the datagrams are written. */
  onStart?: () => void,
): Promise<Saves> {
  let acked = 0;
  let failed = 0;
  const ackTimes: number[] = [];
  // Written beforehand, as each sender's own machine seals what its user typed and
  // writes the datagram (id, MAC): doing that for 20,000 saves in this one process would
  // measure the swarm, not the server. Each `ref` is an id of the sender's that no
  // request takes (PROTOCOL.md, `ref`). Sending, retries and each answer are timed.
  const savesBySender = senders.map((sender, index) => {
    const recipient = recipients[index];
    if (!recipient) return [];
    const firstRef = sender.nextId;
    sender.nextId += perSender;
    return Array.from({ length: perSender }, (_, save) => {
      const text = `save ${save} from ${sender.name}`.padEnd(SAVE_TEXT_LENGTH, ".");
      const ref = firstRef + save;
      const sealed = sender.identity.seal(recipient.name, recipient.identity.ak, ref, text);
      return swarm.prepare(sender, {
        type: "save",
        sid: sender.token,
        to: recipient.name,
        ...sealed,
        ref,
      });
    });
  });
  onStart?.();
  const started = performance.now();
  const cpuAtStart = process.cpuUsage();
  let lastAck = started;
  const sendAll = async (sender: SimClient, saves: readonly PreparedRequest[]) => {
    let next = 0;
    const worker = async () => {
      while (next < saves.length) {
        const save = saves[next++];
        if (!save) break;
        const answer = await swarm.sendPrepared(sender, save);
        if (answer?.type === "ack") {
          acked++;
          ackTimes.push(answer.ms);
          lastAck = performance.now();
        } else failed++;
      }
    };
    await Promise.all(Array.from({ length: window }, worker));
  };
  await Promise.all(senders.map((sender, index) => sendAll(sender, savesBySender[index] ?? [])));
  const cpu = process.cpuUsage(cpuAtStart);
  return {
    perSecond: (acked / Math.max(1, lastAck - started)) * 1000,
    acked,
    failed,
    medianAckMs: median(ackTimes),
    swarmCpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
}

function usageCell(usage: ProcessUsage | undefined, pick: (usage: ProcessUsage) => number): Cell {
  return usage ? megabytes(pick(usage)) : "n/a";
}

function cpuBetween(from: ProcessUsage | undefined, to: ProcessUsage | undefined): Cell {
  return from && to ? seconds(to.cpuSeconds - from.cpuSeconds) : "n/a";
}

function optionalMs(value: number | undefined): Cell {
  return value === undefined ? "did not finish" : ms(value);
}

interface Sustained {
  readonly perSecond: number;
  readonly unanswered: number;
}

/**
 * A steady load: each sender keeps `window` requests out until it has sent `perSender`.
 * Saves to a name no one has are answered at once with an error and store nothing, so
 * what is measured is the server's per-request work, with its answers kept for retries.
 */
async function sustainedRequests(
  swarm: Swarm,
  senders: readonly SimClient[],
  perSender: number,
  window: number,
): Promise<Sustained> {
  let answered = 0;
  let unanswered = 0;
  const started = performance.now();
  await Promise.all(
    senders.map(async (sender) => {
      const sealed = sender.identity.seal(NO_ONE, sender.identity.ak, sender.nextId, "steady");
      let next = 0;
      const worker = async () => {
        while (next < perSender) {
          next++;
          const answer = await swarm.request(sender, {
            type: "save",
            sid: sender.token,
            to: NO_ONE,
            ...sealed,
          });
          if (answer) answered++;
          else unanswered++;
        }
      };
      await Promise.all(Array.from({ length: window }, worker));
    }),
  );
  return { perSecond: (answered / (performance.now() - started)) * 1000, unanswered };
}

async function benchSize(
  group: ProcessGroup,
  program: Program,
  size: number,
  options: ScaleOptions,
): Promise<string[]> {
  const problems = new Problems();
  const limit = openFileLimit();
  if (limit !== undefined && limit < size + SPARE_FILES) {
    problems.add(
      `${size} clients need ${size + SPARE_FILES} open files; this process may open ${limit}: run \`ulimit -n ${size + SPARE_FILES}\` (or more) first`,
    );
    return problems.list;
  }
  const minimum = options.saveSenders * 2 + options.churn + 2;
  if (size < minimum) {
    problems.add(`the scale benchmark needs at least ${minimum} clients, got ${size}`);
    return problems.list;
  }
  console.log(`\n4. Scale: ${size} simulated clients (running…)`);
  const swarmCpuStart = process.cpuUsage();
  const openStarted = performance.now();
  const swarm = await Swarm.open(size);
  const openMs = performance.now() - openStarted;
  const dataDir = await group.makeDataDir();
  try {
    const { server, port } = await startServer(group, program, dataDir);
    swarm.useServers([port]);
    const pid = server.process.pid;
    const atStart = processUsage(pid);

    // Registration of all, then convergence after the last one.
    const swarmCpuRegistering = process.cpuUsage();
    const dropsBefore = udpReceiveBufferErrors();
    const registerStarted = performance.now();
    const registration = await swarm.registerAll(
      swarm.clients,
      options.registerWindow,
      options.registerRate,
    );
    const registerMs = registration.lastAt - registerStarted;
    if (registration.failed.length > 0) {
      problems.add(
        `${registration.failed.length} registration(s) failed, e.g. ${registration.failed.slice(0, 3).join("; ")}`,
      );
    }
    const convergedAt = await settle(swarm, convergeBoundMs(size), "registration", problems);
    const convergeMs =
      convergedAt === undefined ? undefined : Math.max(0, convergedAt - registration.lastAt);
    const dropsAfter = udpReceiveBufferErrors();
    const kernelDrops =
      dropsBefore === undefined || dropsAfter === undefined ? undefined : dropsAfter - dropsBefore;
    // The later phases measure a settled table: wait once more rather than mix them in.
    let lateMs: number | undefined;
    if (convergedAt === undefined) {
      const lateAt = await swarm.converged(convergeBoundMs(size));
      lateMs = lateAt === undefined ? undefined : lateAt - registration.lastAt;
    }
    const afterRegistration = swarm.snapshot();
    const registered = processUsage(pid);
    const swarmCpuRegistered = process.cpuUsage(swarmCpuRegistering);
    const registrationWallMs = performance.now() - registerStarted;

    // Single changes: one client leaves and comes back, the swarm otherwise still.
    const mover = swarm.clients[1] as SimClient;
    const changes = await singleChanges(swarm, mover, options.cycles, problems);
    const receivers = Math.max(1, size - 1) * Math.max(1, changes.changes);
    const afterChanges = processUsage(pid);

    // Churn: several leave at once, then come back at once.
    const churners = swarm.clients.slice(2, 2 + options.churn);
    const churnStarted = performance.now();
    const churnAnswers = await Promise.all(churners.map((client) => swarm.deregister(client)));
    const churnBack = await Promise.all(churners.map((client) => swarm.register(client)));
    const churnAnsweredMs = performance.now() - churnStarted;
    const churnAt = await settle(swarm, CHANGE_BOUND_MS, "churn", problems);
    const churnFailed = failedAnswers(churnAnswers, "ack") + failedAnswers(churnBack, "registered");
    const churnSlowest = Math.max(
      0,
      ...[...churnAnswers, ...churnBack].map((answer) => answer?.ms ?? 0),
    );

    // Channel fan-out from one client to all others.
    const sender = swarm.clients[0] as SimClient;
    const fan = await fanOut(swarm, sender, problems);
    const afterFanOut = processUsage(pid);

    // The same while a large table change goes out: a tenth leave at once, the post
    // right behind them; timed over the members that stay (lanes: PROTOCOL.md).
    const leavers = swarm.clients.slice(
      2 + options.churn,
      2 + options.churn + Math.floor(size / 10),
    );
    const stayers = swarm.online.filter((client) => client !== sender && !leavers.includes(client));
    const leaving = Promise.all(leavers.map((client) => swarm.deregister(client)));
    const busyFan = await fanOut(swarm, sender, problems, stayers);
    await leaving;
    await settle(swarm, CHANGE_BOUND_MS, "leavers", problems);
    await Promise.all(leavers.map((client) => swarm.register(client)));
    await settle(swarm, CHANGE_BOUND_MS, "leavers back", problems);

    // Durable saves: 50 senders, each to its own recipient, offline.
    const senders = swarm.clients.slice(0, options.saveSenders);
    const recipients = swarm.clients.slice(size - options.saveSenders);
    const left = await Promise.all(recipients.map((client) => swarm.deregister(client)));
    if (failedAnswers(left, "ack") > 0) {
      problems.add(`${failedAnswers(left, "ack")} deregistration(s) of save recipients failed`);
    }
    await settle(swarm, CHANGE_BOUND_MS, "recipients going offline", problems);
    let beforeSaves: ProcessUsage | undefined;
    const saves = await durableSaves(
      swarm,
      senders,
      recipients,
      options.savesPerSender,
      options.saveWindow,
      () => {
        beforeSaves = processUsage(pid);
      },
    );
    if (saves.failed > 0) problems.add(`${saves.failed} save(s) were not acknowledged`);
    const atEnd = processUsage(pid);
    // What the server keeps once the work is done (10,000 clients online, the saves stored).
    await Bun.sleep(SETTLE_BEFORE_RSS_MS);
    const settled = processUsage(pid);

    // A steady load of requests, then what the server keeps once it has been quiet a while.
    const steadySenders = swarm.online.slice(0, Math.min(options.sustainedSenders, size / 2));
    const sustained = await sustainedRequests(
      swarm,
      steadySenders,
      options.sustainedPerSender,
      options.saveWindow,
    );
    if (sustained.unanswered > 0) {
      problems.add(`${sustained.unanswered} request(s) of the steady load were not answered`);
    }
    const afterLoad = processUsage(pid);
    await Bun.sleep(SETTLED_AFTER_LOAD_MS);
    const afterQuiet = processUsage(pid);
    await group.stop(server.process);
    const swarmCpu = process.cpuUsage(swarmCpuStart);

    // Baselines, in this process, while nothing else runs.
    const totalSaves = options.saveSenders * options.savesPerSender;
    const oneCommit = commitRate(dataDir, Math.min(2_000, totalSaves), 1, SAVE_TEXT_LENGTH);
    const batched = commitRate(dataDir, totalSaves, options.saveSenders, SAVE_TEXT_LENGTH);

    const registrationCounters = afterRegistration;
    const perChange = (value: number) => count(value / receivers);
    const rows: Row[] = [
      {
        what: `registration of ${size} (window ${options.registerWindow}${options.registerRate === undefined ? "" : `, ≤ ${options.registerRate}/s`}, challenge + cookie)`,
        chatapp: seconds(registerMs / 1000),
        baseline: NONE,
      },
      {
        what: "…slowest registration answer",
        chatapp: ms(registration.slowestMs),
        baseline: NONE,
      },
      {
        what: "convergence after the last registration",
        chatapp: convergeMs === undefined ? "did not converge" : seconds(convergeMs / 1000),
        baseline: NONE,
      },
      {
        what: "kernel UDP receive-buffer drops, registration + convergence",
        chatapp: kernelDrops === undefined ? "n/a" : count(kernelDrops),
        baseline: NONE,
      },
      {
        what: "table datagrams per client while registering (snapshot + delta)",
        chatapp: count(
          (registrationCounters.snapshotParts + registrationCounters.deltaParts) / size,
        ),
        baseline: NONE,
      },
      {
        what: "table bytes per client while registering",
        chatapp: bytes(
          (registrationCounters.snapshotBytes + registrationCounters.deltaBytes) / size,
        ),
        baseline: NONE,
      },
      {
        what: `table datagrams per client per change (${changes.changes} single changes)`,
        chatapp: perChange(changes.counters.snapshotParts + changes.counters.deltaParts),
        baseline: NONE,
      },
      {
        what: "table bytes per client per change",
        chatapp: bytes((changes.counters.snapshotBytes + changes.counters.deltaBytes) / receivers),
        baseline: NONE,
      },
      {
        what: "all datagrams per client per change (to + from server)",
        chatapp: perChange(
          changes.counters.fromServer + changes.counters.acksSent + changes.counters.requestsSent,
        ),
        baseline: NONE,
      },
      {
        what: "snapshot parts during single changes",
        chatapp: count(changes.counters.snapshotParts),
        baseline: NONE,
      },
      {
        what: "single change: answer → all converged, median",
        chatapp: ms(median(changes.settleMs)),
        baseline: NONE,
      },
      {
        what: "single change: …max",
        chatapp: ms(changes.settleMs.length > 0 ? Math.max(...changes.settleMs) : Number.NaN),
        baseline: NONE,
      },
      {
        what: `churn: ${options.churn} dereg then reg, start → all converged`,
        chatapp:
          churnAt === undefined ? "did not converge" : seconds((churnAt - churnStarted) / 1000),
        baseline: NONE,
      },
      {
        what: "churn: …all answered",
        chatapp: seconds(churnAnsweredMs / 1000),
        baseline: NONE,
      },
      { what: "churn: slowest answer", chatapp: ms(churnSlowest), baseline: NONE },
      {
        what: `fan-out: one post reaching all ${size - 1} others`,
        chatapp: optionalMs(fan.reachMs),
        baseline: NONE,
      },
      { what: "fan-out: sender's ack", chatapp: optionalMs(fan.ackMs), baseline: NONE },
      {
        what: `fan-out while ${Math.floor(size / 10)} leave at once: reaching the ${busyFan.reached} others`,
        chatapp: optionalMs(busyFan.reachMs),
        baseline: optionalMs(fan.reachMs),
      },
      {
        what: "fan-out: the swarm's longest event-loop stall, while they leave / alone",
        chatapp: ms(busyFan.swarmStallMs),
        baseline: ms(fan.swarmStallMs),
      },
      {
        what: "fan-out: members wrongly shown offline (must be 0)",
        chatapp: count(fan.wronglyOffline),
        baseline: NONE,
      },
      {
        what: "fan-out: probes / table parts meanwhile",
        chatapp: `${fan.counters.probes} / ${fan.counters.snapshotParts + fan.counters.deltaParts}`,
        baseline: NONE,
      },
      {
        what: `durable saves/s, ${options.saveSenders} senders × ${options.savesPerSender} (vs one commit per save)`,
        chatapp: perSecond(saves.perSecond),
        baseline: perSecond(oneCommit),
      },
      {
        what: `durable saves/s (vs ${options.saveSenders} rows per commit)`,
        chatapp: perSecond(saves.perSecond),
        baseline: perSecond(batched),
      },
      { what: "save: ack time, median", chatapp: ms(saves.medianAckMs), baseline: NONE },
      {
        what: "saves: server CPU / swarm CPU (datagrams written beforehand)",
        chatapp: `${beforeSaves && atEnd ? (atEnd.cpuSeconds - beforeSaves.cpuSeconds).toFixed(2) : "n/a"} s / ${saves.swarmCpuSeconds.toFixed(2)} s`,
        baseline: NONE,
      },
      {
        what: `steady load: ${steadySenders.length} senders × ${options.sustainedPerSender} requests, answered/s`,
        chatapp: perSecond(sustained.perSecond),
        baseline: NONE,
      },
      {
        what: "steady load: requests not answered (must be 0)",
        chatapp: count(sustained.unanswered),
        baseline: NONE,
      },
      {
        what: `server RSS right after the steady load / quiet ${SETTLED_AFTER_LOAD_MS / 1000} s`,
        chatapp: `${formatMb(afterLoad)} / ${formatMb(afterQuiet)}`,
        baseline: NONE,
      },
      {
        what: "server RSS after registration",
        chatapp: usageCell(registered, (usage) => usage.rssBytes),
        baseline: NONE,
      },
      {
        what: "server RSS after the single changes / after fan-out",
        chatapp: `${formatMb(afterChanges)} / ${formatMb(afterFanOut)}`,
        baseline: NONE,
      },
      {
        what: `server RSS ${SETTLE_BEFORE_RSS_MS / 1000} s after the saves`,
        chatapp: usageCell(settled, (usage) => usage.rssBytes),
        baseline: NONE,
      },
      {
        what: "server peak RSS (VmHWM)",
        chatapp: usageCell(atEnd, (usage) => usage.peakRssBytes),
        baseline: NONE,
      },
      {
        what: "server CPU, registration + convergence",
        chatapp: cpuBetween(atStart, registered),
        baseline: NONE,
      },
      {
        what: `swarm CPU, same phase (${(registrationWallMs / 1000).toFixed(1)} s wall)`,
        chatapp: seconds((swarmCpuRegistered.user + swarmCpuRegistered.system) / 1e6),
        baseline: NONE,
      },
      { what: "server CPU, whole run", chatapp: cpuBetween(atStart, atEnd), baseline: NONE },
      {
        what: "swarm CPU (this process), whole run",
        chatapp: seconds((swarmCpu.user + swarmCpu.system) / 1e6),
        baseline: NONE,
      },
    ];
    const counters = swarm.counters;
    const errors = [...swarm.errors].map(([code, times]) => `${code} ×${times}`);
    const notes = [
      `chatapp: ${program.label} -s, ${size} clients simulated in this process (one socket each, opened in ${(openMs / 1000).toFixed(1)} s).`,
      "Per client per change: divided by (clients − 1) × changes; a change is one dereg or one reg of one client.",
      "Baselines: bun:sqlite in this process, WAL, synchronous=FULL, rows like stored messages.",
      `Steady load: saves to a name no one has (an error each, nothing stored), ${options.saveWindow} outstanding per sender; the server keeps each answer for retries.`,
      "The swarm's longest stall: the longest its event loop went without turning (a 1 ms timer's gap); a member's copy is read no sooner, so reach times include it.",
      "Issue #8 targets at 10,000: convergence ≤ 2 s, ≤ 1 datagram and ≤ 200 B per client per change, fan-out ≤ 1 s with 0 wrongly offline, RSS ≤ 150 MB, ≥ 20,000 saves/s.",
      `swarm: ${counters.requestsSent} requests (${counters.challenges} challenges), ${counters.acksSent} acks, ${counters.fromServer} datagrams from the server, ${counters.pushesApplied} pushes applied, ${counters.lateAnswers} repeated or late answers, ${counters.sendFailures} failed sends, ${counters.strays} strays.`,
      ...(convergedAt === undefined
        ? [
            lateMs === undefined
              ? "the table never converged: the later phases ran on an unsettled table"
              : `the table converged late, ${(lateMs / 1000).toFixed(1)} s after the last registration; the later phases began then`,
          ]
        : []),
      "kernel drops are /proc/net/snmp RcvbufErrors: machine-wide, other processes' drops count too.",
      ...(errors.length > 0 ? [`errors answered: ${errors.join(", ")}`] : []),
      ...(changes.failed > 0 ? [`single changes not answered as expected: ${changes.failed}`] : []),
      ...(churnFailed > 0 ? [`churn requests not answered as expected: ${churnFailed}`] : []),
      ...serverWarnings(server.stdout.lines, server.stderr.lines),
    ];
    printTable(`4. Scale: ${size} clients`, rows, notes);
    return problems.list;
  } finally {
    swarm.close();
    await group.removeDataDir(dataDir);
  }
}

function formatMb(usage: ProcessUsage | undefined): string {
  return usage ? `${(usage.rssBytes / 1_048_576).toFixed(1)} MB` : "n/a";
}

export function serverWarnings(
  stdout: readonly { text: string }[],
  stderr: readonly { text: string }[],
): string[] {
  const lines = [...stdout, ...stderr]
    .map((line) => line.text)
    .filter((text) => /\b(warn|error|WARN|ERROR)\b|marked offline|did not acknowledge/.test(text));
  return lines.slice(0, 6).map((text) => `server: ${text}`);
}

/** Runs every size; throws (after printing every table) if any phase broke. */
export async function benchScale(
  group: ProcessGroup,
  program: Program,
  options: ScaleOptions,
): Promise<void> {
  const problems: string[] = [];
  for (const size of options.sizes) {
    try {
      problems.push(...(await benchSize(group, program, size, options)));
    } finally {
      await group.killAll();
    }
  }
  if (problems.length > 0) throw new Error(problems.join("\n"));
}

const USAGE =
  "usage: bun test/bench/scale.ts [--quick] [--clients N] [--register-rate N] [--source]";

async function main(): Promise<number> {
  return runBenchAlone(
    "scale",
    USAGE,
    {
      "--clients": { needs: "a whole number of clients", wholeNumber: true },
      "--register-rate": { needs: "registrations per second", wholeNumber: false },
    },
    (group, program, { quick, numbers }) =>
      benchScale(
        group,
        program,
        scaleOptions(quick, numbers.get("--clients"), numbers.get("--register-rate")),
      ),
  );
}

if (import.meta.main) process.exit(await main());
