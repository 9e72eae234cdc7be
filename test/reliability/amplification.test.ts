/**
 * Nothing unverified gets a reply larger than 3× what it sent (QUIC's rule), and a
 * datagram that claims an identity it cannot prove changes nothing: first on the pure
 * server core with many spoofed source addresses, then against real processes.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { nonceFor } from "../../src/core/server-admission.ts";
import type { ServerEffect } from "../../src/core/server-effects.ts";
import { createServerState } from "../../src/core/server-state.ts";
import {
  type KeyPairs,
  publicKeyText,
  sessionKey,
  withMac,
} from "../../src/core/session-crypto.ts";
import { nextServerWakeAt, stepServer } from "../../src/core/step-server.ts";
import { timing } from "../../src/core/timing.ts";
import { encodeBase64url } from "../../src/crypto/base64url.ts";
import { cookieMaker } from "../../src/io/random.ts";
import { seededRandom } from "../../src/io/seeded-random.ts";
import { addressKey } from "../../src/protocol/address.ts";
import { encodeMessage, padRegistration } from "../../src/protocol/codec.ts";
import type { Address, Message, RegisterMessage } from "../../src/protocol/messages.ts";
import { PROTOCOL_VERSION } from "../../src/protocol/messages.ts";
import { nameKey } from "../../src/protocol/names.ts";
import { createMemoryStore } from "../../src/store/memory-store.ts";
import {
  derivedKeyPairs,
  identityFor,
  seededCrypto,
  signedRegistration,
} from "../helpers/identities.ts";
import {
  ChatSession,
  E2E_TEST_TIMEOUT_MS,
  killAll,
  LOOPBACK,
  sourceProgram,
  waitForTable,
} from "../helpers/process-driver.ts";
import { describeAnswer, RawPeer } from "../helpers/raw-peer.ts";
import { readByRecipient, sealedBy, sealedChat } from "../helpers/sealed.ts";

afterAll(killAll);

const AMPLIFICATION_LIMIT = 3;
const FORGED_SID = "0123456789abcdef0123456789abcdef";

/** A register as anyone can send it: someone's public keys, no cookie, padded; Mallory's keys unless told. */
function unprovenRegister(
  id: number,
  name: string,
  extra: { cookie?: string; sig?: string; keys?: KeyPairs } = {},
): RegisterMessage {
  const keys = extra.keys ?? derivedKeyPairs("mallory");
  return padRegistration({
    type: "register",
    id,
    name,
    sk: publicKeyText(keys.signing),
    ak: publicKeyText(keys.agreement),
    ...(extra.cookie === undefined ? {} : { cookie: extra.cookie }),
    ...(extra.sig === undefined ? {} : { sig: extra.sig }),
  });
}

// The core, with spoofed sources ----------------------------------------------------------------

interface LegitClient {
  readonly name: string;
  readonly address: Address;
  token: string | undefined;
  sessionKey: Uint8Array | undefined;
  cookie: string | undefined;
  registerId: number | undefined;
  online: boolean;
  /** A client that hung: it acknowledges nothing, so probes about it run out. */
  silent: boolean;
}

/** What one spoofed source sent and got. */
interface Tally {
  bytesIn: number;
  bytesOut: number;
  readonly types: Set<string>;
  /** Cookies the server gave this address, with the period they were made in. */
  readonly cookies: { readonly cookie: string; readonly period: number }[];
  last: Uint8Array | undefined;
}

interface QueuedDatagram {
  readonly at: number;
  readonly from: Address;
  readonly bytes: Uint8Array;
}

const SERVER_REQUESTS: ReadonlySet<string> = new Set([
  "probe",
  "table",
  "stored",
  "channel-message",
]);

/**
 * The server core with six real clients (they answer challenges and acknowledge what
 * they are sent, unless hung) and 300 spoofed sources that never receive anything. Time
 * is a fake clock; datagrams and the server's wake-ups run in time order.
 */
class SpoofedWorld {
  readonly random = seededRandom(0xa11ce);
  readonly cookieFor = cookieMaker("5ec2e7".padEnd(64, "0"));
  readonly store = createMemoryStore();
  readonly crypto = seededCrypto(0xa11ce);
  readonly state = createServerState(this.store.loadSummary(), {
    crypto: this.crypto,
    keys: derivedKeyPairs("amplification server"),
    newToken: () => this.hex(32),
    firstRequestId: 1_000,
    cookieFor: this.cookieFor,
    epoch: "a11ce0a11ce0a11c",
  });
  now = Date.UTC(2025, 0, 1);
  readonly legit: LegitClient[] = ["ana", "bo", "cy", "di", "ed", "flo"].map((name, index) => ({
    name,
    address: { ip: LOOPBACK, port: 6_001 + index },
    token: undefined,
    sessionKey: undefined,
    cookie: undefined,
    registerId: undefined,
    online: false,
    silent: false,
  }));
  /** Other loopback hosts, and the real clients' host on other ports. */
  readonly attackers: Address[] = Array.from({ length: 300 }, (_, index) =>
    index % 3 === 0
      ? { ip: LOOPBACK, port: 40_000 + index }
      : { ip: `127.0.${1 + (index % 7)}.${1 + (index % 250)}`, port: 1_024 + index * 7 },
  );
  readonly tallies = new Map<string, Tally>(
    this.attackers.map((address) => [
      addressKey(address),
      { bytesIn: 0, bytesOut: 0, types: new Set(), cookies: [], last: undefined },
    ]),
  );
  readonly problems: string[] = [];
  readonly sentToLegit = new Map<string, number>();
  readonly attackCounts = new Map<string, number>();
  /** Session requests the real clients sent, for replays from other addresses. */
  readonly legitRequests: Uint8Array[] = [];
  worstRatio = 0;
  readonly #legitByKey = new Map(this.legit.map((client) => [addressKey(client.address), client]));
  readonly #queue: QueuedDatagram[] = [];
  #nextLegitId = 1;

  pick<T>(items: readonly T[]): T {
    const item = items[Math.floor(this.random() * items.length)];
    if (item === undefined) throw new Error("pick() from an empty list");
    return item;
  }

  hex(length: number): string {
    return Array.from({ length }, () => Math.floor(this.random() * 16).toString(16)).join("");
  }

  period(): number {
    return Math.floor(this.now / timing.cookiePeriodMs);
  }

  tallyOf(address: Address): Tally | undefined {
    return this.tallies.get(addressKey(address));
  }

  enqueue(from: Address, content: Message | Uint8Array, delayMs = 0): void {
    const bytes = content instanceof Uint8Array ? content : encodeMessage(content);
    const entry = { at: this.now + delayMs, from, bytes };
    const index = this.#queue.findIndex((queued) => queued.at > entry.at);
    this.#queue.splice(index < 0 ? this.#queue.length : index, 0, entry);
  }

  /** Runs every queued datagram and server wake-up due by `until`, in time order. */
  advanceTo(until: number): void {
    for (let guard = 0; guard < 100_000; guard++) {
      const wake = nextServerWakeAt(this.state) ?? Number.POSITIVE_INFINITY;
      const head = this.#queue[0];
      const next = Math.min(wake, head?.at ?? Number.POSITIVE_INFINITY);
      if (next > until) break;
      this.now = Math.max(this.now, next);
      if (head && head.at <= wake) {
        this.#queue.shift();
        this.#deliver(head);
      } else {
        this.#carryOut(stepServer(this.state, { kind: "tick" }, this.now), undefined);
      }
    }
    this.now = until;
  }

  /** A real client registers, saves, posts, leaves or hangs. */
  legitActs(client: LegitClient): void {
    if (!client.online) {
      if (client.registerId === undefined) {
        client.registerId = this.#nextLegitId++;
        this.enqueue(client.address, this.registerOf(client, client.registerId));
      }
      return;
    }
    const sid = client.token ?? "";
    const id = this.#nextLegitId++;
    const draw = this.random();
    if (draw < 0.1) {
      client.silent = !client.silent;
    } else if (draw < 0.25) {
      client.online = false;
      this.legitSends(client, { type: "deregister", id, sid });
    } else if (draw < 0.65) {
      const to = this.pick(this.legit).name;
      const sealed = sealedBy(client.name, to, id, `hello ${to}`);
      this.legitSends(client, { type: "save", id, sid, to, ...sealed });
    } else {
      this.legitSends(client, { type: "channel", id, sid, text: "hello all" });
    }
  }

  legitSends(client: LegitClient, message: Message, delayMs = 0): void {
    const signed = client.sessionKey ? withMac(this.crypto, client.sessionKey, message) : message;
    const bytes = encodeMessage(signed);
    if (message.type !== "ack") this.legitRequests.push(bytes);
    this.enqueue(client.address, bytes, delayMs);
  }

  /** A real client's registration: padded without a cookie, signed with its key with one. */
  registerOf(client: LegitClient, id: number): Message {
    const keys = identityFor(client.name);
    if (client.cookie === undefined) {
      return padRegistration({
        type: "register",
        id,
        name: client.name,
        sk: publicKeyText(keys.signing),
        ak: publicKeyText(keys.agreement),
      });
    }
    return signedRegistration(this.state, { name: client.name, id, cookie: client.cookie });
  }

  attack(from: Address): void {
    const tally = this.tallyOf(from);
    const [kind, build] = this.pick(ATTACKS);
    const bytes = build(this, tally);
    if (!bytes || !tally) return;
    tally.last = bytes;
    this.attackCounts.set(kind, (this.attackCounts.get(kind) ?? 0) + 1);
    this.enqueue(from, bytes);
  }

  #deliver(datagram: QueuedDatagram): void {
    const tally = this.tallyOf(datagram.from);
    if (tally) tally.bytesIn += datagram.bytes.byteLength;
    const input = { kind: "datagram", from: datagram.from, bytes: datagram.bytes } as const;
    this.#carryOut(stepServer(this.state, input, this.now), datagram);
  }

  /** Carries out one step's effects; `source` is the datagram the step was for, if any. */
  #carryOut(effects: readonly ServerEffect[], source: QueuedDatagram | undefined): void {
    const fromUnproven = source !== undefined && this.tallyOf(source.from) !== undefined;
    let toSource = 0;
    const commits: number[] = [];
    const reads: { read: number; ids: readonly number[] }[] = [];
    for (const effect of effects) {
      if (effect.kind === "persist") {
        this.store.apply(effect.changes);
        commits.push(effect.commit);
      }
      if (effect.kind === "read") reads.push(effect);
      if (effect.kind !== "send") continue;
      const { to, message } = effect;
      const client = this.#legitByKey.get(addressKey(to));
      if (client) {
        // What an unproven datagram makes the server send goes to that datagram's source only.
        if (fromUnproven) {
          this.problems.push(
            `a datagram from unproven ${addressKey(source.from)} made the server send ${message.type} to ${client.name}`,
          );
        }
        this.#legitReceives(client, message);
        continue;
      }
      const tally = this.tallyOf(to);
      if (!tally) throw new Error(`the server sent to an address nobody used: ${addressKey(to)}`);
      const size = encodeMessage(message).byteLength;
      tally.bytesOut += size;
      tally.types.add(message.type);
      if (message.type === "challenge") {
        tally.cookies.push({ cookie: message.cookie, period: this.period() });
      }
      if (source && addressKey(source.from) === addressKey(to)) toSource += size;
      else this.problems.push(`${message.type} went to unproven ${addressKey(to)} unasked`);
    }
    if (commits.length > 0) {
      this.#carryOut(stepServer(this.state, { kind: "committed", commits }, this.now), source);
    }
    for (const { read, ids } of reads) {
      const done = { kind: "read-done", read, messages: this.store.readMessages(ids) } as const;
      this.#carryOut(stepServer(this.state, done, this.now), source);
    }
    if (fromUnproven) {
      const ratio = toSource / source.bytes.byteLength;
      this.worstRatio = Math.max(this.worstRatio, ratio);
      if (ratio > AMPLIFICATION_LIMIT) {
        this.problems.push(
          `${source.bytes.byteLength} bytes from ${addressKey(source.from)} got ${toSource} back: ${new TextDecoder().decode(source.bytes.slice(0, 120))}`,
        );
      }
    }
  }

  #legitReceives(client: LegitClient, message: Message): void {
    this.sentToLegit.set(message.type, (this.sentToLegit.get(message.type) ?? 0) + 1);
    switch (message.type) {
      case "challenge":
        if (message.id !== client.registerId) return;
        client.cookie = message.cookie;
        this.enqueue(client.address, this.registerOf(client, message.id), 1);
        return;
      case "registered":
        if (message.id !== client.registerId) return;
        client.registerId = undefined;
        client.token = message.sid;
        client.sessionKey = sessionKey(
          this.crypto,
          identityFor(client.name).agreement,
          this.state.sak,
          nonceFor(this.state, client.cookie ?? ""),
          client.name,
          message.sid,
        );
        client.online = true;
        return;
      case "error":
        if (message.id === client.registerId) client.registerId = undefined;
        return;
      default:
        if (SERVER_REQUESTS.has(message.type) && !client.silent) {
          const delay = 1 + Math.floor(this.random() * 5);
          this.legitSends(client, { type: "ack", id: message.id }, delay);
        }
    }
  }
}

type AttackBuilder = (world: SpoofedWorld, tally: Tally | undefined) => Uint8Array | undefined;

/** What a spoofed source sends; undefined when the kind does not apply yet. */
const ATTACKS: readonly (readonly [string, AttackBuilder])[] = (() => {
  const id = (world: SpoofedWorld) => Math.floor(world.random() * 1_000);
  const name = (world: SpoofedWorld) =>
    world.random() < 0.5 ? world.pick(world.legit).name : `mallory${id(world)}`;
  /** Mallory's own key pairs: it holds no real client's private keys. */
  const mallory = derivedKeyPairs("mallory");
  /** A register signed by Mallory's key for `cookie`, or unsigned and padded without one. */
  const register = (world: SpoofedWorld, cookie?: string, claimed = name(world)) => {
    if (cookie === undefined) {
      return encodeMessage(
        padRegistration({
          type: "register",
          id: id(world),
          name: claimed,
          sk: publicKeyText(mallory.signing),
          ak: publicKeyText(mallory.agreement),
        }),
      );
    }
    return encodeMessage(
      signedRegistration(world.state, { name: claimed, id: id(world), cookie, keys: mallory }),
    );
  };
  /** A real client's name already bound to its key, if one is. */
  const boundName = (world: SpoofedWorld) => {
    const claimed = world.pick(world.legit).name;
    return world.state.clients.has(nameKey(claimed)) ? claimed : undefined;
  };
  const forgedMac = (world: SpoofedWorld) =>
    encodeBase64url(Uint8Array.from({ length: 16 }, () => Math.floor(world.random() * 256)));
  /** A real client's session id, as anyone on the path reads it; or a made-up one. */
  const sid = (world: SpoofedWorld, real: boolean) =>
    (real ? world.pick(world.legit).token : undefined) ?? world.hex(32);
  return [
    ["register without a cookie", (world) => register(world)],
    ["register with a wrong cookie", (world) => register(world, world.hex(32))],
    [
      "register with another address's cookie",
      (world) => register(world, world.cookieFor(world.pick(world.legit).address, world.period())),
    ],
    [
      "register with an expired cookie",
      (world, tally) => {
        const old = tally?.cookies.find((issued) => issued.period <= world.period() - 2);
        return old && register(world, old.cookie);
      },
    ],
    [
      // As an on-path attacker that reads its cookie: the name is bound to another key.
      "register a bound name with its own cookie and its own key",
      (world, tally) => {
        const claimed = boundName(world);
        const fresh = tally?.cookies.find((issued) => issued.period >= world.period() - 1);
        return claimed !== undefined && fresh ? register(world, fresh.cookie, claimed) : undefined;
      },
    ],
    [
      "register a bound name with the name's public keys and a forged signature",
      (world, tally) => {
        const claimed = boundName(world);
        const fresh = tally?.cookies.find((issued) => issued.period >= world.period() - 1);
        if (!claimed || !fresh) return undefined;
        const genuine: RegisterMessage = signedRegistration(world.state, {
          name: claimed,
          id: id(world),
          cookie: fresh.cookie,
        });
        const forged = encodeBase64url(
          Uint8Array.from({ length: 64 }, () => Math.floor(world.random() * 256)),
        );
        return encodeMessage({ ...genuine, sig: forged });
      },
    ],
    ...[true, false].flatMap((real): [string, AttackBuilder][] => {
      const whose = real ? "a real session with a forged MAC" : "a forged session";
      return [
        [
          `deregister in ${whose}`,
          (world) =>
            encodeMessage({
              type: "deregister",
              id: id(world),
              sid: sid(world, real),
              mac: forgedMac(world),
            }),
        ],
        [
          `save in ${whose}`,
          (world) =>
            encodeMessage({
              type: "save",
              id: id(world),
              sid: sid(world, real),
              to: world.pick(world.legit).name,
              ...sealedBy("mallory", "x", 1, "forged save"),
              mac: forgedMac(world),
            }),
        ],
        [
          `channel in ${whose}`,
          (world) =>
            encodeMessage({
              type: "channel",
              id: id(world),
              sid: sid(world, real),
              text: "forged post",
              mac: forgedMac(world),
            }),
        ],
      ];
    }),
    [
      // Recorded on the path and sent again from elsewhere: its MAC is genuine, its id seen.
      "a real client's request replayed from another address",
      (world) => (world.legitRequests.length > 0 ? world.pick(world.legitRequests) : undefined),
    ],
    // The server's own request ids start at 1,000: some of these name one that is outstanding.
    [
      "an ack it was never asked for",
      (world) => encodeMessage({ type: "ack", id: 1_000 + id(world) }),
    ],
    ["a server's message", (world) => encodeMessage({ type: "probe", id: id(world) })],
    [
      "junk",
      (world) =>
        Uint8Array.from({ length: 1 + Math.floor(world.random() * 600) }, () =>
          Math.floor(world.random() * 256),
        ),
    ],
    [
      "another version",
      (world) =>
        new TextEncoder().encode(
          `{"v":${PROTOCOL_VERSION + 1},"type":"register","id":${id(world)},"name":"${name(world)}"}`,
        ),
    ],
    ["the same datagram again", (_world, tally) => tally?.last],
  ];
})();

describe("core: spoofed sources", () => {
  test("an address that never proved itself gets at most 3× its bytes, and only challenges and errors", () => {
    const world = new SpoofedWorld();
    // About three cookie periods of mixed traffic: 1 datagram in 4 from a real client.
    for (let event = 0; event < 8_000; event++) {
      world.advanceTo(world.now + Math.floor(world.random() * 50));
      if (world.random() < 0.25) world.legitActs(world.pick(world.legit));
      else world.attack(world.pick(world.attackers));
    }
    world.advanceTo(world.now + 10_000);

    let bytesIn = 0;
    let bytesOut = 0;
    const typesSent = new Set<string>();
    for (const [key, tally] of world.tallies) {
      bytesIn += tally.bytesIn;
      bytesOut += tally.bytesOut;
      for (const type of tally.types) typesSent.add(type);
      if (tally.bytesOut > AMPLIFICATION_LIMIT * tally.bytesIn) {
        world.problems.push(`${key} sent ${tally.bytesIn} bytes and got ${tally.bytesOut}`);
      }
    }
    const list = (counts: Map<string, number>) =>
      [...counts].map(([kind, count]) => `${kind} ${count}`).join(", ");
    console.log(
      [
        `amplification (core): ${world.attackers.length} spoofed sources sent ${bytesIn} bytes, got ${bytesOut} back (${(bytesOut / bytesIn).toFixed(2)}×); worst single datagram ${world.worstRatio.toFixed(2)}×`,
        `  attacks: ${list(world.attackCounts)}`,
        `  to real clients: ${list(world.sentToLegit)}`,
      ].join("\n"),
    );

    expect(world.problems.slice(0, 10)).toEqual([]);
    expect([...typesSent].sort()).toEqual(["challenge", "error"]);
    expect(world.worstRatio).toBeLessThanOrEqual(AMPLIFICATION_LIMIT);
    // The attacks did happen, and the real clients were busy with probes and tables meanwhile.
    expect(world.attackCounts.get("register with an expired cookie") ?? 0).toBeGreaterThan(0);
    for (const [kind] of ATTACKS) expect(world.attackCounts.get(kind) ?? 0).toBeGreaterThan(0);
    // Every forgery and replay was counted where it was dropped.
    expect(world.state.drops.unauthenticated).toBeGreaterThan(0);
    expect(world.state.drops.replayed).toBeGreaterThan(0);
    expect(world.sentToLegit.get("probe") ?? 0).toBeGreaterThan(0);
    expect(world.sentToLegit.get("table") ?? 0).toBeGreaterThan(0);
    // And changed nothing: no forged name in the table, no forged text stored.
    const names = new Set(world.legit.map((client) => client.name));
    const clients = [...world.state.clients.values()].map((client) => client.name);
    expect(clients.filter((name) => !names.has(name))).toEqual([]);
    // Every real name is still bound to its own key, and only real clients have sessions.
    for (const client of world.state.clients.values()) {
      expect(client.sk).toBe(publicKeyText(identityFor(client.name).signing));
    }
    const messages = world.store.load().messages;
    // Every stored message opens for its recipient (as a real one's sealer made it), and none is forged.
    expect(
      messages.filter((message) => readByRecipient(message)?.startsWith("forged") !== false),
    ).toEqual([]);
  });
});

// Real processes ---------------------------------------------------------------------------------

describe("a real server", () => {
  test(
    "answers a register without a cookie with one small challenge and nothing else",
    async () => {
      await using chat = await ChatSession.open(sourceProgram);
      const server = await chat.startServer();
      const address = { ip: LOOPBACK, port: server.port };
      const attacker = await RawPeer.open(address);
      const bee = await RawPeer.open(address);
      const sea = await RawPeer.open(address);
      try {
        expect(describeAnswer(await bee.register("bee"))).toBe("registered");
        expect(describeAnswer(await sea.register("sea"))).toBe("registered");
        await bee.waitFor(() => bee.tables.some((table) => table.length === 2), "bee to see sea");
        const beeProbes = bee.probes;

        // Claims bee's name without a cookie, then with a wrong one, then registers anew.
        // Claims bee's name with bee's own public keys (they are public) and a forged signature.
        const sent = new Map<number, number>([
          [1, attacker.send(unprovenRegister(1, "bee"))],
          [2, attacker.send(unprovenRegister(2, "bee", { cookie: "f".repeat(32) }))],
          [
            3,
            attacker.send(
              unprovenRegister(3, "bee", {
                cookie: "f".repeat(32),
                sig: "A".repeat(86),
                keys: identityFor("bee"),
              }),
            ),
          ],
        ]);

        // Proof that the server's timers ran for a full probe wait after those: sea hangs,
        // so bee's save to it is acknowledged only after sea's status check ran out (500 ms).
        sea.answering = false;
        const save = await bee.request({ type: "save", to: "sea", text: "are you there?" });
        expect(save !== "no answer" && save.type).toBe("ack");
        // And everything sent to the attacker before now arrives before this answer.
        sent.set(4, attacker.send(unprovenRegister(4, "late")));
        await attacker.waitFor(
          () => attacker.datagrams.some(({ message }) => message?.id === 4),
          "the challenge to the last register",
        );

        const received = attacker.datagrams.map(({ message, bytes, from }) => ({
          type: message?.type,
          id: message?.id,
          withinLimit: bytes <= AMPLIFICATION_LIMIT * (sent.get(message?.id ?? -1) ?? 0),
          fromServer: from.port === server.port,
        }));
        console.log(
          `amplification (real server): ${[...sent.values()].join("/")} bytes sent, ${attacker.datagrams.map(({ bytes }) => bytes).join("/")} bytes back`,
        );
        expect(received).toEqual(
          [1, 2, 3, 4].map((id) => ({
            type: "challenge",
            id,
            withinLimit: true,
            fromServer: true,
          })),
        );
        // Claiming bee's name without a cookie did not even make the server check on bee.
        expect(bee.probes).toBe(beeProbes);
      } finally {
        for (const peer of [attacker, bee, sea]) peer.close();
      }
    },
    E2E_TEST_TIMEOUT_MS,
  );

  test(
    "a peer without x's key or session cannot deregister x, save or post as anyone, nor take x's name",
    async () => {
      await using chat = await ChatSession.open(sourceProgram);
      const server = await chat.startServer();
      const address = { ip: LOOPBACK, port: server.port };
      const [x, y] = await chat.startClients(server, ["x", "y"]);
      const dee = await RawPeer.open(address);
      const zed = await RawPeer.open(address);
      const mallory = await RawPeer.open(address);
      try {
        expect(describeAnswer(await dee.register("dee"))).toBe("registered");
        expect(describeAnswer(await dee.request({ type: "deregister" }))).toBe("ack");
        await waitForTable(y, { x: "online", y: "online", dee: "offline" });

        // Mallory proves its own address (it answers the challenge) and signs with its own
        // key: x's name is bound to x's key, so it is refused at once.
        expect(describeAnswer(await mallory.register("x"))).toBe("error wrong-key");
        // It makes up a session and a key for it: the server knows no such session.
        mallory.token = FORGED_SID;
        mallory.sessionKey = new Uint8Array(32).fill(7);
        // And claims x's name for what it seals.
        mallory.name = "x";
        expect(describeAnswer(await mallory.request({ type: "deregister" }))).toBe(
          "error unknown-session",
        );
        expect(
          describeAnswer(await mallory.request({ type: "save", to: "dee", text: "forged save" })),
        ).toBe("error unknown-session");
        expect(
          describeAnswer(await mallory.request({ type: "channel", text: "forged post" })),
        ).toBe("error unknown-session");

        // A table pushed after all that still shows x online.
        expect(describeAnswer(await zed.register("zed"))).toBe("registered");
        await waitForTable(y, { x: "online", y: "online", dee: "offline", zed: "online" });
        // A post after the forged one: whatever the forged one did would have come first.
        y.type("send_all genuine post");
        await y.waitForLine(">>> [Message received by Server.]");
        await x.waitForLine(">>> [Channel_Message y: genuine post]");
        await zed.waitFor(() => zed.channel.length > 0, "zed to get the genuine post");
        expect(zed.channel.map(({ from, text }) => `${from}: ${text}`)).toEqual([
          "y: genuine post",
        ]);
        expect(x.lines().filter((line) => line.includes("forged"))).toEqual([]);

        // dee has the genuine post waiting, and nothing forged.
        const answer = await dee.register("dee");
        expect(
          answer !== "no answer" && answer.type === "registered" ? answer.pending : answer,
        ).toBe(1);
        await dee.waitFor(() => dee.stored.length > 0, "dee's stored message");
        expect(dee.stored.map(({ sender, kind, text }) => `${kind} ${sender}: ${text}`)).toEqual([
          "channel y: genuine post",
        ]);
      } finally {
        for (const peer of [dee, zed, mallory]) peer.close();
      }
    },
    E2E_TEST_TIMEOUT_MS,
  );

  test(
    "a chat that claims to be from x but comes from another address is not shown",
    async () => {
      await using chat = await ChatSession.open(sourceProgram);
      const server = await chat.startServer();
      const [x, y] = await chat.startClients(server, ["x", "y"]);
      const mallory = await RawPeer.open({ ip: LOOPBACK, port: server.port });
      try {
        const yAddress = { ip: LOOPBACK, port: y.port };
        mallory.send(sealedChat({ id: 77, from: "x", to: "y", text: "forged chat" }), yAddress);
        mallory.send(
          sealedChat({ id: 78, from: "X", to: "y", text: "forged chat, other case" }),
          yAddress,
        );
        // x's genuine message reaches y's socket after the forged ones.
        x.type("send y genuine chat");
        await x.waitForLine(">>> [Message received by y.]");
        await y.waitForLine(">>> x: genuine chat");
        expect(y.lines().filter((line) => line.includes("forged"))).toEqual([]);
        // y did not acknowledge the forgeries either: anything it sent would arrive before this.
        mallory.send(unprovenRegister(79, "mallory"));
        await mallory.waitFor(
          () => mallory.datagrams.some(({ message }) => message?.id === 79),
          "the server's challenge",
        );
        expect(mallory.datagrams.filter(({ from }) => from.port === y.port)).toEqual([]);
      } finally {
        mallory.close();
      }
    },
    E2E_TEST_TIMEOUT_MS,
  );
});
