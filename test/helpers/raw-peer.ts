/**
 * A small protocol-speaking UDP peer for tests that need to say exactly what goes on
 * the wire: it registers (answering the challenge), retries its requests with the
 * same id, acknowledges every server request and records what it received. It binds
 * 127.0.0.1 and sends to loopback only.
 */

import {
  hasValidMac,
  type KeyPairs,
  publicKeyText,
  registerTranscript,
  sessionKey,
  signText,
  withMac,
} from "../../src/core/session-crypto.ts";
import { sameAddress } from "../../src/protocol/address.ts";
import { decodeMessage, encodeMessage, padRegistration } from "../../src/protocol/codec.ts";
import {
  type Address,
  type ChannelDelivery,
  type ChannelMessage,
  type ChatMessage,
  type DeliveredMessage,
  type DeregisterMessage,
  isSealedDelivery,
  type Message,
  type RegisterMessage,
  type SaveMessage,
  type TableChange,
  type TableEntry,
} from "../../src/protocol/messages.ts";
import { nameKey } from "../../src/protocol/names.ts";
import { identityFor, testCrypto } from "./identities.ts";
import { openedBy, sealedBy } from "./sealed.ts";

export const RAW_LOOPBACK = "127.0.0.1";
const RETRY_EVERY_MS = 500;
const TRIES = 6;
/** Challenges answered per request: a server that keeps refusing its own cookies ends the request. */
const MAX_CHALLENGES = 3;
const DEFAULT_WAIT_MS = 5_000;

export type Answer = Extract<Message, { type: "ack" | "registered" | "error" }> | "no answer";

/** `registered`, `ack`, `error <code>`, or `no answer`: for assertions that read well when they fail. */
export function describeAnswer(answer: Answer): string {
  if (answer === "no answer") return answer;
  return answer.type === "error" ? `error ${answer.code}` : answer.type;
}

type ClientRequest = SaveMessage | DeregisterMessage | ChannelMessage;
/**
 * A request without its id; without a session id the peer's own is sent, with its MAC.
 * A save names its text in clear: the peer seals it for the recipient, as a client does.
 */
export type RequestBody =
  | (Omit<DeregisterMessage, "id" | "sid" | "mac"> & { readonly sid?: string })
  | (Omit<ChannelMessage, "id" | "sid" | "mac"> & { readonly sid?: string })
  | (Omit<SaveMessage, "id" | "sid" | "mac" | "n" | "box"> & {
      readonly sid?: string;
      readonly text: string;
    });

export interface ReceivedDatagram {
  readonly from: Address;
  readonly bytes: number;
  /** Undefined when the bytes do not decode. */
  readonly message: Message | undefined;
}

/** A stored message (a sealed one opened) with the id of the `stored` request that carried it. */
export interface ReceivedStored {
  readonly sender: string;
  readonly kind: DeliveredMessage["kind"];
  readonly text: string;
  readonly at: number;
  readonly ref: number;
  /** It came sealed, not in clear. */
  readonly sealed: boolean;
  readonly requestId: number;
}

interface Pending {
  message: RegisterMessage | ClientRequest;
  readonly resolve: (answer: Answer) => void;
  timer: Timer | undefined;
  tries: number;
  challenges: number;
}

export class RawPeer {
  /** Every datagram that arrived, in order, from anyone. */
  readonly datagrams: ReceivedDatagram[] = [];
  /**
   * Stored and channel messages as a client shows them: a repeated server request (same
   * id) is acknowledged again and not recorded, and so is a message already received
   * under the same sender and `ref`, however it came (counted in `repeats`).
   */
  readonly stored: ReceivedStored[] = [];
  readonly channel: ChannelDelivery[] = [];
  repeats = 0;
  /** Sealed stored messages that did not open. */
  unopened = 0;
  /** Complete tables, in order of arrival. */
  readonly tables: TableEntry[][] = [];
  probes = 0;
  /** False: server requests are recorded but not acknowledged, as a client that hung. */
  answering = true;
  token: string | undefined;
  /** The name it last registered. */
  name: string | undefined;
  /** The session key of the last registration. */
  sessionKey: Uint8Array | undefined;
  /**
   * Every session key it was given, newest first: a peer that registered several names
   * from one port answers what the server sends each of them under that name's key.
   */
  readonly #sessionKeys: Uint8Array[] = [];
  /** Whose keys the peer registers with: by default the name's, as a real client's file. */
  keys: KeyPairs | undefined;
  #challenge: Extract<Message, { type: "challenge" }> | undefined;
  /** Called once per new server request, after it was acknowledged and recorded. */
  afterServerRequest: ((message: Message) => void) | undefined;

  readonly server: Address;
  readonly #socket: Bun.udp.Socket<"buffer">;
  readonly #pending = new Map<number, Pending>();
  readonly #seen = new Set<number>();
  readonly #received = new Set<string>();
  readonly #tableParts = new Map<number, (readonly TableChange[] | undefined)[]>();
  readonly #waiters = new Set<() => void>();
  /** Ids start at a random point, as a client's do, so a new peer under an old name reuses no `ref`. */
  #nextId = 1 + Math.floor(Math.random() * 2 ** 40);

  private constructor(socket: Bun.udp.Socket<"buffer">, server: Address) {
    this.#socket = socket;
    this.server = server;
  }

  static async open(server: Address): Promise<RawPeer> {
    if (server.ip !== RAW_LOOPBACK)
      throw new Error(`RawPeer talks to loopback only, not ${server.ip}`);
    let peer: RawPeer | undefined;
    const socket = await Bun.udpSocket({
      hostname: RAW_LOOPBACK,
      port: 0,
      socket: {
        data(_socket, data, port, ip) {
          try {
            if (peer) peer.#receive({ ip, port }, new Uint8Array(data));
          } catch (error) {
            console.error(`RawPeer could not handle a datagram: ${String(error)}`);
          }
        },
        // An ICMP "port unreachable" from a killed server: expected, and harmless here.
        error() {},
      },
    });
    peer = new RawPeer(socket, server);
    return peer;
  }

  get address(): Address {
    return { ip: RAW_LOOPBACK, port: this.#socket.port };
  }

  /** `register` (or `reg` when the peer holds a token), answering challenges; keeps the token. */
  async register(name: string): Promise<Answer> {
    const keys = this.keys ?? identityFor(name);
    const message: RegisterMessage = {
      type: "register",
      id: this.#takeId(),
      name,
      sk: publicKeyText(keys.signing),
      ak: publicKeyText(keys.agreement),
    };
    const answer = await this.#start(padRegistration(message));
    const challenge = this.#challenge;
    if (answer !== "no answer" && answer.type === "registered" && challenge) {
      this.token = answer.sid;
      this.name = name;
      this.sessionKey = sessionKey(
        testCrypto,
        keys.agreement,
        challenge.sak,
        challenge.nonce,
        name,
        answer.sid,
      );
      if (this.sessionKey) this.#sessionKeys.unshift(this.sessionKey);
      this.#sessionKeys.length = Math.min(this.#sessionKeys.length, 16);
    }
    return answer;
  }

  /** A message in the peer's session, with its MAC. */
  inSession<M extends Message>(message: M): M {
    if (!this.sessionKey) throw new Error("register first: no session key");
    return withMac(testCrypto, this.sessionKey, message);
  }

  /** Sends a save, deregister or channel request, again with the same id every 500 ms, 6 tries. */
  request(body: RequestBody): Promise<Answer> {
    const sid = body.sid ?? this.token;
    if (sid === undefined) throw new Error("request() needs a session: register first");
    const id = this.#takeId();
    if (body.type !== "save") {
      return this.#start(this.inSession({ ...body, id, sid } as ClientRequest));
    }
    const { text, ...save } = body;
    const sealed = sealedBy(
      this.#ownName(),
      save.to,
      save.ref ?? id,
      text,
      this.#sealOptions(save.to),
    );
    return this.#start(this.inSession({ ...save, ...sealed, id, sid }));
  }

  #ownName(): string {
    if (this.name === undefined) throw new Error("register first: no name to seal as");
    return this.name;
  }

  /** The recipient's key as the last table shows it (else its usual one), and our own keys. */
  #sealOptions(recipient: string): { keys?: KeyPairs; recipientKey?: string } {
    const entry = this.tables.at(-1)?.find((e) => nameKey(e.name) === nameKey(recipient));
    return {
      ...(this.keys ? { keys: this.keys } : {}),
      ...(entry ? { recipientKey: entry.ak } : {}),
    };
  }

  /** A chat from the name it registered, sealed for `to` as the last table shows it. */
  chat(id: number, to: string, text: string): ChatMessage {
    const from = this.#ownName();
    return { type: "chat", id, from, to, ...sealedBy(from, to, id, text, this.#sealOptions(to)) };
  }

  /** One datagram, no retries: for forgeries. */
  send(message: Message, to: Address = this.server): number {
    return this.sendBytes(encodeMessage(message), to);
  }

  sendBytes(bytes: Uint8Array, to: Address = this.server): number {
    if (to.ip !== RAW_LOOPBACK) throw new Error(`RawPeer sends to loopback only, not ${to.ip}`);
    if (this.#socket.closed) return 0;
    try {
      this.#socket.send(bytes, to.port, to.ip);
    } catch {
      // A stale ICMP error from a killed server poisons one send (docs/PLATFORM-NOTES.md): once more.
      try {
        this.#socket.send(bytes, to.port, to.ip);
      } catch {
        // Lost, as a datagram may be; the retries cover it.
      }
    }
    return bytes.byteLength;
  }

  /** Resolves once `condition` holds, checked now and after every datagram; fails after the timeout. */
  waitFor(condition: () => boolean, what: string, timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!condition()) return;
        this.#waiters.delete(check);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.#waiters.add(check);
    });
  }

  /** Ends every request unanswered and closes the socket. */
  close(): void {
    for (const [id, pending] of this.#pending) this.#finish(id, pending, "no answer");
    if (!this.#socket.closed) this.#socket.close();
  }

  #signed(
    register: RegisterMessage,
    challenge: Extract<Message, { type: "challenge" }>,
  ): RegisterMessage {
    const keys = this.keys ?? identityFor(register.name);
    const { pad: _pad, ...bare } = register;
    const { cookie, nonce, ssk, sak } = challenge;
    const transcript = registerTranscript({
      ssk,
      sak,
      nonce,
      cookie,
      name: bare.name,
      sk: bare.sk,
      ak: bare.ak,
      id: bare.id,
    });
    return { ...bare, cookie, sig: signText(testCrypto, keys.signing, transcript) };
  }

  #takeId(): number {
    return this.#nextId++;
  }

  #start(message: RegisterMessage | ClientRequest): Promise<Answer> {
    return new Promise((resolve) => {
      const pending: Pending = { message, resolve, timer: undefined, tries: 0, challenges: 0 };
      this.#pending.set(message.id, pending);
      this.#transmit(message.id, pending);
    });
  }

  #transmit(id: number, pending: Pending): void {
    if (pending.tries >= TRIES) {
      this.#finish(id, pending, "no answer");
      return;
    }
    pending.tries++;
    this.send(pending.message);
    pending.timer = setTimeout(() => this.#transmit(id, pending), RETRY_EVERY_MS);
  }

  #finish(id: number, pending: Pending, answer: Answer): void {
    clearTimeout(pending.timer);
    this.#pending.delete(id);
    pending.resolve(answer);
  }

  #receive(from: Address, bytes: Uint8Array): void {
    const message = decodeMessage(bytes);
    this.datagrams.push({ from, bytes: bytes.byteLength, message });
    if (message && sameAddress(from, this.server)) this.#onServerMessage(message);
    for (const check of [...this.#waiters]) check();
  }

  #onServerMessage(message: Message): void {
    switch (message.type) {
      case "ack":
      case "registered":
      case "error": {
        const pending = this.#pending.get(message.id);
        if (pending) this.#finish(message.id, pending, message);
        return;
      }
      case "challenge": {
        const pending = this.#pending.get(message.id);
        if (pending?.message.type !== "register" || pending.challenges >= MAX_CHALLENGES) return;
        pending.challenges++;
        this.#challenge = message;
        pending.message = this.#signed(pending.message, message);
        this.send(pending.message);
        return;
      }
      case "probe":
      case "table":
      case "stored":
      case "channel-message":
        if (!this.answering) return;
        this.send(this.#ackFor(message));
        if (this.#seen.has(message.id)) return;
        this.#seen.add(message.id);
        this.#onServerRequest(message);
        this.afterServerRequest?.(message);
        return;
      default:
        return;
    }
  }

  /** An ack under the key of the session the request came in: the current one unless another fits. */
  #ackFor(request: Message): Message {
    const ack: Message = { type: "ack", id: request.id };
    const key =
      this.#sessionKeys.find((candidate) => hasValidMac(testCrypto, candidate, request)) ??
      this.sessionKey;
    return key ? withMac(testCrypto, key, ack) : ack;
  }

  #textOf(stored: DeliveredMessage): string | undefined {
    if (!isSealedDelivery(stored)) return stored.text;
    return openedBy(this.#ownName(), stored.sender, stored.ref, stored, {
      senderKey: stored.ak,
      ...(this.keys ? { keys: this.keys } : {}),
    });
  }

  #isFirstCopy(sender: string, ref: number): boolean {
    const key = `${nameKey(sender)}#${ref}`;
    if (!this.#received.has(key)) {
      this.#received.add(key);
      return true;
    }
    this.repeats++;
    return false;
  }

  #onServerRequest(
    message: Extract<Message, { type: "probe" | "table" | "stored" | "channel-message" }>,
  ): void {
    switch (message.type) {
      case "probe":
        this.probes++;
        return;
      case "table": {
        const parts =
          this.#tableParts.get(message.version) ??
          new Array<readonly TableChange[] | undefined>(message.parts).fill(undefined);
        parts[message.part] = message.clients;
        if (parts.some((part) => part === undefined)) {
          this.#tableParts.set(message.version, parts);
          return;
        }
        this.#tableParts.delete(message.version);
        const changes = parts.flatMap((part) => part ?? []);
        // A delta (PROTOCOL.md) updates the table held; a snapshot replaces it.
        const table = new Map<string, TableEntry>(
          message.base === undefined
            ? []
            : (this.tables.at(-1) ?? []).map((entry) => [entry.name.toLowerCase(), entry]),
        );
        for (const change of changes) {
          const key = change.name.toLowerCase();
          if ("gone" in change) table.delete(key);
          // A delta leaves out a key that has not changed: the one held stays.
          else table.set(key, { ...change, ak: change.ak ?? table.get(key)?.ak ?? "" });
        }
        this.tables.push([...table.values()]);
        return;
      }
      case "stored":
        for (const stored of message.messages) {
          const text = this.#textOf(stored);
          if (text === undefined) {
            this.unopened++;
            continue;
          }
          if (this.#isFirstCopy(stored.sender, stored.ref)) {
            const { sender, kind, at, ref } = stored;
            const sealed = isSealedDelivery(stored);
            this.stored.push({ sender, kind, text, at, ref, sealed, requestId: message.id });
          }
        }
        return;
      case "channel-message":
        if (this.#isFirstCopy(message.from, message.ref)) this.channel.push(message);
        return;
      default:
        message satisfies never;
    }
  }
}
