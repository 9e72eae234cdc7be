import { describe, expect, test } from "bun:test";
import { shownKey } from "../../src/core/shown-messages.ts";
import { notices } from "../../src/text/notices.ts";
import { formatTimestamp } from "../../src/text/timestamp.ts";
import { registeredNetwork, type SimulatedNetwork } from "../helpers/simulated-network.ts";

const WELCOME = notices.welcome;
const YOU_HAVE_MESSAGES = notices.youHaveMessages;

/**
 * x's chat reaches y and is shown, but every ack y sends is lost; y's process then dies.
 * x gets no ack, saves the message, and the server, finding y gone, stores it: the same
 * message (x, ref) now waits for y at the server.
 */
function shownThenStored(): { network: SimulatedNetwork; ref: number } {
  const network = registeredNetwork(["x", "y"]);
  const [x, y] = [network.client("x"), network.client("y")];
  network.drop((datagram) => datagram.from === "y" && datagram.message.type === "ack");
  x.type("send y hello once");
  network.advance(50);
  expect(y.shown().at(-1)).toBe("x: hello once");
  const chat = network.sentBy("x", "chat")[0]?.message;
  if (chat?.type !== "chat") throw new Error("x sent no chat");
  y.kill();
  network.clearFaults();
  network.settle();
  expect(x.shown()).toContain(notices.noAckSentToServer("y"));
  expect(x.shown().at(-1)).toBe(notices.savedByServer);
  // Sealed: the server holds the box, not the text.
  expect(network.store.load().messages.map((m) => m.sealed !== undefined && m.text === "")).toEqual(
    [true],
  );
  return { network, ref: chat.id };
}

describe("shown messages are remembered across a restart of the client", () => {
  test("a copy an earlier process showed is not shown again, and not announced", () => {
    const { network, ref } = shownThenStored();
    expect(network.companionsOf("y").shown).toContain(shownKey("x", ref));
    const y = network.addClient("y", { label: "y again" });
    network.settle();
    expect(y.shown()).toEqual([WELCOME, notices.tableUpdated]);
    // It was still delivered, and acknowledged: the server holds it no longer.
    expect(network.sentBy("server", "stored").some((d) => d.to === "y again")).toBe(true);
    expect(network.store.load().messages).toEqual([]);
  });

  test("without the earlier process's record the copy is shown again (what the record prevents)", () => {
    const { network } = shownThenStored();
    const y = network.addClient("y", { label: "y elsewhere", files: "another identity file" });
    network.settle();
    expect(y.shown()).toEqual([
      WELCOME,
      YOU_HAVE_MESSAGES,
      expect.stringMatching(/^x: \S+ hello once$/),
      notices.tableUpdated,
    ]);
  });

  test("[You have messages] comes just before the first stored message not shown before", () => {
    const { network } = shownThenStored();
    const x = network.client("x");
    x.type("send y new since");
    network.settle();
    const savedAt = network.store.load().messages.at(-1)?.receivedAt ?? 0;
    const y = network.addClient("y", { label: "y again" });
    network.settle();
    expect(y.shown()).toEqual([
      WELCOME,
      YOU_HAVE_MESSAGES,
      `x: ${formatTimestamp(savedAt)} new since`,
      notices.tableUpdated,
    ]);
  });

  test("a message is recorded before it is shown, in the same step", () => {
    const network = registeredNetwork(["x", "y"]);
    const order: string[] = [];
    network.clientSteps.push((step) => {
      if (step.label !== "y") return;
      for (const effect of step.effects) {
        if (effect.kind === "record-shown") order.push(`record ${effect.sender} ${effect.ref}`);
        if (effect.kind === "show") order.push(`show ${effect.text}`);
      }
    });
    network.client("x").type("send y first");
    network.client("x").type("send_all second");
    network.settle();
    const [chat, post] = [network.sentBy("x", "chat")[0], network.sentBy("x", "channel")[0]];
    expect(order).toEqual([
      `record x ${chat?.message.id}`,
      "show x: first",
      `record x ${post?.message.id}`,
      "show [Channel_Message x: second]",
    ]);
  });

  test("a copy that arrives again in the same process records nothing more", () => {
    const network = registeredNetwork(["x", "y"]);
    network.drop((datagram) => datagram.from === "y" && datagram.message.type === "ack");
    network.client("x").type("send y repeated");
    network.advance(450);
    // Five sends of the same chat reached y: one line, one record.
    expect(network.sentBy("x", "chat")).toHaveLength(5);
    expect(
      network
        .client("y")
        .shown()
        .filter((line) => line === "x: repeated"),
    ).toHaveLength(1);
    expect(network.companionsOf("y").shown).toHaveLength(1);
  });
});
