/**
 * A deterministic in-memory world for the pure cores: one server (persisting to a
 * memory store, so it can crash and come back from what was committed) and any
 * number of clients, joined by a simulated UDP network with seeded loss,
 * duplication and delay. Time is a fake clock that moves only when a test says so;
 * every wake-up and delivery then happens at its exact millisecond, in order.
 *
 * Datagrams travel as bytes (`encodeMessage` / `decodeMessage`), as in the real shell.
 */
import {
  type ClientEffect,
  type ClientInput,
  type ClientState,
  createClientState,
  type PendingRequest,
} from "../../src/core/client-state.ts";
import type { CryptoPort } from "../../src/core/crypto-port.ts";
import type { NodeNote, ServerEffect, ServerInput } from "../../src/core/server-effects.ts";
import { createServerState, type ServerState } from "../../src/core/server-state.ts";
import { type KeyPairs, publicKeyText } from "../../src/core/session-crypto.ts";
import { shownKey } from "../../src/core/shown-messages.ts";
import { nextClientWakeAt, stepClient } from "../../src/core/step-client.ts";
import { nextServerWakeAt, stepServer, tableEntries } from "../../src/core/step-server.ts";
import { encodeBase64url } from "../../src/crypto/base64url.ts";
import { seededRandom } from "../../src/io/seeded-random.ts";
import { addressKey } from "../../src/protocol/address.ts";
import { decodeMessage, encodeMessage } from "../../src/protocol/codec.ts";
import {
  type Address,
  COOKIE_LENGTH,
  EPOCH_LENGTH,
  type Message,
  TOKEN_LENGTH,
} from "../../src/protocol/messages.ts";
import { nameKey } from "../../src/protocol/names.ts";
import { createMemoryStore } from "../../src/store/memory-store.ts";
import type { OfflineStore, StoreChange } from "../../src/store/offline-store.ts";
import { derivedKeyPairs, identityFor, seededCrypto } from "./identities.ts";

export { seededRandom };

/** 2025-03-14T09:26:53Z: a fixed start, so stored-message timestamps are predictable. */
export const START_TIME = Date.UTC(2025, 2, 14, 9, 26, 53);
export const LOOPBACK = "127.0.0.1";
export const SERVER_ADDRESS: Address = { ip: LOOPBACK, port: 5000 };
export const FIRST_CLIENT_PORT = 6001;
export const SERVER_LABEL = "server";

/** Faults of one direction of a link. A delay range reorders datagrams. */
export interface LinkFaults {
  readonly loss: number;
  readonly duplication: number;
  readonly delayMinMs: number;
  readonly delayMaxMs: number;
}

export const NO_FAULTS: LinkFaults = { loss: 0, duplication: 0, delayMinMs: 0, delayMaxMs: 0 };

/** Which direction faults apply to: labels of the sending and receiving nodes; omitted means any. */
export interface LinkSelector {
  readonly from?: string;
  readonly to?: string;
}

export interface SentDatagram {
  readonly at: number;
  readonly from: string;
  /** The label of the node at the destination address when it was sent, or `ip:port`. */
  readonly to: string;
  readonly toAddress: Address;
  readonly message: Message;
  /** The datagram as it went on the wire. */
  readonly bytes: Uint8Array;
}

export interface ShownLine {
  readonly at: number;
  readonly text: string;
}

export interface ClientStepRecord {
  readonly at: number;
  readonly label: string;
  readonly input: ClientInput["kind"];
  /** Requests that were outstanding before the step and are not after it. */
  readonly finished: readonly PendingRequest[];
  readonly effects: readonly ClientEffect[];
}

export interface ServerStepRecord {
  readonly at: number;
  readonly input: ServerInput["kind"];
  /** The datagram the step was for, decoded, if it was one and could be. */
  readonly received: Message | undefined;
  readonly effects: readonly ServerEffect[];
}

/**
 * What an identity keeps in the files beside it, across its processes (as `<stem>.shown`
 * and `<stem>.known-keys` do): a restarted client starts from them.
 */
export interface CompanionFiles {
  /** shownKey of every message shown, oldest first. */
  readonly shown: string[];
  /** Peers' names (lower case) and the agreement keys trusted for them. */
  readonly knownKeys: Map<string, string>;
}

export interface NetworkOptions {
  readonly seed?: number;
  /** Start without a server, as if none listened at its address. */
  readonly withoutServer?: boolean;
  /**
   * A cluster: server nodes with these labels, at ports 5000, 5001, …, sharing the
   * memory store as they share Redis, with a shared log delivered to every other node
   * `logDelayMs` after each commit, and atomic name claims.
   */
  readonly nodes?: readonly string[];
  readonly logDelayMs?: number;
}

/** An entry of the cluster's shared log: what one node committed. */
interface LogEntry {
  readonly node: string;
  readonly changes: readonly StoreChange[];
  readonly notes: readonly NodeNote[];
}

interface Delivery {
  readonly kind: "delivery";
  readonly at: number;
  readonly seq: number;
  readonly from: Address;
  readonly to: Address;
  readonly bytes: Uint8Array;
}

interface Wake {
  readonly kind: "wake";
  readonly at: number;
  readonly seq: number;
  readonly node: WakeTarget;
  readonly generation: number;
}

interface LogDelivery {
  readonly kind: "log";
  readonly at: number;
  readonly seq: number;
  readonly node: string;
  readonly entry: LogEntry;
}

type SimEvent = Delivery | Wake | LogDelivery;

interface WakeTarget {
  armedFor: number | undefined;
  generation: number;
}

/** A binary min-heap on (at, seq): same-time events keep the order they were scheduled in. */
class EventQueue {
  private readonly heap: SimEvent[] = [];

  get size(): number {
    return this.heap.length;
  }

  push(event: SimEvent): void {
    const heap = this.heap;
    heap.push(event);
    let index = heap.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      const above = heap[parent];
      if (!above || !before(event, above)) break;
      heap[index] = above;
      heap[parent] = event;
      index = parent;
    }
  }

  peek(): SimEvent | undefined {
    return this.heap[0];
  }

  pop(): SimEvent | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    heap[0] = last;
    let index = 0;
    for (;;) {
      const left = index * 2 + 1;
      const right = left + 1;
      let smallest = index;
      const leftEvent = heap[left];
      const rightEvent = heap[right];
      const smallestEvent = () => heap[smallest] as SimEvent;
      if (leftEvent && before(leftEvent, smallestEvent())) smallest = left;
      if (rightEvent && before(rightEvent, smallestEvent())) smallest = right;
      if (smallest === index) break;
      heap[index] = smallestEvent();
      heap[smallest] = last;
      index = smallest;
    }
    return top;
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** A wake-up that was re-armed or cancelled since it was scheduled. */
function isStale(event: SimEvent): boolean {
  return (
    event.kind === "wake" &&
    (event.node.generation !== event.generation || event.node.armedFor !== event.at)
  );
}

/** FNV-1a, 32 bits: enough to make distinct, repeatable cookies in a test. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

function hex(length: number, word: (index: number) => number): string {
  let text = "";
  for (let index = 0; text.length < length; index++) {
    text += word(index).toString(16).padStart(8, "0");
  }
  return text.slice(0, length);
}

class SimServer implements WakeTarget {
  armedFor: number | undefined;
  generation = 0;

  constructor(
    readonly label: string,
    readonly address: Address,
    readonly state: ServerState,
  ) {}
}

/** One client process: what its user typed, saw, and how it ended. */
export class SimClient implements WakeTarget {
  armedFor: number | undefined;
  generation = 0;
  readonly lines: ShownLine[] = [];
  exitCode: number | undefined;
  /** Died silently (ctrl+c, closed terminal): receives and answers nothing from now on. */
  dead = false;
  /** Server keys the process asked to pin, in order. */
  readonly pinnedServerKeys: string[] = [];

  constructor(
    private readonly network: SimulatedNetwork,
    readonly label: string,
    readonly address: Address,
    readonly state: ClientState,
    /** The files beside this process's identity, shared with its earlier and later processes. */
    readonly files: CompanionFiles = { shown: [], knownKeys: new Map() },
  ) {}

  get name(): string {
    return this.state.name;
  }

  get running(): boolean {
    return !this.dead && this.exitCode === undefined;
  }

  type(line: string): this {
    this.network.feedClient(this, { kind: "line", text: line });
    return this;
  }

  endInput(): this {
    this.network.feedClient(this, { kind: "end-of-input" });
    return this;
  }

  kill(): void {
    this.dead = true;
    this.generation++;
    this.armedFor = undefined;
  }

  shown(): string[] {
    return this.lines.map((line) => line.text);
  }

  /** Lines shown from index `from` on: `const mark = x.shown().length; ...; x.shownSince(mark)`. */
  shownSince(from: number): string[] {
    return this.shown().slice(from);
  }
}

export class SimulatedNetwork {
  now = START_TIME;
  readonly store: OfflineStore = createMemoryStore();
  readonly sent: SentDatagram[] = [];
  readonly serverLogs: string[] = [];
  /** Every batch of changes the server committed, in order. */
  readonly persisted: (readonly StoreChange[])[] = [];
  readonly clientSteps: ((record: ClientStepRecord) => void)[] = [];
  readonly serverSteps: ((record: ServerStepRecord) => void)[] = [];
  dropped = 0;
  delivered = 0;
  /** While set, every commit fails, as on a full disk. */
  storeRefusesWrites = false;

  private readonly faultRandom: () => number;
  private readonly idRandom: () => number;
  /** The server's key pairs, kept across its restarts as its data directory keeps them. */
  readonly serverKeys: KeyPairs;
  /** Crypto with seeded randomness, so the same seed gives the same run. */
  private readonly crypto: CryptoPort;
  private readonly queue = new EventQueue();
  private seq = 0;
  /** Running servers by label: one (`server`), or a cluster's nodes. */
  private readonly servers = new Map<string, SimServer>();
  /** Every server's address by label, running or not. */
  private readonly serverAddresses = new Map<string, Address>();
  private readonly clustered: boolean;
  private readonly logDelayMs: number;
  /** The cluster's name claims (Redis's `chat:claims`): name key → node. */
  readonly claims = new Map<string, string>();
  /** Every entry of the cluster's shared log, in order. */
  readonly log: LogEntry[] = [];
  /** While set, claims cannot be made, as with Redis unreachable. */
  claimsFail = false;
  private serverStarts = 0;
  private readonly clients = new Map<string, SimClient>();
  /** By identity: its name's key unless a test gives it files of its own. */
  private readonly companionFiles = new Map<string, CompanionFiles>();
  private readonly started: SimClient[] = [];
  /** The latest client process at each address. */
  private readonly byAddress = new Map<string, SimClient>();
  private readonly faults = new Map<string, LinkFaults>();
  private readonly dropRules = new Set<(datagram: SentDatagram) => boolean>();
  private nextPort = FIRST_CLIENT_PORT;

  constructor(options: NetworkOptions = {}) {
    const seed = options.seed ?? 1;
    this.faultRandom = seededRandom(seed);
    this.idRandom = seededRandom(seed ^ 0x5eed_cafe);
    this.serverKeys = derivedKeyPairs(`server ${seed}`);
    this.crypto = seededCrypto(seed ^ 0x0c1a_55ed);
    this.clustered = options.nodes !== undefined;
    this.logDelayMs = options.logDelayMs ?? 1;
    const labels = options.nodes ?? [SERVER_LABEL];
    labels.forEach((label, index) => {
      this.serverAddresses.set(label, { ip: LOOPBACK, port: SERVER_ADDRESS.port + index });
    });
    if (!options.withoutServer) for (const label of labels) this.startServer(label);
  }

  // The server ---------------------------------------------------------------------------------

  get serverRunning(): boolean {
    return this.servers.has(SERVER_LABEL);
  }

  get server(): ServerState {
    return this.node(SERVER_LABEL);
  }

  /** The state of the server (or cluster node) `label`. */
  node(label: string): ServerState {
    const server = this.servers.get(label);
    if (!server) throw new Error(`the server ${label} is not running`);
    return server.state;
  }

  nodeAddress(label: string): Address {
    const address = this.serverAddresses.get(label);
    if (!address) throw new Error(`no server ${label}`);
    return address;
  }

  /** Starts a server process from what the store holds, with a fresh secret and request ids. */
  startServer(label = SERVER_LABEL): void {
    if (this.servers.has(label)) throw new Error(`the server ${label} is already running`);
    const address = this.nodeAddress(label);
    const slot = [...this.serverAddresses.keys()].indexOf(label);
    this.serverStarts++;
    const secret = `secret-${this.serverStarts}-${Math.floor(this.idRandom() * 2 ** 32)}`;
    const state = createServerState(this.store.loadSummary(), {
      crypto: this.crypto,
      keys: this.serverKeys,
      newToken: () => hex(TOKEN_LENGTH, () => Math.floor(this.idRandom() * 2 ** 32)),
      firstRequestId: Math.floor(this.idRandom() * 2 ** 40),
      cookieFor: (address, period) =>
        hex(COOKIE_LENGTH, (index) => fnv1a(`${secret}|${addressKey(address)}|${period}|${index}`)),
      epoch: hex(EPOCH_LENGTH, () => Math.floor(this.idRandom() * 2 ** 32)),
      ...(this.clustered ? { cluster: { node: label, slot } } : {}),
    });
    const server = new SimServer(label, address, state);
    this.servers.set(label, server);
    // A fan-out a crash cut short resumes at once.
    this.arm(server, nextServerWakeAt(state));
  }

  /** The server process dies: everything in memory is gone, the store keeps what was committed. */
  crashServer(label = SERVER_LABEL): void {
    const server = this.servers.get(label);
    if (!server) return;
    server.generation++;
    this.servers.delete(label);
  }

  restartServer(label = SERVER_LABEL): void {
    this.crashServer(label);
    this.startServer(label);
  }

  /** Cluster: `by` finds that node `gone` stopped beating and takes it over. */
  takeOver(gone: string, by: string): void {
    const server = this.servers.get(by);
    if (server) this.feedServer(server, { kind: "node-gone", node: gone });
  }

  // Clients ------------------------------------------------------------------------------------

  /**
   * Starts a client process (it registers at once, as `chatapp -c` does). It reads and
   * writes the companion files of its identity: those of its name, or `files` (another
   * identity file, as `--identity` chooses).
   */
  addClient(
    name: string,
    options: {
      label?: string;
      port?: number;
      identity?: KeyPairs;
      files?: string;
      /** A cluster's node to register at: the first server unless told. */
      node?: string;
    } = {},
  ): SimClient {
    const label = options.label ?? name;
    const previous = this.clients.get(label);
    if (previous?.running) throw new Error(`client ${label} is still running`);
    const port = options.port ?? previous?.address.port ?? this.nextPort++;
    const address: Address = { ip: LOOPBACK, port };
    const other = this.byAddress.get(addressKey(address));
    if (other?.running) throw new Error(`port ${port} is in use by ${other.label}`);
    const files = this.companionsOf(options.files ?? nameKey(name));
    const state = createClientState({
      name,
      server: this.nodeAddress(options.node ?? this.firstServerLabel()),
      firstRequestId: Math.floor(this.idRandom() * 2 ** 40),
      crypto: this.crypto,
      identity: options.identity ?? identityFor(name),
      shownBefore: files.shown,
      knownPeerKeys: files.knownKeys,
    });
    const client = new SimClient(this, label, address, state, files);
    this.clients.set(label, client);
    this.byAddress.set(addressKey(address), client);
    this.started.push(client);
    this.feedClient(client, { kind: "start" });
    return client;
  }

  /**
   * Many clients that are already registered, online and hold the full table, as if
   * they had joined long ago: written to the store, which the server restarts from.
   */
  addRegisteredClients(names: readonly string[]): SimClient[] {
    const records = names.map((name) => ({
      name,
      ip: LOOPBACK,
      port: this.nextPort++,
      online: true,
      token: hex(TOKEN_LENGTH, () => Math.floor(this.idRandom() * 2 ** 32)),
      lastSeen: this.now,
      sk: publicKeyText(identityFor(name).signing),
      ak: publicKeyText(identityFor(name).agreement),
      sessionKey: encodeBase64url(this.crypto.randomBytes(32)),
    }));
    this.store.apply(records.map((client): StoreChange => ({ kind: "put-client", client })));
    this.restartServer();
    const table = tableEntries(this.server);
    return records.map((record) => {
      const state = createClientState({
        name: record.name,
        server: SERVER_ADDRESS,
        firstRequestId: Math.floor(this.idRandom() * 2 ** 40),
        crypto: this.crypto,
        identity: identityFor(record.name),
      });
      state.phase = "online";
      state.token = record.token;
      state.sessionKey = this.server.clients.get(nameKey(record.name))?.sessionKey;
      state.table = table;
      const client = new SimClient(this, record.name, { ip: record.ip, port: record.port }, state);
      this.clients.set(record.name, client);
      this.byAddress.set(addressKey(client.address), client);
      this.started.push(client);
      return client;
    });
  }

  /** The companion files of an identity, as a new process of it would read them. */
  companionsOf(identity: string): CompanionFiles {
    let files = this.companionFiles.get(identity);
    if (!files) {
      files = { shown: [], knownKeys: new Map() };
      this.companionFiles.set(identity, files);
    }
    return files;
  }

  client(label: string): SimClient {
    const client = this.clients.get(label);
    if (!client) throw new Error(`no client ${label}`);
    return client;
  }

  /** What the user of the client `label` (its latest process) has seen, in order. */
  shown(label: string): string[] {
    return this.client(label).shown();
  }

  /** Every line shown by every process that ran under this chat name, in order of start. */
  shownToName(name: string): string[] {
    return this.processes(name).flatMap((process) => process.shown());
  }

  /** Every client process that ran under this chat name, in order of start. */
  processes(name: string): SimClient[] {
    return this.started.filter((process) => process.name === name);
  }

  // Faults -------------------------------------------------------------------------------------

  setFaults(faults: Partial<LinkFaults>, link: LinkSelector = {}): void {
    this.faults.set(`${link.from ?? "*"}>${link.to ?? "*"}`, { ...NO_FAULTS, ...faults });
  }

  clearFaults(): void {
    this.faults.clear();
    this.dropRules.clear();
  }

  /** Loses every datagram that `rule` picks until the returned function is called. */
  drop(rule: (datagram: SentDatagram) => boolean): () => void {
    this.dropRules.add(rule);
    return () => this.dropRules.delete(rule);
  }

  private faultsFor(from: string, to: string): LinkFaults {
    return (
      this.faults.get(`${from}>${to}`) ??
      this.faults.get(`${from}>*`) ??
      this.faults.get(`*>${to}`) ??
      this.faults.get("*>*") ??
      NO_FAULTS
    );
  }

  // Time ---------------------------------------------------------------------------------------

  /** Moves the clock `ms` forward, carrying out every delivery and wake-up due on the way. */
  advance(ms: number): void {
    if (ms < 0) throw new Error(`cannot go back in time (${ms} ms)`);
    const until = this.now + ms;
    let events = 0;
    for (;;) {
      const next = this.queue.peek();
      if (!next || next.at > until) break;
      this.queue.pop();
      if (++events > 5_000_000) throw new Error("the simulation does not settle: a wake-up loop?");
      this.now = next.at;
      this.handle(next);
    }
    this.now = until;
  }

  /** Runs until nothing is left to deliver or wake up for; returns how long that took. */
  settle(limitMs = 600_000): number {
    const start = this.now;
    for (;;) {
      const next = this.queue.peek();
      if (!next) return this.now - start;
      if (isStale(next)) {
        this.queue.pop();
        continue;
      }
      if (next.at - start > limitMs) throw new Error(`still busy after ${limitMs} ms`);
      this.advance(next.at - this.now);
    }
  }

  // Datagrams ----------------------------------------------------------------------------------

  /** Puts a datagram on the wire from any address, without faults: forgeries, junk, replays. */
  inject(from: Address, to: Address, content: Message | Uint8Array): void {
    const bytes = content instanceof Uint8Array ? content : encodeMessage(content);
    this.queue.push({ kind: "delivery", at: this.now, seq: this.seq++, from, to, bytes });
  }

  /** Datagrams sent by `from` (a label), optionally of one message type. */
  sentBy(from: string, type?: Message["type"]): SentDatagram[] {
    return this.sent.filter(
      (d) => d.from === from && (type === undefined || d.message.type === type),
    );
  }

  labelAt(address: Address): string {
    const key = addressKey(address);
    for (const [label, serverAddress] of this.serverAddresses) {
      if (key === addressKey(serverAddress)) return label;
    }
    return this.byAddress.get(key)?.label ?? `${address.ip}:${address.port}`;
  }

  private transmit(fromLabel: string, from: Address, to: Address, message: Message): void {
    const bytes = encodeMessage(message);
    const toLabel = this.labelAt(to);
    const decoded = decodeMessage(bytes);
    if (!decoded) {
      throw new Error(`${fromLabel} sent a message it cannot decode: ${JSON.stringify(message)}`);
    }
    const record: SentDatagram = {
      at: this.now,
      from: fromLabel,
      to: toLabel,
      toAddress: to,
      message: decoded,
      bytes,
    };
    this.sent.push(record);
    for (const rule of this.dropRules) {
      if (rule(record)) {
        this.dropped++;
        return;
      }
    }
    const faults = this.faultsFor(fromLabel, toLabel);
    const copies = this.faultRandom() < faults.duplication ? 2 : 1;
    for (let copy = 0; copy < copies; copy++) {
      if (this.faultRandom() < faults.loss) {
        this.dropped++;
        continue;
      }
      const span = faults.delayMaxMs - faults.delayMinMs;
      const delay = faults.delayMinMs + Math.floor(this.faultRandom() * (span + 1));
      this.queue.push({ kind: "delivery", at: this.now + delay, seq: this.seq++, from, to, bytes });
    }
  }

  private firstServerLabel(): string {
    const [first] = this.serverAddresses.keys();
    return first ?? SERVER_LABEL;
  }

  private handle(event: SimEvent): void {
    if (event.kind === "wake") {
      if (isStale(event)) return;
      const node = event.node;
      node.armedFor = undefined;
      if (node instanceof SimServer) this.feedServer(node, { kind: "tick" });
      else if (node instanceof SimClient) this.feedClient(node, { kind: "tick" });
      return;
    }
    if (event.kind === "log") {
      const server = this.servers.get(event.node);
      if (!server) return;
      const { node, changes, notes } = event.entry;
      this.feedServer(server, { kind: "remote-changes", node, changes, notes });
      return;
    }
    const to = addressKey(event.to);
    const serverLabel = this.labelAt(event.to);
    if (this.serverAddresses.has(serverLabel)) {
      const server = this.servers.get(serverLabel);
      if (!server) {
        this.dropped++;
        return;
      }
      this.delivered++;
      this.feedServer(server, { kind: "datagram", from: event.from, bytes: event.bytes });
      return;
    }
    const client = this.byAddress.get(to);
    if (!client?.running) {
      this.dropped++;
      return;
    }
    this.delivered++;
    this.feedClient(client, { kind: "datagram", from: event.from, bytes: event.bytes });
  }

  private arm(node: WakeTarget, at: number | undefined): void {
    if (at === node.armedFor) return;
    node.generation++;
    node.armedFor = at;
    if (at === undefined) return;
    // As the real timer does, a time already past fires at once (and a core that keeps
    // asking for a past time loops, which `advance` reports).
    const due = Math.max(at, this.now);
    node.armedFor = due;
    this.queue.push({ kind: "wake", at: due, seq: this.seq++, node, generation: node.generation });
  }

  private feedServer(node: SimServer, input: ServerInput): void {
    if (this.servers.get(node.label) !== node) return;
    const effects = stepServer(node.state, input, this.now);
    if (this.serverSteps.length > 0) {
      const received = input.kind === "datagram" ? decodeMessage(input.bytes) : undefined;
      const record: ServerStepRecord = { at: this.now, input: input.kind, received, effects };
      for (const observe of this.serverSteps) observe(record);
    }
    const commits: number[] = [];
    const failed: number[] = [];
    const reads: { read: number; ids: readonly number[] }[] = [];
    const claims: { claim: number; granted: boolean; failed?: boolean }[] = [];
    for (const effect of effects) {
      switch (effect.kind) {
        case "read":
          reads.push(effect);
          break;
        case "persist":
          if (this.storeRefusesWrites) {
            failed.push(effect.commit);
            break;
          }
          // A store failure here is a core bug (a duplicate id, a bad record): let the test see it.
          this.store.apply(effect.changes);
          this.persisted.push(effect.changes);
          commits.push(effect.commit);
          if (this.clustered) this.appendToLog(node.label, effect.changes, effect.notes ?? []);
          break;
        case "claim":
          claims.push(
            this.claimsFail
              ? { claim: effect.claim, granted: false, failed: true }
              : { claim: effect.claim, granted: this.claim(node.label, effect) },
          );
          break;
        case "send":
          this.transmit(node.label, node.address, effect.to, effect.message);
          break;
        case "log":
          this.serverLogs.push(effect.text);
          break;
        default:
          effect satisfies never;
      }
    }
    // As the shell does: the commit is reported back, and what waited for it goes out;
    // stored texts are read after the step and reported.
    if (commits.length > 0) this.feedServer(node, { kind: "committed", commits });
    else if (failed.length > 0) this.feedServer(node, { kind: "commit-failed", commits: failed });
    for (const { read, ids } of reads) {
      this.feedServer(node, { kind: "read-done", read, messages: this.store.readMessages(ids) });
    }
    for (const claim of claims) this.feedServer(node, { kind: "claim-done", ...claim });
    if (commits.length === 0 && failed.length === 0 && reads.length === 0 && claims.length === 0) {
      this.arm(node, nextServerWakeAt(node.state));
    }
  }

  /** As Redis keeps `chat:claims`: a name online at a node is that node's; offline, no one's. */
  private appendToLog(node: string, changes: readonly StoreChange[], notes: readonly NodeNote[]) {
    for (const change of changes) {
      if (change.kind === "put-client") {
        const key = nameKey(change.client.name);
        const holder = change.client.node ?? node;
        if (change.client.online) this.claims.set(key, holder);
        else if (this.claims.get(key) === holder) this.claims.delete(key);
      } else if (change.kind === "remove-client") {
        this.claims.delete(nameKey(change.name));
      }
    }
    const entry: LogEntry = { node, changes, notes };
    this.log.push(entry);
    for (const other of this.servers.keys()) {
      if (other === node) continue;
      this.queue.push({
        kind: "log",
        at: this.now + this.logDelayMs,
        seq: this.seq++,
        node: other,
        entry,
      });
    }
  }

  /** The claim script: granted when the name is free, already this node's, forced, or held by a node that is down. */
  private claim(node: string, effect: { readonly name: string; readonly force: boolean }): boolean {
    const key = nameKey(effect.name);
    const holder = this.claims.get(key);
    const granted =
      holder === undefined || holder === node || effect.force || !this.servers.has(holder);
    if (granted) this.claims.set(key, node);
    return granted;
  }

  /** The server's housekeeping tick (forgetting), which the shell runs on its own timer. */
  tickServer(label = SERVER_LABEL): void {
    const server = this.servers.get(label);
    if (server) this.feedServer(server, { kind: "tick" });
  }

  /** @internal used by SimClient */
  feedClient(client: SimClient, input: ClientInput): void {
    if (!client.running) return;
    const before = [...client.state.pending.values()];
    const effects = stepClient(client.state, input, this.now);
    const finished = before.filter((request) => client.state.pending.get(request.id) !== request);
    const record: ClientStepRecord = {
      at: this.now,
      label: client.label,
      input: input.kind,
      finished,
      effects,
    };
    for (const observe of this.clientSteps) observe(record);
    for (const effect of effects) {
      if (effect.kind === "exit") {
        client.exitCode = effect.code;
        client.generation++;
        client.armedFor = undefined;
        return;
      }
      switch (effect.kind) {
        case "show":
          client.lines.push({ at: this.now, text: effect.text });
          break;
        case "send":
          this.transmit(client.label, client.address, effect.to, effect.message);
          break;
        case "pin-server-key":
          client.pinnedServerKeys.push(effect.key);
          break;
        case "record-shown":
          client.files.shown.push(shownKey(effect.sender, effect.ref));
          break;
        case "learn-peer-keys":
          for (const { name, key } of effect.keys) {
            if (!client.files.knownKeys.has(name)) client.files.knownKeys.set(name, key);
          }
          break;
        case "trust-peer-key":
          client.files.knownKeys.set(effect.name, effect.key);
          break;
        default:
          effect satisfies never;
      }
    }
    this.arm(client, nextClientWakeAt(client.state));
  }
}

/** A network whose clients `names` have registered (no faults) and hold the full table. */
export function registeredNetwork(
  names: readonly string[],
  options: NetworkOptions = {},
): SimulatedNetwork {
  const network = new SimulatedNetwork(options);
  for (const name of names) network.addClient(name);
  network.settle();
  for (const name of names) {
    const client = network.client(name);
    if (client.state.phase !== "online" || client.state.table.length !== names.length) {
      throw new Error(`${name} did not register: ${client.shown().join(" / ")}`);
    }
  }
  return network;
}
