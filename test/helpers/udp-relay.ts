/**
 * A UDP relay between one client and the server, on loopback, that can lose chosen
 * datagrams on their way from the client: how an e2e test loses exactly the acks it
 * means to. The client talks to the relay's port as if it were the server's; the
 * server sees the client at the relay's other socket.
 */
import { decodeMessage } from "../../src/protocol/codec.ts";
import type { Message } from "../../src/protocol/messages.ts";
import { RAW_LOOPBACK } from "./raw-peer.ts";

type Socket = Bun.udp.Socket<"buffer">;

export class UdpRelay {
  /** Datagrams from the client for which this says true are lost. */
  loseFromClient: (message: Message | undefined) => boolean = () => false;
  /** How many were lost. */
  lost = 0;
  #clientPort: number | undefined;
  #firstLoss: () => void = () => {};
  /** Settles when the first datagram is lost: the client's ack goes out before its line is printed, but reaches the relay on its own time. */
  readonly firstLoss = new Promise<void>((settle) => {
    this.#firstLoss = settle;
  });

  private constructor(
    private readonly front: Socket,
    private readonly back: Socket,
  ) {}

  /** A relay to the server at `serverPort` on loopback. */
  static async open(serverPort: number): Promise<UdpRelay> {
    let relay: UdpRelay | undefined;
    const front = await Bun.udpSocket({
      hostname: RAW_LOOPBACK,
      socket: {
        data: (_socket, data, port) => relay?.fromClient(data, port, serverPort),
        error: () => {},
      },
    });
    const back = await Bun.udpSocket({
      hostname: RAW_LOOPBACK,
      socket: {
        data: (_socket, data) => relay?.fromServer(data),
        error: () => {},
      },
    });
    relay = new UdpRelay(front, back);
    return relay;
  }

  /** Where the client sends what it means for the server. */
  get port(): number {
    return this.front.port;
  }

  close(): void {
    this.front.close();
    this.back.close();
  }

  private fromClient(data: Buffer, port: number, serverPort: number): void {
    this.#clientPort = port;
    if (this.loseFromClient(decodeMessage(data))) {
      this.lost++;
      this.#firstLoss();
      return;
    }
    sendOnce(this.back, data, serverPort);
  }

  private fromServer(data: Buffer): void {
    if (this.#clientPort !== undefined) sendOnce(this.front, data, this.#clientPort);
  }
}

/** A stale ICMP error can make one send throw (BUN-NOTES.md): it is tried once more. */
function sendOnce(socket: Socket, data: Buffer, port: number): void {
  try {
    socket.send(data, port, RAW_LOOPBACK);
  } catch {
    try {
      socket.send(data, port, RAW_LOOPBACK);
    } catch {
      // Lost, as UDP may lose it.
    }
  }
}
