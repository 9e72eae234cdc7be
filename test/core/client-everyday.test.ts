import { describe, expect, test } from "bun:test";
import { timing } from "../../src/core/timing.ts";
import { notices } from "../../src/text/notices.ts";
import { formatTimestamp } from "../../src/text/timestamp.ts";
import { readByRecipient } from "../helpers/sealed.ts";
import { registeredNetwork } from "../helpers/simulated-network.ts";

const WELCOME = "[Welcome, You are registered.]";
const TABLE_UPDATED = "[Client table updated.]";
const SAVED = "[Messages received by the server and saved]";

describe("commands never overtake each other", () => {
  test("dereg, send, reg typed at once run in order: each waits for dereg's outcome", () => {
    const network = registeredNetwork(["x", "y"]);
    const x = network.client("x");
    const mark = x.shown().length;
    const registers = network.sentBy("x", "register").length;
    x.type("dereg x");
    x.type("send y four");
    x.type("reg x");
    expect(network.sentBy("x", "register")).toHaveLength(registers);
    network.settle();
    expect(x.shownSince(mark)).toEqual([
      notices.offlineBye,
      notices.notRegistered,
      WELCOME,
      TABLE_UPDATED,
    ]);
    expect(x.state.phase).toBe("online");
    expect(network.sentBy("x", "register")).toHaveLength(registers + 1);
    expect(network.client("y").shown()).not.toContain("x: four");
  });

  test("a command waiting for reg runs once reg has its outcome, in the order typed", () => {
    const network = registeredNetwork(["x", "y"]);
    const x = network.client("x");
    x.type("dereg x");
    network.settle();
    const mark = x.shown().length;
    x.type("reg x");
    x.type("send y back");
    x.type("list");
    x.type("nonsense");
    expect(x.shownSince(mark)).toEqual([]);
    network.settle();
    const shown = x.shownSince(mark);
    // The send's own answer comes when y acknowledges; what runs after it is answered at once.
    expect(shown.slice(0, 2)).toEqual([WELCOME, "[Client table: 2 clients]"]);
    expect(shown.slice(4)).toEqual([
      notices.unknownCommand("nonsense"),
      TABLE_UPDATED,
      "[Message received by y.]",
    ]);
    expect(network.client("y").shown().at(-1)).toBe("x: back");
  });

  test("errors for lines typed during registration come after the answers to earlier lines", () => {
    const network = registeredNetwork(["y"]);
    network.setFaults({ delayMinMs: 40, delayMaxMs: 40 }, { from: "server" });
    const x = network.addClient("x");
    x.type("list");
    x.type("showall everyone now");
    x.type("frobnicate");
    expect(x.shown()).toEqual([]);
    network.settle();
    expect(x.shown()).toEqual([
      WELCOME,
      TABLE_UPDATED,
      "[Client table: 2 clients]",
      "  y  127.0.0.1:6001  online",
      "  x  127.0.0.1:6002  online",
      "[Usage: list [<prefix>]]",
      notices.unknownCommand("frobnicate"),
    ]);
  });

  test("while the server does not answer a dereg, later commands wait, then run", () => {
    const network = registeredNetwork(["x", "y"]);
    const x = network.client("x");
    network.drop((d) => d.from === "server" && d.to === "x" && d.message.type === "ack");
    const mark = x.shown().length;
    x.type("dereg x");
    x.type("list");
    network.advance(timing.ackWaitMs * (timing.serverRequestRetries + 1) - 1);
    expect(x.shownSince(mark)).toEqual([]);
    network.advance(1);
    expect(x.shownSince(mark)).toEqual([notices.serverNotResponding, notices.exiting]);
    expect(x.exitCode).toBe(1);
  });
});

describe("quit and exit with work outstanding", () => {
  for (const word of ["quit", "exit"]) {
    test(`${word} while a message waits for its ack: says so, shows the outcome, then leaves`, () => {
      const network = registeredNetwork(["x", "y"]);
      const [x, y] = [network.client("x"), network.client("y")];
      y.kill();
      const mark = x.shown().length;
      x.type("send y last words");
      x.type(word);
      expect(x.shownSince(mark)).toEqual([notices.finishingBeforeQuit]);
      expect(x.exitCode).toBeUndefined();
      network.settle();
      expect(x.shownSince(mark)).toEqual([
        notices.finishingBeforeQuit,
        notices.noAckSentToServer("y"),
        TABLE_UPDATED,
        SAVED,
      ]);
      expect(x.exitCode).toBe(0);
      expect(network.server.mailboxes.get("y")).toHaveLength(1);
      expect(network.store.load().messages.map(readByRecipient)).toEqual(["last words"]);
    });
  }

  test("a second quit leaves at once", () => {
    const network = registeredNetwork(["x", "y"]);
    const [x, y] = [network.client("x"), network.client("y")];
    y.kill();
    x.type("send y hello");
    x.type("quit");
    expect(x.exitCode).toBeUndefined();
    x.type("exit");
    expect(x.exitCode).toBe(0);
  });

  test("quit while the first registration is outstanding, with nothing typed before, leaves at once", () => {
    const network = registeredNetwork(["y"]);
    network.setFaults({ delayMinMs: 40, delayMaxMs: 40 }, { from: "server" });
    const x = network.addClient("x");
    x.type("quit");
    expect(x.exitCode).toBe(0);
    expect(x.shown()).toEqual([]);
  });

  test("quit after commands typed during registration runs them first", () => {
    const network = registeredNetwork(["y"]);
    network.setFaults({ delayMinMs: 40, delayMaxMs: 40 }, { from: "server" });
    const x = network.addClient("x");
    x.type("send y : before quitting");
    x.type("quit");
    expect(x.shown()).toEqual([notices.finishingBeforeQuit]);
    network.settle();
    expect(x.shown()).toEqual([
      notices.finishingBeforeQuit,
      WELCOME,
      TABLE_UPDATED,
      "[Message received by y.]",
    ]);
    expect(x.exitCode).toBe(0);
    expect(network.client("y").shown().at(-1)).toBe("x: before quitting");
  });
});

describe("stored messages for a client whose input has already ended", () => {
  function storedForY() {
    const network = registeredNetwork(["x", "y"]);
    const [x, y] = [network.client("x"), network.client("y")];
    y.type("dereg y");
    network.settle();
    const at = network.now;
    x.type("send y kept for you");
    network.settle();
    expect(x.shown().at(-1)).toBe(SAVED);
    y.kill();
    return { network, at };
  }

  test("it waits for the stored batches and shows them before exiting 0", () => {
    const { network, at } = storedForY();
    const y = network.addClient("y", { label: "y2" });
    y.endInput();
    network.settle();
    expect(y.shown()).toEqual([
      WELCOME,
      "[You have messages]",
      `x: ${formatTimestamp(at)} kept for you`,
    ]);
    expect(y.exitCode).toBe(0);
    expect(network.server.mailboxes.size).toBe(0);
  });

  test("it gives up waiting after the server's retry time if no batch comes", () => {
    const { network } = storedForY();
    const heal = network.drop((d) => d.message.type === "stored");
    const y = network.addClient("y", { label: "y2" });
    y.endInput();
    network.advance(100);
    // Announced only with the first message shown: none came.
    expect(y.shown()).toEqual([WELCOME]);
    const registeredAt = y.lines[0]?.at ?? 0;
    network.advance(registeredAt + timing.pushDeadlineMs - network.now - 1);
    expect(y.exitCode).toBeUndefined();
    network.advance(1);
    expect(y.exitCode).toBe(0);
    heal();
  });
});
