/**
 * A swarm of simulated chatapp clients in one process, one Bun UDP socket each on
 * loopback, written from PROTOCOL.md v3 (not from src/, except the identity layer's
 * arithmetic, which bench-identity.ts borrows from src/core/session-crypto.ts): the registration
 * handshake with its padding and cookie, requests retried every 500 ms with the same
 * id, every server request acknowledged, `table` pushes applied as a change log and
 * acknowledged with the version held (`have`). Each client talks to one server (a node
 * of a cluster or the only server); table versions are counted per server, since each
 * node numbers its own.
 */
import { BenchIdentity } from "./bench-identity.ts";
import { LOOPBACK } from "./processes.ts";
import { type EntryChange, entriesFromWire, SimTable } from "./sim-table.ts";

const PROTOCOL_VERSION = 5;
/** PROTOCOL.md: a `register` without a valid cookie must be at least this many bytes. */
const REGISTER_MIN_BYTES = 256;
const REQUEST_RESEND_MS = 500;
const REQUEST_TRIES = 6;

type Socket = Bun.udp.Socket<"buffer">;
type Fields = Record<string, unknown>;

/** Counters over the whole swarm; read before and after a phase. */
export interface SwarmCounters {
  /** Datagrams and bytes the clients received from the server, repeats included. */
  fromServer: number;
  bytesFromServer: number;
  /** Of those, `table` parts: snapshots (no `base`) and deltas. */
  snapshotParts: number;
  snapshotBytes: number;
  deltaParts: number;
  deltaBytes: number;
  /** Complete pushes applied (each a `[Client table updated.]` in a real client). */
  pushesApplied: number;
  probes: number;
  channelMessages: number;
  stored: number;
  /** Datagrams the clients sent the server: acks, and requests with their retries. */
  acksSent: number;
  requestsSent: number;
  bytesToServer: number;
  challenges: number;
  /** Sends that threw (a stale ICMP error) even when tried once more. */
  sendFailures: number;
  /** Answers to requests no longer waiting: repeats for retransmissions, or too late. */
  lateAnswers: number;
  /** Datagrams from anywhere but the server, or that were not a message. */
  strays: number;
}

function zeroCounters(): SwarmCounters {
  return {
    fromServer: 0,
    bytesFromServer: 0,
    snapshotParts: 0,
    snapshotBytes: 0,
    deltaParts: 0,
    deltaBytes: 0,
    pushesApplied: 0,
    probes: 0,
    channelMessages: 0,
    stored: 0,
    acksSent: 0,
    requestsSent: 0,
    bytesToServer: 0,
    challenges: 0,
    sendFailures: 0,
    lateAnswers: 0,
    strays: 0,
  };
}

export function difference(after: SwarmCounters, before: SwarmCounters): SwarmCounters {
  const result = { ...after };
  for (const key of Object.keys(result) as (keyof SwarmCounters)[]) {
    result[key] = after[key] - before[key];
  }
  return result;
}

export class SimClient {
  readonly table: SimTable;
  /** The UDP port of the server (the node) it registers with. */
  serverPort = 0;
  /** Its keys, and the session key once registered (PROTOCOL.md, "Identity layer"). */
  readonly identity: BenchIdentity;
  /** The session id of its current session. */
  token: string | undefined;
  /** Registered and not deregistered: the server should show it online. */
  online = false;
  /** performance.now() when the table version held last changed. */
  versionAt = 0;
  /** The channel posts this client received: `ref` → performance.now() on arrival. */
  readonly posts = new Map<number, number>();
  /**
   * Its own request ids, in order from a random start, as a chatapp client's are: the
   * server's replay window is per session, so ids shared by all clients would leave a
   * retry behind the window.
   */
  nextId = Math.floor(Math.random() * 2 ** 40);

  /** A witness keeps every name of its table, to tell whether the table is full. */
  constructor(
    readonly name: string,
    readonly socket: Socket,
    readonly witness = false,
  ) {
    this.identity = new BenchIdentity(name);
    this.table = new SimTable({ keepNames: witness });
  }
}

/** A request with its id and MAC, as it will leave: see Swarm.prepare. */
export interface PreparedRequest {
  readonly id: number;
  readonly type: string;
  readonly datagram: Buffer;
}

export interface Answer {
  readonly type: string;
  readonly fields: Fields;
  /** ms from the first send to the answer. */
  readonly ms: number;
}

/**
 * Reads a non-negative integer field straight from the JSON text of a `table` datagram,
 * looking only at the `head` (the text before `"clients":` when that array is the last
 * member). Safe: entries hold only names, addresses, ports and flags, so a key such as
 * `"version":` cannot occur inside them. Parsing 8 KB snapshot parts in full, or scanning
 * each one for every field, would make the swarm, not the server, the bottleneck.
 */
function integerField(text: string, key: string, head: number): number | undefined {
  const at = text.lastIndexOf(key, head);
  if (at < 0) return undefined;
  let value = 0;
  let digits = 0;
  for (let index = at + key.length; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code < 48 || code > 57) break;
    value = value * 10 + (code - 48);
    digits++;
  }
  return digits > 0 ? value : undefined;
}

/**
 * The header of a `table` datagram as text: the bytes before `"clients":` (at `clients`) when that
 * array is the last member (the datagram ends in "]}"); undefined if it is not so.
 * Only the head is decoded: turning every part (up to 56 KB) into a string would make the
 * swarm, not the server, the bottleneck.
 */
function tableHead(data: Buffer, clients: number): string | undefined {
  const length = data.byteLength;
  if (clients < 0 || data[length - 2] !== 0x5d || data[length - 1] !== 0x7d) return undefined;
  return data.toString("latin1", 0, clients);
}

const TABLE_MARK = Buffer.from('"type":"table"');
const CLIENTS_MARK = Buffer.from('"clients":');

function parseObject(text: string): Fields | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)
      ? (parsed as Fields)
      : undefined;
  } catch {
    return undefined;
  }
}

/** Table parts whose entries are kept once read (a push's parts go to every client). */
const PARSED_PARTS_KEPT = 1024;

interface ParsedPart {
  readonly entries: readonly EntryChange[];
  readonly quiet: boolean;
}

/** Pads a `register` to REGISTER_MIN_BYTES with a `pad` string, as PROTOCOL.md asks. */
export function encodeRegister(fields: Fields): string {
  const bare = JSON.stringify({ v: PROTOCOL_VERSION, ...fields });
  const missing = REGISTER_MIN_BYTES - (bare.length + ',"pad":""'.length);
  return missing > 0
    ? JSON.stringify({ v: PROTOCOL_VERSION, ...fields, pad: "-".repeat(missing) })
    : bare;
}

export class Swarm {
  readonly clients: SimClient[] = [];
  readonly byName = new Map<string, SimClient>();
  counters: SwarmCounters = zeroCounters();
  /** The highest table version any client of each server was sent, by server port. */
  readonly maxVersions = new Map<number, number>();
  /** performance.now() of the last `table` datagram. */
  lastTableAt = 0;
  /** The entries of table parts read so far, by what identifies a part's body. */
  private readonly parsedParts = new Map<string, ParsedPart>();
  /** While true, alive clients shown offline in any push are collected in `shownOffline`. */
  watchOffline = false;
  readonly shownOffline = new Set<string>();
  /** Clients that have each channel post, by `ref`. */
  readonly postReach = new Map<number, number>();
  readonly errors = new Map<string, number>();
  // PROTOCOL.md: message ids start at a random point in each client process.
  private readonly pending = new Map<string, (type: string, fields: Fields) => void>();

  /** Opens `size` sockets; names are `<prefix><index>`; the first `witnesses` are witnesses. */
  static async open(size: number, prefix = "s", witnesses = 0): Promise<Swarm> {
    const swarm = new Swarm();
    const width = String(size).length;
    for (let index = 1; index <= size; index++) {
      const name = `${prefix}${String(index).padStart(width, "0")}`;
      let client: SimClient | undefined;
      const socket = await Bun.udpSocket({
        hostname: LOOPBACK,
        port: 0,
        socket: {
          data(_socket, data, port, address) {
            try {
              if (client) swarm.receive(client, data, port, address);
            } catch {
              swarm.counters.strays++;
            }
          },
          error() {},
        },
      });
      client = new SimClient(name, socket, index <= witnesses);
      swarm.clients.push(client);
      swarm.byName.set(name, client);
    }
    return swarm;
  }

  /** Client i talks to `ports[i % ports.length]`: a swarm split evenly across the nodes. */
  useServers(ports: readonly number[]): void {
    this.clients.forEach((client, index) => {
      client.serverPort = ports[index % ports.length] ?? 0;
    });
  }

  /** The highest version sent to any client, of any server (for messages). */
  get maxVersion(): number {
    return Math.max(0, ...this.maxVersions.values());
  }

  close(): void {
    for (const client of this.clients) if (!client.socket.closed) client.socket.close();
  }

  snapshot(): SwarmCounters {
    return { ...this.counters };
  }

  get online(): SimClient[] {
    return this.clients.filter((client) => client.online);
  }

  private send(client: SimClient, datagram: string | Buffer): void {
    this.counters.bytesToServer += datagram.length;
    try {
      client.socket.send(datagram, client.serverPort, LOOPBACK);
    } catch {
      // BUN-NOTES: a stale ICMP error poisons the next send; one more try goes through.
      try {
        client.socket.send(datagram, client.serverPort, LOOPBACK);
      } catch {
        this.counters.sendFailures++;
      }
    }
  }

  private ack(client: SimClient, id: number, have?: number): void {
    this.counters.acksSent++;
    const ack = have === undefined ? { type: "ack", id } : { type: "ack", id, have };
    this.send(client, JSON.stringify({ v: PROTOCOL_VERSION, ...client.identity.withMac(ack) }));
  }

  private receive(client: SimClient, data: Buffer, port: number, address: string): void {
    if (port !== client.serverPort || (address !== LOOPBACK && address !== `::ffff:${LOOPBACK}`)) {
      this.counters.strays++;
      return;
    }
    this.counters.fromServer++;
    this.counters.bytesFromServer += data.byteLength;
    // The type comes first in the server's datagrams: look for it in the first bytes only.
    const typeAt = data.indexOf(TABLE_MARK);
    if (typeAt >= 0 && typeAt < 32 && this.onTable(client, data)) return;
    const fields = parseObject(data.toString("utf8"));
    const { id, type } = fields ?? {};
    if (!fields || typeof id !== "number" || typeof type !== "string") {
      this.counters.strays++;
      return;
    }
    switch (type) {
      case "probe":
        this.counters.probes++;
        this.ack(client, id);
        return;
      case "stored":
        this.counters.stored++;
        this.ack(client, id);
        return;
      case "channel-message": {
        this.counters.channelMessages++;
        this.ack(client, id);
        const { ref } = fields;
        if (typeof ref !== "number" || client.posts.has(ref)) return;
        client.posts.set(ref, performance.now());
        this.postReach.set(ref, (this.postReach.get(ref) ?? 0) + 1);
        return;
      }
      default: {
        const answer = this.pending.get(answerKey(client, id));
        if (answer) answer(type, fields);
        else this.counters.lateAnswers++;
      }
    }
  }

  /** A `table` part; false if its header could not be read (then it is a stray). */
  private onTable(client: SimClient, data: Buffer): boolean {
    const clientsAt = data.indexOf(CLIENTS_MARK);
    const head = tableHead(data, clientsAt);
    if (head === undefined) return false;
    const bytes = data.byteLength;
    const id = integerField(head, '"id":', head.length);
    const version = integerField(head, '"version":', head.length);
    if (id === undefined || version === undefined) return false;
    const base = integerField(head, '"base":', head.length);
    const part = integerField(head, '"part":', head.length) ?? 0;
    const parts = integerField(head, '"parts":', head.length) ?? 1;
    this.lastTableAt = performance.now();
    if (version > (this.maxVersions.get(client.serverPort) ?? 0)) {
      this.maxVersions.set(client.serverPort, version);
    }
    // Every recipient of a push from one server gets the same entries in parts that
    // other pushes share too (PROTOCOL.md, "Pieces"): each part's text is read once,
    // found again by its bytes, not once per simulated client.
    const { entries, quiet } = this.partEntries(client.serverPort, data.subarray(clientsAt));
    if (base === undefined) {
      this.counters.snapshotParts++;
      this.counters.snapshotBytes += bytes;
    } else {
      this.counters.deltaParts++;
      this.counters.deltaBytes += bytes;
    }
    if (this.watchOffline) {
      for (const entry of entries) {
        if (entry.online === false && this.byName.get(entry.name)?.online) {
          this.shownOffline.add(entry.name);
        }
      }
    }
    const partInfo = { version, part, parts, entries, quiet };
    if (client.table.receive(base === undefined ? partInfo : { ...partInfo, base })) {
      this.counters.pushesApplied++;
      client.versionAt = this.lastTableAt;
    }
    this.ack(client, id, client.table.have);
    return true;
  }

  /**
   * The entries of a part's `"clients":…}` text from one server, read once. Found by
   * its length and 64-bit hash alone: one pass over the bytes, where comparing them too
   * made the swarm's CPU, not the server's, what the registration storm measured (two
   * bodies of one length colliding among the ~10^5 a run sees: about 10^-9).
   */
  private partEntries(serverPort: number, body: Buffer): ParsedPart {
    const key = `${serverPort}/${body.byteLength}/${Bun.hash(body)}`;
    const known = this.parsedParts.get(key);
    if (known) return known;
    if (this.parsedParts.size >= PARSED_PARTS_KEPT) this.parsedParts.clear();
    const entries = entriesFromWire(parseObject(`{${body.toString("utf8")}`)?.clients);
    const parsed = { entries, quiet: entries.every((entry) => entry.online === true) };
    this.parsedParts.set(key, parsed);
    return parsed;
  }

  /**
   * Sends a request as a chatapp client does (the same id every 500 ms, six tries) and
   * resolves to the answer, or undefined if none came. A `challenge` is answered by the
   * same `register` with its cookie, same id, as PROTOCOL.md's handshake says.
   */
  request(client: SimClient, fields: Fields): Promise<Answer | undefined> {
    if (fields.type !== "register") return this.sendPrepared(client, this.prepare(client, fields));
    const id = client.nextId++;
    let message: Fields = { ...fields, id };
    return this.exchange(client, id, "register", encodeRegister(message), (answer) => {
      if (typeof answer.cookie !== "string" || message.cookie === answer.cookie) return undefined;
      const signed = client.identity.answerChallenge(message, answer);
      if (!signed) return undefined;
      this.counters.challenges++;
      message = signed;
      return encodeRegister(message);
    });
  }

  /**
   * A request written now, its id taken and its MAC made, to be sent later with
   * sendPrepared: what a sender's own machine does before the datagram leaves it.
   */
  prepare(client: SimClient, fields: Fields): PreparedRequest {
    const id = client.nextId++;
    const text = JSON.stringify({
      v: PROTOCOL_VERSION,
      ...client.identity.withMac({ ...fields, id }),
    });
    return { id, type: String(fields.type), datagram: Buffer.from(text) };
  }

  /** Sends a prepared request (retried as `request` does) and resolves to its answer. */
  sendPrepared(client: SimClient, prepared: PreparedRequest): Promise<Answer | undefined> {
    return this.exchange(client, prepared.id, prepared.type, prepared.datagram);
  }

  /** `answerChallenge` gives the datagram to send instead, tries counted anew; undefined ignores the challenge. */
  private exchange(
    client: SimClient,
    id: number,
    requestType: string,
    first: string | Buffer,
    answerChallenge?: (challenge: Fields) => string | undefined,
  ): Promise<Answer | undefined> {
    const started = performance.now();
    return new Promise((resolve) => {
      let tries = 0;
      let timer: Timer | undefined;
      let datagram = first;
      const attempt = () => {
        if (tries >= REQUEST_TRIES) {
          this.pending.delete(answerKey(client, id));
          resolve(undefined);
          return;
        }
        tries++;
        this.counters.requestsSent++;
        this.send(client, datagram);
        timer = setTimeout(attempt, REQUEST_RESEND_MS);
      };
      this.pending.set(answerKey(client, id), (type, answer) => {
        if (type === "challenge" && answerChallenge) {
          const answered = answerChallenge(answer);
          if (answered === undefined) return;
          datagram = answered;
          clearTimeout(timer);
          tries = 0;
          attempt();
          return;
        }
        clearTimeout(timer);
        this.pending.delete(answerKey(client, id));
        if (type === "error") {
          const code = `${requestType}: ${String(answer.code)}`;
          this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
        }
        resolve({ type, fields: answer, ms: performance.now() - started });
      });
      attempt();
    });
  }

  /**
   * `register` (or `reg` again, with the epoch and version held), signed with the client's key. Resolves to the
   * answer; on `registered` the client is online with its session and epoch.
   */
  async register(client: SimClient): Promise<Answer | undefined> {
    const { sk, ak } = client.identity;
    const fields: Fields = { type: "register", name: client.name, sk, ak };
    if (client.table.holds && client.table.epoch !== undefined) {
      fields.epoch = client.table.epoch;
      fields.have = client.table.have;
    }
    const answer = await this.request(client, fields);
    const sid = answer?.fields.sid;
    if (
      answer?.type === "registered" &&
      typeof sid === "string" &&
      client.identity.registered(sid)
    ) {
      client.token = sid;
      const { epoch } = answer.fields;
      client.table.setEpoch(typeof epoch === "string" ? epoch : undefined);
      client.online = true;
    }
    return answer;
  }

  async deregister(client: SimClient): Promise<Answer | undefined> {
    client.online = false;
    return this.request(client, { type: "deregister", sid: client.token });
  }

  /** Posts to the channel; `ref` is the id the members' `channel-message`s will carry. */
  post(client: SimClient, text: string): { ref: number; answer: Promise<Answer | undefined> } {
    const ref = client.nextId;
    return { ref, answer: this.request(client, { type: "channel", sid: client.token, text }) };
  }

  /**
   * Registers every client, at most `window` handshakes outstanding at once (and, given
   * `perSecond`, started no faster than that). Resolves
   * with failures and the time the last `registered` arrived.
   */
  async registerAll(
    clients: readonly SimClient[],
    window: number,
    perSecond?: number,
  ): Promise<{ failed: string[]; lastAt: number; slowestMs: number; answersMs: number[] }> {
    const failed: string[] = [];
    const answersMs: number[] = [];
    let next = 0;
    const started = performance.now();
    let lastAt = started;
    let slowestMs = 0;
    const worker = async () => {
      while (next < clients.length) {
        const index = next++;
        const client = clients[index];
        if (!client) break;
        if (perSecond !== undefined) {
          const due = started + (index * 1000) / perSecond - performance.now();
          if (due > 0) await Bun.sleep(due);
        }
        const answer = await this.register(client);
        if (answer?.type === "registered") {
          lastAt = performance.now();
          slowestMs = Math.max(slowestMs, answer.ms);
          answersMs.push(answer.ms);
        } else {
          failed.push(`${client.name}: ${answer ? JSON.stringify(answer.fields) : "no answer"}`);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(window, clients.length) }, worker));
    return { failed, lastAt, slowestMs, answersMs };
  }

  /**
   * Waits until every online client holds the highest version its server sent, every
   * online witness's table shows exactly the online clients online (so, each client
   * holding its server's version, every table is full), and no `table` datagram came for
   * `quietMs`. Resolves to the moment the last client got there, or undefined at the
   * deadline.
   */
  async converged(timeoutMs: number, quietMs = 300): Promise<number | undefined> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      const now = performance.now();
      if (now - this.lastTableAt >= quietMs && this.witnessesFull()) {
        let last = 0;
        let all = true;
        for (const client of this.clients) {
          if (!client.online) continue;
          if (this.isBehind(client)) {
            all = false;
            break;
          }
          last = Math.max(last, client.versionAt);
        }
        if (all) return last;
      }
      await Bun.sleep(20);
    }
    return undefined;
  }

  private isBehind(client: SimClient): boolean {
    return !client.table.holds || client.table.version !== this.maxVersions.get(client.serverPort);
  }

  private witnessesFull(): boolean {
    let online: number | undefined;
    for (const client of this.clients) {
      if (!client.witness || !client.online) continue;
      online ??= this.online.length;
      if (client.table.onlineCount !== online) return false;
    }
    return true;
  }

  /** Online clients that do not hold the highest version their server sent. */
  behind(): number {
    return this.clients.filter((client) => client.online && this.isBehind(client)).length;
  }

  /** Online witnesses whose table does not show every online client online. */
  witnessesShort(): number {
    const online = this.online.length;
    return this.clients.filter(
      (client) => client.witness && client.online && client.table.onlineCount !== online,
    ).length;
  }

  /** Alive (online) names that some online client's table shows offline. */
  heldOffline(): Set<string> {
    const names = new Set<string>();
    for (const client of this.clients) {
      if (!client.online) continue;
      for (const name of client.table.offline) if (this.byName.get(name)?.online) names.add(name);
    }
    return names;
  }
}

/** Answers are told apart by client and id: each client numbers its own requests. */
function answerKey(client: SimClient, id: number): string {
  return `${client.socket.port}#${id}`;
}
