import { afterAll, describe, expect, test } from "bun:test";
import { clientHelp, rootHelp, serverHelp, table, wrap } from "../../src/cli/help.ts";
import {
  ChatSession,
  killAll,
  programs,
  SERVER_LISTENING,
  testsFor,
} from "../helpers/process-driver.ts";

afterAll(killAll);

const helps: [string, string][] = [
  ["chatapp --help", rootHelp("chatapp 0.1.0 (abcdef1, linux-x64)")],
  ["chatapp -s --help", serverHelp()],
  ["chatapp -c --help", clientHelp()],
];

/** A row of a help table: two spaces, an option or argument, then its description. */
const ROW = /^ {2}([-<]\S*(?: [A-Z]+)?)( +)(\S.*)$/;

describe("--help", () => {
  for (const [label, help] of helps) {
    test(`${label}: every line fits in 80 columns`, () => {
      const long = help.split("\n").filter((line) => line.length > 80);
      expect(long).toEqual([]);
    });

    test(`${label}: every description starts in one column, continuations too`, () => {
      const columns = new Set<number>();
      let rows = 0;
      for (const line of help.split("\n")) {
        const row = ROW.exec(line);
        if (row) {
          rows++;
          columns.add(line.length - (row[3] ?? "").length);
        } else if (/^ {3,}\S/.test(line)) {
          columns.add(line.length - line.trimStart().length);
        }
      }
      expect(rows).toBeGreaterThan(0);
      expect([...columns]).toEqual([22]);
    });
  }

  test("--simulate is described for both modes", () => {
    expect(rootHelp("v")).toContain("Options of both modes (-s and -c):\n  --simulate FAULTS");
    expect(serverHelp()).toContain("\n  --simulate FAULTS");
    expect(clientHelp()).toContain("\n  --simulate FAULTS");
    expect(serverHelp()).toContain("\n  --bind ADDRESS");
  });

  test("wrap and table", () => {
    expect(wrap("aa bb cc", 5)).toEqual(["aa bb", "cc"]);
    expect(wrap("averyveryverylongword x", 5)).toEqual(["averyveryverylongword", "x"]);
    expect(table([["--x", "one two"]])).toEqual([`  --x${" ".repeat(17)}one two`]);
    expect(table([["--a-very-long-option-name", "text"]])).toEqual([
      "  --a-very-long-option-name",
      `${" ".repeat(22)}text`,
    ]);
  });
});

describe.concurrent.each(programs)("%s", (_title, program) => {
  const it = testsFor(program);

  it("chatapp --verbose --data-dir X -s <port>: options before the mode are taken", async () => {
    await using chat = await ChatSession.open(program);
    const server = await chat.startServer({ leading: ["--verbose", "--bind", "127.0.0.1"] });
    expect(server.process.lines().find((line) => SERVER_LISTENING.test(line))).toEndWith(
      `listening on UDP port ${server.port} on 127.0.0.1 only`,
    );
    const peer = await Bun.udpSocket({ hostname: "127.0.0.1" });
    try {
      peer.send("x", server.port, "127.0.0.1");
      await server.process.waitForLine(
        / DEBUG dropped a datagram from 127\.0\.0\.1:\d+ \(1 bytes\): malformed$/,
      );
    } finally {
      peer.close();
    }
  });

  it("--simulate without seed=: each side's seed is its own port, and it is printed", async () => {
    await using chat = await ChatSession.open(program);
    const server = await chat.startServer({ args: ["--simulate", "loss=0"] });
    await server.process.waitForLine(
      new RegExp(`WARN simulating loss 0, duplication 0, seed ${server.port}$`),
      { stream: "stderr" },
    );
    const client = await chat.startClient("sim", server, { leading: ["--simulate", "loss=0"] });
    expect(client.lines()[0]).toBe(`>>> [simulating loss 0, duplication 0, seed ${client.port}]`);
    expect(client.port).not.toBe(server.port);
  });
});
