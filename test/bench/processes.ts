/**
 * Child processes for the benchmarks: every one is tracked and killed at the end,
 * even when a benchmark fails. Output is read line by line with arrival times.
 */

import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";

export const ROOT = resolve(import.meta.dir, "../..");
export const LOOPBACK = "127.0.0.1";
const BINARY_PATH = join(ROOT, "dist/chatapp");
/** How long any one expected line may take before the benchmark counts it as broken. */
export const LINE_TIMEOUT_MS = 5000;

/** How to start chatapp. */
export interface Program {
  readonly label: string;
  readonly command: readonly string[];
}

export const sourceProgram: Program = {
  label: "bun src/main.ts",
  command: [
    process.execPath,
    ...(process.env.CHATAPP_BENCH_BUN_ARGS?.split(" ").filter(Boolean) ?? []),
    join(ROOT, "src/main.ts"),
  ],
};

/** CHATAPP_BENCH_BINARY: another build to measure (an older commit's, for a before/after). */
const benchBinary = process.env.CHATAPP_BENCH_BINARY;

export const binaryProgram: Program | undefined = benchBinary
  ? { label: benchBinary, command: [benchBinary] }
  : existsSync(BINARY_PATH)
    ? { label: "dist/chatapp", command: [BINARY_PATH] }
    : undefined;

/** Colour codes and terminal guesses out of the logs; never NODE_ENV=test (it quiets consola). */
const childEnv: Record<string, string | undefined> = {
  ...process.env,
  NO_COLOR: "1",
  NODE_ENV: undefined,
};

export interface Line {
  readonly text: string;
  /** performance.now() when the chunk holding the line was read. */
  readonly at: number;
}

interface Waiter {
  readonly matches: (text: string) => boolean;
  readonly resolve: (line: Line) => void;
  readonly reject: (error: Error) => void;
  readonly timer: Timer;
}

/**
 * Reads a stream to its end (so a child never blocks on a full pipe) and keeps every
 * line. `next` consumes lines in order: each line is handed out at most once.
 */
export class LineReader {
  readonly lines: Line[] = [];
  private cursor = 0;
  private waiter: Waiter | undefined;
  private ended = false;
  readonly done: Promise<void>;

  constructor(
    stream: ReadableStream<Uint8Array>,
    private readonly label: string,
  ) {
    this.done = this.pump(stream);
  }

  private async pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let rest = "";
    const reader = stream.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const at = performance.now();
        rest += decoder.decode(value, { stream: true });
        let newline = rest.indexOf("\n");
        while (newline >= 0) {
          this.lines.push({ text: rest.slice(0, newline).replace(/\r$/, ""), at });
          rest = rest.slice(newline + 1);
          newline = rest.indexOf("\n");
        }
        this.serve();
      }
    } catch {
      // The child went away mid-read: what was read is kept.
    } finally {
      if (rest !== "") this.lines.push({ text: rest, at: performance.now() });
      this.ended = true;
      this.serve();
    }
  }

  private serve(): void {
    const waiter = this.waiter;
    if (!waiter) return;
    while (this.cursor < this.lines.length) {
      const line = this.lines[this.cursor++];
      if (line && waiter.matches(line.text)) {
        this.waiter = undefined;
        clearTimeout(waiter.timer);
        waiter.resolve(line);
        return;
      }
    }
    if (this.ended) {
      this.waiter = undefined;
      clearTimeout(waiter.timer);
      waiter.reject(new Error(`${this.label} closed its output before the line expected`));
    }
  }

  /** The next line (after those already handed out) that matches; skipped lines are consumed. */
  next(matches: (text: string) => boolean, timeoutMs: number): Promise<Line> {
    if (this.waiter) return Promise.reject(new Error(`${this.label}: already waiting for a line`));
    return new Promise<Line>((resolvePromise, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new Error(`${this.label}: no expected line within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = { matches, resolve: resolvePromise, reject, timer };
      this.serve();
    });
  }

  /** The last few lines, for error messages. */
  tail(count = 8): string {
    return this.lines
      .slice(-count)
      .map((line) => `    ${line.text}`)
      .join("\n");
  }
}

export interface Child {
  readonly label: string;
  readonly process: Subprocess<"pipe", "pipe", "pipe">;
  readonly stdout: LineReader;
  readonly stderr: LineReader;
  /** Writes text to the child's stdin and hands it to the pipe now; returns performance.now() before the write. */
  write(text: string): number;
}

/**
 * Every child started through it is killed by `killAll`, and every directory it made is
 * removed by `cleanUp`, whatever happened in between.
 */
export class ProcessGroup {
  private readonly children = new Set<Subprocess>();
  private readonly directories = new Set<string>();
  /** The clients' XDG_CONFIG_HOME: their identities stay out of the user's ~/.config. */
  private readonly configHome: string;

  constructor() {
    this.configHome = mkdtempSync(join(tmpdir(), "chatapp-bench-config-"));
    this.directories.add(this.configHome);
  }

  /** A fresh directory for a server's data, removed by `cleanUp` if not before. */
  async makeDataDir(): Promise<string> {
    const directory = await mkdtemp(join(tmpdir(), "chatapp-bench-"));
    this.directories.add(directory);
    return directory;
  }

  async removeDataDir(directory: string): Promise<void> {
    this.directories.delete(directory);
    await rm(directory, { recursive: true, force: true });
  }

  spawn(label: string, command: readonly string[]): Child {
    const child = Bun.spawn([...command], {
      cwd: ROOT,
      env: { ...childEnv, XDG_CONFIG_HOME: this.configHome },
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
    });
    this.children.add(child);
    void child.exited.then(() => this.children.delete(child));
    return {
      label,
      process: child,
      stdout: new LineReader(child.stdout, `${label} stdout`),
      stderr: new LineReader(child.stderr, `${label} stderr`),
      write(text: string): number {
        const at = performance.now();
        child.stdin.write(text);
        void child.stdin.flush();
        return at;
      },
    };
  }

  /** Runs a command to its end with output ignored; resolves to the wall time in ms and the exit code. */
  async time(command: readonly string[]): Promise<{ ms: number; code: number }> {
    const started = performance.now();
    const child = Bun.spawn([...command], {
      cwd: ROOT,
      env: { ...childEnv, XDG_CONFIG_HOME: this.configHome },
      stdin: "ignore",
      stdout: "ignore",
      stderr: "ignore",
    });
    this.children.add(child);
    const code = await child.exited;
    this.children.delete(child);
    return { ms: performance.now() - started, code };
  }

  /** SIGTERM, then SIGKILL for a child still there after `graceMs`. */
  async stop(child: Subprocess, graceMs = 2000): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const timedOut = await Promise.race([
      child.exited.then(() => false),
      Bun.sleep(graceMs).then(() => true),
    ]);
    if (timedOut) {
      child.kill("SIGKILL");
      await child.exited;
    }
    this.children.delete(child);
  }

  async killAll(): Promise<void> {
    await Promise.all([...this.children].map((child) => this.stop(child)));
  }

  /** The last resort, for process.on("exit"): nothing may wait there. */
  cleanUpNow(): void {
    for (const child of this.children) child.kill("SIGKILL");
    this.children.clear();
    for (const directory of this.directories) rmSync(directory, { recursive: true, force: true });
    this.directories.clear();
  }

  async cleanUp(): Promise<void> {
    await this.killAll();
    await Promise.all([...this.directories].map((directory) => this.removeDataDir(directory)));
  }

  get running(): number {
    return this.children.size;
  }
}

/** A UDP port that was free a moment ago (chatapp takes ports from 1024 up, not 0). */
export async function freeUdpPort(): Promise<number> {
  const socket = await Bun.udpSocket({ hostname: LOOPBACK, port: 0 });
  const { port } = socket;
  socket.close();
  return port;
}

/** Starts chatapp's server and waits for it to listen. */
export async function startServer(
  group: ProcessGroup,
  program: Program,
  dataDir: string,
  extraArgs: readonly string[] = [],
): Promise<{ server: Child; port: number }> {
  const port = await freeUdpPort();
  const server = group.spawn("server", [
    ...program.command,
    "-s",
    String(port),
    "--data-dir",
    dataDir,
    ...extraArgs,
  ]);
  await server.stdout
    .next((line) => line.includes("listening"), LINE_TIMEOUT_MS)
    .catch((error) => {
      throw new Error(`${String(error)}\n${server.stdout.tail()}\n${server.stderr.tail()}`);
    });
  return { server, port };
}

export async function startClient(
  group: ProcessGroup,
  program: Program,
  name: string,
  serverPort: number,
): Promise<Child> {
  const port = await freeUdpPort();
  const client = group.spawn(`client ${name}`, [
    ...program.command,
    "-c",
    name,
    LOOPBACK,
    String(serverPort),
    String(port),
  ]);
  await client.stdout.next(
    (line) => line.includes("[Welcome, You are registered.]"),
    LINE_TIMEOUT_MS,
  );
  return client;
}

/** What /proc says a process used: peak and current resident memory, CPU time so far. */
export interface ProcessUsage {
  readonly peakRssBytes: number;
  readonly rssBytes: number;
  readonly cpuSeconds: number;
}

let clockTicks: number | undefined;

function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    const result = Bun.spawnSync(["getconf", "CLK_TCK"], { stdout: "pipe", stderr: "ignore" });
    const value = Number(result.stdout.toString().trim());
    clockTicks = result.exitCode === 0 && value > 0 ? value : 100;
  }
  return clockTicks;
}

/** VmHWM, VmRSS (/proc/<pid>/status) and utime + stime (/proc/<pid>/stat); undefined once it is gone. */
export function processUsage(pid: number): ProcessUsage | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kilobytes = (key: string) =>
      Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN);
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after "(comm) ": state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    return {
      peakRssBytes: kilobytes("VmHWM") * 1024,
      rssBytes: kilobytes("VmRSS") * 1024,
      cpuSeconds: ticks / ticksPerSecond(),
    };
  } catch {
    return undefined;
  }
}

/** The most files this process may hold open (sockets count), from /proc/self/limits. */
export function openFileLimit(): number | undefined {
  try {
    const line = readFileSync("/proc/self/limits", "utf8")
      .split("\n")
      .find((text) => text.startsWith("Max open files"));
    const soft = line?.split(/\s{2,}/)[1];
    return soft === undefined
      ? undefined
      : soft === "unlimited"
        ? Number.POSITIVE_INFINITY
        : Number(soft);
  } catch {
    return undefined;
  }
}

/** Kernel-wide UDP receive-buffer drops (loopback included), from /proc/net/snmp. */
export function udpReceiveBufferErrors(): number | undefined {
  try {
    const lines = readFileSync("/proc/net/snmp", "utf8")
      .split("\n")
      .filter((line) => line.startsWith("Udp: "));
    const names = lines[0]?.split(/\s+/) ?? [];
    const values = lines[1]?.split(/\s+/) ?? [];
    const index = names.indexOf("RcvbufErrors");
    return index < 0 ? undefined : Number(values[index]);
  } catch {
    return undefined;
  }
}
