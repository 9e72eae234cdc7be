/**
 * The baselines' other process: plain Bun UDP on loopback, no chatapp code.
 *
 *   bun udp-child.ts echo              sends every datagram back to its sender
 *   bun udp-child.ts relay PORT BYTES  per stdin line: BYTES bytes to PORT, waits for the echo, prints a line
 *   bun udp-child.ts fan-out           a raw fan-out server (first stdin line: {"ports":[…],"window":N})
 *
 * Each prints `port <n>` first, once its socket is bound.
 */
import { LOOPBACK } from "./processes.ts";

type Socket = Bun.udp.Socket<"buffer">;

/** docs/PLATFORM-NOTES.md: without an error handler an ICMP error from a closed port kills the process. */
const ignoreErrors = { error() {} };

/** A stale ECONNREFUSED can poison one send (docs/PLATFORM-NOTES.md): try once more. */
function send(socket: Socket, bytes: Uint8Array | string, port: number): void {
  try {
    socket.send(bytes, port, LOOPBACK);
  } catch {
    try {
      socket.send(bytes, port, LOOPBACK);
    } catch {
      // Lost; the benchmark counts what arrives.
    }
  }
}

async function echo(): Promise<void> {
  const socket = await Bun.udpSocket({
    hostname: LOOPBACK,
    port: 0,
    socket: {
      data(self, data, port) {
        send(self, data, port);
      },
      ...ignoreErrors,
    },
  });
  console.log(`port ${socket.port}`);
}

async function relay(echoPort: number, bytes: number): Promise<void> {
  const payload = new Uint8Array(bytes).fill(0x78);
  let waiting = false;
  const socket = await Bun.udpSocket({
    hostname: LOOPBACK,
    port: 0,
    socket: {
      data() {
        if (!waiting) return;
        waiting = false;
        console.log(">>> [Echo received.]");
      },
      ...ignoreErrors,
    },
  });
  console.log(`port ${socket.port}`);
  for await (const _line of console) {
    waiting = true;
    send(socket, payload, echoPort);
  }
  socket.close();
}

interface Delivery {
  readonly port: number;
  readonly bytes: string;
  sentAt: number;
  readonly firstSentAt: number;
}

const RESEND_AFTER_MS = 250;
const GIVE_UP_AFTER_MS = 2000;

/** One socket sends a post to every other member, at most `window` unacknowledged at once. */
async function fanOut(): Promise<void> {
  let ports: number[] = [];
  let window = 64;
  let nextId = 1_000_000_000_000 + Math.floor(Math.random() * 1_000_000_000);
  const goSeen = new Set<number>();
  const queue: { id: number; port: number; bytes: string }[] = [];
  let queueHead = 0;
  const inFlight = new Map<number, Delivery>();

  const socket = await Bun.udpSocket({
    hostname: LOOPBACK,
    port: 0,
    socket: {
      data(self, data, port) {
        let message: unknown;
        try {
          message = JSON.parse(data.toString("utf8"));
        } catch {
          return;
        }
        if (typeof message !== "object" || message === null) return;
        const { type, id, text } = message as Record<string, unknown>;
        if (typeof id !== "number") return;
        if (type === "ack") {
          if (inFlight.delete(id)) pump(self);
          return;
        }
        if (type !== "go" || typeof text !== "string") return;
        send(self, JSON.stringify({ v: 1, type: "ack", id }), port);
        if (goSeen.has(id)) return;
        goSeen.add(id);
        for (const member of ports) {
          if (member === port) continue;
          const deliveryId = nextId++;
          const bytes = JSON.stringify({
            v: 1,
            type: "channel-message",
            id: deliveryId,
            from: "m0001",
            text,
          });
          queue.push({ id: deliveryId, port: member, bytes });
        }
        pump(self);
      },
      ...ignoreErrors,
    },
  });

  function pump(self: Socket): void {
    const now = performance.now();
    while (inFlight.size < window && queueHead < queue.length) {
      const next = queue[queueHead++];
      if (!next) break;
      inFlight.set(next.id, { port: next.port, bytes: next.bytes, sentAt: now, firstSentAt: now });
      send(self, next.bytes, next.port);
    }
    if (queueHead === queue.length) {
      queue.length = 0;
      queueHead = 0;
    }
  }

  const resender = setInterval(() => {
    const now = performance.now();
    for (const [id, delivery] of inFlight) {
      if (now - delivery.firstSentAt > GIVE_UP_AFTER_MS) {
        inFlight.delete(id);
      } else if (now - delivery.sentAt >= RESEND_AFTER_MS) {
        delivery.sentAt = now;
        send(socket, delivery.bytes, delivery.port);
      }
    }
    pump(socket);
  }, 25);

  console.log(`port ${socket.port}`);
  for await (const line of console) {
    const setup = JSON.parse(line) as { ports: number[]; window: number };
    ports = setup.ports;
    window = setup.window;
    console.log("ready");
  }
  clearInterval(resender);
  socket.close();
}

const [mode, first, second] = process.argv.slice(2);
switch (mode) {
  case "echo":
    await echo();
    break;
  case "relay":
    await relay(Number(first), Number(second));
    break;
  case "fan-out":
    await fanOut();
    break;
  default:
    console.error(`unknown mode ${String(mode)}: echo, relay PORT BYTES or fan-out`);
    process.exit(2);
}
