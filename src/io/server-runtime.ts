import { heapSize } from "bun:jsc";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import type { ServerOptions } from "../cli/options.ts";
import type { DropCounts, ServerEffect, ServerInput } from "../core/server-effects.ts";
import { createServerState, type ServerState } from "../core/server-state.ts";
import { nextForgetAt, nextServerWakeAt, stepServer } from "../core/step-server.ts";
import { DEFAULT_STORE_QUOTA } from "../core/timing.ts";
import { nodeCryptoPort } from "../crypto/node-crypto-port.ts";
import { loadOrCreateIdentity } from "../identity/identity-file.ts";
import { encodeForSending } from "../protocol/codec.ts";
import { EPOCH_LENGTH, TOKEN_LENGTH } from "../protocol/messages.ts";
import { type ServerStore, whenSettled } from "../store/async-store.ts";
import { RedisStore } from "../store/redis-store.ts";
import { openSqliteStore } from "../store/sqlite-store.ts";
import { ActivitySummary } from "./activity-summary.ts";
import { ClusterLink, nodesWithOnlineClients } from "./cluster-link.ts";
import { DropLog, dropsBetween } from "./drop-log.ts";
import { describeFaultSpec } from "./fault-injection.ts";
import { type CommitOutcome, GroupCommit } from "./group-commit.ts";
import { type Health, type HttpEndpoint, openHttpEndpoint } from "./http-endpoint.ts";
import {
  MEMORY_CHECK_EVERY_MS,
  memoryCeiling,
  QUIET_DATAGRAMS_PER_CHECK,
} from "./memory-ceiling.ts";
import { cookieMaker, randomHex, randomRequestId } from "./random.ts";
import { describeReceiveBuffer, SERVER_RECEIVE_BUFFER_BYTES } from "./receive-buffer.ts";
import { createServerLog, type ServerLog } from "./server-log.ts";
import { ServerMetrics } from "./server-metrics.ts";
import { type OutgoingDatagram, openUdpEndpoint, type UdpEndpoint } from "./udp-endpoint.ts";
import { WakeTimer } from "./wake-timer.ts";

/** Runs the server until SIGINT, SIGTERM or SIGHUP; resolves to the exit code. */
export async function runServer(options: ServerOptions): Promise<number> {
  const log = createServerLog({ level: options.logLevel });
  const dropLog = options.logLevel === "verbose" ? createDropLog(log) : undefined;
  const dataDir = resolve(options.dataDir);
  const nodeName = options.nodeName ?? `${hostname()}:${options.port}`;
  const redis = options.redis ? await RedisStore.connect(options.redis, nodeName) : undefined;
  const store: ServerStore = redis ?? openSqliteStore(dataDir);
  let keys: ReturnType<typeof loadOrCreateIdentity>["identity"];
  let snapshot: Awaited<ReturnType<ServerStore["loadSummary"]>>;
  let cluster: { readonly slot: number; readonly logStart: string } | undefined;
  try {
    keys = loadOrCreateIdentity(join(dataDir, SERVER_IDENTITY_FILE)).identity;
    // The log's position is taken before the state is read: what is committed in between
    // is applied twice, which changes nothing, rather than missed.
    if (redis) cluster = { slot: await redis.nextNodeSlot(), logStart: await redis.lastChangeId() };
    snapshot = await store.loadSummary();
  } catch (error) {
    await store.close();
    throw error;
  }
  const state = createServerState(snapshot, {
    crypto: nodeCryptoPort,
    keys,
    newToken: () => randomHex(TOKEN_LENGTH / 2),
    firstRequestId: randomRequestId(),
    cookieFor: cookieMaker(randomHex(32)),
    epoch: randomHex(EPOCH_LENGTH / 2),
    retentionMs: options.retentionDays * DAY_MS,
    storeQuota: { messages: options.storeQuota, textBytes: DEFAULT_STORE_QUOTA.textBytes },
    ...(cluster ? { cluster: { node: nodeName, slot: cluster.slot } } : {}),
  });
  const link =
    redis && cluster
      ? new ClusterLink(
          {
            store: redis,
            feed: (input) => feed(input),
            nodesInUse: () => nodesWithOnlineClients(state),
            log,
          },
          cluster.logStart,
        )
      : undefined;

  let endpoint: UdpEndpoint | undefined;
  let http: HttpEndpoint | undefined;
  const timer = new WakeTimer(() => feed({ kind: "tick" }));
  const metrics = new ServerMetrics(nodeName);

  /** The last Redis round trip measured (seconds); undefined before the first or while unreachable. */
  let redisRoundTrip: number | undefined;
  /** Why the store refused the last write, while it does; undefined when it accepts them. */
  let storeProblem: string | undefined;
  const commits = new GroupCommit(
    store,
    (outcome: CommitOutcome) => {
      if (outcome.ok) {
        if (storeProblem !== undefined) log.info("the message store accepts writes again");
        storeProblem = undefined;
        feed({ kind: "committed", commits: outcome.commits });
        return;
      }
      // Said once per failing spell, not once per datagram; each refused request is answered.
      // A lost Redis has said so already.
      if (storeProblem === undefined && redis?.unreachable === undefined) {
        log.error(`could not write to the message store: ${String(outcome.error)}`);
      }
      storeProblem = errorText(outcome.error);
      feed({ kind: "commit-failed", commits: outcome.commits });
    },
    (transaction) => metrics.commitMeasured(transaction),
  );

  /**
   * Stored texts for a delivery batch, read once the commits added before it are
   * reported: the read sees what they stored, and the batch cannot overtake an answer
   * that waited for a commit, such as `registered`.
   */
  function readStored(read: number, ids: readonly number[]): void {
    commits.whenCommitted(() =>
      whenSettled(
        () => store.readMessages(ids),
        (messages) => feed({ kind: "read-done", read, messages, failed: false }),
        (error) => {
          log.error(`could not read stored messages: ${String(error)}`);
          feed({ kind: "read-done", read, messages: [], failed: true });
        },
      ),
    );
  }

  function carryOut(effects: readonly ServerEffect[]): void {
    // Answers and small requests go out together at the end (one system call); a table
    // part is a view of a shared buffer, sent at once, after what was queued before it.
    const queued: OutgoingDatagram[] = [];
    const flush = () => {
      if (queued.length > 0) endpoint?.sendAll(queued.splice(0));
    };
    for (const effect of effects) {
      switch (effect.kind) {
        case "persist":
          commits.add(effect.commit, effect.changes, effect.notes);
          break;
        case "read":
          readStored(effect.read, effect.ids);
          break;
        case "claim":
          if (link) void link.claim(effect.claim, effect.name, effect.force);
          // Only a cluster's node claims names; a single server holds them all.
          else setImmediate(() => feed({ kind: "claim-done", claim: effect.claim, granted: true }));
          break;
        case "send":
          if (effect.message.type === "table") {
            flush();
            endpoint?.send(effect.to, encodeForSending(effect.message));
          } else {
            queued.push({ to: effect.to, bytes: encodeForSending(effect.message) });
          }
          break;
        case "log":
          if (effect.level === "warn") log.warn(effect.text);
          else if (effect.level === "debug") log.debug(effect.text);
          else log.info(effect.text);
          break;
        default:
          effect satisfies never;
      }
    }
    flush();
  }

  function feed(input: Parameters<typeof stepServer>[1]): void {
    const now = Date.now();
    const dropsBefore = dropLog ? { ...state.drops } : undefined;
    carryOut(stepServer(state, input, now));
    metrics.takeFanOutTimes(state.fanOutTimes);
    if (dropsBefore) logDrops(input, dropsBefore, now);
    const wake = nextServerWakeAt(state);
    const forget = nextForgetAt(state);
    timer.arm(wake === undefined || (forget !== undefined && forget < wake) ? forget : wake, now);
  }

  /** `--verbose`: the core only counts what it drops; the counts that went up say why. */
  function logDrops(input: ServerInput, before: DropCounts, now: number): void {
    if (input.kind !== "datagram") return;
    for (const reason of dropsBetween(before, state.drops)) {
      dropLog?.record(input.from, input.bytes.byteLength, reason, now);
    }
  }

  try {
    endpoint = await openUdpEndpoint({
      port: options.port,
      ...(options.bind === undefined ? {} : { hostname: options.bind }),
      onDatagram: (from, bytes) => feed({ kind: "datagram", from, bytes }),
      onProblem: (text) => log.debug(text),
      onOversized: (from, bytes) => dropLog?.record(from, bytes, "oversized", Date.now()),
      receiveBufferBytes: SERVER_RECEIVE_BUFFER_BYTES,
      ...(options.simulate ? { simulate: options.simulate } : {}),
    });
    const udp = endpoint;
    if (options.http) {
      http = openHttpEndpoint({
        port: options.http.port,
        hostname: options.http.bind,
        health: (): Health => {
          if (redis?.unreachable !== undefined) return { ok: false, reason: redis.unreachable };
          return storeProblem === undefined
            ? { ok: true }
            : { ok: false, reason: `the message store refused the last write: ${storeProblem}` };
        },
        metrics: () =>
          metrics.render({
            state,
            datagrams: udp.counts,
            storeAcceptsWrites: storeProblem === undefined,
            ...(redis
              ? {
                  redis: {
                    reachable: redis.unreachable === undefined,
                    roundTripSeconds: redisRoundTrip,
                  },
                }
              : {}),
          }),
        onProblem: (text) => log.warn(text),
      });
    }
  } catch (error) {
    endpoint?.close();
    await store.close();
    throw error;
  }

  log.info(`chatapp server listening on UDP port ${endpoint.port}${describeBind(options.bind)}`);
  if (endpoint.receiveBufferBytes !== undefined) {
    log.debug(describeReceiveBuffer(endpoint.receiveBufferBytes, SERVER_RECEIVE_BUFFER_BYTES));
  }
  if (http) {
    log.info(
      `health and metrics at ${http.url}/healthz and ${http.url}/metrics (node ${metrics.node})`,
    );
  }
  if (options.simulate) log.warn(describeFaultSpec(options.simulate));
  if (redis) {
    log.info(`message store: Redis at ${redis.where}, node ${nodeName} (${describeState(state)})`);
    for (const warning of await redis.durabilityWarnings()) log.warn(warning);
    redis.onReachability((problem) => {
      if (problem === undefined) {
        log.info(`Redis at ${redis.where} is reachable again`);
        // The writes it refused were refused for the outage: what the core could not take
        // back goes with the next transaction, and /healthz need not wait for one.
        storeProblem = undefined;
      } else {
        log.error(
          `${problem}: saves, channel posts and registrations are refused until it is back; reconnecting`,
        );
      }
    });
  } else log.info(`data directory: ${dataDir} (${describeState(state)})`);
  // Deliveries a crash cut short, and names due to be forgotten, are taken up now.
  feed({ kind: "tick" });
  link?.start();
  const activity = new ActivitySummary(state.activity);
  const summarise = () => {
    const line = activity.next(SUMMARY_EVERY_MS / 1000);
    if (line) log.info(line);
  };
  const summaries = setInterval(summarise, SUMMARY_EVERY_MS);
  const memory = memoryCeiling(
    () => process.memoryUsage.rss(),
    (quiet) => {
      const before = process.memoryUsage.rss();
      if (quiet) {
        feed({ kind: "quiet" });
        Bun.shrink();
      } else Bun.gc(true);
      const megabytes = (bytes: number) => Math.round(bytes / 2 ** 20);
      log.debug(
        `memory: collected${quiet ? " (quiet)" : ""}, RSS ${megabytes(before)} → ${megabytes(process.memoryUsage.rss())} MB, ${megabytes(heapSize())} MB of it the JavaScript heap`,
      );
    },
  );
  let receivedAtCheck = 0;
  const memoryChecks = setInterval(() => {
    const received = endpoint?.counts.received ?? 0;
    memory.check(received - receivedAtCheck < QUIET_DATAGRAMS_PER_CHECK);
    receivedAtCheck = received;
  }, MEMORY_CHECK_EVERY_MS);
  summaries.unref();
  memoryChecks.unref();

  const measureRedis = () => {
    redis?.roundTripSeconds().then(
      (seconds) => {
        redisRoundTrip = seconds;
      },
      () => {
        redisRoundTrip = undefined;
      },
    );
  };
  const redisPings = redis ? setInterval(measureRedis, REDIS_PING_EVERY_MS) : undefined;
  redisPings?.unref();
  measureRedis();

  return await new Promise<number>((done) => {
    const stop = async (signal: NodeJS.Signals) => {
      for (const name of stopSignals) process.off(name, onSignal);
      link?.stop();
      http?.close();
      timer.cancel();
      clearInterval(summaries);
      clearInterval(memoryChecks);
      clearInterval(redisPings);
      // A synchronous store commits here without yielding; Redis finishes its transaction,
      // or is given up on after a while if it hangs.
      await Promise.race([commits.settle(), Bun.sleep(SETTLE_AT_STOP_MS)]);
      summarise();
      endpoint?.close();
      await store.close();
      dropLog?.flush();
      const { malformed, unauthenticated, unexpected, rateLimited, replayed } = state.drops;
      log.debug(
        `dropped datagrams: ${malformed} malformed, ${unauthenticated} unauthenticated, ${unexpected} unexpected, ${rateLimited} over the rate limit, ${replayed} replayed`,
      );
      log.info(`server stopped (${signal})`);
      done(0);
    };
    const onSignal = (signal: NodeJS.Signals) => void stop(signal);
    for (const name of stopSignals) process.on(name, onSignal);
  });
}

const stopSignals: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
const SUMMARY_EVERY_MS = 10_000;
/** How often the Redis round trip shown in /metrics is measured. */
const REDIS_PING_EVERY_MS = 5_000;
const SETTLE_AT_STOP_MS = 5_000;
const DAY_MS = 24 * 3_600_000;

function describeBind(bind: string | undefined): string {
  if (bind === undefined || bind === "::") return " (all interfaces, IPv6 and IPv4)";
  if (bind === "0.0.0.0") return " (all IPv4 interfaces)";
  return ` on ${bind.includes(":") ? `[${bind}]` : bind} only`;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The server's own key pairs, beside its database (mode 0600): clients pin the public halves. */
export const SERVER_IDENTITY_FILE = "server.identity";

function describeState(state: ServerState): string {
  let stored = 0;
  for (const mailbox of state.mailboxes.values()) stored += mailbox.length;
  return `${state.clients.size} known client(s), ${stored} stored message(s)`;
}

/** `--verbose`: each dropped datagram, at most 10 lines a second and a summary of the rest. */
function createDropLog(log: ServerLog): DropLog {
  return new DropLog({
    write: (text) => log.debug(text),
    schedule: (ms, run) => setTimeout(run, ms).unref(),
  });
}
