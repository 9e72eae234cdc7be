import { describe, expect } from "bun:test";
import { notices } from "../../src/text/notices.ts";
import {
  ChatSession,
  freePort,
  LOOPBACK,
  programs,
  type ServerHandle,
  testsFor,
  waitForTable,
} from "../helpers/process-driver.ts";
import { PtyShell } from "../helpers/pty-shell.ts";

const CTRL_Z = "\x1a";
const CTRL_D = "\x04";
const EXIT_STATUS = /exit status (\d+)/;

/** A client named `name` in the shell's terminal, registered and holding the table. */
async function startInShell(shell: PtyShell, server: ServerHandle, name: string): Promise<void> {
  await shell.waitFor("$ ");
  const mark = shell.mark();
  shell.runChatapp(["-c", name, LOOPBACK, String(server.port), String(await freePort())]);
  await shell.waitFor(`>>> ${notices.tableUpdated}`, { after: mark });
}

/** Waits for the client to end and the shell to say how. */
async function exitStatus(shell: PtyShell, after: number): Promise<number> {
  await shell.waitFor(/\$ $/, { after });
  shell.press('echo "exit status $?"\r');
  const screen = await shell.waitFor(/exit status \d+\n/, { after });
  return Number(EXIT_STATUS.exec(screen)?.[1]);
}

describe.concurrent.each(programs)("%s in a terminal", (_title, program) => {
  const it = testsFor(program);

  it("ctrl+z, then fg: the terminal is normal while stopped, and the client works after", async () => {
    await using chat = await ChatSession.open(program);
    const server = await chat.startServer();
    await using shell = new PtyShell(program);
    await startInShell(shell, server, "zed");

    shell.press(CTRL_Z);
    await shell.waitFor(/Stopped/);
    const stopped = shell.mark();
    shell.press("stty -a | grep -o -- '-*icanon\\|-*echo ' | tr '\\n' ' '; echo\r");
    const modes = await shell.waitFor(/icanon.*echo/, { after: stopped });
    expect(modes).not.toContain("-icanon");
    expect(modes).not.toContain("-echo ");

    const resumed = shell.mark();
    shell.press("fg\r");
    await shell.waitFor(/zed[^\n]*\n(>>> )+$/, { after: resumed });
    shell.press("list\r");
    await shell.waitFor(`>>> ${notices.tableHeading(1)}`, { after: resumed });
    const interrupted = shell.mark();
    shell.press("\x03");
    expect(await exitStatus(shell, interrupted)).toBe(0);
  });

  it("ctrl+d after a send to a peer that is gone: the save's outcome is shown before the exit", async () => {
    await using chat = await ChatSession.open(program);
    const server = await chat.startServer();
    const [gone] = await chat.startClients(server, ["gone"]);
    await using shell = new PtyShell(program);
    await startInShell(shell, server, "zed");
    gone.kill("SIGKILL");
    await gone.waitForExit();

    const mark = shell.mark();
    shell.press("send gone last words\r");
    shell.press(CTRL_D);
    await shell.waitFor(`>>> ${notices.savedByServer}`, { after: mark });
    const screen = shell.screen().slice(mark);
    expect(screen.indexOf(notices.noAckSentToServer("gone"))).toBeLessThan(
      screen.indexOf(notices.savedByServer),
    );
    expect(await exitStatus(shell, mark)).toBe(0);
  });

  it("ctrl+d with the server gone: [Server not responding] and [Exiting] are shown, exit 1", async () => {
    await using chat = await ChatSession.open(program);
    const server = await chat.startServer();
    const [gone] = await chat.startClients(server, ["gone"]);
    await using shell = new PtyShell(program);
    await startInShell(shell, server, "zed");
    await waitForTable(gone, { gone: "online", zed: "online" });
    gone.kill("SIGKILL");
    server.process.kill("SIGKILL");
    await Promise.all([gone.waitForExit(), server.process.waitForExit()]);

    const mark = shell.mark();
    shell.press("send gone last words\r");
    shell.press(CTRL_D);
    await shell.waitFor(`>>> ${notices.exiting}`, { after: mark, timeoutMs: 15_000 });
    const screen = shell.screen().slice(mark);
    expect(screen).toContain(`>>> ${notices.noAckSentToServer("gone")}\n`);
    expect(screen).toContain(`>>> ${notices.serverNotResponding}\n>>> ${notices.exiting}\n`);
    expect(await exitStatus(shell, mark)).toBe(1);
  });

  it("quit while a message waits for its ack: it says so, shows the outcome, then leaves", async () => {
    await using chat = await ChatSession.open(program);
    const server = await chat.startServer();
    const [gone] = await chat.startClients(server, ["gone"]);
    await using shell = new PtyShell(program);
    await startInShell(shell, server, "zed");
    gone.kill("SIGKILL");
    await gone.waitForExit();

    const mark = shell.mark();
    shell.press("send gone last words\r");
    shell.press("quit\r");
    await shell.waitFor(`>>> ${notices.savedByServer}`, { after: mark });
    const screen = shell.screen().slice(mark);
    const order = [
      notices.finishingBeforeQuit,
      notices.noAckSentToServer("gone"),
      notices.savedByServer,
    ].map((line) => screen.indexOf(line));
    expect(order.every((at) => at >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(await exitStatus(shell, mark)).toBe(0);
  });
});
