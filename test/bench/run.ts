/**
 * `bun run bench [--quick] [--source]`: chatapp's figures beside baselines measured in
 * the same run. Loopback only. Never fails on a time: exits 1 only if a benchmark broke.
 */
import { cpus, platform, release } from "node:os";
import { benchCluster, clusterOptions } from "./cluster.ts";
import { benchDirect } from "./direct-rtt.ts";
import { benchFanOut } from "./fan-out.ts";
import {
  binaryProgram,
  LINE_TIMEOUT_MS,
  ProcessGroup,
  type Program,
  ROOT,
  sourceProgram,
} from "./processes.ts";
import { benchScale, scaleOptions } from "./scale.ts";
import { benchStartup } from "./startup.ts";
import { benchStoredMemory, storedMemoryOptions } from "./stored-memory.ts";

const USAGE = "usage: bun run bench [--quick] [--source]";

interface Settings {
  readonly quick: boolean;
  readonly program: Program;
}

function parseSettings(args: readonly string[]): Settings {
  let quick = false;
  let source = false;
  for (const arg of args) {
    if (arg === "--quick") quick = true;
    else if (arg === "--source") source = true;
    else if (arg === "--help" || arg === "-h") {
      console.log(
        `${USAGE}\n  --quick   a smaller run\n  --source  bench \`bun src/main.ts\` even when dist/chatapp exists`,
      );
      process.exit(0);
    } else {
      console.error(`unknown argument ${arg}\n${USAGE}`);
      process.exit(2);
    }
  }
  const program = source || !binaryProgram ? sourceProgram : binaryProgram;
  return { quick, program };
}

async function versionLine(group: ProcessGroup, program: Program): Promise<string> {
  const child = group.spawn("version", [...program.command, "--version"]);
  child.process.stdin.end();
  await Promise.race([child.process.exited, Bun.sleep(LINE_TIMEOUT_MS)]);
  await group.stop(child.process);
  await child.stdout.done;
  return child.stdout.lines
    .map((line) => line.text)
    .join(" ")
    .trim();
}

function git(args: readonly string[]): string | undefined {
  const result = Bun.spawnSync(["git", ...args], { cwd: ROOT, stdout: "pipe", stderr: "ignore" });
  return result.exitCode === 0 ? result.stdout.toString().trim() : undefined;
}

/** A binary built before changes to src/ (committed since, or not committed yet) benches old code. */
function staleBinaryWarning(program: Program, version: string): string | undefined {
  if (program === sourceProgram) return undefined;
  const built = /\(([0-9a-f]{7,40})[,)]/.exec(version)?.[1];
  const head = git(["rev-parse", "--short=7", "HEAD"]);
  if (!built || !head) return undefined;
  const committed = git(["diff", "--name-only", built, "HEAD", "--", "src"]);
  const uncommitted = git(["status", "--porcelain", "--", "src"]);
  const reasons = [
    ...(committed === undefined
      ? [`its commit is unknown here (HEAD is ${head})`]
      : committed !== ""
        ? [`src/ changed in commits since (HEAD is ${head})`]
        : []),
    ...(uncommitted ? ["src/ has uncommitted changes"] : []),
  ];
  if (reasons.length === 0) return undefined;
  return `warning: dist/chatapp was built from ${built}; ${reasons.join(", ")}. \`bun run build\` first, or pass --source.`;
}

async function main(): Promise<number> {
  const settings = parseSettings(process.argv.slice(2));
  const group = new ProcessGroup();
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    console.error(`\nbench: ${signal}, stopping ${group.running} child process(es)`);
    void group.cleanUp().finally(() => process.exit(130));
  };
  process.on("exit", () => group.cleanUpNow());
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  try {
    return await runAll(group, settings);
  } finally {
    await group.cleanUp();
  }
}

async function runAll(group: ProcessGroup, { quick, program }: Settings): Promise<number> {
  const started = performance.now();
  const processors = cpus();
  console.log(`chatapp benchmarks${quick ? " (--quick)" : ""}`);
  console.log(
    `machine: ${processors.length} CPU(s) ${processors[0]?.model.trim() ?? "unknown"}, ${platform()} ${release()}`,
  );
  console.log(`bun: ${Bun.version} (${Bun.revision.slice(0, 9)})`);
  const version = await versionLine(group, program);
  console.log(
    `chatapp under test: ${program.label} (${version})${
      program === sourceProgram && !binaryProgram
        ? "; dist/chatapp is missing, `bun run build` makes it"
        : ""
    }`,
  );
  const stale = staleBinaryWarning(program, version);
  if (stale) console.log(stale);
  console.log("network: 127.0.0.1 only; every figure and its baseline come from this run.");

  const benchmarks: [string, () => Promise<void>][] = [
    [
      "direct round trip",
      () => benchDirect(group, program, { rounds: quick ? 50 : 500, warmup: quick ? 5 : 20 }),
    ],
    [
      "channel fan-out",
      () =>
        benchFanOut(group, program, {
          sizes: quick ? [100] : [100, 1000],
          posts: quick ? 3 : 20,
          registerWindow: 32,
          settleTimeoutMs: quick ? 15_000 : 45_000,
        }),
    ],
    ["start-up", () => benchStartup(group, program, { runs: quick ? 5 : 20 })],
    ["scale", () => benchScale(group, program, scaleOptions(quick))],
    ["stored memory", () => benchStoredMemory(group, program, storedMemoryOptions(quick))],
    ["cluster", () => benchCluster(group, program, clusterOptions(quick))],
  ];

  const broken: string[] = [];
  for (const [name, run] of benchmarks) {
    try {
      await run();
    } catch (error) {
      broken.push(name);
      const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
      console.error(`\nbench: ${name} broke: ${detail}`);
    } finally {
      // Whatever a benchmark left running ends before the next one starts.
      await group.killAll();
    }
  }
  const elapsed = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`\n${broken.length === 0 ? "done" : `broken: ${broken.join(", ")}`} in ${elapsed} s`);
  return broken.length === 0 ? 0 : 1;
}

process.exit(await main());
