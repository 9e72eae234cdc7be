import { expect, test } from "bun:test";
import { ServerMetrics } from "../../src/io/server-metrics.ts";
import { parseMetrics, sampleValue } from "../helpers/prometheus-parse.ts";
import { registeredNetwork } from "../helpers/simulated-network.ts";

test("the core's figures, the socket's and the shell's, every sample labelled with the node", () => {
  const network = registeredNetwork(["x", "y", "z"]);
  network.setFaults({ delayMinMs: 20, delayMaxMs: 20 });
  network.client("y").type("dereg y");
  network.settle();
  network.client("x").type("send_all hello");
  network.settle();

  const metrics = new ServerMetrics("node-a");
  metrics.takeFanOutTimes(network.server.fanOutTimes);
  expect(network.server.fanOutTimes).toEqual([]);
  metrics.commitMeasured({ ok: true, commits: 3, seconds: 0.0004 });
  const text = metrics.render({
    state: network.server,
    datagrams: { received: 40, sent: 38, oversized: 1 },
    storeAcceptsWrites: true,
  });
  const parsed = parseMetrics(text);
  for (const sample of parsed.samples) expect(sample.labels.node).toBe("node-a");
  for (const name of parsed.types.keys()) {
    expect(name).toStartWith("chatapp_");
    expect(parsed.helps.get(name)).toBeString();
  }
  expect(sampleValue(parsed, "chatapp_clients_known")).toBe(3);
  expect(sampleValue(parsed, "chatapp_clients_online")).toBe(2);
  expect(sampleValue(parsed, "chatapp_registrations_total")).toBe(3);
  expect(sampleValue(parsed, "chatapp_channel_posts_total")).toBe(1);
  expect(sampleValue(parsed, "chatapp_channel_copies_stored_total")).toBe(1);
  expect(sampleValue(parsed, "chatapp_stored_messages")).toBe(1);
  expect(sampleValue(parsed, "chatapp_datagrams_received_total")).toBe(40);
  expect(sampleValue(parsed, "chatapp_datagrams_sent_total")).toBe(38);
  expect(sampleValue(parsed, "chatapp_datagrams_dropped_total", { cause: "oversized" })).toBe(1);
  expect(sampleValue(parsed, "chatapp_datagrams_dropped_total", { cause: "rate_limited" })).toBe(0);
  expect(sampleValue(parsed, "chatapp_table_version")).toBe(network.server.table.version);
  // The fan-out to z took 40 ms (20 there, 20 back): in the 0.05 bucket, not in 0.025.
  expect(sampleValue(parsed, "chatapp_fanout_seconds_bucket", { le: "0.025" })).toBe(0);
  expect(sampleValue(parsed, "chatapp_fanout_seconds_bucket", { le: "0.05" })).toBe(1);
  expect(sampleValue(parsed, "chatapp_fanout_seconds_sum")).toBe(0.04);
  expect(sampleValue(parsed, "chatapp_store_commit_batch_size_bucket", { le: "2" })).toBe(0);
  expect(sampleValue(parsed, "chatapp_store_commit_batch_size_bucket", { le: "4" })).toBe(1);
  expect(sampleValue(parsed, "chatapp_store_commit_seconds_bucket", { le: "0.0005" })).toBe(1);
  expect(sampleValue(parsed, "chatapp_store_commit_seconds_bucket", { le: "0.00025" })).toBe(0);
});

test("with Redis, whether it is reachable and its last round trip; without, neither series", () => {
  const network = registeredNetwork(["x"]);
  const metrics = new ServerMetrics("node-a");
  const render = (redis?: { reachable: boolean; roundTripSeconds: number | undefined }) =>
    parseMetrics(
      metrics.render({
        state: network.server,
        datagrams: { received: 0, sent: 0, oversized: 0 },
        storeAcceptsWrites: true,
        ...(redis ? { redis } : {}),
      }),
    );
  const up = render({ reachable: true, roundTripSeconds: 0.00025 });
  expect(sampleValue(up, "chatapp_redis_reachable")).toBe(1);
  expect(sampleValue(up, "chatapp_redis_round_trip_seconds")).toBe(0.00025);
  const down = render({ reachable: false, roundTripSeconds: undefined });
  expect(sampleValue(down, "chatapp_redis_reachable")).toBe(0);
  expect(down.types.has("chatapp_redis_round_trip_seconds")).toBe(false);
  const single = render();
  expect(single.types.has("chatapp_redis_reachable")).toBe(false);
});
