import type { Address } from "../protocol/messages.ts";
import { MAX_DATAGRAM_BYTES } from "../protocol/messages.ts";
import { BindError, bindProblem, PortInUseError } from "./errors.ts";
import { type FaultSpec, faultyPassage } from "./fault-injection.ts";
import { enlargeReceiveBuffer } from "./receive-buffer.ts";

export interface UdpEndpoint {
  readonly port: number;
  /** The socket's receive buffer as the kernel granted it, where it can be read. */
  readonly receiveBufferBytes: number | undefined;
  /** Datagrams through the socket since it opened, for the metrics. */
  readonly counts: Readonly<DatagramCounts>;
  /** Sends `bytes` before it returns: they may be reused as soon as it has. */
  send(to: Address, bytes: Uint8Array): void;
  /** Sends each datagram, in order, in as few system calls as the socket takes. */
  sendAll(datagrams: readonly OutgoingDatagram[]): void;
  close(): void;
}

export interface OutgoingDatagram {
  readonly to: Address;
  readonly bytes: Uint8Array;
}

export interface DatagramCounts {
  received: number;
  sent: number;
  /** Received, and dropped at once because too big or cut short. */
  oversized: number;
}

export interface UdpEndpointOptions {
  readonly port: number;
  /** One address to listen on; all interfaces when omitted. */
  readonly hostname?: string;
  readonly onDatagram: (from: Address, bytes: Uint8Array) => void;
  readonly onProblem: (text: string) => void;
  /** A datagram dropped before `onDatagram` because it is too big or was cut short. */
  readonly onOversized?: (from: Address, bytes: number) => void;
  /** Faults injected into both directions, for experiments (`--simulate`). */
  readonly simulate?: FaultSpec;
  /** SO_RCVBUF to ask for; the system's default when omitted. */
  readonly receiveBufferBytes?: number;
  /** Larger datagrams are dropped unread: MAX_DATAGRAM_BYTES unless this endpoint receives table parts. */
  readonly maxDatagramBytes?: number;
}

/**
 * Binds `::`, which takes IPv6 and IPv4 alike (IPv4 peers show as ::ffff:a.b.c.d), or
 * `0.0.0.0` where the machine has no IPv6.
 */
async function bindDualStack(
  port: number,
  socket: Bun.udp.SocketHandler<"buffer">,
): Promise<Bun.udp.Socket<"buffer">> {
  try {
    return await Bun.udpSocket({ hostname: "::", port, socket });
  } catch (error) {
    if (errorCode(error) === "EADDRINUSE") throw new PortInUseError(port);
    try {
      return await Bun.udpSocket({ hostname: "0.0.0.0", port, socket });
    } catch (fallbackError) {
      if (errorCode(fallbackError) === "EADDRINUSE") throw new PortInUseError(port);
      throw fallbackError;
    }
  }
}

/** Binds exactly one address: a socket of that address's family only. */
async function bindOne(
  hostname: string,
  port: number,
  socket: Bun.udp.SocketHandler<"buffer">,
): Promise<Bun.udp.Socket<"buffer">> {
  try {
    return await Bun.udpSocket({ hostname, port, socket });
  } catch (error) {
    const code = errorCode(error);
    if (code === "EADDRINUSE") throw new PortInUseError(port);
    throw new BindError(hostname, port, bindProblem(code, String(error)));
  }
}

/** Bun's UDP socket has `fd` at run time, though its types leave it out. */
function descriptorOf(socket: Bun.udp.Socket<"buffer">): number | undefined {
  const fd: unknown = (socket as unknown as { fd?: unknown }).fd;
  return typeof fd === "number" && fd >= 0 ? fd : undefined;
}

function errorCode(error: unknown): string | undefined {
  return typeof error === "object" && error !== null && "code" in error
    ? String((error as { code: unknown }).code)
    : undefined;
}

/**
 * A Bun UDP socket hardened as docs/PLATFORM-NOTES.md describes: ICMP errors from peers that left
 * are handled, never fatal; handlers never throw; a send poisoned by a stale
 * ECONNREFUSED is made once more.
 */
export async function openUdpEndpoint(options: UdpEndpointOptions): Promise<UdpEndpoint> {
  const { onProblem } = options;
  const incoming = options.simulate ? faultyPassage(options.simulate) : undefined;
  const outgoing = options.simulate
    ? faultyPassage({ ...options.simulate, seed: options.simulate.seed + 1 })
    : undefined;
  const onDatagram = incoming
    ? (from: Address, bytes: Uint8Array) => incoming(() => options.onDatagram(from, bytes))
    : options.onDatagram;
  const counts: DatagramCounts = { received: 0, sent: 0, oversized: 0 };
  const maxDatagramBytes = options.maxDatagramBytes ?? MAX_DATAGRAM_BYTES;
  const handlers: Bun.udp.SocketHandler<"buffer"> = {
    data(_socket, data, port, address, flags) {
      counts.received++;
      try {
        if (flags?.truncated || data.byteLength > maxDatagramBytes) {
          counts.oversized++;
          options.onOversized?.({ ip: address, port }, data.byteLength);
          return;
        }
        onDatagram({ ip: address, port }, new Uint8Array(data));
      } catch (error) {
        onProblem(`error while handling a datagram: ${String(error)}`);
      }
    },
    // Bun calls this with the Error alone (the socket is `this`), despite the types.
    error(...args: unknown[]) {
      const error = args.find((arg) => arg instanceof Error);
      const code = errorCode(error);
      if (code !== "ECONNREFUSED") onProblem(`socket error: ${String(error ?? args[0])}`);
    },
  };
  const socket =
    options.hostname === undefined
      ? await bindDualStack(options.port, handlers)
      : await bindOne(options.hostname, options.port, handlers);
  const receiveBufferBytes =
    options.receiveBufferBytes === undefined
      ? undefined
      : enlargeReceiveBuffer(descriptorOf(socket), options.receiveBufferBytes);

  function sendOnce(to: Address, bytes: Uint8Array): void {
    socket.send(bytes, to.port, to.ip);
    counts.sent++;
  }

  function sendHardened(to: Address, bytes: Uint8Array): void {
    if (socket.closed) return;
    try {
      sendOnce(to, bytes);
    } catch (error) {
      if (errorCode(error) !== "ECONNREFUSED") {
        onProblem(`could not send to ${to.ip}:${to.port}: ${String(error)}`);
        return;
      }
      try {
        sendOnce(to, bytes);
      } catch (retryError) {
        onProblem(`could not send to ${to.ip}:${to.port}: ${String(retryError)}`);
      }
    }
  }

  /**
   * One sendmmsg for the lot (a group commit releases hundreds of answers at once).
   * Like `send`, it can stop short on a stale ICMP error: the rest go one by one.
   */
  function sendAllHardened(datagrams: readonly OutgoingDatagram[]): void {
    if (socket.closed) return;
    const packets: (Uint8Array | number | string)[] = [];
    for (const { to, bytes } of datagrams) packets.push(bytes, to.port, to.ip);
    let sent = 0;
    try {
      sent = socket.sendMany(packets);
      counts.sent += sent;
    } catch (error) {
      if (errorCode(error) !== "ECONNREFUSED") {
        onProblem(`could not send ${datagrams.length} datagrams: ${String(error)}`);
      }
    }
    for (const { to, bytes } of datagrams.slice(sent)) sendHardened(to, bytes);
  }

  return {
    port: socket.port,
    receiveBufferBytes,
    counts,
    sendAll: outgoing
      ? (datagrams) => {
          for (const { to, bytes } of datagrams) {
            const kept = bytes.slice();
            outgoing(() => sendHardened(to, kept));
          }
        }
      : sendAllHardened,
    send: outgoing
      ? (to, bytes) => {
          const kept = bytes.slice();
          outgoing(() => sendHardened(to, kept));
        }
      : sendHardened,
    close() {
      if (!socket.closed) socket.close();
    },
  };
}
