/**
 * Drives real chatapp processes through stdin and stdout, as a user would, for the
 * end-to-end tests. Everything listens and is talked to on loopback only.
 *
 * Waiting is always for an expected line, never for a fixed time: `waitForLine`
 * resolves as soon as a matching line appears, and fails at once (with the whole
 * transcript) when the process has closed its output without printing it.
 */
import { test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

import { BINARY_PATH } from "./fresh-binary.ts";

export { BINARY_PATH };
export const ROOT = resolve(import.meta.dir, "../..");
export const LOOPBACK = "127.0.0.1";

/** How to start chatapp: from source with this Bun, or the compiled binary. */
export interface Program {
  readonly label: string;
  readonly command: readonly string[];
  /** Where it runs, with what environment. */
  readonly cwd: string;
  readonly env: Record<string, string | undefined>;
}

export const sourceProgram: Program = {
  label: "bun src/main.ts",
  command: [process.execPath, join(ROOT, "src/main.ts")],
  cwd: ROOT,
  env: { ...process.env, NO_COLOR: "1" },
};

/** Built from the current sources by the test preload (test/setup.ts) when missing or stale. */
export const binaryProgram: Program = {
  label: "dist/chatapp",
  command: [BINARY_PATH],
  // As a user who downloaded it runs it: from an empty directory, with neither Bun nor
  // Node on the PATH and nothing else in the environment.
  cwd: mkdtempSync(join(tmpdir(), "chatapp-empty-")),
  env: { PATH: "/nonexistent", NO_COLOR: "1" },
};

/** Rows for `describe.each`: every e2e scenario runs against both programs. */
export const programs: readonly (readonly [string, Program])[] = [sourceProgram, binaryProgram].map(
  (program) => [program.label, program] as const,
);

/*
 * Each e2e test sets its own timeout: the one test/setup.ts sets with
 * setDefaultTimeout() only holds for the first test file of a run (Bun 1.4.5), and a
 * test here may wait 3 s for the program's own retries plus its turn for a session slot.
 */
export const E2E_TEST_TIMEOUT_MS = 20_000;

/** `test` for one program, with the e2e timeout. */
export function testsFor(_program: Program): (name: string, body: () => Promise<void>) => void {
  return (name, body) => test(name, body, E2E_TEST_TIMEOUT_MS);
}

export type LineMatch = string | RegExp;

export interface WaitOptions {
  /** How long to wait before failing; 5 s unless told. */
  readonly timeoutMs?: number;
  /** Which output to read; stdout unless told. */
  readonly stream?: "stdout" | "stderr";
}

interface TranscriptEntry {
  readonly kind: "in" | "out" | "err" | "note";
  readonly text: string;
  readonly at: number;
}

interface Waiter {
  /** Returns true once the waiter is settled (resolved or rejected). */
  check(): boolean;
}

const DEFAULT_TIMEOUT_MS = 5_000;

function describeMatch(match: LineMatch): string {
  return typeof match === "string" ? JSON.stringify(match) : String(match);
}

/** A write to a process that has gone may settle late and fail; that is no test failure. */
function ignoreFailure(result: unknown): void {
  if (result instanceof Promise) result.catch(() => {});
}

function matches(line: string, match: LineMatch): boolean {
  return typeof match === "string" ? line === match : match.test(line);
}

/** One running chatapp process with its output split into lines. */
export class ChatProcess {
  readonly label: string;
  readonly port: number;
  /** Resolves to the exit code once the process has exited (128 + n after signal n). */
  readonly exited: Promise<number>;

  readonly #proc: Bun.Subprocess<"pipe", "pipe", "pipe">;
  readonly #started = performance.now();
  readonly #stdout: string[] = [];
  readonly #stderr: string[] = [];
  readonly #transcript: TranscriptEntry[] = [];
  readonly #waiters = new Set<Waiter>();
  readonly #cursor = { stdout: 0, stderr: 0 };
  readonly #ended = { stdout: false, stderr: false };
  readonly #drained: Promise<void>;
  #inputClosed = false;
  #exitCode: number | undefined;

  constructor(
    program: Program,
    args: readonly string[],
    label: string,
    port: number,
    env: Record<string, string | undefined> = {},
  ) {
    this.label = label;
    this.port = port;
    this.#proc = Bun.spawn([...program.command, ...args], {
      cwd: program.cwd,
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
      env: { ...program.env, ...env },
    });
    this.#note(`started: chatapp ${args.join(" ")} (${program.label}, pid ${this.#proc.pid})`);
    this.#drained = Promise.all([
      this.#pump(this.#proc.stdout, "stdout"),
      this.#pump(this.#proc.stderr, "stderr"),
    ]).then(() => undefined);
    this.exited = this.#proc.exited.then((code) => {
      this.#exitCode = code;
      const signal = this.#proc.signalCode;
      this.#note(`exited with code ${code}${signal ? ` (${signal})` : ""}`);
      this.#wake();
      return code;
    });
    live.add(this);
  }

  get pid(): number {
    return this.#proc.pid;
  }

  /** The exit code, or undefined while the process runs. */
  get exitCode(): number | undefined {
    return this.#exitCode;
  }

  /** The signal that ended the process, if one did. */
  get signalCode(): NodeJS.Signals | number | null {
    return this.#proc.signalCode;
  }

  /** Every stdout line so far (or stderr's), without the newline. */
  lines(stream: "stdout" | "stderr" = "stdout"): readonly string[] {
    return stream === "stdout" ? [...this.#stdout] : [...this.#stderr];
  }

  /** How many stdout lines there are so far: a mark to look at what comes after it. */
  mark(): number {
    return this.#stdout.length;
  }

  /** Stdout lines printed after a mark. */
  linesSince(mark: number): readonly string[] {
    return this.#stdout.slice(mark);
  }

  /** When a stdout line first arrived (a performance.now() time), if it has. */
  arrivalOf(line: string): number | undefined {
    return this.#transcript.find((entry) => entry.kind === "out" && entry.text === line)?.at;
  }

  /** Types one command line, as if the user pressed Enter. */
  type(line: string): void {
    if (this.#inputClosed)
      throw new Error(`${this.label}: cannot type ${JSON.stringify(line)}: stdin is closed`);
    this.#transcript.push({ kind: "in", text: line, at: performance.now() });
    this.#proc.stdin.write(`${line}\n`);
    ignoreFailure(this.#proc.stdin.flush());
  }

  /** Closes stdin: end of file, as a script's input ends. */
  endInput(): void {
    if (this.#inputClosed) return;
    this.#inputClosed = true;
    this.#note("stdin closed");
    try {
      ignoreFailure(this.#proc.stdin.end());
    } catch {
      // The process has already gone; its input is closed anyway.
    }
  }

  kill(signal: NodeJS.Signals | number = "SIGTERM"): void {
    if (this.#exitCode !== undefined) return;
    this.#note(`sent ${signal}`);
    this.#proc.kill(signal);
  }

  /**
   * Waits for the next line that matches: a string is the whole line, exactly; a
   * RegExp is tested. "Next" means after the line the previous wait on this stream
   * matched, so lines that arrived before the call count and none is matched twice.
   */
  waitForLine(match: LineMatch, options: WaitOptions = {}): Promise<string> {
    const stream = options.stream ?? "stdout";
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const lines = stream === "stdout" ? this.#stdout : this.#stderr;
    const what = `${this.label} to print ${describeMatch(match)} on ${stream}`;
    return new Promise<string>((resolvePromise, reject) => {
      let timer: Timer | undefined;
      const waiter: Waiter = {
        check: () => {
          for (let i = this.#cursor[stream]; i < lines.length; i++) {
            const line = lines[i] ?? "";
            if (matches(line, match)) {
              this.#cursor[stream] = i + 1;
              finish();
              resolvePromise(line);
              return true;
            }
          }
          if (this.#ended[stream]) {
            finish();
            reject(
              new Error(this.#failure(`Gave up waiting for ${what}: its ${stream} is closed`)),
            );
            return true;
          }
          return false;
        },
      };
      const finish = (): void => {
        if (timer !== undefined) clearTimeout(timer);
        this.#waiters.delete(waiter);
      };
      if (waiter.check()) return;
      this.#waiters.add(waiter);
      timer = setTimeout(() => {
        finish();
        reject(
          new Error(
            this.#failure(`Timed out after ${Math.round(timeoutMs)} ms waiting for ${what}`),
          ),
        );
      }, timeoutMs);
    });
  }

  /** Waits for the process to exit and resolves to its code, failing with the transcript on timeout. */
  async waitForExit(options: { readonly timeoutMs?: number } = {}): Promise<number> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    let timer: Timer | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(
          new Error(
            this.#failure(`Timed out after ${timeoutMs} ms waiting for ${this.label} to exit`),
          ),
        );
      }, timeoutMs);
    });
    try {
      const code = await Promise.race([this.exited, timeout]);
      await this.#drained;
      return code;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Everything that happened so far: typed lines, output, signals, exit, with times. */
  transcript(): string {
    const prefixes = {
      in: "  typed ",
      out: "  out   ",
      err: "  err   ",
      note: "  ----- ",
    } as const;
    return this.#transcript
      .map((entry) => {
        const ms = String(Math.round(entry.at - this.#started)).padStart(6);
        return `${ms} ms${prefixes[entry.kind]}${entry.text}`;
      })
      .join("\n");
  }

  /** Kills the process if it still runs and waits for it and its output. */
  async stop(): Promise<void> {
    live.delete(this);
    if (this.#exitCode === undefined) this.#proc.kill("SIGKILL");
    await this.exited;
    await this.#drained;
  }

  #failure(reason: string): string {
    return `${reason}.\nTranscript of ${this.label}:\n${this.transcript() || "  (nothing yet)"}`;
  }

  #note(text: string): void {
    this.#transcript.push({ kind: "note", text, at: performance.now() });
  }

  #wake(): void {
    for (const waiter of [...this.#waiters]) waiter.check();
  }

  #push(stream: "stdout" | "stderr", line: string): void {
    (stream === "stdout" ? this.#stdout : this.#stderr).push(line);
    this.#transcript.push({
      kind: stream === "stdout" ? "out" : "err",
      text: line,
      at: performance.now(),
    });
  }

  async #pump(source: ReadableStream<Uint8Array>, stream: "stdout" | "stderr"): Promise<void> {
    const decoder = new TextDecoder();
    let partial = "";
    try {
      for await (const chunk of source) {
        partial += decoder.decode(chunk, { stream: true });
        let newline = partial.indexOf("\n");
        while (newline >= 0) {
          this.#push(stream, partial.slice(0, newline));
          partial = partial.slice(newline + 1);
          newline = partial.indexOf("\n");
        }
        this.#wake();
      }
    } catch (error) {
      this.#note(`reading ${stream} failed: ${String(error)}`);
    }
    partial += decoder.decode();
    if (partial !== "") this.#push(stream, partial);
    this.#ended[stream] = true;
    this.#wake();
  }
}

/** Every process started and not yet stopped, so a failed test cannot leave one behind. */
const live = new Set<ChatProcess>();

/** Kills every chatapp process still running (for `afterAll` as a last resort). */
export async function killAll(): Promise<void> {
  await Promise.all([...live].map((child) => child.stop()));
}

// Ports ------------------------------------------------------------------------------------------

/*
 * Ports are drawn at random from below Linux's ephemeral range (32768–60999), where the
 * kernel never hands one out to a socket bound to port 0, so only a test that draws
 * the same number can collide. Each one is checked free by binding it; the start
 * helpers below also draw again if the program still finds its port taken (another
 * test file running in parallel got there between the check and the bind).
 */
const PORT_LOW = 20_000;
const PORT_HIGH = 32_000;
const drawnPorts = new Set<number>();

export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = PORT_LOW + Math.floor(Math.random() * (PORT_HIGH - PORT_LOW));
    if (drawnPorts.has(port)) continue;
    drawnPorts.add(port);
    try {
      const probe = await Bun.udpSocket({ hostname: "0.0.0.0", port });
      probe.close();
      return port;
    } catch {
      // Taken: draw another.
    }
  }
  throw new Error(`No free UDP port found from ${PORT_LOW} to ${PORT_HIGH} after 200 tries`);
}

// Sessions ---------------------------------------------------------------------------------------

export const SERVER_LISTENING = /listening on UDP port (\d+)/;
export const WELCOME = ">>> [Welcome, You are registered.]";
export const TABLE_UPDATED = ">>> [Client table updated.]";
const PORT_IN_USE = /already in use/;
const START_TRIES = 5;

export interface ServerHandle {
  readonly process: ChatProcess;
  readonly port: number;
  readonly dataDir: string;
}

/*
 * The e2e tests mostly wait for the programs' own 500 ms timers, so they run
 * concurrently; this bounds how many sessions are live at once, so that a burst of
 * process starts on a small machine cannot starve a client past a 500 ms probe.
 */
const MAX_LIVE_SESSIONS = 4;
let liveSessions = 0;
const sessionQueue: (() => void)[] = [];

async function acquireSessionSlot(): Promise<void> {
  if (liveSessions < MAX_LIVE_SESSIONS) {
    liveSessions++;
    return;
  }
  // The slot is handed over by the releasing session, so the count stays as it is.
  await new Promise<void>((resolvePromise) => sessionQueue.push(resolvePromise));
}

function releaseSessionSlot(): void {
  const next = sessionQueue.shift();
  if (next) next();
  else liveSessions--;
}

/**
 * One test's processes and data directories. `await using` it, so that they are
 * killed and removed however the test ends, also when tests run concurrently:
 * `await using chat = await ChatSession.open(program)`.
 */
export class ChatSession implements AsyncDisposable {
  readonly program: Program;
  readonly #processes: ChatProcess[] = [];
  readonly #dirs: string[] = [];
  /**
   * The session's own config directory (XDG_CONFIG_HOME): clients keep their identity,
   * pinned server keys and known keys there, never in the user's ~/.config. One per
   * session, so a client started again in it is the same user, and a server key pinned
   * for a port in another session cannot meet this session's server on that port.
   */
  readonly configHome: string;
  #closed = false;

  private constructor(program: Program) {
    this.program = program;
    this.configHome = mkdtempSync(join(tmpdir(), "chatapp-config-"));
    this.#dirs.push(this.configHome);
  }

  /** Waits for a free session slot (see MAX_LIVE_SESSIONS) and opens a session. */
  static async open(program: Program): Promise<ChatSession> {
    await acquireSessionSlot();
    return new ChatSession(program);
  }

  /** A fresh empty directory, removed when the session ends. */
  async makeDataDir(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), "chatapp-e2e-"));
    this.#dirs.push(dir);
    return dir;
  }

  /** Starts any chatapp command line; nothing is awaited. */
  spawn(args: readonly string[], label: string, port: number): ChatProcess {
    const child = new ChatProcess(this.program, args, label, port, {
      XDG_CONFIG_HOME: this.configHome,
    });
    this.#processes.push(child);
    return child;
  }

  /**
   * Starts a server and waits until it listens. With no port it draws a free one
   * (again if the program finds it taken); with a port, that one or a failure.
   */
  async startServer(
    options: {
      readonly port?: number;
      readonly dataDir?: string;
      /** More server options, such as `--verbose`. */
      readonly args?: readonly string[];
      /** Options to put before `-s`. */
      readonly leading?: readonly string[];
    } = {},
  ): Promise<ServerHandle> {
    const dataDir = options.dataDir ?? (await this.makeDataDir());
    const { args = [], leading = [] } = options;
    for (let attempt = 1; ; attempt++) {
      const port = options.port ?? (await freePort());
      const server = this.spawn(
        [...leading, "-s", String(port), "--data-dir", dataDir, ...args],
        "server",
        port,
      );
      if (await this.#started(server, SERVER_LISTENING, attempt, options.port === undefined)) {
        return { process: server, port, dataDir };
      }
    }
  }

  /** Starts a client on loopback and waits for its welcome line. */
  async startClient(
    name: string,
    server: ServerHandle,
    options: {
      readonly port?: number;
      readonly serverIp?: string;
      /** Options to put before `-c`. */
      readonly leading?: readonly string[];
    } = {},
  ): Promise<ChatProcess> {
    for (let attempt = 1; ; attempt++) {
      const port = options.port ?? (await freePort());
      const client = this.spawnClient(
        name,
        server,
        port,
        `client ${name}`,
        options.serverIp,
        options.leading,
      );
      if (await this.#started(client, WELCOME, attempt, options.port === undefined)) return client;
    }
  }

  /**
   * Starts clients one after the other, each registered and shown its first table,
   * then waits until every one's table lists them all online.
   */
  async startClients<const Names extends readonly string[]>(
    server: ServerHandle,
    names: Names,
  ): Promise<{ readonly [K in keyof Names]: ChatProcess }> {
    const clients: ChatProcess[] = [];
    for (const name of names) {
      const client = await this.startClient(name, server);
      await client.waitForLine(TABLE_UPDATED);
      clients.push(client);
    }
    const everyone = Object.fromEntries(names.map((name) => [name, "online" as const]));
    await Promise.all(clients.map((client) => waitForTable(client, everyone)));
    return clients as unknown as { readonly [K in keyof Names]: ChatProcess };
  }

  /** Starts a client without waiting for anything. */
  spawnClient(
    name: string,
    server: ServerHandle,
    port: number,
    label = `client ${name}`,
    serverIp = LOOPBACK,
    leading: readonly string[] = [],
  ): ChatProcess {
    return this.spawn(
      [...leading, "-c", name, serverIp, String(server.port), String(port)],
      label,
      port,
    );
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await Promise.all(this.#processes.map((child) => child.stop()));
      await Promise.all(this.#dirs.map((dir) => rm(dir, { recursive: true, force: true })));
    } finally {
      releaseSessionSlot();
    }
  }

  /** True once `ready` is printed; false if the port was taken and another may be drawn. */
  async #started(
    child: ChatProcess,
    ready: LineMatch,
    attempt: number,
    mayRetry: boolean,
  ): Promise<boolean> {
    try {
      await child.waitForLine(ready);
      return true;
    } catch (error) {
      await child.stop();
      const portTaken = child.lines("stderr").some((line) => PORT_IN_USE.test(line));
      if (portTaken && mayRetry && attempt < START_TRIES) return false;
      throw error;
    }
  }
}

// Client tables ----------------------------------------------------------------------------------

export type Presence = "online" | "offline";

const TABLE_HEADING = /^>>> \[Client table: (\d+) clients?\]$/;
const TABLE_ROW = /^>>> {3}(\S+) {2,}(\S+) {2,}(online|offline)$/;

/**
 * Waits until the client's local table shows exactly these clients with this
 * presence: asks with `list`, and if the table is not there yet waits for the next
 * `[Client table updated.]` and asks again. Event-driven: no sleeping. It moves the
 * client's stdout cursor past the last `list` output.
 */
export async function waitForTable(
  client: ChatProcess,
  expected: Readonly<Record<string, Presence>>,
  options: { readonly timeoutMs?: number } = {},
): Promise<void> {
  const deadline = performance.now() + (options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const want = JSON.stringify(Object.entries(expected).sort());
  for (;;) {
    client.type("list");
    const heading = await client.waitForLine(TABLE_HEADING);
    const count = Number(TABLE_HEADING.exec(heading)?.[1]);
    const rows: [string, string][] = [];
    for (let i = 0; i < count; i++) {
      const row = TABLE_ROW.exec(await client.waitForLine(TABLE_ROW));
      rows.push([row?.[1] ?? "", row?.[3] ?? ""]);
    }
    const got = JSON.stringify(rows.sort());
    if (got === want) return;
    const mismatch = `${client.label}'s table is ${got}, expected ${want}`;
    const left = deadline - performance.now();
    if (left <= 0) throw new Error(`${mismatch}.\n${client.transcript()}`);
    try {
      // The rows are printed at once, so an update after them is one the `list` did not see.
      await client.waitForLine(TABLE_UPDATED, { timeoutMs: left });
    } catch {
      throw new Error(`${mismatch}, and no update came.\n${client.transcript()}`);
    }
  }
}

// Timestamps -------------------------------------------------------------------------------------

export const TIMESTAMP = String.raw`\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z`;

/** Fails unless the text is an ISO UTC timestamp to the second within [from, to] (epoch ms). */
export function checkTimestamp(text: string, from: number, to: number): void {
  if (!new RegExp(`^${TIMESTAMP}$`).test(text))
    throw new Error(`${JSON.stringify(text)} is not a UTC timestamp like 2026-11-25T20:46:43Z`);
  const at = Date.parse(text);
  const earliest = Math.floor(from / 1000) * 1000;
  if (!(at >= earliest && at <= to)) {
    throw new Error(
      `timestamp ${text} is outside the test's run: ${new Date(earliest).toISOString()} to ${new Date(to).toISOString()}`,
    );
  }
}

/** A pattern for `>>> <prefix><timestamp> <message>`, the timestamp captured. */
export function storedLine(prefix: string, message: string): RegExp {
  return new RegExp(`^${escapeRegExp(`>>> ${prefix}`)}(${TIMESTAMP}) ${escapeRegExp(message)}$`);
}

export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
