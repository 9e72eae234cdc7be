import { describe, expect, test } from "bun:test";
import { timing } from "../../src/core/timing.ts";
import { formatTimestamp } from "../../src/text/timestamp.ts";
import { registeredNetwork } from "../helpers/simulated-network.ts";

const TABLE_UPDATED = "[Client table updated.]";
const RECEIVED_BY_SERVER = "[Message received by Server.]";

describe("channel", () => {
  test("send_all reaches every other member; the sender is told the server has it", () => {
    const network = registeredNetwork(["x", "y", "z"]);
    const clients = ["x", "y", "z"].map((name) => network.client(name));
    const marks = clients.map((c) => c.shown().length);
    network.client("x").type("send_all hi  everyone 🎉");
    network.settle();
    const [x, y, z] = clients.map((c, index) => c.shownSince(marks[index] ?? 0));
    expect(x).toEqual([RECEIVED_BY_SERVER]);
    expect(y).toEqual(["[Channel_Message x: hi  everyone 🎉]"]);
    expect(z).toEqual(["[Channel_Message x: hi  everyone 🎉]"]);
    expect(network.sentBy("server", "channel-message").map((d) => d.to)).toEqual(["y", "z"]);
    expect(network.store.load().messages).toEqual([]);
  });

  test("with the server gone: 6 tries, [Server not responding.] at 3000 ms, and the client keeps running", () => {
    const network = registeredNetwork(["x", "y"]);
    const x = network.client("x");
    network.crashServer();
    const start = network.now;
    const mark = x.shown().length;
    x.type("send_all anyone?");
    network.advance(2_999);
    expect(x.shownSince(mark)).toEqual([]);
    network.advance(1);
    expect(x.shownSince(mark)).toEqual(["[Server not responding.]"]);
    expect(network.sentBy("x", "channel").map((d) => d.at - start)).toEqual([
      0, 500, 1000, 1500, 2000, 2500,
    ]);
    expect(x.exitCode).toBeUndefined();
    expect(x.running).toBe(true);
    // Still usable: direct chat does not need the server.
    x.type("send y still here");
    network.settle();
    expect(network.client("y").shown().at(-1)).toBe("x: still here");
  });

  test("a member that is offline when the post arrives gets it stored, with its time of receipt", () => {
    const network = registeredNetwork(["x", "y", "z"]);
    const y = network.client("y");
    y.type("dereg y");
    network.settle();
    network.advance(61_000);
    const postedAt = network.now;
    network.client("x").type("send_all while you were away");
    network.settle();
    expect(network.sentBy("server", "channel-message").map((d) => d.to)).toEqual(["z"]);
    expect(network.store.load().messages).toMatchObject([
      {
        recipient: "y",
        sender: "x",
        kind: "channel",
        text: "while you were away",
        receivedAt: postedAt,
      },
    ]);
    const mark = y.shown().length;
    y.type("reg y");
    network.settle();
    expect(y.shownSince(mark)).toEqual([
      "[Welcome, You are registered.]",
      "[You have messages]",
      `Channel-Message x: ${formatTimestamp(postedAt)} while you were away`,
      TABLE_UPDATED,
    ]);
  });

  test("a member that died silently: resent every 100 ms, probed from 500 ms, stored and marked offline at 1000", () => {
    const network = registeredNetwork(["x", "y", "z"]);
    const [x, y, z] = [network.client("x"), network.client("y"), network.client("z")];
    y.kill();
    const start = network.now;
    const sentMark = network.sent.length;
    const zMark = z.shown().length;
    x.type("send_all roll call");
    network.advance(0);
    expect(x.shown().at(-1)).toBe(RECEIVED_BY_SERVER);
    network.advance(999);
    const toY = network.sent.slice(sentMark).filter((d) => d.to === "y");
    expect(toY.map((d) => `${d.message.type}@${d.at - start}`)).toEqual([
      "channel-message@0",
      "channel-message@100",
      "channel-message@200",
      "channel-message@300",
      "channel-message@400",
      "probe@500",
      "probe@600",
      "probe@700",
      "probe@800",
      "probe@900",
    ]);
    // Kept on disk for y while it is tried (a crash now would lose nothing); z acknowledged.
    expect(network.store.load().messages.map((m) => m.recipient)).toEqual(["y"]);
    network.advance(1);
    expect(network.server.clients.get("y")?.online).toBe(false);
    expect(network.store.load().messages).toMatchObject([
      { recipient: "y", sender: "x", kind: "channel", text: "roll call", receivedAt: start },
    ]);
    network.settle();
    expect(z.shownSince(zMark)).toEqual(["[Channel_Message x: roll call]", TABLE_UPDATED]);
    const back = network.addClient("y");
    network.settle();
    expect(back.shown()).toContain(`Channel-Message x: ${formatTimestamp(start)} roll call`);
  });

  test("a member that answers probes but never acknowledges the post gets it in rounds, then stored", () => {
    const network = registeredNetwork(["x", "y"]);
    const y = network.client("y");
    const posts = new Set<number>();
    const heal = network.drop((d) => {
      if (d.from === "server" && d.message.type === "channel-message") posts.add(d.message.id);
      return d.from === "y" && d.message.type === "ack" && posts.has(d.message.id);
    });
    const mark = y.shown().length;
    network.client("x").type("send_all hello?");
    network.settle();
    heal();
    const deliveries = network.sentBy("server", "channel-message");
    expect(deliveries).toHaveLength(
      timing.channelRounds * (timing.ackWaitMs / timing.probeResendEveryMs),
    );
    expect(new Set(deliveries.map((d) => d.message.id)).size).toBe(1);
    // Shown once however often it came.
    expect(y.shownSince(mark)).toEqual(["[Channel_Message x: hello?]"]);
    // Alive all along: never marked offline, but after the last round the post is stored
    // for it, since the server cannot tell that y showed it (see faults.test.ts).
    expect(network.server.clients.get("y")?.online).toBe(true);
    expect(network.store.load().messages).toMatchObject([
      { recipient: "y", sender: "x", kind: "channel", text: "hello?" },
    ]);
  });

  test("a retransmitted post (lost ack) is acknowledged again and fanned out once", () => {
    const network = registeredNetwork(["x", "y", "z"]);
    const x = network.client("x");
    const heal = network.drop(
      (d) => d.from === "server" && d.to === "x" && d.message.type === "ack",
    );
    const marks = ["y", "z"].map((name) => network.client(name).shown().length);
    x.type("send_all only once");
    network.advance(1_100);
    heal();
    network.settle();
    expect(network.sentBy("x", "channel")).toHaveLength(4);
    expect(x.shown().filter((l) => l === RECEIVED_BY_SERVER)).toHaveLength(1);
    expect(network.client("y").shownSince(marks[0] ?? 0)).toEqual([
      "[Channel_Message x: only once]",
    ]);
    expect(network.client("z").shownSince(marks[1] ?? 0)).toEqual([
      "[Channel_Message x: only once]",
    ]);
    expect(network.sentBy("server", "channel-message")).toHaveLength(2);
  });
});

describe("a script of many commands", () => {
  test("2,500 send_all typed at once are paced under the server's limit: every one acknowledged", () => {
    const network = registeredNetwork(["a", "b"]);
    const a = network.client("a");
    const mark = a.shown().length;
    for (let index = 0; index < 2_500; index++) a.type(`send_all burst ${index}`);
    a.endInput();
    network.settle();
    const answers = a.shownSince(mark);
    expect(answers.filter((line) => line === RECEIVED_BY_SERVER)).toHaveLength(2_500);
    expect(answers.filter((line) => line.includes("not responding"))).toEqual([]);
    expect(network.server.drops.rateLimited).toBe(0);
    expect(a.exitCode).toBe(0);
  });
});

describe("a channel post survives a crash in the middle of its fan-out", () => {
  test("a member that had not acknowledged it when the server died still gets it, once", () => {
    const network = registeredNetwork(["x", "y", "z"]);
    const [x, y, z] = [network.client("x"), network.client("y"), network.client("z")];
    // The deliveries to z are lost: the server is still retrying when it dies.
    const heal = network.drop(
      (d) => d.from === "server" && d.to === "z" && d.message.type === "channel-message",
    );
    x.type("send_all survive the crash");
    network.advance(150);
    expect(x.shown().at(-1)).toBe("[Message received by Server.]");
    network.restartServer();
    heal();
    network.settle();
    const post = (line: string) => line.includes("survive the crash");
    expect(y.shown().filter(post)).toHaveLength(1);
    expect(z.shown().filter(post)).toHaveLength(1);
    expect(network.store.load().messages).toEqual([]);
  });

  test("a member that acknowledged it before the crash is not sent it again", () => {
    const network = registeredNetwork(["x", "y"]);
    const [x, y] = [network.client("x"), network.client("y")];
    x.type("send_all only once");
    network.settle();
    const before = network.sent.filter((d) => d.to === "y").length;
    network.restartServer();
    network.settle();
    expect(y.shown().filter((line) => line.includes("only once"))).toHaveLength(1);
    expect(network.sent.filter((d) => d.to === "y").length).toBe(before);
  });
});
