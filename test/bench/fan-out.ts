/**
 * Benchmark 2: channel fan-out from a real chatapp server to simulated members, beside
 * a raw UDP fan-out (one socket, same datagrams, same window, acks back) in a child.
 */
import { join } from "node:path";
import { SERVER_LANES } from "../../src/core/timing.ts";
import { difference, type Member, postText, Swarm, type SwarmCounters } from "./members.ts";
import {
  type Child,
  LINE_TIMEOUT_MS,
  type ProcessGroup,
  type Program,
  startServer,
  udpReceiveBufferErrors,
} from "./processes.ts";
import {
  type Cell,
  count,
  median,
  ms,
  NONE,
  perSecond,
  printTable,
  type Row,
  seconds,
  sum,
} from "./stats.ts";

const UDP_CHILD = join(import.meta.dir, "udp-child.ts");
const POST_LENGTH = 64;
const POST_TIMEOUT_MS = 10_000;
const PAUSE_BETWEEN_POSTS_MS = 100;
/** Table pushes have settled when every member holds the full table and none came for this long. */
const SETTLE_QUIET_MS = 300;
/** The first post of the baseline; chatapp's posts count from 1. */
const BASELINE_FIRST_POST = 10_000;

export interface FanOutOptions {
  readonly sizes: readonly number[];
  readonly posts: number;
  /** Registrations outstanding at once. */
  readonly registerWindow: number;
  readonly settleTimeoutMs: number;
}

interface PostResult {
  /** ms from sending the request until the last member had the post; undefined if some never did. */
  readonly reachMs: number | undefined;
  /** ms until the sender had its ack. */
  readonly ackMs: number | undefined;
  /** Counters over [send, last member reached] (or the timeout). */
  readonly during: SwarmCounters;
  readonly reach: number;
}

function kernelDelta(before: number | undefined): Cell {
  const after = udpReceiveBufferErrors();
  return before === undefined || after === undefined ? "n/a" : count(after - before);
}

async function sendPosts(
  swarm: Swarm,
  sender: Member,
  firstPost: number,
  posts: number,
  build: (id: number, text: string) => Record<string, unknown>,
): Promise<PostResult[]> {
  const others = swarm.members.length - 1;
  const results: PostResult[] = [];
  for (let post = firstPost; post < firstPost + posts; post++) {
    const before = swarm.snapshot();
    const started = performance.now();
    const reached = new Promise<{ at: number | undefined; counters: SwarmCounters }>((resolve) => {
      const timer = setTimeout(() => {
        swarm.onPost(undefined);
        resolve({ at: undefined, counters: swarm.snapshot() });
      }, POST_TIMEOUT_MS);
      swarm.onPost((reachedPost, reach) => {
        if (reachedPost !== post || reach < others) return;
        clearTimeout(timer);
        swarm.onPost(undefined);
        resolve({ at: performance.now(), counters: swarm.snapshot() });
      });
    });
    const acked = swarm
      .request(sender, (id) => build(id, postText(post, POST_LENGTH)))
      .then((answer) => (answer?.type === "ack" ? performance.now() - started : undefined));
    const [{ at, counters }, ackMs] = await Promise.all([reached, acked]);
    results.push({
      reachMs: at === undefined ? undefined : at - started,
      ackMs,
      during: difference(counters, before),
      reach: swarm.postReach.get(post) ?? 0,
    });
    await Bun.sleep(PAUSE_BETWEEN_POSTS_MS);
  }
  return results;
}

interface Summary {
  readonly medianMs: number;
  readonly maxMs: number;
  readonly datagramsPerSecond: number;
  readonly datagramsPerPost: number;
  readonly incomplete: number;
}

function summarise(results: readonly PostResult[]): Summary {
  const complete = results.filter((result) => result.reachMs !== undefined);
  const times = complete.map((result) => result.reachMs ?? 0);
  const datagrams = complete.map((result) => result.during.fromServer + result.during.acksSent);
  return {
    medianMs: median(times),
    maxMs: times.length > 0 ? Math.max(...times) : Number.NaN,
    datagramsPerSecond: (sum(datagrams) / sum(times)) * 1000,
    datagramsPerPost: sum(datagrams) / Math.max(1, complete.length),
    incomplete: results.length - complete.length,
  };
}

/** What the server said about the run, from its --verbose log. */
function serverLogFigures(server: Child): { markedOffline: number; lines: string[] } {
  const lines = [...server.stdout.lines, ...server.stderr.lines].map((line) => line.text);
  const interesting = lines.filter(
    (line) =>
      line.includes("marked offline") ||
      line.includes("dropped datagrams") ||
      line.includes("did not acknowledge") ||
      /\b(warn|error)\b/i.test(line) ||
      line.includes("channel message from"),
  );
  return {
    markedOffline: lines.filter((line) => line.includes("marked offline")).length,
    lines: interesting,
  };
}

async function waitForSettledTables(swarm: Swarm, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const now = performance.now();
    if (swarm.tablesComplete() && now - swarm.lastTableAt >= SETTLE_QUIET_MS) return true;
    await Bun.sleep(20);
  }
  return false;
}

async function rawBaseline(
  group: ProcessGroup,
  swarm: Swarm,
  sender: Member,
  posts: number,
): Promise<{ results: PostResult[]; kernelDrops: Cell }> {
  const child = group.spawn("raw fan-out", [process.execPath, UDP_CHILD, "fan-out"]);
  try {
    const portLine = await child.stdout.next((line) => line.startsWith("port "), LINE_TIMEOUT_MS);
    const ports = swarm.members.map((member) => member.port);
    child.write(`${JSON.stringify({ ports, window: SERVER_LANES.channel })}\n`);
    await child.stdout.next((line) => line === "ready", LINE_TIMEOUT_MS);
    swarm.serverPort = Number(portLine.text.slice(5));
    const kernelBefore = udpReceiveBufferErrors();
    const results = await sendPosts(swarm, sender, BASELINE_FIRST_POST, posts, (id, text) => ({
      type: "go",
      id,
      text,
    }));
    return { results, kernelDrops: kernelDelta(kernelBefore) };
  } finally {
    await group.stop(child.process);
  }
}

async function benchSize(
  group: ProcessGroup,
  program: Program,
  size: number,
  options: FanOutOptions,
): Promise<void> {
  const dataDir = await group.makeDataDir();
  const swarm = await Swarm.open(size);
  try {
    const { server, port } = await startServer(group, program, dataDir, ["--verbose"]);
    swarm.serverPort = port;

    const kernelAtStart = udpReceiveBufferErrors();
    const registerStarted = performance.now();
    const { failed } = await swarm.register(options.registerWindow);
    const registeredMs = performance.now() - registerStarted;
    const afterRegistration = swarm.snapshot();
    const settled = await waitForSettledTables(swarm, options.settleTimeoutMs);
    const settledMs = performance.now() - registerStarted;
    const registration = swarm.snapshot();
    const kernelRegistration = kernelDelta(kernelAtStart);

    const sender = swarm.members[0];
    if (!sender?.token) throw new Error(`the sender did not register: ${failed.join("; ")}`);
    const sid = sender.token;
    const kernelBefore = udpReceiveBufferErrors();
    const chatapp = await sendPosts(swarm, sender, 1, options.posts, (id, text) => ({
      type: "channel",
      id,
      sid,
      text,
    }));
    const kernelFanOut = kernelDelta(kernelBefore);
    const fanOutCounters = difference(swarm.snapshot(), registration);

    // Members that never got a post, or were shown offline in any table.
    const others = swarm.members.slice(1);
    const missing = others.filter((member) => {
      for (let post = 1; post <= options.posts; post++) if (!member.posts.has(post)) return true;
      return false;
    });
    const shownOffline = swarm.members.filter((member) => member.sawOffline);
    const wronglyOffline = new Set([...missing, ...shownOffline]).size;

    await group.stop(server.process);
    const log = serverLogFigures(server);

    const baseline = await rawBaseline(group, swarm, sender, options.posts);
    const baselineMissing = others.filter((member) => {
      for (let post = BASELINE_FIRST_POST; post < BASELINE_FIRST_POST + options.posts; post++) {
        if (!member.posts.has(post)) return true;
      }
      return false;
    }).length;

    const ours = summarise(chatapp);
    const raw = summarise(baseline.results);
    const ackTimes = chatapp.flatMap((result) =>
      result.ackMs === undefined ? [] : [result.ackMs],
    );
    const rows: Row[] = [
      {
        what: "fan-out time, median (send → all reached)",
        chatapp: ms(ours.medianMs),
        baseline: ms(raw.medianMs),
      },
      { what: "fan-out time, max", chatapp: ms(ours.maxMs), baseline: ms(raw.maxMs) },
      {
        what: "datagrams/s at the server during fan-out",
        chatapp: perSecond(ours.datagramsPerSecond),
        baseline: perSecond(raw.datagramsPerSecond),
      },
      {
        what: "datagrams per post (received + acks)",
        chatapp: count(ours.datagramsPerPost),
        baseline: count(raw.datagramsPerPost),
      },
      {
        what: "sender's ack from the server, median",
        chatapp: ms(median(ackTimes)),
        baseline: NONE,
      },
      {
        what: `posts not reaching all ${size - 1} within ${POST_TIMEOUT_MS / 1000} s`,
        chatapp: count(ours.incomplete),
        baseline: count(raw.incomplete),
      },
      {
        what: "members missing a post",
        chatapp: count(missing.length),
        baseline: count(baselineMissing),
      },
      {
        what: "members shown offline in a table",
        chatapp: count(shownOffline.length),
        baseline: NONE,
      },
      {
        what: "members wrongly marked offline (must be 0)",
        chatapp: count(wronglyOffline),
        baseline: NONE,
      },
      { what: "probes during fan-out", chatapp: count(fanOutCounters.probes), baseline: NONE },
      {
        what: "table parts during fan-out",
        chatapp: count(fanOutCounters.tableParts),
        baseline: NONE,
      },
      {
        what: "kernel UDP receive-buffer drops, fan-out",
        chatapp: kernelFanOut,
        baseline: baseline.kernelDrops,
      },
      {
        what: `registration of ${size} (window ${options.registerWindow})`,
        chatapp: seconds(registeredMs / 1000),
        baseline: NONE,
      },
      {
        what: settled ? "…until table pushes settled" : "…table pushes NOT settled by",
        chatapp: seconds(settledMs / 1000),
        baseline: NONE,
      },
      {
        what: "table parts received while registering",
        chatapp: count(registration.tableParts),
        baseline: NONE,
      },
      {
        what: "…of which after the last registration",
        chatapp: count(registration.tableParts - afterRegistration.tableParts),
        baseline: NONE,
      },
      {
        what: "table pushes begun (per member)",
        chatapp: count(registration.tablePushes / size),
        baseline: NONE,
      },
      {
        what: "challenges answered while registering",
        chatapp: count(registration.challenges),
        baseline: NONE,
      },
      { what: "probes while registering", chatapp: count(registration.probes), baseline: NONE },
      {
        what: "kernel UDP receive-buffer drops, registering",
        chatapp: kernelRegistration,
        baseline: NONE,
      },
      { what: "registrations failed", chatapp: count(failed.length), baseline: NONE },
      {
        what: 'server log: "marked offline" lines',
        chatapp: count(log.markedOffline),
        baseline: NONE,
      },
    ];
    const notes = [
      `chatapp: ${program.label} -s --verbose, ${size} members simulated in this process (one socket each),`,
      `${options.posts} channel posts of ${POST_LENGTH} chars from m0001, one at a time, ${PAUSE_BETWEEN_POSTS_MS} ms apart.`,
      `baseline: a child process with one socket sends the same ${size - 1} channel-message datagrams per post,`,
      `at most ${SERVER_LANES.channel} unacknowledged (chatapp's window), to the same member sockets, which ack.`,
      "datagrams/s = (datagrams members received + acks they sent) ÷ fan-out time, summed over posts.",
      "kernel drops are /proc/net/snmp RcvbufErrors: machine-wide, other processes' drops count too.",
      "Both columns share the member simulator (this process, one thread): on few cores it can bound both.",
      ...failed.slice(0, 3).map((line) => `registration failed: ${line}`),
      ...(swarm.counters.sendFailures > 0
        ? [`members' sends that failed: ${swarm.counters.sendFailures}`]
        : []),
      ...log.lines
        .filter((line) => !line.includes("channel message from"))
        .slice(0, 8)
        .map((line) => `server: ${line}`),
      ...log.lines
        .filter((line) => line.includes("channel message from"))
        .slice(0, 1)
        .map((line) => `server: ${line}`),
    ];
    printTable(`2. Channel fan-out to ${size} members`, rows, notes);
  } finally {
    swarm.close();
    await group.removeDataDir(dataDir);
  }
}

export async function benchFanOut(
  group: ProcessGroup,
  program: Program,
  options: FanOutOptions,
): Promise<void> {
  for (const size of options.sizes) await benchSize(group, program, size, options);
}
