import { describe, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * A real `redis-server` for the tests, on a free loopback port with its own directory,
 * persisting as a cluster should (`appendonly yes`, `appendfsync always`, no RDB). It can
 * be stopped, killed and started again on the same port and directory, as an outage is.
 */
export class RedisServer {
  #process: Bun.Subprocess | undefined;
  #removed = false;

  private constructor(
    readonly port: number,
    readonly dir: string,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts one on a free port; resolves once it answers PING. */
  static async start(): Promise<RedisServer> {
    const dir = mkdtempSync(join(tmpdir(), "chatapp-redis-"));
    for (let attempt = 0; attempt < 5; attempt++) {
      const server = new RedisServer(await freeTcpPort(), dir);
      try {
        await server.restart();
        return server;
      } catch (error) {
        await server.kill();
        if (attempt === 4) {
          rmSync(dir, { recursive: true, force: true });
          throw error;
        }
      }
    }
    throw new Error("unreachable");
  }

  /** Starts it again on the same port and directory (what it persisted comes back). */
  async restart(): Promise<void> {
    if (this.#process !== undefined) throw new Error("redis-server is already running");
    const child = Bun.spawn(
      [
        REDIS_SERVER,
        "--port",
        String(this.port),
        "--bind",
        "127.0.0.1",
        "--dir",
        this.dir,
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
      ],
      { stdout: "ignore", stderr: "ignore", stdin: "ignore" },
    );
    this.#process = child;
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) break;
      if (await answersPing(this.port)) return;
      await Bun.sleep(20);
    }
    await this.kill();
    throw new Error(`redis-server did not start on port ${this.port}`);
  }

  /** Runs one command on a connection of its own (for setting up and inspecting a test). */
  async command(command: string, args: string[] = []): Promise<unknown> {
    const client = new Bun.RedisClient(this.url, {
      connectionTimeout: 2_000,
      autoReconnect: false,
    });
    try {
      return await client.send(command, args);
    } finally {
      client.close();
    }
  }

  /** Empties every database: each test starts from nothing. */
  async flushAll(): Promise<void> {
    await this.command("FLUSHALL");
  }

  /** Waits until no rewrite of the append-only file runs (Redis will not stop during the first). */
  async waitForAofRewrite(): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const info = String(await this.command("INFO", ["persistence"]));
      if (/aof_rewrite_in_progress:0/.test(info) && /aof_rewrite_scheduled:0/.test(info)) return;
      await Bun.sleep(20);
    }
    throw new Error("redis-server is still rewriting its append-only file after 10 s");
  }

  /** Freezes it (SIGSTOP): connections stay open and nothing is answered, as with a hung disk. */
  freeze(): void {
    this.#process?.kill("SIGSTOP");
  }

  /** Lets a frozen one go on (SIGCONT). */
  thaw(): void {
    this.#process?.kill("SIGCONT");
  }

  /** Stops it as an operator would (SIGTERM: it writes its append-only file and exits). */
  async stop(): Promise<void> {
    await this.#end("SIGTERM");
  }

  /** Kills it outright (SIGKILL), as a crash would. */
  async kill(): Promise<void> {
    await this.#end("SIGKILL");
  }

  /** Stops it and removes its directory. */
  async remove(): Promise<void> {
    await this.kill();
    if (this.#removed) return;
    this.#removed = true;
    rmSync(this.dir, { recursive: true, force: true });
  }

  async #end(signal: NodeJS.Signals): Promise<void> {
    const child = this.#process;
    if (child === undefined) return;
    this.#process = undefined;
    child.kill("SIGCONT");
    child.kill(signal);
    // SIGTERM is refused while Redis writes its first append-only file; it must not hang a test.
    const stopped = await Promise.race([
      child.exited.then(() => true),
      Bun.sleep(5_000).then(() => false),
    ]);
    if (!stopped) {
      child.kill("SIGKILL");
      await child.exited;
    }
  }
}

/** Where redis-server is, or undefined when this machine has none. */
export const REDIS_SERVER: string = Bun.which("redis-server") ?? "";

export const REDIS_INSTALL_HINT =
  "redis-server is not installed: the Redis tests are skipped (apt-get install redis-server)";

let hintShown = false;

/**
 * `describe` for tests that need a real redis-server: skipped with one line when there is
 * none, unless CHATAPP_REQUIRE_REDIS=1 (CI), where a missing redis-server fails.
 */
export function describeWithRedis(name: string, body: () => void): void {
  if (REDIS_SERVER !== "") {
    describe(name, body);
    return;
  }
  if (process.env.CHATAPP_REQUIRE_REDIS === "1") {
    test(name, () => {
      throw new Error(
        "CHATAPP_REQUIRE_REDIS=1 but redis-server is not installed (apt-get install redis-server)",
      );
    });
    return;
  }
  if (!hintShown) {
    hintShown = true;
    console.warn(REDIS_INSTALL_HINT);
  }
  describe.skip(name, body);
}

async function answersPing(port: number): Promise<boolean> {
  try {
    const socket = await Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: { data() {}, error() {} },
    });
    socket.end();
    const client = new Bun.RedisClient(`redis://127.0.0.1:${port}`, {
      connectionTimeout: 500,
      autoReconnect: false,
    });
    try {
      return (await client.send("PING", [])) === "PONG";
    } finally {
      client.close();
    }
  } catch {
    return false;
  }
}

/** A TCP port free on loopback, below Linux's ephemeral range as the other helpers draw them. */
export async function freeTcpPort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    try {
      const probe = Bun.listen({
        hostname: "127.0.0.1",
        port,
        socket: { data() {} },
      });
      probe.stop(true);
      return port;
    } catch {
      // Taken: draw another.
    }
  }
  throw new Error("no free TCP port found on 127.0.0.1");
}

/**
 * Every stored copy has been removed from Redis: a client shows a message before it
 * acks it, and its node removes the copy after that, so this waits (up to 5 s) for it.
 */
export async function storedMessagesDrain(redis: RedisServer): Promise<void> {
  const deadline = performance.now() + 5_000;
  let left = await redis.command("HLEN", ["chat:messages"]);
  while (left !== 0 && performance.now() < deadline) {
    await Bun.sleep(20);
    left = await redis.command("HLEN", ["chat:messages"]);
  }
  if (left !== 0) throw new Error(`${left} stored message(s) still in Redis after 5 s`);
}
