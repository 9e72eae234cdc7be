import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MAX_DATAGRAM_BYTES } from "../../src/protocol/messages.ts";
import { canMountPrivately } from "../helpers/private-mount.ts";
import {
  binaryProgram,
  ChatSession,
  E2E_TEST_TIMEOUT_MS,
  escapeRegExp,
  freePort,
  killAll,
  LOOPBACK,
  programs,
  type ServerHandle,
  testsFor,
  waitForTable,
} from "../helpers/process-driver.ts";
import { type ParsedMetrics, parseMetrics, sampleValue } from "../helpers/prometheus-parse.ts";
import { fillDisk, serverOnSmallDisk } from "../helpers/small-disk.ts";

afterAll(killAll);

const HTTP_READY = /INFO health and metrics at (http:\S+)\/healthz and /;
const SAVED = ">>> [Messages received by the server and saved]";
const STORE_FAILED =
  ">>> [The server could not write to its disk; nothing was saved. Try again later.]";
const NODE = "e2e-node";

/** A port free for TCP on loopback, from the same range as the UDP ports the helpers draw. */
async function freeTcpPort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await freePort();
    try {
      const probe = Bun.serve({
        port,
        hostname: LOOPBACK,
        reusePort: false,
        fetch: () => new Response(),
      });
      probe.stop(true);
      return port;
    } catch {
      // Taken for TCP: draw another.
    }
  }
  throw new Error("no free TCP port found");
}

/** A server with `--http` on loopback; resolves once both its UDP and HTTP ports listen. */
async function serverWithHttp(
  chat: ChatSession,
  options: { readonly dataDir?: string } = {},
): Promise<{ readonly server: ServerHandle; readonly url: string }> {
  const httpPort = await freeTcpPort();
  const server = await chat.startServer({
    ...options,
    args: ["--http", String(httpPort), "--node-name", NODE],
  });
  const line = await server.process.waitForLine(HTTP_READY);
  const url = HTTP_READY.exec(line)?.[1] ?? "";
  expect(url).toBe(`http://127.0.0.1:${httpPort}`);
  return { server, url };
}

async function scrape(url: string): Promise<ParsedMetrics> {
  const response = await fetch(`${url}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
  return parseMetrics(await response.text());
}

/** Scrapes until `ready` holds: an ack the server sends can arrive before it counts the next step. */
async function scrapeUntil(
  url: string,
  ready: (metrics: ParsedMetrics) => boolean,
  timeoutMs = 5_000,
): Promise<ParsedMetrics> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const metrics = await scrape(url);
    if (ready(metrics)) return metrics;
    if (performance.now() > deadline) {
      throw new Error(`the metrics did not get there in ${timeoutMs} ms`);
    }
    await Bun.sleep(20);
  }
}

const value = sampleValue;

describe.concurrent.each(programs)("%s", (_title, program) => {
  const it = testsFor(program);

  it("GET /healthz and /metrics: every figure moves by what two clients did", async () => {
    await using chat = await ChatSession.open(program);
    const { server, url } = await serverWithHttp(chat);

    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.text()).toBe("ok\n");
    expect((await fetch(`${url}/`)).status).toBe(404);
    expect((await fetch(`${url}/metrics/x`)).status).toBe(404);
    expect((await fetch(`${url}/metrics`, { method: "POST" })).status).toBe(405);

    const start = await scrape(url);
    for (const sample of start.samples) expect(sample.labels.node).toBe(NODE);
    for (const [name, type] of [
      ["chatapp_clients_online", "gauge"],
      ["chatapp_registrations_total", "counter"],
      ["chatapp_store_commit_seconds", "histogram"],
      ["chatapp_fanout_seconds", "histogram"],
    ]) {
      expect(start.types.get(name ?? "")).toBe(type ?? "");
      expect(start.helps.get(name ?? "")).toBeString();
    }
    expect(value(start, "chatapp_clients_known")).toBe(0);
    expect(value(start, "chatapp_registrations_total")).toBe(0);
    expect(value(start, "chatapp_store_accepts_writes")).toBe(1);

    // Junk the server drops: one malformed datagram, one too big to be read.
    const peer = await Bun.udpSocket({ hostname: LOOPBACK });
    try {
      peer.send("x", server.port, LOOPBACK);
      peer.send(new Uint8Array(MAX_DATAGRAM_BYTES + 1), server.port, LOOPBACK);
    } finally {
      peer.close();
    }
    const dropped = await scrapeUntil(
      url,
      (m) => value(m, "chatapp_datagrams_dropped_total", { cause: "oversized" }) === 1,
    );
    expect(value(dropped, "chatapp_datagrams_dropped_total", { cause: "malformed" })).toBe(1);
    expect(value(dropped, "chatapp_datagrams_received_total")).toBe(2);

    const [x, y] = await chat.startClients(server, ["x", "y"]);
    const joined = await scrape(url);
    expect(value(joined, "chatapp_registrations_total")).toBe(2);
    expect(value(joined, "chatapp_clients_known")).toBe(2);
    expect(value(joined, "chatapp_clients_online")).toBe(2);
    expect(value(joined, "chatapp_table_version")).toBeGreaterThanOrEqual(2);
    expect(value(joined, "chatapp_datagrams_received_total")).toBeGreaterThan(2);
    expect(value(joined, "chatapp_datagrams_sent_total")).toBeGreaterThan(0);

    x.type("send_all hello everyone");
    await x.waitForLine(">>> [Message received by Server.]");
    await y.waitForLine(">>> [Channel_Message x: hello everyone]");
    const posted = await scrapeUntil(url, (m) => value(m, "chatapp_fanout_seconds_count") === 1);
    expect(value(posted, "chatapp_channel_posts_total")).toBe(1);
    expect(value(posted, "chatapp_channel_copies_stored_total")).toBe(0);
    expect(value(posted, "chatapp_fanout_seconds_bucket", { le: "+Inf" })).toBe(1);
    expect(value(posted, "chatapp_fanout_seconds_sum")).toBeGreaterThanOrEqual(0);
    expect(value(posted, "chatapp_fanout_seconds_sum")).toBeLessThan(1);
    expect(value(posted, "chatapp_stored_messages")).toBe(0);

    y.type("dereg y");
    await y.waitForLine(">>> [You are Offline. Bye.]");
    await waitForTable(x, { x: "online", y: "offline" });
    const commitsBefore = value(await scrape(url), "chatapp_store_commit_seconds_count");
    x.type("send y kept for later");
    await x.waitForLine(SAVED);
    const saved = await scrape(url);
    expect(value(saved, "chatapp_saves_total")).toBe(1);
    expect(value(saved, "chatapp_stored_messages")).toBe(1);
    expect(value(saved, "chatapp_clients_online")).toBe(1);
    expect(value(saved, "chatapp_clients_known")).toBe(2);
    expect(value(saved, "chatapp_registrations_total")).toBe(2);
    expect(value(saved, "chatapp_store_commit_seconds_count")).toBeGreaterThan(commitsBefore);
    expect(value(saved, "chatapp_store_commit_batch_size_count")).toBe(
      value(saved, "chatapp_store_commit_seconds_count"),
    );
    expect(value(saved, "chatapp_store_failures_total")).toBe(0);

    y.type("reg y");
    await y.waitForLine(/^>>> x: \S+ kept for later$/);
    const delivered = await scrapeUntil(
      url,
      (m) => value(m, "chatapp_stored_delivered_total") === 1,
    );
    expect(value(delivered, "chatapp_stored_messages")).toBe(0);
    expect(value(delivered, "chatapp_registrations_total")).toBe(3);
    expect(value(delivered, "chatapp_clients_online")).toBe(2);
    // Nothing the clients sent was dropped: only the two datagrams of junk.
    for (const cause of ["malformed", "unauthenticated", "unexpected", "rate_limited"]) {
      expect(value(delivered, "chatapp_datagrams_dropped_total", { cause })).toBe(
        cause === "malformed" ? 1 : 0,
      );
    }
  });
});

test(
  "--http on a port another program holds: one clear line and exit code 1",
  async () => {
    await using chat = await ChatSession.open(binaryProgram);
    const httpPort = await freeTcpPort();
    const holder = Bun.serve({
      port: httpPort,
      hostname: LOOPBACK,
      reusePort: false,
      fetch: () => new Response("someone else"),
    });
    try {
      const port = await freePort();
      const server = chat.spawn(
        ["-s", String(port), "--data-dir", await chat.makeDataDir(), "--http", String(httpPort)],
        "server",
        port,
      );
      expect(await server.waitForExit()).toBe(1);
      expect(server.lines("stderr")).toEqual([
        `chatapp: HTTP port ${httpPort} is already in use: choose another port or stop the program that holds it`,
      ]);
      // It let go of its UDP port too: a server can start there now.
      const again = await chat.startServer({ port });
      expect(again.process.exitCode).toBeUndefined();
    } finally {
      holder.stop(true);
    }
  },
  E2E_TEST_TIMEOUT_MS,
);

test.skipIf(!canMountPrivately())(
  "/healthz is 503 with the store's reason while the disk refuses writes, and 200 once it takes them",
  async () => {
    const mountPoint = mkdtempSync(join(tmpdir(), "chatapp-small-disk-"));
    await using serverSide = await ChatSession.open(serverOnSmallDisk(mountPoint));
    await using chat = await ChatSession.open(binaryProgram);
    const { server, url } = await serverWithHttp(serverSide, {
      dataDir: join(mountPoint, "data"),
    });
    const [x, y] = await chat.startClients(server, ["x", "y"]);
    y.type("dereg y");
    await y.waitForLine(">>> [You are Offline. Bye.]");
    await waitForTable(x, { x: "online", y: "offline" });
    expect((await fetch(`${url}/healthz`)).status).toBe(200);

    const filler = `/proc/${server.process.pid}/root${mountPoint}/filler`;
    fillDisk(filler);
    const big = "é".repeat(3_990);
    let refused = false;
    for (let n = 1; n <= 3 && !refused; n++) {
      x.type(`send y refused ${n} ${big}`);
      const answer = await x.waitForLine(
        new RegExp(`^(${escapeRegExp(SAVED)}|${escapeRegExp(STORE_FAILED)})$`),
      );
      refused = answer === STORE_FAILED;
    }
    expect(refused).toBe(true);
    const sick = await fetch(`${url}/healthz`);
    expect(sick.status).toBe(503);
    expect(await sick.text()).toBe(
      "the message store refused the last write: database or disk is full\n",
    );
    const failing = await scrape(url);
    expect(value(failing, "chatapp_store_accepts_writes")).toBe(0);
    expect(value(failing, "chatapp_store_failures_total")).toBeGreaterThanOrEqual(1);

    rmSync(filler);
    x.type("send y kept once there was room");
    await x.waitForLine(SAVED);
    const healed = await fetch(`${url}/healthz`);
    expect(healed.status).toBe(200);
    expect(await healed.text()).toBe("ok\n");
    expect(value(await scrape(url), "chatapp_store_accepts_writes")).toBe(1);
  },
  E2E_TEST_TIMEOUT_MS,
);
