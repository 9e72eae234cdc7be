import { afterAll, describe, expect } from "bun:test";
import {
  ChatSession,
  freePort,
  killAll,
  programs,
  SERVER_LISTENING,
  testsFor,
} from "../helpers/process-driver.ts";

afterAll(killAll);

/** Whether this test can bind the address and port itself, i.e. the server left it free. */
async function canBind(hostname: string, port: number): Promise<boolean> {
  try {
    const socket = await Bun.udpSocket({ hostname, port });
    socket.close();
    return true;
  } catch {
    return false;
  }
}

describe.concurrent.each(programs)("%s", (_title, program) => {
  const it = testsFor(program);

  it("--bind 127.0.0.1: clients reach it there, and ::1 on that port stays free", async () => {
    await using chat = await ChatSession.open(program);
    const server = await chat.startServer({ args: ["--bind", "127.0.0.1"] });
    expect(server.process.lines().find((line) => SERVER_LISTENING.test(line))).toEndWith(
      `listening on UDP port ${server.port} on 127.0.0.1 only`,
    );
    await chat.startClient("v4", server, { serverIp: "127.0.0.1" });
    expect(await canBind("::1", server.port)).toBe(true);
    expect(await canBind("127.0.0.1", server.port)).toBe(false);
  });

  it("--bind ::1: clients reach it there, and 127.0.0.1 on that port stays free", async () => {
    await using chat = await ChatSession.open(program);
    const server = await chat.startServer({ args: ["--bind", "::1"] });
    expect(server.process.lines().find((line) => SERVER_LISTENING.test(line))).toEndWith(
      `listening on UDP port ${server.port} on [::1] only`,
    );
    await chat.startClient("v6", server, { serverIp: "::1" });
    expect(await canBind("127.0.0.1", server.port)).toBe(true);
  });

  it("without --bind it takes the port on every interface, IPv4 and IPv6", async () => {
    await using chat = await ChatSession.open(program);
    const server = await chat.startServer();
    expect(server.process.lines().find((line) => SERVER_LISTENING.test(line))).toEndWith(
      `listening on UDP port ${server.port} (all interfaces, IPv6 and IPv4)`,
    );
    expect(await canBind("127.0.0.1", server.port)).toBe(false);
    expect(await canBind("::1", server.port)).toBe(false);
  });

  it("--bind to an address whose port is taken: one line, exit 1", async () => {
    await using chat = await ChatSession.open(program);
    const port = await freePort();
    const holder = await Bun.udpSocket({ hostname: "127.0.0.1", port });
    try {
      const dataDir = await chat.makeDataDir();
      const server = chat.spawn(
        ["-s", String(port), "--bind", "127.0.0.1", "--data-dir", dataDir],
        "server",
        port,
      );
      expect(await server.waitForExit()).toBe(1);
      expect(server.lines("stderr")).toEqual([
        `chatapp: port ${port} is already in use: choose another port or stop the program that holds it`,
      ]);
      expect(server.lines()).toEqual([]);
    } finally {
      holder.close();
    }
  });
});
