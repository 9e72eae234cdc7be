/**
 * Simulated channel members: one Bun UDP socket each on loopback, speaking chatapp's
 * protocol to a server (or to the raw baseline) and acknowledging every request.
 */
import { encodeMessage, padRegistration } from "../../src/protocol/codec.ts";
import { PROTOCOL_VERSION } from "../../src/protocol/messages.ts";
import { BenchIdentity } from "./bench-identity.ts";
import { LOOPBACK } from "./processes.ts";
import { entriesFromWire, SimTable, type TablePart } from "./sim-table.ts";

type Socket = Bun.udp.Socket<"buffer">;
type Fields = Record<string, unknown>;

const REQUEST_RESEND_MS = 500;
const REQUEST_TRIES = 6;

/** Counters over all members; read before and after a phase. */
export interface SwarmCounters {
  /** Datagrams members received from the server, duplicates included. */
  fromServer: number;
  /** Acks members sent to the server. */
  acksSent: number;
  /** Other datagrams members sent to the server (register, channel, their resends). */
  requestsSent: number;
  tableParts: number;
  /** Table parts numbered 0: roughly how many whole-table pushes began. */
  tablePushes: number;
  /** `challenge` answers to `register` (PROTOCOL.md's address check). */
  challenges: number;
  probes: number;
  channelMessages: number;
  /** Members' sends that threw (stale ICMP errors on loopback) even after one more try. */
  sendFailures: number;
  /** Datagrams from anywhere but the server, or that were not JSON. */
  strays: number;
}

export class Member {
  /** Its keys, and the session key once registered (PROTOCOL.md, "Identity layer"). */
  readonly identity: BenchIdentity;
  /** The session id of its current session. */
  token: string | undefined;
  /** At least one table part showed a client (this one or another) offline. */
  sawOffline = false;
  /** The table as PROTOCOL.md v5's change log: the version held and who is offline. */
  readonly table = new SimTable();
  readonly posts = new Set<number>();
  readonly errors: string[] = [];

  constructor(
    readonly name: string,
    readonly socket: Socket,
  ) {
    this.identity = new BenchIdentity(name);
  }

  get port(): number {
    return this.socket.port;
  }

  onTable(part: TablePart): void {
    if (part.entries.some((entry) => entry.online === false)) this.sawOffline = true;
    this.table.receive(part);
  }
}

/** Reads `fan-out <k> …` texts: the number identifies the post. */
export function postNumber(text: string): number | undefined {
  const match = /^fan-out (\d+) /.exec(text);
  return match ? Number(match[1]) : undefined;
}

export function postText(post: number, length: number): string {
  return `fan-out ${post} `.padEnd(length, "y");
}

export class Swarm {
  readonly members: Member[] = [];
  readonly counters: SwarmCounters = {
    fromServer: 0,
    acksSent: 0,
    requestsSent: 0,
    tableParts: 0,
    tablePushes: 0,
    challenges: 0,
    probes: 0,
    channelMessages: 0,
    sendFailures: 0,
    strays: 0,
  };
  /** Members that have each post, by post number. */
  readonly postReach = new Map<number, number>();
  lastTableAt = 0;
  /** Where the members' requests go and whose datagrams they accept. */
  serverPort = 0;
  private nextRequestId = 1;
  private readonly answers = new Map<number, (type: string, fields: Fields) => void>();
  private postListener: ((post: number, reach: number) => void) | undefined;

  static async open(size: number): Promise<Swarm> {
    const swarm = new Swarm();
    for (let index = 1; index <= size; index++) {
      const name = `m${String(index).padStart(4, "0")}`;
      let member: Member | undefined;
      const socket = await Bun.udpSocket({
        hostname: LOOPBACK,
        port: 0,
        socket: {
          data(_socket, data, port, address) {
            if (member) swarm.receive(member, data, port, address);
          },
          error() {},
        },
      });
      member = new Member(name, socket);
      swarm.members.push(member);
    }
    return swarm;
  }

  close(): void {
    for (const member of this.members) if (!member.socket.closed) member.socket.close();
  }

  onPost(listener: ((post: number, reach: number) => void) | undefined): void {
    this.postListener = listener;
  }

  private send(member: Member, bytes: Uint8Array): void {
    try {
      member.socket.send(bytes, this.serverPort, LOOPBACK);
    } catch {
      try {
        member.socket.send(bytes, this.serverPort, LOOPBACK);
      } catch {
        this.counters.sendFailures++;
      }
    }
  }

  private ack(member: Member, id: number, have?: number): void {
    this.counters.acksSent++;
    const ack =
      have === undefined ? { type: "ack" as const, id } : { type: "ack" as const, id, have };
    this.send(member, encodeMessage(member.identity.withMac(ack) as typeof ack));
  }

  private receive(member: Member, data: Buffer, port: number, address: string): void {
    if (port !== this.serverPort || (address !== LOOPBACK && address !== `::ffff:${LOOPBACK}`)) {
      this.counters.strays++;
      return;
    }
    this.counters.fromServer++;
    let fields: Fields;
    try {
      const parsed: unknown = JSON.parse(data.toString("utf8"));
      if (typeof parsed !== "object" || parsed === null) throw new Error("not an object");
      fields = parsed as Fields;
    } catch {
      this.counters.strays++;
      return;
    }
    const { type, id } = fields;
    if (typeof id !== "number" || typeof type !== "string") {
      this.counters.strays++;
      return;
    }
    switch (type) {
      case "table": {
        this.counters.tableParts++;
        this.lastTableAt = performance.now();
        const { version, base, clients } = fields;
        const part = fields.part ?? 0;
        const parts = fields.parts ?? 1;
        if (
          typeof version === "number" &&
          (base === undefined || typeof base === "number") &&
          typeof part === "number" &&
          typeof parts === "number" &&
          Array.isArray(clients)
        ) {
          if (part === 0) this.counters.tablePushes++;
          member.onTable({
            version,
            ...(base === undefined ? {} : { base }),
            part,
            parts,
            entries: entriesFromWire(clients),
          });
        }
        this.ack(member, id, member.table.have);
        return;
      }
      case "probe":
        this.counters.probes++;
        this.ack(member, id);
        return;
      case "stored":
        this.ack(member, id);
        return;
      case "channel-message": {
        this.counters.channelMessages++;
        this.ack(member, id);
        const post = typeof fields.text === "string" ? postNumber(fields.text) : undefined;
        if (post === undefined || member.posts.has(post)) return;
        member.posts.add(post);
        const reach = (this.postReach.get(post) ?? 0) + 1;
        this.postReach.set(post, reach);
        this.postListener?.(post, reach);
        return;
      }
      default: {
        const answer = this.answers.get(id);
        if (answer) answer(type, fields);
        else this.counters.strays++;
      }
    }
  }

  /**
   * Sends a request from `member` as chatapp's client does (same id every 500 ms, six
   * tries) and resolves to the answer's type and fields, or undefined if none came.
   */
  request(
    member: Member,
    build: (id: number) => Record<string, unknown>,
  ): Promise<{ type: string; fields: Fields } | undefined> {
    const id = this.nextRequestId++;
    const built = build(id);
    let message = built.type === "register" ? built : member.identity.withMac(built);
    const bytes = () =>
      new TextEncoder().encode(JSON.stringify({ v: PROTOCOL_VERSION, ...message }));
    return new Promise((resolve) => {
      let tries = 0;
      let timer: Timer | undefined;
      const attempt = () => {
        if (tries >= REQUEST_TRIES) {
          this.answers.delete(id);
          resolve(undefined);
          return;
        }
        tries++;
        this.counters.requestsSent++;
        this.send(member, bytes());
        timer = setTimeout(attempt, REQUEST_RESEND_MS);
      };
      this.answers.set(id, (type, fields) => {
        // PROTOCOL.md's address check: repeat the register with the cookie, same id.
        if (type === "challenge" && typeof fields.cookie === "string") {
          const signed = member.identity.answerChallenge(message, fields);
          if (!signed) return;
          this.counters.challenges++;
          message = signed;
          clearTimeout(timer);
          tries = 0;
          attempt();
          return;
        }
        clearTimeout(timer);
        this.answers.delete(id);
        resolve({ type, fields });
      });
      attempt();
    });
  }

  /** Registers every member, at most `window` registrations outstanding at once. */
  async register(window: number): Promise<{ failed: string[] }> {
    const failed: string[] = [];
    let next = 0;
    const worker = async () => {
      while (next < this.members.length) {
        const member = this.members[next++];
        if (!member) break;
        const answer = await this.request(member, (id) =>
          padRegistration({
            type: "register",
            id,
            name: member.name,
            sk: member.identity.sk,
            ak: member.identity.ak,
          }),
        );
        const sid = answer?.fields.sid;
        if (
          answer?.type === "registered" &&
          typeof sid === "string" &&
          member.identity.registered(sid)
        ) {
          member.token = sid;
          const { epoch } = answer.fields;
          if (typeof epoch === "string") member.table.setEpoch(epoch);
        } else {
          failed.push(`${member.name}: ${answer ? JSON.stringify(answer.fields) : "no answer"}`);
        }
      }
    };
    await Promise.all(Array.from({ length: window }, worker));
    return { failed };
  }

  /** Every member holds the same, latest version, with no member offline. */
  tablesComplete(): boolean {
    const latest = Math.max(...this.members.map((member) => member.table.version));
    return this.members.every(
      (member) =>
        member.table.holds && member.table.version === latest && member.table.offline.size === 0,
    );
  }

  snapshot(): SwarmCounters {
    return { ...this.counters };
  }
}

export function difference(after: SwarmCounters, before: SwarmCounters): SwarmCounters {
  const result = { ...after };
  for (const key of Object.keys(result) as (keyof SwarmCounters)[]) {
    result[key] = after[key] - before[key];
  }
  return result;
}
