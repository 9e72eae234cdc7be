import { describe, expect, test } from "bun:test";
import { formatTimestamp } from "../../src/text/timestamp.ts";
import { agreementKeyOf } from "../helpers/identities.ts";
import { openedBy } from "../helpers/sealed.ts";
import { registeredNetwork } from "../helpers/simulated-network.ts";

const TABLE_UPDATED = "[Client table updated.]";
const SAVED = "[Messages received by the server and saved]";

describe("direct chat", () => {
  test("x and y message each other; the server is not involved", () => {
    const network = registeredNetwork(["x", "y"]);
    const x = network.client("x");
    const y = network.client("y");
    const xMark = x.shown().length;
    const yMark = y.shown().length;
    const serverMark = network.sent.length;
    x.type("send y hello   there, Grüße 世界 👋🏽");
    network.settle();
    y.type("send x and back");
    network.settle();
    expect(y.shownSince(yMark)).toEqual([
      "x: hello   there, Grüße 世界 👋🏽",
      "[Message received by x.]",
    ]);
    expect(x.shownSince(xMark)).toEqual(["[Message received by y.]", "y: and back"]);
    const traffic = network.sent.slice(serverMark);
    expect(traffic.every((d) => d.from !== "server" && d.to !== "server")).toBe(true);
    expect(traffic.map((d) => `${d.from}>${d.to}:${d.message.type}`)).toEqual([
      "x>y:chat",
      "y>x:ack",
      "y>x:chat",
      "x>y:ack",
    ]);
  });

  test("a client can message itself", () => {
    const network = registeredNetwork(["x"]);
    const x = network.client("x");
    const mark = x.shown().length;
    x.type("send x note to self");
    network.settle();
    expect(x.shownSince(mark)).toEqual(["x: note to self", "[Message received by x.]"]);
  });

  test("names are matched ignoring case and shown as registered", () => {
    const network = registeredNetwork(["Xavier", "y"]);
    const y = network.client("y");
    const mark = y.shown().length;
    network.client("Xavier").type("send Y hi");
    network.settle();
    expect(y.shownSince(mark)).toEqual(["Xavier: hi"]);
    expect(network.client("Xavier").shown().at(-1)).toBe("[Message received by y.]");
  });

  test("text from a peer is shown with its escape sequences made harmless", () => {
    const network = registeredNetwork(["x", "y"]);
    const y = network.client("y");
    network.client("x").type("send y \u001b[2Jgone\u202eevil");
    network.settle();
    expect(y.shown().at(-1)).toBe("x: \\x1B[2Jgone\\u{202E}evil");
  });

  test("a dead recipient: resent every 100 ms, no ACK at exactly 500 ms, then saved by the server", () => {
    const network = registeredNetwork(["x", "y", "z"]);
    const [x, y, z] = [network.client("x"), network.client("y"), network.client("z")];
    y.kill();
    const start = network.now;
    const mark = x.shown().length;
    x.type("send y are you there?");
    network.advance(499);
    expect(x.shownSince(mark)).toEqual([]);
    expect(network.sentBy("x", "chat").map((d) => d.at - start)).toEqual([0, 100, 200, 300, 400]);
    network.advance(1);
    expect(x.shownSince(mark)).toEqual(["[No ACK from y, message sent to server.]"]);
    const save = network.sentBy("x", "save");
    expect(save.map((d) => d.at - start)).toEqual([500]);
    // Sealed for y with the chat's id as its ref: the same message, which only y can read.
    const chat = network.sentBy("x", "chat")[0]?.message;
    const saved = save[0]?.message;
    if (saved?.type !== "save" || chat === undefined) throw new Error("no save after the chat");
    expect(saved).toMatchObject({ to: "y", ref: chat.id });
    expect(openedBy("y", "x", chat.id, saved)).toBe("are you there?");
    expect(JSON.stringify(saved)).not.toContain("there?");

    // The server checks y's status: probes every 100 ms from 500, verdict at 1000.
    network.advance(499);
    expect(network.sentBy("server", "probe").map((d) => [d.to, d.at - start])).toEqual([
      ["y", 500],
      ["y", 600],
      ["y", 700],
      ["y", 800],
      ["y", 900],
    ]);
    expect(x.shownSince(mark)).toHaveLength(1);
    expect(network.store.load().messages).toEqual([]);
    network.advance(1);
    // Marked offline and the table pushed, then the message stored and acknowledged.
    expect(x.shownSince(mark)).toEqual([
      "[No ACK from y, message sent to server.]",
      TABLE_UPDATED,
      SAVED,
    ]);
    expect(z.shown().at(-1)).toBe(TABLE_UPDATED);
    expect(x.state.table.find((e) => e.name === "y")?.online).toBe(false);
    // The server keeps what x sealed, and x's key to open it with: no text it could read.
    expect(network.store.load().messages).toEqual([
      {
        id: 1,
        recipient: "y",
        sender: "x",
        kind: "direct",
        text: "",
        receivedAt: start + 500,
        ref: chat.id,
        sealed: { n: saved.n, box: saved.box, ak: agreementKeyOf("x") },
      },
    ]);
    expect(JSON.stringify(network.store.load())).not.toContain("there?");
    network.settle();

    // y comes back and gets it, stamped with the server's time of receipt.
    const back = network.addClient("y");
    network.settle();
    expect(back.shown()).toEqual([
      "[Welcome, You are registered.]",
      "[You have messages]",
      `x: ${formatTimestamp(start + 500)} are you there?`,
      TABLE_UPDATED,
    ]);
    expect(network.store.load().messages).toEqual([]);
  });

  test("a recipient offline in the local table: straight to the server, no 500 ms wait", () => {
    const network = registeredNetwork(["x", "y"]);
    const x = network.client("x");
    network.client("y").type("dereg y");
    network.settle();
    expect(x.state.table.find((e) => e.name === "y")?.online).toBe(false);
    const start = network.now;
    const mark = x.shown().length;
    x.type("send y see you later");
    network.advance(0);
    expect(x.shownSince(mark)).toEqual([SAVED]);
    expect(network.sentBy("x", "chat")).toEqual([]);
    expect(network.sentBy("x", "save").map((d) => d.at - start)).toEqual([0]);
    expect(network.sentBy("server", "probe")).toEqual([]);
  });

  test("a save for a recipient that is alive: [Client y exists!!] and a fresh table", () => {
    const network = registeredNetwork(["x", "y"]);
    const [x, y] = [network.client("x"), network.client("y")];
    // y gets the message but its acks to x are lost.
    network.setFaults({ loss: 1 }, { from: "y", to: "x" });
    const xMark = x.shown().length;
    const yMark = y.shown().length;
    x.type("send y hello");
    network.settle();
    expect(y.shownSince(yMark)).toEqual(["x: hello"]);
    expect(x.shownSince(xMark)).toEqual([
      "[No ACK from y, message sent to server.]",
      "[Client y exists!!]",
      TABLE_UPDATED,
    ]);
    expect(network.store.load().messages).toEqual([]);
    expect(network.server.clients.get("y")?.online).toBe(true);
  });

  test("a stale table that says y is offline is corrected by the server", () => {
    const network = registeredNetwork(["x", "y"]);
    const [x, y] = [network.client("x"), network.client("y")];
    y.type("dereg y");
    network.settle();
    // y comes back, but every table push to x is lost until it is given up.
    const heal = network.drop((d) => d.to === "x" && d.message.type === "table");
    y.type("reg y");
    network.advance(3000);
    heal();
    network.settle();
    expect(x.state.table.find((e) => e.name === "y")?.online).toBe(false);
    const mark = x.shown().length;
    x.type("send y are you back?");
    network.settle();
    expect(x.shownSince(mark)).toEqual(["[Client y exists!!]", TABLE_UPDATED]);
    expect(x.state.table.find((e) => e.name === "y")?.online).toBe(true);
    expect(network.store.load().messages).toEqual([]);
  });

  test("a retransmitted chat is acknowledged every time and shown once", () => {
    const network = registeredNetwork(["x", "y"]);
    const [x, y] = [network.client("x"), network.client("y")];
    const start = network.now;
    const drop = network.drop((d) => d.from === "y" && d.to === "x");
    const yMark = y.shown().length;
    x.type("send y once");
    network.advance(299);
    drop();
    network.settle();
    expect(y.shownSince(yMark)).toEqual(["x: once"]);
    expect(x.shown().at(-1)).toBe("[Message received by y.]");
    const acks = network.sentBy("y", "ack").filter((d) => d.to === "x");
    expect(acks.map((d) => d.at - start)).toEqual([0, 100, 200, 300]);
  });
});
