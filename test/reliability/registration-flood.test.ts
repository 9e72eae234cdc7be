import { afterAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { NAMES_PER_ADDRESS } from "../../src/core/timing.ts";
import {
  binaryProgram,
  ChatSession,
  killAll,
  type ServerHandle,
} from "../helpers/process-driver.ts";
import { describeAnswer, RAW_LOOPBACK, RawPeer } from "../helpers/raw-peer.ts";

afterAll(killAll);

const FLOOD_TEST_TIMEOUT_MS = 90_000;
const PING_EVERY_MS = 200;

function residentMegabytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kilobytes = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
  return kilobytes / 1024;
}

/** One peer per source port, each registering `names` names one after another. */
async function flood(server: ServerHandle, ports: number, names: number) {
  const peers = await Promise.all(
    Array.from({ length: ports }, () => RawPeer.open({ ip: RAW_LOOPBACK, port: server.port })),
  );
  const outcomes = new Map<string, number>();
  try {
    await Promise.all(
      peers.map(async (peer, p) => {
        for (let n = 0; n < names; n++) {
          const outcome = describeAnswer(await peer.register(`f${p}-${n}`));
          outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
        }
      }),
    );
  } finally {
    for (const peer of peers) peer.close();
  }
  return outcomes;
}

for (const [ports, names] of [
  [1, 1_000],
  [200, 100],
] as const) {
  test(
    `a flood of registrations from ${ports} port(s) × ${names} names: the channel still reaches others within 1 s; memory stays bounded`,
    async () => {
      await using chat = await ChatSession.open(binaryProgram);
      const server = await chat.startServer();
      const [x, y] = await chat.startClients(server, ["x", "y"]);
      const rssBefore = residentMegabytes(server.process.pid);

      const sentAt = new Map<number, number>();
      let pings = 0;
      const pinger = setInterval(() => {
        pings++;
        sentAt.set(pings, performance.now());
        x.type(`send_all ping ${pings}`);
      }, PING_EVERY_MS);
      let outcomes: Map<string, number>;
      try {
        outcomes = await flood(server, ports, names);
      } finally {
        clearInterval(pinger);
      }
      const rssAfter = residentMegabytes(server.process.pid);

      // Every ping reaches y; the slowest within a second of being typed.
      const latencies: number[] = [];
      for (let ping = 1; ping <= pings; ping++) {
        const line = await y.waitForLine(`>>> [Channel_Message x: ping ${ping}]`, {
          timeoutMs: 5_000,
        });
        expect(line).toBeDefined();
        const typed = sentAt.get(ping) ?? 0;
        const shown = y.arrivalOf(`>>> [Channel_Message x: ping ${ping}]`) ?? Number.NaN;
        latencies.push(shown - typed);
      }
      const granted = outcomes.get("registered") ?? 0;
      console.log(
        `flood ${ports}×${names}: ${JSON.stringify(Object.fromEntries(outcomes))}; ${pings} pings, slowest ${Math.max(...latencies).toFixed(0)} ms; server RSS ${rssBefore.toFixed(0)} → ${rssAfter.toFixed(0)} MB`,
      );
      expect(pings).toBeGreaterThan(0);
      expect(Math.max(...latencies)).toBeLessThan(1_000);
      // A port takes a few new names a minute; the rest are told to slow down.
      expect(granted).toBeLessThanOrEqual(ports * NAMES_PER_ADDRESS);
      expect(outcomes.get("error slow-down") ?? 0).toBeGreaterThanOrEqual(
        ports * (names - NAMES_PER_ADDRESS) * 0.9,
      );
      expect(rssAfter - rssBefore).toBeLessThan(100);
    },
    FLOOD_TEST_TIMEOUT_MS,
  );
}
