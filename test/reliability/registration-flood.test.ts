import { afterAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { NAMES_PER_ADDRESS } from "../../src/core/timing.ts";
import {
  binaryProgram,
  ChatSession,
  killAll,
  type ServerHandle,
} from "../helpers/process-driver.ts";

afterAll(killAll);

const FLOOD_TEST_TIMEOUT_MS = 90_000;
const PING_EVERY_MS = 200;

function residentMegabytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kilobytes = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
  return kilobytes / 1024;
}

const FLOODER = join(import.meta.dir, "../helpers/registration-flooder.ts");

/** The flood runs in a process of its own; resolves to how its registrations were answered. */
async function flood(
  server: ServerHandle,
  ports: number,
  names: number,
  perSecond: number,
): Promise<Map<string, number>> {
  const child = Bun.spawn(
    [
      process.execPath,
      FLOODER,
      String(server.port),
      String(ports),
      String(names),
      String(perSecond),
    ],
    { stdout: "pipe", stderr: "inherit" },
  );
  const output = await new Response(child.stdout).text();
  expect(await child.exited).toBe(0);
  return new Map(Object.entries(JSON.parse(output) as Record<string, number>));
}

// The attacks: one port registering 1,000 names at 200/s, and 200 ports × 100 names.
for (const [ports, names, perSecond] of [
  [1, 1_000, 200],
  [200, 100, 50],
] as const) {
  test(
    `a flood of registrations from ${ports} port(s) × ${names} names at ${perSecond}/s each: the channel still reaches others within 1 s; memory stays bounded`,
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
        outcomes = await flood(server, ports, names, perSecond);
      } finally {
        clearInterval(pinger);
      }
      const rssAfter = residentMegabytes(server.process.pid);

      // Every ping reaches y, in whatever order; the slowest within a second of being typed.
      const latencies: number[] = [];
      for (let seen = 0; seen < pings; seen++) {
        const line = await y.waitForLine(/^>>> \[Channel_Message x: ping \d+\]$/, {
          timeoutMs: 5_000,
        });
        const ping = Number(/ping (\d+)/.exec(line)?.[1]);
        latencies.push((y.arrivalOf(line) ?? Number.NaN) - (sentAt.get(ping) ?? Number.NaN));
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
