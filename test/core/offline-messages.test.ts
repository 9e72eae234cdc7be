import { describe, expect, test } from "bun:test";
import { PLAIN_ACK } from "../../src/core/server-state.ts";
import { MAILBOX_LIMIT, timing } from "../../src/core/timing.ts";
import { MAX_TEXT_LENGTH } from "../../src/protocol/messages.ts";
import { notices } from "../../src/text/notices.ts";
import { formatTimestamp } from "../../src/text/timestamp.ts";
import {
  registeredNetwork,
  type SimulatedNetwork,
  START_TIME,
} from "../helpers/simulated-network.ts";

const WELCOME = "[Welcome, You are registered.]";
const TABLE_UPDATED = "[Client table updated.]";
const SAVED = "[Messages received by the server and saved]";
const YOU_HAVE_MESSAGES = "[You have messages]";
const BYE = "[You are Offline. Bye.]";

/** x and z online, y de-registered; x saves two direct messages and z posts to the channel in between. */
function withMessagesForY(): { network: SimulatedNetwork; times: number[] } {
  const network = registeredNetwork(["x", "y", "z"]);
  const [x, y, z] = [network.client("x"), network.client("y"), network.client("z")];
  y.type("dereg y");
  network.settle();
  const times: number[] = [];
  network.advance(1_000);
  times.push(network.now);
  x.type("send y first, direct");
  network.settle();
  network.advance(2_000);
  times.push(network.now);
  z.type("send_all second, on the channel");
  network.settle();
  network.advance(3_000);
  times.push(network.now);
  x.type("send y third, direct");
  network.settle();
  expect(x.shown().filter((line) => line === SAVED)).toHaveLength(2);
  expect(z.shown().at(-1)).toBe("[Message received by Server.]");
  return { network, times };
}

describe("de-registration", () => {
  test("dereg: offline, still running, and the others get the table", () => {
    const network = registeredNetwork(["x", "y"]);
    const [x, y] = [network.client("x"), network.client("y")];
    const xMark = x.shown().length;
    const yMark = y.shown().length;
    y.type("dereg y");
    network.settle();
    expect(y.shownSince(yMark)).toEqual([BYE]);
    expect(x.shownSince(xMark)).toEqual([TABLE_UPDATED]);
    expect(y.running).toBe(true);
    expect(y.state.phase).toBe("offline");
    expect(network.store.load().clients.find((c) => c.name === "y")?.online).toBe(false);
    // The table reached x before y's acknowledgement (SPEC §4: push, then acknowledge).
    const sent = network.sentBy("server").map((d) => `${d.to}:${d.message.type}`);
    expect(sent.slice(-2)).toEqual(["x:table", "y:ack"]);
  });

  test("with the server gone, dereg is sent 6 times 500 ms apart, then the client exits 1", () => {
    const network = registeredNetwork(["x"]);
    const x = network.client("x");
    network.crashServer();
    const start = network.now;
    const mark = x.shown().length;
    x.type("dereg x");
    network.advance(2_999);
    expect(x.shownSince(mark)).toEqual([]);
    expect(x.exitCode).toBeUndefined();
    const tries = network.sentBy("x", "deregister");
    expect(tries.map((d) => d.at - start)).toEqual([0, 500, 1000, 1500, 2000, 2500]);
    expect(new Set(tries.map((d) => d.message.id)).size).toBe(1);
    network.advance(1);
    expect(x.shownSince(mark)).toEqual(["[Server not responding]", "[Exiting]"]);
    expect(x.exitCode).toBe(1);
  });

  test("a dereg whose acks are lost but one try gets through still ends offline", () => {
    const network = registeredNetwork(["x"]);
    const x = network.client("x");
    const heal = network.drop(
      (d) => d.from === "server" && d.to === "x" && d.message.type === "ack",
    );
    x.type("dereg x");
    network.advance(1_200);
    heal();
    network.settle();
    expect(x.shown().at(-1)).toBe(BYE);
    expect(x.shown().filter((l) => l === BYE)).toHaveLength(1);
    expect(x.exitCode).toBeUndefined();
  });
});

describe("offline messages", () => {
  test("with the server gone, a save is sent 6 times 500 ms apart, then the client exits 1", () => {
    const network = registeredNetwork(["x", "y"]);
    const x = network.client("x");
    network.client("y").type("dereg y");
    network.settle();
    network.crashServer();
    const start = network.now;
    const mark = x.shown().length;
    x.type("send y hello");
    network.advance(2_999);
    expect(x.exitCode).toBeUndefined();
    expect(network.sentBy("x", "save").map((d) => d.at - start)).toEqual([
      0, 500, 1000, 1500, 2000, 2500,
    ]);
    network.advance(1);
    expect(x.shownSince(mark)).toEqual(["[Server not responding]", "[Exiting]"]);
    expect(x.exitCode).toBe(1);
  });

  test("reg: welcome, [You have messages], every stored message in order of receipt, then the table", () => {
    const { network, times } = withMessagesForY();
    const [x, y, z] = [network.client("x"), network.client("y"), network.client("z")];
    const [first, second, third] = times.map((t) => formatTimestamp(t));
    const marks = [x, y, z].map((c) => c.shown().length);
    y.type("reg y");
    network.settle();
    expect(y.shownSince(marks[1] ?? 0)).toEqual([
      WELCOME,
      YOU_HAVE_MESSAGES,
      `x: ${first} first, direct`,
      `Channel-Message z: ${second} second, on the channel`,
      `x: ${third} third, direct`,
      TABLE_UPDATED,
    ]);
    // The others learn that y is back only once its messages are delivered.
    expect(x.shownSince(marks[0] ?? 0)).toEqual([TABLE_UPDATED]);
    expect(z.shownSince(marks[2] ?? 0)).toEqual([TABLE_UPDATED]);
    const fromServer = network.sentBy("server").map((d) => `${d.to}:${d.message.type}`);
    const storedAt = fromServer.indexOf("y:stored");
    expect(fromServer.filter((d) => d === "y:stored")).toHaveLength(1);
    expect(fromServer.slice(storedAt + 1).sort()).toEqual(["x:table", "y:table", "z:table"]);
    expect(network.store.load().messages).toEqual([]);
    expect(network.server.mailboxes.size).toBe(0);
    expect(y.state.table.find((e) => e.name === "y")?.online).toBe(true);
  });

  test("reg with nothing stored: welcome and the table, no [You have messages]", () => {
    const network = registeredNetwork(["x", "y"]);
    const y = network.client("y");
    y.type("dereg y");
    network.settle();
    const mark = y.shown().length;
    y.type("reg y");
    network.settle();
    expect(y.shownSince(mark)).toEqual([WELCOME, TABLE_UPDATED]);
    expect(y.state.phase).toBe("online");
  });

  test("stored messages are delivered once: not again at the next reg", () => {
    const { network } = withMessagesForY();
    const y = network.client("y");
    y.type("reg y");
    network.settle();
    y.type("dereg y");
    network.settle();
    const mark = y.shown().length;
    y.type("reg y");
    network.settle();
    expect(y.shownSince(mark)).toEqual([WELCOME, TABLE_UPDATED]);
  });

  test("stored messages survive a server restart, and once delivered do not come back after another", () => {
    const { network, times } = withMessagesForY();
    const y = network.client("y");
    network.restartServer();
    const mark = y.shown().length;
    y.type("reg y");
    network.settle();
    expect(y.shownSince(mark)).toEqual([
      WELCOME,
      YOU_HAVE_MESSAGES,
      `x: ${formatTimestamp(times[0] ?? 0)} first, direct`,
      `Channel-Message z: ${formatTimestamp(times[1] ?? 0)} second, on the channel`,
      `x: ${formatTimestamp(times[2] ?? 0)} third, direct`,
      TABLE_UPDATED,
    ]);
    network.restartServer();
    y.type("dereg y");
    network.settle();
    const again = y.shown().length;
    y.type("reg y");
    network.settle();
    expect(y.shownSince(again)).toEqual([WELCOME, TABLE_UPDATED]);
    expect(network.store.load().messages).toEqual([]);
  });

  test("a stored message is removed only once its batch is acknowledged", () => {
    const { network } = withMessagesForY();
    const y = network.client("y");
    const heal = network.drop(
      (d) => d.from === "y" && d.to === "server" && d.message.type === "ack",
    );
    const start = network.now;
    const mark = y.shown().length;
    y.type("reg y");
    network.advance(2_999);
    expect(network.store.load().messages).toHaveLength(3);
    expect(network.sentBy("server", "stored").map((d) => d.at - start)).toEqual([
      0, 500, 1000, 1500, 2000, 2500,
    ]);
    // Every retransmission was acknowledged (the acks were lost) and shown only once.
    expect(
      y.shownSince(mark).filter((l) => l.includes("direct") || l.includes("channel")),
    ).toHaveLength(3);
    network.advance(1);
    heal();
    network.settle();
    // Given up: kept for the next reg, which the server cannot tell apart from a lost delivery.
    expect(network.store.load().messages).toHaveLength(3);
  });

  test("stored messages acknowledged just before a crash are not delivered again", () => {
    const { network } = withMessagesForY();
    const y = network.client("y");
    y.type("reg y");
    network.settle();
    expect(network.store.load().messages).toEqual([]);
    network.crashServer();
    network.startServer();
    y.type("dereg y");
    network.settle();
    const mark = y.shown().length;
    y.type("reg y");
    network.settle();
    expect(y.shownSince(mark)).toEqual([WELCOME, TABLE_UPDATED]);
  });

  test("many stored messages go in several batches, in order, each shown once", () => {
    const network = registeredNetwork(["x", "y"]);
    const [x, y] = [network.client("x"), network.client("y")];
    y.type("dereg y");
    network.settle();
    const long = "ü".repeat(900);
    for (let index = 0; index < 40; index++) {
      x.type(`send y ${index} ${long}`);
      network.settle();
    }
    expect(network.store.load().messages).toHaveLength(40);
    const mark = y.shown().length;
    y.type("reg y");
    network.settle();
    const lines = y.shownSince(mark);
    expect(lines[0]).toBe(WELCOME);
    expect(lines[1]).toBe(YOU_HAVE_MESSAGES);
    expect(lines.at(-1)).toBe(TABLE_UPDATED);
    const numbers = lines.slice(2, -1).map((line) => Number(/^x: \S+ (\d+) /.exec(line)?.[1]));
    expect(numbers).toEqual([...Array(40).keys()]);
    expect(network.sentBy("server", "stored").length).toBeGreaterThan(1);
    expect(network.store.load().messages).toEqual([]);
  });

  test("a newcomer that takes the name while stored messages are on their way to the old holder gets them", () => {
    const network = registeredNetwork(["x", "y"]);
    const [x, y] = [network.client("x"), network.client("y")];
    x.type("dereg x");
    network.settle();
    const savedAt = network.now;
    y.type("send x hello");
    network.settle();
    // x comes back and dies before acknowledging its stored messages.
    const heal = network.drop((d) => d.from === "x" && d.message.type === "ack");
    x.type("reg x");
    network.advance(10);
    x.kill();
    heal();
    // x's key from a copy of its identity elsewhere: what the old process showed is not on record there.
    const newcomer = network.addClient("x", {
      label: "x2",
      files: "x's identity copied elsewhere",
    });
    network.settle();
    expect(newcomer.shown()).toEqual([
      WELCOME,
      YOU_HAVE_MESSAGES,
      `y: ${formatTimestamp(savedAt)} hello`,
      TABLE_UPDATED,
    ]);
    expect(network.store.load().messages).toEqual([]);
  });

  test("a new process of the same identity takes them without showing again what the old one showed", () => {
    const network = registeredNetwork(["x", "y"]);
    const [x, y] = [network.client("x"), network.client("y")];
    x.type("dereg x");
    network.settle();
    y.type("send x hello");
    network.settle();
    const heal = network.drop((d) => d.from === "x" && d.message.type === "ack");
    x.type("reg x");
    network.advance(10);
    expect(x.shown().slice(-2)).toEqual([
      YOU_HAVE_MESSAGES,
      expect.stringMatching(/^y: \S+ hello$/),
    ]);
    x.kill();
    heal();
    const again = network.addClient("x", { label: "x2" });
    network.settle();
    expect(again.shown()).toEqual([WELCOME, TABLE_UPDATED]);
    expect(network.store.load().messages).toEqual([]);
  });

  test("a stored batch that overtakes the welcome waits for it", () => {
    const { network } = withMessagesForY();
    const y = network.client("y");
    let dropped = false;
    const heal = network.drop((d) => {
      if (dropped || d.message.type !== "registered") return false;
      dropped = true;
      return true;
    });
    const mark = y.shown().length;
    y.type("reg y");
    network.settle();
    heal();
    expect(dropped).toBe(true);
    const lines = y.shownSince(mark);
    expect(lines.slice(0, 2)).toEqual([WELCOME, YOU_HAVE_MESSAGES]);
    expect(lines).toHaveLength(6);
    expect(network.store.load().messages).toEqual([]);
  });
});

describe("limits", () => {
  test("a full mailbox refuses a save, and the sender is told", () => {
    const network = registeredNetwork(["x", "y"]);
    network.client("y").type("dereg y");
    network.settle();
    network.store.apply(
      Array.from({ length: MAILBOX_LIMIT }, (_, index) => ({
        kind: "put-message" as const,
        message: {
          id: 100 + index,
          recipient: "y",
          sender: "x",
          kind: "direct" as const,
          text: `old ${index}`,
          receivedAt: START_TIME,
          ref: index,
        },
      })),
    );
    network.restartServer();
    const x = network.client("x");
    x.type("send y one too many");
    network.settle();
    expect(x.shown().at(-1)).toBe(notices.mailboxFull("y"));
    expect(x.running).toBe(true);
    expect(network.store.load().messages).toHaveLength(MAILBOX_LIMIT);
  });

  test("the longest messages of the widest characters go through every path", () => {
    const network = registeredNetwork(["x", "y", "z"]);
    const [x, y, z] = [network.client("x"), network.client("y"), network.client("z")];
    const widest = ["😀", "\u0001", "\ud800", '"'].map((unit) => unit.repeat(MAX_TEXT_LENGTH));
    for (const text of widest) {
      x.type(`send y ${text}`);
      x.type(`send_all ${text}`);
      network.settle();
    }
    z.type("dereg z");
    network.settle();
    for (const text of widest) x.type(`send z ${text}`);
    network.settle();
    expect(x.shown().filter((line) => line === SAVED)).toHaveLength(widest.length);
    const mark = z.shown().length;
    z.type("reg z");
    network.settle();
    const stored = z.shownSince(mark).filter((line) => line.startsWith("x: "));
    expect(stored).toHaveLength(widest.length);
    expect(y.shown().filter((line) => line.startsWith("x: "))).toHaveLength(widest.length);
    expect(y.shown().filter((line) => line.startsWith("[Channel_Message x: "))).toHaveLength(
      widest.length,
    );
  });
});

describe("the server's remembered answers", () => {
  test("outlast the sender's retries three times over, then are let go", () => {
    const retrySpan = timing.ackWaitMs * (timing.serverRequestRetries + 1);
    expect(timing.replyCacheMs).toBeGreaterThanOrEqual(3 * retrySpan);
    const network = registeredNetwork(["x", "y"]);
    const x = network.client("x");
    network.client("y").type("dereg y");
    network.settle();
    // The answers to the registrations and y's dereg have gone by now.
    network.advance(timing.replyCacheMs);
    // Every ack but the last try's is lost: the retries are answered from what was kept.
    const heal = network.drop(
      (d) => d.from === "server" && d.to === "x" && d.message.type === "ack",
    );
    const sentAt = network.now;
    x.type("send y once, acked late");
    network.advance(retrySpan - timing.ackWaitMs - 1);
    heal();
    network.advance(timing.ackWaitMs);
    expect(x.shown().at(-1)).toBe(SAVED);
    expect(network.store.load().messages).toHaveLength(1);
    // A plain ack is kept as a mark and made again for each retry (identity.test.ts
    // checks that every copy is the same datagram).
    const answers = () => [...network.server.replies.values()].filter((r) => r.reply === PLAIN_ACK);
    expect(answers()).toHaveLength(1);
    // Kept until replyCacheMs after the save came in, and no longer.
    network.advance(sentAt + timing.replyCacheMs - 1 - network.now);
    network.tickServer();
    expect(answers()).toHaveLength(1);
    network.advance(2);
    network.tickServer();
    expect(answers()).toHaveLength(0);
  });
});

describe("server restarts", () => {
  test("a save acknowledged before a crash is kept; the restarted server delivers it once", () => {
    const network = registeredNetwork(["x", "y"]);
    const [x, y] = [network.client("x"), network.client("y")];
    y.type("dereg y");
    network.settle();
    x.type("send y before the crash");
    network.settle();
    expect(x.shown().at(-1)).toBe(SAVED);
    network.crashServer();
    network.advance(5_000);
    network.startServer();
    const mark = y.shown().length;
    y.type("reg y");
    network.settle();
    expect(y.shownSince(mark).filter((line) => line.endsWith("before the crash"))).toHaveLength(1);
  });

  // The reply cache lives in memory only; what keeps the retransmission from being stored
  // again is the message's ref: the store already holds (x, ref).
  test("a save whose ack was lost just before a crash is not stored twice", () => {
    const network = registeredNetwork(["x", "y"]);
    const x = network.client("x");
    network.client("y").type("dereg y");
    network.settle();
    const heal = network.drop(
      (d) => d.from === "server" && d.to === "x" && d.message.type === "ack",
    );
    x.type("send y only once");
    network.advance(100);
    expect(network.store.load().messages).toHaveLength(1);
    network.restartServer();
    heal();
    network.settle();
    expect(x.shown().at(-1)).toBe(SAVED);
    expect(network.store.load().messages).toHaveLength(1);
  });
});
