/**
 * Benchmark 1: a direct message between two real chatapp clients, from typing
 * `send b …` into a to a printing `[Message received by b.]`, beside raw UDP
 * ping-pong of a datagram of the same size between two processes.
 */
import { join } from "node:path";
import { encodeMessage } from "../../src/protocol/codec.ts";
import { sealedChat } from "../helpers/sealed.ts";
import {
  type Child,
  LINE_TIMEOUT_MS,
  LOOPBACK,
  type ProcessGroup,
  type Program,
  startClient,
  startServer,
} from "./processes.ts";
import { count, median, ms, NONE, percentile, printTable } from "./stats.ts";

const UDP_CHILD = join(import.meta.dir, "udp-child.ts");
const TEXT_LENGTH = 64;
const RECEIVED = ">>> [Message received by b.]";

function messageText(index: number): string {
  return `direct ${String(index).padStart(5, "0")} `.padEnd(TEXT_LENGTH, "x");
}

export interface DirectOptions {
  readonly rounds: number;
  readonly warmup: number;
}

/** Times `rounds` sequential exchanges after `warmup` untimed ones; `exchange` returns ms or undefined on failure. */
async function timeRounds(
  options: DirectOptions,
  exchange: (index: number) => Promise<number | undefined>,
): Promise<{ times: number[]; failures: number }> {
  for (let index = 0; index < options.warmup; index++) await exchange(-1 - index);
  const times: number[] = [];
  let failures = 0;
  for (let index = 0; index < options.rounds; index++) {
    const time = await exchange(index);
    if (time === undefined) failures++;
    else times.push(time);
  }
  return { times, failures };
}

async function chatappRounds(
  group: ProcessGroup,
  program: Program,
  options: DirectOptions,
): Promise<{ times: number[]; failures: number; otherLines: string[] }> {
  const dataDir = await group.makeDataDir();
  try {
    const { server, port } = await startServer(group, program, dataDir);
    const a = await startClient(group, program, "a", port);
    const b = await startClient(group, program, "b", port);
    // a learns of b from a table push: until then `send b` is refused locally.
    let known = false;
    for (let attempt = 0; attempt < 50 && !known; attempt++) {
      a.write("send b hello\n");
      const line = await a.stdout.next(
        (text) => text === RECEIVED || text.includes("No client named b"),
        LINE_TIMEOUT_MS,
      );
      known = line.text === RECEIVED;
      if (!known) await Bun.sleep(20);
    }
    if (!known) throw new Error("client a never learnt of b from the server's table");
    const otherLines: string[] = [];
    const result = await timeRounds(options, async (index) => {
      const sentAt = a.write(`send b ${messageText(index)}\n`);
      const line = await a.stdout.next(
        (text) => text === RECEIVED || text.startsWith(">>> [No ACK from b"),
        LINE_TIMEOUT_MS,
      );
      if (line.text !== RECEIVED) {
        otherLines.push(line.text);
        return undefined;
      }
      return line.at - sentAt;
    });
    await Promise.all([a, b, server].map((child) => group.stop(child.process)));
    return { ...result, otherLines };
  } finally {
    await group.removeDataDir(dataDir);
  }
}

/** Raw ping-pong: this process and an echo child, one datagram each way. */
async function pingPongRounds(
  echoPort: number,
  bytes: number,
  options: DirectOptions,
): Promise<{ times: number[]; failures: number }> {
  const payload = new Uint8Array(bytes).fill(0x78);
  let answered: (() => void) | undefined;
  const socket = await Bun.udpSocket({
    hostname: LOOPBACK,
    port: 0,
    socket: {
      data() {
        answered?.();
      },
      error() {},
    },
  });
  try {
    return await timeRounds(options, async () => {
      const started = performance.now();
      const arrived = new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), LINE_TIMEOUT_MS);
        answered = () => {
          clearTimeout(timer);
          resolve(true);
        };
      });
      socket.send(payload, echoPort, LOOPBACK);
      const ok = await arrived;
      answered = undefined;
      return ok ? performance.now() - started : undefined;
    });
  } finally {
    socket.close();
  }
}

/** The same harness as chatapp (a line into a child's stdin, a line back) around raw UDP. */
async function relayRounds(
  relay: Child,
  options: DirectOptions,
): Promise<{ times: number[]; failures: number }> {
  return await timeRounds(options, async () => {
    const sentAt = relay.write("go\n");
    const line = await relay.stdout.next((text) => text.startsWith(">>> "), LINE_TIMEOUT_MS);
    return line.at - sentAt;
  });
}

export async function benchDirect(
  group: ProcessGroup,
  program: Program,
  options: DirectOptions,
): Promise<void> {
  const bytes = encodeMessage(
    sealedChat({ id: 4_000_000_000_000, from: "a", to: "b", text: messageText(0) }),
  ).byteLength;

  const chatapp = await chatappRounds(group, program, options);

  const echo = group.spawn("udp echo", [process.execPath, UDP_CHILD, "echo"]);
  const echoPort = Number(
    (await echo.stdout.next((l) => l.startsWith("port "), LINE_TIMEOUT_MS)).text.slice(5),
  );
  const pingPong = await pingPongRounds(echoPort, bytes, options);
  const relay = group.spawn("udp relay", [
    process.execPath,
    UDP_CHILD,
    "relay",
    String(echoPort),
    String(bytes),
  ]);
  await relay.stdout.next((l) => l.startsWith("port "), LINE_TIMEOUT_MS);
  const relayed = await relayRounds(relay, options);
  await Promise.all([echo, relay].map((child) => group.stop(child.process)));

  const rows = [
    {
      what: "median, vs raw UDP ping-pong",
      chatapp: ms(median(chatapp.times)),
      baseline: ms(median(pingPong.times)),
    },
    {
      what: "p95, vs raw UDP ping-pong",
      chatapp: ms(percentile(chatapp.times, 0.95)),
      baseline: ms(percentile(pingPong.times, 0.95)),
    },
    {
      what: "median, vs stdin→UDP echo→stdout relay",
      chatapp: ms(median(chatapp.times)),
      baseline: ms(median(relayed.times)),
    },
    {
      what: "p95, vs stdin→UDP echo→stdout relay",
      chatapp: ms(percentile(chatapp.times, 0.95)),
      baseline: ms(percentile(relayed.times, 0.95)),
    },
    {
      what: "max",
      chatapp: ms(Math.max(...chatapp.times)),
      baseline: ms(Math.max(...pingPong.times)),
    },
    {
      what: "failed rounds (no ack / timeout)",
      chatapp: count(chatapp.failures),
      baseline: count(pingPong.failures + relayed.failures),
    },
    {
      what: "datagram size",
      chatapp: { value: bytes, unit: "B" as const },
      baseline: { value: bytes, unit: "B" as const },
    },
    { what: "rounds timed (after warm-up)", chatapp: count(chatapp.times.length), baseline: NONE },
  ];
  const notes = [
    `chatapp: ${program.label}, server and clients a, b as separate processes; each round is one`,
    `\`send b <${TEXT_LENGTH} chars>\` written to a's stdin, timed until a prints ${RECEIVED}`,
    `(a → b chat, b prints and acks, a prints). ${options.warmup} untimed warm-up rounds first, then one at a time.`,
    "raw UDP ping-pong: this process ↔ an echo child process, same datagram size each way.",
    "relay: a child reads a line, sends one datagram to the echo child, prints a line on the echo:",
    "the same pipe-in/pipe-out harness as chatapp, without chatapp.",
  ];
  for (const line of chatapp.otherLines.slice(0, 5)) notes.push(`chatapp printed instead: ${line}`);
  printTable(`1. Direct message round trip (${options.rounds} rounds)`, rows, notes);
}
