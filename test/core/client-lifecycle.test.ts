import { describe, expect, test } from "bun:test";
import { commandUsage, helpLines } from "../../src/core/client-commands.ts";
import { timing } from "../../src/core/timing.ts";
import { notices } from "../../src/text/notices.ts";
import { registeredNetwork, SimulatedNetwork } from "../helpers/simulated-network.ts";

const WELCOME = "[Welcome, You are registered.]";
const TABLE_UPDATED = "[Client table updated.]";

describe("commands typed before registration completes", () => {
  test("run after it, in order, once the table is there", () => {
    const network = registeredNetwork(["y"]);
    network.setFaults({ delayMinMs: 40, delayMaxMs: 40 }, { from: "server" });
    const x = network.addClient("x");
    x.type("send y first");
    x.type("list");
    x.type("send_all second");
    expect(network.sentBy("x").map((d) => d.message.type)).toEqual(["register"]);
    network.settle();
    expect(x.shown()).toEqual([
      WELCOME,
      TABLE_UPDATED,
      "[Client table: 2 clients]",
      "  y  127.0.0.1:6001  online",
      "  x  127.0.0.1:6002  online",
      "[Message received by y.]",
      "[Message received by Server.]",
    ]);
    expect(network.client("y").shown().slice(-2)).toEqual([
      "x: first",
      "[Channel_Message x: second]",
    ]);
  });

  test("run without the table when it does not come within the push deadline", () => {
    const network = registeredNetwork(["y"]);
    const heal = network.drop((d) => d.to === "x" && d.message.type === "table");
    const x = network.addClient("x");
    x.type("send y hi");
    x.type("list");
    network.advance(timing.pushDeadlineMs - 1);
    expect(x.shown()).toEqual([WELCOME]);
    network.advance(1);
    expect(x.shown()).toEqual([
      WELCOME,
      notices.unknownRecipient("y"),
      "[Client table: 0 clients]",
    ]);
    heal();
  });

  test("a usage error or an unknown command is answered at once, even while registering", () => {
    const network = new SimulatedNetwork({ withoutServer: true });
    const x = network.addClient("x");
    x.type("send y");
    x.type("frobnicate");
    expect(x.shown()).toEqual([
      `[Usage: ${commandUsage.send}]`,
      "[Unknown command: frobnicate. Type help for the list.]",
    ]);
  });
});

describe("leaving", () => {
  test("quit exits 0 at once, without telling the server", () => {
    const network = registeredNetwork(["x", "y"]);
    const x = network.client("x");
    const sentMark = network.sent.length;
    x.type("quit");
    expect(x.exitCode).toBe(0);
    network.settle();
    expect(network.sent.slice(sentMark)).toEqual([]);
    expect(network.server.clients.get("x")?.online).toBe(true);
  });

  test("end of input exits 0 at once when nothing is outstanding", () => {
    const network = registeredNetwork(["x"]);
    const x = network.client("x");
    x.endInput();
    expect(x.exitCode).toBe(0);
  });

  test("end of input waits for outstanding requests, then exits 0", () => {
    const network = registeredNetwork(["x", "y"]);
    const [x, y] = [network.client("x"), network.client("y")];
    y.kill();
    const start = network.now;
    x.type("send y last words");
    x.endInput();
    network.advance(999);
    expect(x.exitCode).toBeUndefined();
    network.advance(1);
    expect(x.shown().slice(-2)).toEqual([
      TABLE_UPDATED,
      "[Messages received by the server and saved]",
    ]);
    expect(x.exitCode).toBe(0);
    expect(x.lines.at(-1)?.at).toBe(start + 1000);
  });

  test("end of input during registration: registers, runs what was typed, then exits 0", () => {
    const network = registeredNetwork(["y"]);
    const x = network.addClient("x");
    x.type("send y bye");
    x.endInput();
    network.settle();
    expect(x.shown()).toEqual([WELCOME, TABLE_UPDATED, "[Message received by y.]"]);
    expect(x.exitCode).toBe(0);
    expect(network.client("y").shown().at(-1)).toBe("x: bye");
  });

  test("end of input with the server gone: the first registration still fails with 1", () => {
    const network = new SimulatedNetwork({ withoutServer: true });
    const x = network.addClient("x");
    x.endInput();
    network.settle();
    expect(x.exitCode).toBe(1);
  });
});

describe("refusals are shown and nothing is sent", () => {
  const cases: [string, string, string][] = [
    ["dereg of another name", "dereg y", notices.notYourName("x")],
    ["reg of another name", "reg y", notices.notYourName("x")],
    ["reg while online", "reg x", notices.alreadyRegistered],
    ["an unknown recipient", "send nobody hi", notices.unknownRecipient("nobody")],
    [
      "a message over 4000 characters",
      `send y ${"é".repeat(4001)}`,
      notices.messageTooLong(4001, 4000),
    ],
    [
      "a channel message over 4000 characters",
      `send_all ${"😀".repeat(4001)}`,
      notices.messageTooLong(4001, 4000),
    ],
    ["a usage error", "send", `[Usage: ${commandUsage.send}]`],
    ["an unknown command", "sendall hi", "[Unknown command: sendall. Type help for the list.]"],
    [
      "an escape sequence as a command",
      "\u001b[31m",
      "[Unknown command: \\x1B[31m. Type help for the list.]",
    ],
  ];
  for (const [what, line, answer] of cases) {
    test(what, () => {
      const network = registeredNetwork(["x", "y"]);
      const x = network.client("x");
      const mark = x.shown().length;
      const sentMark = network.sent.length;
      x.type(line);
      network.settle();
      expect(x.shownSince(mark)).toEqual([answer]);
      expect(network.sent.slice(sentMark)).toEqual([]);
      expect(x.running).toBe(true);
    });
  }

  const whileOffline: [string, string][] = [
    ["send while offline", "send y hi"],
    ["send_all while offline", "send_all hi"],
  ];
  for (const [what, line] of whileOffline) {
    test(what, () => {
      const network = registeredNetwork(["x", "y"]);
      const x = network.client("x");
      x.type("dereg x");
      network.settle();
      const mark = x.shown().length;
      const sentMark = network.sent.length;
      x.type(line);
      network.settle();
      expect(x.shownSince(mark)).toEqual([notices.notRegistered]);
      expect(network.sent.slice(sentMark)).toEqual([]);
    });
  }

  test("dereg while offline", () => {
    const network = registeredNetwork(["x"]);
    const x = network.client("x");
    x.type("dereg x");
    network.settle();
    const mark = x.shown().length;
    const sentMark = network.sent.length;
    x.type("dereg x");
    network.settle();
    expect(x.shownSince(mark)).toEqual([notices.alreadyOffline]);
    expect(network.sent.slice(sentMark)).toEqual([]);
  });

  test("a second dereg while the first is outstanding waits for its outcome", () => {
    const network = registeredNetwork(["x"]);
    const x = network.client("x");
    x.type("dereg x");
    x.type("dereg x");
    expect(network.sentBy("x", "deregister")).toHaveLength(1);
    network.settle();
    expect(x.shown().slice(-2)).toEqual([notices.offlineBye, notices.alreadyOffline]);
    expect(network.sentBy("x", "deregister")).toHaveLength(1);
  });

  test("help and list answer locally", () => {
    const network = registeredNetwork(["x", "y"]);
    const x = network.client("x");
    network.client("y").type("dereg y");
    network.settle();
    const mark = x.shown().length;
    const sentMark = network.sent.length;
    x.type("help");
    x.type("list");
    expect(x.shownSince(mark)).toEqual([
      ...helpLines,
      "[Client table: 2 clients]",
      "  x  127.0.0.1:6001  online",
      "  y  127.0.0.1:6002  offline",
    ]);
    expect(network.sent.slice(sentMark)).toEqual([]);
  });
});

describe("list while offline", () => {
  test("says the table is as it was, and shows yourself offline", () => {
    const network = registeredNetwork(["x", "y"]);
    const x = network.client("x");
    x.type("dereg x");
    network.settle();
    const mark = x.shown().length;
    x.type("list");
    expect(x.shownSince(mark)).toEqual([
      "[Client table: 2 clients, as it was when you went offline]",
      "  x  127.0.0.1:6001  offline",
      "  y  127.0.0.1:6002  online",
    ]);
  });
});
