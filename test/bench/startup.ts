/**
 * Benchmark 3: start-up time. `chatapp --version` to exit, and a client from spawn to
 * its first `>>> ` line (the welcome, as stdout is a pipe), beside `bun -e 0`.
 * Runs are interleaved so that drift in the machine's load hits every kind alike.
 */
import {
  freeUdpPort,
  LINE_TIMEOUT_MS,
  LOOPBACK,
  type ProcessGroup,
  type Program,
  sourceProgram,
  startServer,
} from "./processes.ts";
import { count, median, ms, percentile, printTable, type Row } from "./stats.ts";

export interface StartupOptions {
  readonly runs: number;
}

async function clientFirstLine(
  group: ProcessGroup,
  program: Program,
  serverPort: number,
  clientPort: number,
): Promise<number> {
  const started = performance.now();
  // One name from one address every run: the server takes it as the same client coming back.
  const client = group.spawn("client", [
    ...program.command,
    "-c",
    "startup",
    LOOPBACK,
    String(serverPort),
    String(clientPort),
  ]);
  try {
    const line = await client.stdout.next((text) => text.startsWith(">>> "), LINE_TIMEOUT_MS);
    return line.at - started;
  } finally {
    await group.stop(client.process);
  }
}

export async function benchStartup(
  group: ProcessGroup,
  program: Program,
  options: StartupOptions,
): Promise<void> {
  const programs = program === sourceProgram ? [program] : [program, sourceProgram];
  const dataDir = await group.makeDataDir();
  try {
    const { server, port } = await startServer(group, program, dataDir);
    const clientPort = await freeUdpPort();
    const bare: number[] = [];
    const version = new Map<Program, number[]>(programs.map((p) => [p, []]));
    const client = new Map<Program, number[]>(programs.map((p) => [p, []]));
    let failures = 0;
    // One untimed round first: the file cache and Bun's transpiler cache warm up.
    for (let run = -1; run < options.runs; run++) {
      const timed = run >= 0;
      const baseline = await group.time([process.execPath, "-e", "0"]);
      if (timed) bare.push(baseline.ms);
      for (const each of programs) {
        const result = await group.time([...each.command, "--version"]);
        if (result.code !== 0) failures++;
        if (timed) version.get(each)?.push(result.ms);
        const first = await clientFirstLine(group, each, port, clientPort);
        if (timed) client.get(each)?.push(first);
      }
    }
    await group.stop(server.process);

    const rows: Row[] = [];
    for (const each of programs) {
      const versions = version.get(each) ?? [];
      const clients = client.get(each) ?? [];
      rows.push(
        {
          what: `${each.label} --version, median`,
          chatapp: ms(median(versions)),
          baseline: ms(median(bare)),
        },
        {
          what: `${each.label} --version, p95`,
          chatapp: ms(percentile(versions, 0.95)),
          baseline: ms(percentile(bare, 0.95)),
        },
        {
          what: `${each.label} client to first >>> line, median`,
          chatapp: ms(median(clients)),
          baseline: ms(median(bare)),
        },
        {
          what: `${each.label} client to first >>> line, p95`,
          chatapp: ms(percentile(clients, 0.95)),
          baseline: ms(percentile(bare, 0.95)),
        },
      );
    }
    rows.push({
      what: "--version runs that exited non-zero",
      chatapp: count(failures),
      baseline: count(0),
    });
    printTable(`3. Start-up time (${options.runs} runs each, interleaved)`, rows, [
      "baseline: `bun -e 0` (this Bun, spawn to exit), timed in the same loop.",
      "--version: spawn to exit. client: spawn to its first `>>> ` line on the pipe, which is the",
      "welcome after registering with a server already running on loopback.",
    ]);
  } finally {
    await group.removeDataDir(dataDir);
  }
}
