import { describe, expect, test } from "bun:test";
import type { ClientOptions, ServerOptions } from "../../src/cli/options.ts";
import { type CliDeps, runCli } from "../../src/cli/run-cli.ts";
import { formatVersion, versionInfo } from "../../src/cli/version.ts";
import { BindError, bindProblem, PortInUseError, StoreOpenError } from "../../src/io/errors.ts";

interface Harness {
  readonly deps: CliDeps;
  readonly out: string[];
  readonly err: string[];
  readonly servers: ServerOptions[];
  readonly clients: ClientOptions[];
}

function harness(outcome: () => Promise<number> = async () => 0): Harness {
  const out: string[] = [];
  const err: string[] = [];
  const servers: ServerOptions[] = [];
  const clients: ClientOptions[] = [];
  return {
    out,
    err,
    servers,
    clients,
    deps: {
      runServer: (options) => {
        servers.push(options);
        return outcome();
      },
      runClient: (options) => {
        clients.push(options);
        return outcome();
      },
      writeOut: (text) => out.push(text),
      writeErr: (text) => err.push(text),
    },
  };
}

describe("runCli in-process", () => {
  test("-s starts the server runtime with the parsed options and returns its exit code", async () => {
    const h = harness(async () => 3);
    expect(await runCli(["-s", "5000", "--verbose"], h.deps)).toBe(3);
    expect(h.servers).toEqual([
      {
        port: 5000,
        dataDir: "./chatapp-data",
        retentionDays: 30,
        storeQuota: 100_000,
        logLevel: "verbose",
      },
    ]);
    expect(h.clients).toEqual([]);
    expect(h.err).toEqual([]);
  });

  test("-c starts the client runtime", async () => {
    const h = harness();
    expect(await runCli(["-c", "alice", "localhost", "5000", "5001"], h.deps)).toBe(0);
    expect(h.clients).toEqual([
      { name: "alice", serverIp: "127.0.0.1", serverPort: 5000, clientPort: 5001 },
    ]);
  });

  test("refused arguments: exit 2, the reason and the usage line, no runtime started", async () => {
    const h = harness();
    expect(await runCli(["-c", "alice", "127.0.0.1", "5000", "80"], h.deps)).toBe(2);
    expect(h.err).toEqual([
      'chatapp: client-port must be an integer from 1024 to 65535, got "80"\n' +
        "Usage: chatapp -c <name> <server-ip> <server-port> <client-port> [options]",
    ]);
    expect(h.clients).toEqual([]);
    expect(h.out).toEqual([]);
  });

  test("no arguments: exit 2 with the usage of both modes", async () => {
    const h = harness();
    expect(await runCli([], h.deps)).toBe(2);
    expect(h.err).toEqual([
      "chatapp: no mode given: use -s to run a server or -c to run a client\n" +
        "Usage: chatapp -s <port> | chatapp -c <name> <server-ip> <server-port> <client-port>",
    ]);
  });

  test("--version prints one line", async () => {
    const h = harness();
    expect(await runCli(["--version"], h.deps)).toBe(0);
    expect(h.out).toEqual([formatVersion(versionInfo())]);
    expect(h.out[0]).toMatch(/^chatapp \d+\.\d+\.\d+\S* \(source, [a-z0-9]+-[a-z0-9]+\)$/);
  });

  test("a port in use: exit 1 with its own message", async () => {
    const h = harness(() => Promise.reject(new PortInUseError(5000)));
    expect(await runCli(["-s", "5000"], h.deps)).toBe(1);
    expect(h.err).toEqual([
      "chatapp: port 5000 is already in use: choose another port or stop the program that holds it",
    ]);
  });

  test("an address that cannot be bound: exit 1 with the reason in words", async () => {
    const h = harness(() =>
      Promise.reject(new BindError("192.0.2.1", 5000, bindProblem("EADDRNOTAVAIL", "?"))),
    );
    expect(await runCli(["-s", "5000", "--bind", "192.0.2.1"], h.deps)).toBe(1);
    expect(h.err).toEqual([
      "chatapp: cannot listen on 192.0.2.1 port 5000: no network interface of this machine has that address",
    ]);
    expect(h.servers[0]?.bind).toBe("192.0.2.1");
    expect(bindProblem("EACCES", "?")).toBe("permission denied");
    expect(bindProblem("EWHATEVER", "bind failed")).toBe("bind failed");
  });

  test("a store that cannot be opened: exit 1 with its own message", async () => {
    const h = harness(() =>
      Promise.reject(new StoreOpenError("/nope/db.sqlite", "permission denied")),
    );
    expect(await runCli(["-s", "5000", "--data-dir", "/nope"], h.deps)).toBe(1);
    expect(h.err).toEqual([
      "chatapp: cannot open the message store at /nope/db.sqlite: permission denied",
    ]);
  });

  test("anything else: one line, internal error, exit 1", async () => {
    const h = harness(() => Promise.reject(new Error("boom\n    at somewhere (file.ts:1:1)")));
    expect(await runCli(["-c", "bob", "::1", "5000", "5001"], h.deps)).toBe(1);
    expect(h.err).toEqual(["chatapp: internal error: boom"]);
  });

  test("a thrown non-Error value is reported too", async () => {
    const h = harness(() => Promise.reject("weird"));
    expect(await runCli(["-s", "5000"], h.deps)).toBe(1);
    expect(h.err).toEqual(["chatapp: internal error: weird"]);
  });
});
