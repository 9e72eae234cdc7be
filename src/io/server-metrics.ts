import type { DropCounts } from "../core/server-effects.ts";
import type { ServerState } from "../core/server-state.ts";
import type { CommitTiming } from "./group-commit.ts";
import { formatMetrics, Histogram, type MetricFamily } from "./prometheus-text.ts";
import type { DatagramCounts } from "./udp-endpoint.ts";

/** A group commit of one insert takes about 250 µs here; thousands, a few ms. */
const COMMIT_SECONDS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
];
const COMMIT_BATCH = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096];
/** From a round trip on loopback up to the verdict on a silent member (seconds). */
const FAN_OUT_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const dropCauses: Record<keyof DropCounts, string> = {
  malformed: "malformed",
  unauthenticated: "unauthenticated",
  unexpected: "unexpected",
  rateLimited: "rate_limited",
  replayed: "replayed",
};

/** What one scrape reads: the core's state and the shell's own figures. */
export interface MetricsView {
  readonly state: ServerState;
  readonly datagrams: Readonly<DatagramCounts>;
  readonly storeAcceptsWrites: boolean;
  /** With `--redis`: whether it is reachable now, and the last round trip measured. */
  readonly redis?: {
    readonly reachable: boolean;
    readonly roundTripSeconds: number | undefined;
  };
}

/**
 * The server's figures for `GET /metrics`. Counts the core keeps are read from its
 * state when scraped; what only the shell sees (transactions, fan-out times taken
 * from the core after each step) is gathered here. Every sample carries the node's
 * name, so that the figures of several nodes can sit side by side.
 */
export class ServerMetrics {
  readonly #commitSeconds = new Histogram(COMMIT_SECONDS);
  readonly #commitBatch = new Histogram(COMMIT_BATCH);
  readonly #fanOutSeconds = new Histogram(FAN_OUT_SECONDS);

  constructor(readonly node: string) {}

  commitMeasured(transaction: CommitTiming): void {
    this.#commitSeconds.observe(transaction.seconds);
    this.#commitBatch.observe(transaction.commits);
  }

  /** Takes the fan-out times (ms) the core recorded, and empties its list. */
  takeFanOutTimes(times: number[]): void {
    for (const ms of times) this.#fanOutSeconds.observe(ms / 1000);
    times.length = 0;
  }

  render(view: MetricsView): string {
    return formatMetrics(this.families(view), { node: this.node });
  }

  families({ state, datagrams, storeAcceptsWrites, redis }: MetricsView): MetricFamily[] {
    let online = 0;
    let pushesOut = 0;
    for (const client of state.clients.values()) {
      if (client.online) online++;
      if (client.push) pushesOut++;
    }
    const { activity, drops } = state;
    const counter = (name: string, help: string, value: number): MetricFamily => ({
      name,
      help,
      type: "counter",
      samples: [{ value }],
    });
    const gauge = (name: string, help: string, value: number): MetricFamily => ({
      name,
      help,
      type: "gauge",
      samples: [{ value }],
    });
    return [
      gauge(
        "chatapp_clients_known",
        "Names in the client table, online or not.",
        state.clients.size,
      ),
      gauge("chatapp_clients_online", "Clients in the table marked online.", online),
      counter("chatapp_registrations_total", "Registrations accepted.", activity.registrations),
      counter(
        "chatapp_datagrams_received_total",
        "UDP datagrams received, including those then dropped.",
        datagrams.received,
      ),
      counter("chatapp_datagrams_sent_total", "UDP datagrams sent.", datagrams.sent),
      {
        name: "chatapp_datagrams_dropped_total",
        help: "Datagrams dropped without being acted on, by cause.",
        type: "counter",
        samples: [
          ...(Object.keys(dropCauses) as (keyof DropCounts)[]).map((key) => ({
            labels: { cause: dropCauses[key] },
            value: drops[key],
          })),
          { labels: { cause: "oversized" }, value: datagrams.oversized },
        ],
      },
      counter(
        "chatapp_saves_total",
        "Messages saved for an offline client (acknowledged once committed).",
        activity.saved,
      ),
      counter(
        "chatapp_channel_posts_total",
        "Channel posts (send_all) accepted.",
        activity.channelPosts,
      ),
      counter(
        "chatapp_channel_copies_stored_total",
        "Channel post copies stored for members away.",
        activity.storedForChannel,
      ),
      counter(
        "chatapp_stored_delivered_total",
        "Stored messages delivered and acknowledged.",
        activity.deliveredStored,
      ),
      counter(
        "chatapp_store_failures_total",
        "Requests whose writes the message store refused (answered store-failed).",
        activity.storeFailures,
      ),
      gauge(
        "chatapp_store_accepts_writes",
        "1 while the message store accepts writes, 0 after it refused the last one.",
        storeAcceptsWrites ? 1 : 0,
      ),
      gauge(
        "chatapp_stored_messages",
        "Messages stored now, waiting for their recipients.",
        state.storeUse.messages,
      ),
      {
        name: "chatapp_store_commit_seconds",
        help: "Time to write one group commit (one transaction) to the message store.",
        type: "histogram",
        samples: [{ histogram: this.#commitSeconds }],
      },
      {
        name: "chatapp_store_commit_batch_size",
        help: "Requests' changes written together in one transaction.",
        type: "histogram",
        samples: [{ histogram: this.#commitBatch }],
      },
      {
        name: "chatapp_fanout_seconds",
        help: "Channel posts: from the deliveries going out (with the sender's ack) to the last member's ack or its verdict (stored).",
        type: "histogram",
        samples: [{ histogram: this.#fanOutSeconds }],
      },
      gauge("chatapp_table_version", "The client table's current version.", state.table.version),
      gauge(
        "chatapp_table_pushes_in_flight",
        "Clients with a table push on its way to them.",
        pushesOut,
      ),
      gauge(
        "chatapp_table_pushes_waiting",
        "Clients asked for by name and waiting for a table push (the sweep finds the rest).",
        state.syncRequests.size,
      ),
      ...(redis === undefined
        ? []
        : [
            gauge(
              "chatapp_redis_reachable",
              "1 while the connection to Redis is up, 0 while the node reconnects.",
              redis.reachable ? 1 : 0,
            ),
            ...(redis.roundTripSeconds === undefined
              ? []
              : [
                  gauge(
                    "chatapp_redis_round_trip_seconds",
                    "The last PING round trip to Redis, measured every 5 s.",
                    redis.roundTripSeconds,
                  ),
                ]),
          ]),
    ];
  }
}
