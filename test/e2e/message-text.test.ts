import { afterAll, describe, expect } from "bun:test";
import { MAX_TEXT_LENGTH } from "../../src/protocol/messages.ts";
import { notices } from "../../src/text/notices.ts";
import {
  ChatSession,
  checkTimestamp,
  killAll,
  programs,
  storedLine,
  testsFor,
  waitForTable,
} from "../helpers/process-driver.ts";

afterAll(killAll);

/** The longest message there is, four UTF-8 bytes a character: 16 KB on the wire. */
const longest = (first: string): string => `${first}${"😀".repeat(MAX_TEXT_LENGTH - 1)}`;

describe.concurrent.each(programs)("%s", (_title, program) => {
  const it = testsFor(program);

  it("direct text keeps its Unicode and spacing, control characters arrive escaped, self-sends work", async () => {
    await using chat = await ChatSession.open(program);
    const server = await chat.startServer();
    const [x, y] = await chat.startClients(server, ["x", "y"]);

    x.type("send x   a note to   myself  ");
    // Everything after the one separating space, as typed: leading and trailing spaces too.
    await x.waitForLine(">>> x:   a note to   myself  ");
    await x.waitForLine(">>> [Message received by x.]");

    y.type("send x héllo  世界 😀 \u001b[31mred\u001b[0m\u0007 \u202Eevil");
    await x.waitForLine(">>> y: héllo  世界 😀 \\x1B[31mred\\x1B[0m\\x07 \\u{202E}evil");
    await y.waitForLine(">>> [Message received by x.]");
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this looks for
    expect(x.lines().join("\n")).not.toMatch(/[\u0000-\u0009\u000B-\u001F\u007F\u202E]/);
  });

  it("the longest messages go direct, through the channel and through storage whole; longer ones are refused", async () => {
    await using chat = await ChatSession.open(program);
    const startedAt = Date.now();
    const server = await chat.startServer();
    const [x, y] = await chat.startClients(server, ["x", "y"]);

    x.type(`send y ${longest("a")}`);
    await y.waitForLine(`>>> x: ${longest("a")}`);
    await x.waitForLine(">>> [Message received by y.]");

    const mark = x.mark();
    x.type(`send y ${longest("a")}!`);
    await x.waitForLine(`>>> ${notices.messageTooLong(MAX_TEXT_LENGTH + 1, MAX_TEXT_LENGTH)}`);
    x.type(`send_all ${longest("b")}?`);
    await x.waitForLine(`>>> ${notices.messageTooLong(MAX_TEXT_LENGTH + 1, MAX_TEXT_LENGTH)}`);
    expect(x.linesSince(mark)).toHaveLength(2);

    y.type("dereg y");
    await y.waitForLine(">>> [You are Offline. Bye.]");
    await waitForTable(x, { x: "online", y: "offline" });
    // Several long ones: more than one stored batch (8 KB each) is needed to deliver them.
    const saved = ["1", "2", "3"].map(longest);
    for (const text of saved) {
      x.type(`send y ${text}`);
      await x.waitForLine(">>> [Messages received by the server and saved]");
    }
    x.type(`send_all ${longest("c")}`);
    await x.waitForLine(">>> [Message received by Server.]");

    y.type("reg y");
    await y.waitForLine(">>> [You have messages]");
    for (const text of saved) {
      const line = await y.waitForLine(storedLine("x: ", text));
      checkTimestamp(storedLine("x: ", text).exec(line)?.[1] ?? "", startedAt, Date.now());
    }
    await y.waitForLine(storedLine("Channel-Message x: ", longest("c")));
    // Offline, y was not sent the channel message live: only stored.
    expect(y.lines()).not.toContain(`>>> [Channel_Message x: ${longest("c")}]`);
  });
});
