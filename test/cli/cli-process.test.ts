import { describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import { BINARY_PATH } from "../helpers/fresh-binary.ts";

const ROOT = resolve(import.meta.dir, "../..");

// The test preload builds the binary when it is missing or stale, so both always run.
const programs: [string, string[]][] = [
  ["bun src/main.ts", [process.execPath, "src/main.ts"]],
  ["dist/chatapp", [BINARY_PATH]],
];

interface Run {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function run(command: string[], args: string[]): Promise<Run> {
  const child = Bun.spawn([...command, ...args], {
    cwd: ROOT,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  return { exitCode, stdout, stderr };
}

const refusals: [string[], RegExp, string][] = [
  [[], /^chatapp: no mode given/, "Usage: chatapp -s <port> | chatapp -c"],
  [["hello"], /^chatapp: unknown mode "hello"/, "Usage: chatapp -s <port> | chatapp -c"],
  [["-x"], /^chatapp: unknown option "-x"/, "Usage: chatapp -s <port> | chatapp -c"],
  [["-s"], /^chatapp: missing argument <port>$/, "Usage: chatapp -s <port> [options]"],
  [
    ["-s", "80"],
    /^chatapp: port must be an integer from 1024 to 65535, got "80"$/,
    "Usage: chatapp -s",
  ],
  [["-s", "5000", "5001"], /^chatapp: unexpected argument "5001"/, "Usage: chatapp -s"],
  [["-s", "5000", "--bogus"], /^chatapp: unknown option "--bogus"/, "Usage: chatapp -s"],
  [
    ["-s", "5000", "--quiet", "--verbose"],
    /^chatapp: --quiet and --verbose cannot/,
    "Usage: chatapp -s",
  ],
  [["-c", "bob"], /^chatapp: missing argument <server-ip>/, "Usage: chatapp -c <name>"],
  [["--version", "extra"], /^chatapp: --version takes no other arguments, got "extra"$/, "Usage:"],
  [["-s", "05001"], /^chatapp: port "05001" has a leading zero; write 5001$/, "Usage: chatapp -s"],
  [
    ["-c", "bob", "127.0.0.01", "5000", "5001"],
    /^chatapp: server-ip "127.0.0.01" is not a valid IPv4 address: "01" has a leading zero$/,
    "Usage: chatapp -c",
  ],
  [["--data-dir", "X", "5000"], /^chatapp: no mode given/, "Usage: chatapp -s <port> |"],
  [
    ["-c", "bob", "127.0.0.1", "5000", "80"],
    /^chatapp: client-port must be an integer from 1024 to 65535, got "80"$/,
    "Usage: chatapp -c <name>",
  ],
  [
    ["-c", "bob", "example.com", "5000", "5001"],
    /^chatapp: server-ip must be an IPv4/,
    "Usage: chatapp -c",
  ],
  [
    ["-c", "b c", "127.0.0.1", "5000", "5001"],
    /^chatapp: name "b c" is not allowed/,
    "Usage: chatapp -c",
  ],
  [
    ["-c", "bob", "127.0.0.1", "5000", "5001", "x"],
    /^chatapp: unexpected argument "x"/,
    "Usage: chatapp -c",
  ],
];

for (const [label, command] of programs) {
  describe(`${label} as a process`, () => {
    for (const [args, reason, usage] of refusals) {
      test(`refuses ${JSON.stringify(args)}: exit 2, reason, usage, no stack`, async () => {
        const result = await run(command, args);
        expect(result.exitCode).toBe(2);
        expect(result.stdout).toBe("");
        const lines = result.stderr.split("\n");
        expect(lines).toHaveLength(3);
        expect(lines[0]).toMatch(reason);
        // Every message starts in lower case after the prefix.
        expect(lines[0]).toMatch(/^chatapp: [^A-Z]/);
        expect(lines[1]).toStartWith(usage);
        expect(lines[2]).toBe("");
        expect(result.stderr).not.toMatch(/^\s+at /m);
      });
    }

    test("--help exits 0 and shows both modes", async () => {
      const result = await run(command, ["--help"]);
      expect(result.exitCode).toBe(0);
      expect(result.stdout).toContain("chatapp -s <port>");
      expect(result.stdout).toContain("chatapp -c <name> <server-ip> <server-port> <client-port>");
      expect(result.stdout).not.toContain("$bunfs");
      expect(result.stderr).toBe("");
    });

    test("-s --help and -c --help show one mode", async () => {
      const serverHelp = await run(command, ["-s", "--help"]);
      expect(serverHelp.exitCode).toBe(0);
      expect(serverHelp.stdout).toStartWith("Usage: chatapp -s <port> [options]\n");
      const clientHelp = await run(command, ["-c", "-h"]);
      expect(clientHelp.exitCode).toBe(0);
      expect(clientHelp.stdout).toStartWith(
        "Usage: chatapp -c <name> <server-ip> <server-port> <client-port> [options]\n",
      );
    });

    test("--version prints name, version, commit and target", async () => {
      const result = await run(command, ["--version"]);
      expect(result.exitCode).toBe(0);
      expect(result.stdout).toMatch(
        /^chatapp \d+\.\d+\.\d+\S* \((source|unknown|[0-9a-f]{7,}), [a-z0-9]+-[a-z0-9]+(-musl)?\)\n$/,
      );
      expect(result.stderr).toBe("");
    });
  });
}
