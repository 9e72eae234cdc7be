import { afterAll, describe, expect } from "bun:test";
import { notices } from "../../src/text/notices.ts";
import {
  ChatSession,
  freePort,
  killAll,
  programs,
  storedLine,
  TABLE_UPDATED,
  testsFor,
  WELCOME,
  waitForTable,
} from "../helpers/process-driver.ts";

afterAll(killAll);

const shown = (text: string): string => `>>> ${text}`;

describe.concurrent.each(programs)("%s", (_title, program) => {
  const it = testsFor(program);

  it("the original client's words: showall, send y : hi, exit — shows the table, y gets hi, leaves after the ack", async () => {
    await using chat = await ChatSession.open(program);
    const server = await chat.startServer();
    const [y] = await chat.startClients(server, ["y"]);

    const max = chat.spawnClient("max", server, await freePort());
    for (const line of ["showall", "send y : hi", "exit"]) max.type(line);
    expect(await max.waitForExit()).toBe(0);
    await y.waitForLine(">>> max: hi");
    const out = max.lines();
    expect(out.filter((line) => /Unknown command|Usage/.test(line))).toEqual([]);
    // Whether `exit` is read before the registration's answer or after the table is shown
    // depends on when the pipe delivers the lines: either way the table comes after the
    // welcome, and the last line is y's ack.
    const welcome = out.indexOf(WELCOME);
    const table = out.indexOf(shown(notices.tableHeading(2)));
    expect(welcome).toBeGreaterThanOrEqual(0);
    expect(out).toContain(TABLE_UPDATED);
    expect(table).toBeGreaterThan(welcome);
    expect(out.at(-1)).toBe(shown(notices.messageReceivedBy("y")));
  });

  it("dereg then reg piped at once: reg waits for dereg's answer and the client ends online", async () => {
    await using chat = await ChatSession.open(program);
    const server = await chat.startServer();
    const [ci, y] = await chat.startClients(server, ["ci", "y"]);

    const mark = ci.mark();
    for (const line of ["dereg ci", "send y four", "reg ci", "frobnicate"]) ci.type(line);
    await ci.waitForLine(shown(notices.unknownCommand("frobnicate")));
    expect(ci.linesSince(mark).slice(0, 4)).toEqual([
      shown(notices.offlineBye),
      shown(notices.notRegistered),
      WELCOME,
      shown(notices.unknownCommand("frobnicate")),
    ]);
    await waitForTable(y, { ci: "online", y: "online" });
  });

  it("a client with empty input shows the stored messages it is told of before exiting", async () => {
    await using chat = await ChatSession.open(program);
    const server = await chat.startServer();
    const [x, mb] = await chat.startClients(server, ["x", "mb"]);
    const port = mb.port;
    mb.type("dereg mb");
    await mb.waitForLine(shown(notices.offlineBye));
    await waitForTable(x, { x: "online", mb: "offline" });
    x.type("send mb kept for you");
    await x.waitForLine(shown(notices.savedByServer));
    mb.kill("SIGINT");
    await mb.waitForExit();

    const again = chat.spawnClient("mb", server, port, "client mb again");
    again.endInput();
    expect(await again.waitForExit()).toBe(0);
    const out = again.lines();
    expect(out.slice(0, 2)).toEqual([WELCOME, shown(notices.youHaveMessages)]);
    expect(out.some((line) => storedLine("x: ", "kept for you").test(line))).toBe(true);

    const third = chat.spawnClient("mb", server, port, "client mb third");
    third.endInput();
    expect(await third.waitForExit()).toBe(0);
    expect(third.lines()).not.toContain(shown(notices.youHaveMessages));
  });
});
