/**
 * The worked example of PROTOCOL.md: one full exchange between two clients and a server,
 * as the datagrams travel, with how every signature, MAC and box in it is made.
 *
 *     bun test/tools/worked-example.ts
 *
 * The datagrams are those the real cores send (test/helpers/simulated-network.ts drives
 * the server's and the clients' cores over an in-memory network, bytes as on the wire);
 * the explanations recompute each signature, MAC and box with the functions the cores
 * use and stop with an error if one does not match. The keys are examples, derived from
 * public labels (test/helpers/identities.ts): never use them for anything.
 */
import type { CryptoPort, KeyKind } from "../../src/core/crypto-port.ts";
import { chatAckMac, isChatAckMac, openText } from "../../src/core/sealed-messages.ts";
import {
  hasValidMac,
  type KeyPairs,
  macInput,
  publicKeyText,
  registerTranscript,
  sessionKey,
  verifyText,
} from "../../src/core/session-crypto.ts";
import { decodeBase64urlOfLength, encodeBase64url } from "../../src/crypto/base64url.ts";
import { privateKeySeed } from "../../src/crypto/node-crypto-port.ts";
import { PAIRWISE_INFO, pairwiseKey, sealedMessageAad } from "../../src/crypto/sealed-box.ts";
import type {
  ChallengeMessage,
  Message,
  RegisteredMessage,
  RegisterMessage,
} from "../../src/protocol/messages.ts";
import { nameKey } from "../../src/protocol/names.ts";
import { tableEntriesJson } from "../../src/protocol/table-entries-json.ts";
import { derivedKeyPairs, identityFor, testCrypto } from "../helpers/identities.ts";
import { SERVER_LABEL, type SentDatagram, SimulatedNetwork } from "../helpers/simulated-network.ts";

/** The simulated network's seed: its server's keys are those of the label `server 1`. */
const SEED = 1;
const SERVER_KEYS_LABEL = `server ${SEED}`;
const PEOPLE = ["alice", "bob"] as const;
const STEP_MS = 1_000;

const decoder = new TextDecoder();

/** Runs the exchange and returns the datagrams in the order they were sent, and what each user saw. */
export function runExchange(): { sent: readonly SentDatagram[]; shown: Map<string, string[]> } {
  const network = new SimulatedNetwork({ seed: SEED });
  const alice = network.addClient("alice");
  network.settle();
  network.advance(STEP_MS);
  const bob = network.addClient("bob");
  network.settle();
  network.advance(STEP_MS);
  alice.type("send bob Hello, Bob!");
  network.settle();
  network.advance(STEP_MS);
  bob.type("dereg bob");
  network.settle();
  network.advance(STEP_MS);
  alice.type("send bob See you tomorrow.");
  network.settle();
  network.advance(STEP_MS);
  bob.type("reg bob");
  network.settle();
  return {
    sent: network.sent,
    shown: new Map([
      ["alice", alice.shown()],
      ["bob", bob.shown()],
    ]),
  };
}

/** What a reader of the example needs to check it: each side's keys. */
export function exampleKeys(): Map<string, KeyPairs> {
  const keys = new Map<string, KeyPairs>(PEOPLE.map((name) => [name, identityFor(name)]));
  keys.set(SERVER_LABEL, derivedKeyPairs(SERVER_KEYS_LABEL));
  return keys;
}

function keyLabel(party: string): string {
  return party === SERVER_LABEL ? SERVER_KEYS_LABEL : `name ${nameKey(party)}`;
}

class Explainer {
  readonly lines: string[] = [];
  private readonly crypto: CryptoPort = testCrypto;
  private readonly keys = exampleKeys();
  private readonly challenges = new Map<string, { message: ChallengeMessage; number: number }>();
  private readonly registrations = new Map<string, RegisterMessage>();
  /** Each client's current session: its key and a short name for it (K1 alice, …). */
  private readonly sessions = new Map<string, { key: Uint8Array; label: string; owner: string }>();
  private sessionCount = 0;
  /** Where each kind of datagram was first explained in full. */
  private readonly firstOf = new Map<string, number>();
  private number = 0;

  constructor(private readonly start: number) {}

  say(...lines: string[]): void {
    this.lines.push(...lines);
  }

  keysHeader(): void {
    this.say(
      "EXAMPLE KEYS, NOT AN IDENTITY: each private key is SHA-256 of",
      '"chatapp test key\\n<signing|agreement>\\n<label>" (test/helpers/identities.ts).',
    );
    for (const [party, pairs] of this.keys) {
      const [signing, agreement] = party === SERVER_LABEL ? ["ssk", "sak"] : ["sk ", "ak "];
      this.say(`${party} (label "${keyLabel(party)}")`);
      this.say(
        `  ${signing} ${publicKeyText(pairs.signing)}  private ${seedText(pairs, "signing")}`,
      );
      this.say(
        `  ${agreement} ${publicKeyText(pairs.agreement)}  private ${seedText(pairs, "agreement")}`,
      );
    }
  }

  datagram(sent: SentDatagram): void {
    this.number++;
    const { message } = sent;
    this.say(
      "",
      `#${this.number} t=${sent.at - this.start} ms  ${sent.from} → ${sent.to}  ${message.type}, ${sent.bytes.byteLength} bytes`,
      decoder.decode(sent.bytes),
    );
    const client = sent.from === SERVER_LABEL ? sent.to : sent.from;
    switch (message.type) {
      case "register":
        this.register(client, message, sent.bytes.byteLength);
        break;
      case "challenge":
        this.challenges.set(client, { message, number: this.number });
        this.once("challenge", [
          "  nonce: the first 16 bytes of HMAC-SHA256 under a secret of the server, of",
          '  "nonce\\n" + cookie: the server keeps nothing per challenge. ssk, sak: its keys.',
        ]);
        break;
      case "registered":
        this.registered(client, message);
        break;
      case "chat":
        this.box(message.from, message.to, message.id, message, undefined);
        break;
      case "ack":
        if (sent.to !== SERVER_LABEL && sent.from !== SERVER_LABEL) {
          this.chatAck(sent.to, sent.from, message.id, message.mac);
        } else {
          this.sessionMac(client, message, "ack");
        }
        break;
      case "save":
        this.sessionMac(client, message, "save");
        this.box(client, message.to, message.ref ?? message.id, message, undefined);
        break;
      case "stored":
        this.sessionMac(client, message, "stored");
        for (const delivered of message.messages) {
          if ("box" in delivered) {
            this.box(delivered.sender, client, delivered.ref, delivered, delivered.ak);
          }
        }
        break;
      case "table":
      case "deregister":
      case "channel":
      case "channel-message":
      case "probe":
      case "error":
        this.sessionMac(client, message, message.type);
        break;
      default:
        message satisfies never;
    }
  }

  private once(kind: string, lines: readonly string[], otherwise?: string): void {
    const first = this.firstOf.get(kind);
    if (first === undefined) {
      this.firstOf.set(kind, this.number);
      this.say(...lines);
    } else if (otherwise !== undefined) {
      this.say(`${otherwise}, as in #${first}`);
    }
  }

  private register(client: string, message: RegisterMessage, bytes: number): void {
    if (message.sig === undefined) {
      this.once(
        "register-padded",
        [
          `  padded (pad) to ${bytes} bytes: the challenge it gets is smaller, so a forged`,
          "  source address cannot make the server send anyone more than it was sent.",
        ],
        "  padded",
      );
      return;
    }
    const known = this.challenges.get(client);
    if (known === undefined) throw new Error(`${client} signed without a challenge`);
    const challenge = known.message;
    if (known.number !== this.number - 1) {
      this.say(
        `  no new challenge: ${client} signs with the cookie and nonce of #${known.number}, still`,
        "  valid; a register after a dereg says which table it holds (epoch, have).",
      );
    }
    const transcript = registerTranscript({
      ...challenge,
      ...message,
      cookie: message.cookie ?? "",
    });
    if (!verifyText(this.crypto, message.sk, transcript, message.sig)) {
      throw new Error(`#${this.number}: the signature of ${client}'s register does not verify`);
    }
    this.registrations.set(client, message);
    this.once(
      "register-signed",
      [
        "  sig: Ed25519 by sk over these lines, joined by \\n (no newline at the end):",
        ...transcriptLines(transcript),
        "  The server checks it under sk and binds the name to sk (trust on first use).",
      ],
      "  sig: Ed25519 by sk over the transcript of this cookie and id; verifies",
    );
  }

  private registered(client: string, message: RegisteredMessage): void {
    const challenge = this.challenges.get(client)?.message;
    const request = this.registrations.get(client);
    const pairs = this.keys.get(client);
    if (challenge === undefined || request === undefined || pairs === undefined) {
      throw new Error(`${client} registered without a signed register`);
    }
    const transcript = registerTranscript(
      { ...challenge, ...request, cookie: request.cookie ?? "" },
      message.sid,
    );
    if (!verifyText(this.crypto, challenge.ssk, transcript, message.sig)) {
      throw new Error(`#${this.number}: the server's signature does not verify`);
    }
    const peer = decodeBase64urlOfLength(challenge.sak, 32);
    const secret = peer && this.crypto.agree(pairs.agreement.privateKey, peer);
    const key = sessionKey(
      this.crypto,
      pairs.agreement,
      challenge.sak,
      challenge.nonce,
      client,
      message.sid,
    );
    if (secret === undefined || key === undefined) throw new Error("no session key");
    const label = `K${++this.sessionCount}`;
    const which = [...this.sessions.values()].some((s) => s.owner === client) ? "new" : "first";
    this.sessions.set(client, { key, label, owner: client });
    this.once(
      "registered",
      [
        "  sig: Ed25519 by the server's ssk over the same lines and then sid; the client",
        "  checks it under the ssk it pins for this server address.",
      ],
      "  sig: Ed25519 by ssk over the transcript and sid; verifies",
    );
    this.say(
      `  ${client}'s ${which} session key ${label} = HKDF-SHA256(`,
      `    ikm  = X25519(${client}'s ak private, sak) = ${encodeBase64url(secret)}`,
      `    salt = the 16 bytes of nonce ${challenge.nonce}`,
      `    info = ${JSON.stringify(`chatapp v2 session\n${nameKey(client)}\n${message.sid}`)})`,
      `    = ${encodeBase64url(key)}`,
    );
  }

  private sessionMac(client: string, message: Message, kind: string): void {
    const session = this.sessions.get(client);
    if (session === undefined) throw new Error(`#${this.number}: no session for ${client}`);
    if (!hasValidMac(this.crypto, session.key, message)) {
      throw new Error(`#${this.number}: the MAC does not verify under ${session.label}`);
    }
    const lines = [
      `  mac: HMAC-SHA256 under ${session.label}, first 16 bytes, of this canonical JSON`,
      "  (keys sorted, no mac, no pad):",
      `  ${decoder.decode(macInput(this.crypto, message))}`,
    ];
    if (message.type === "table") {
      lines.push(
        "  where clients is the digest HMAC-SHA256(32 zero bytes, the entries' text as they travel):",
        `  ${tableEntriesJson(message.clients)}`,
        "  part and parts, left out on the wire of a one-datagram push, are covered as decoded.",
      );
    }
    this.once(kind, lines, `  mac: under ${session.label}; verifies`);
  }

  private pairwise(own: string, peer: string, peerKey: string): Uint8Array {
    const pairs = this.keys.get(own);
    const peerBytes = decodeBase64urlOfLength(peerKey, 32);
    const key = pairs && peerBytes && pairwiseKey(this.crypto, pairs.agreement, peerBytes);
    if (!pairs || !peerBytes || !key) throw new Error(`no pairwise key for ${own}`);
    if (!this.firstOf.has("pairwise")) {
      this.firstOf.set("pairwise", this.number);
      const secret = this.crypto.agree(pairs.agreement.privateKey, peerBytes);
      const both = [publicKeyText(pairs.agreement), peerKey].sort((a, b) =>
        compareBytes(decodeBase64urlOfLength(a, 32), decodeBase64urlOfLength(b, 32)),
      );
      this.say(
        `  pairwise key P of ${own} and ${peer} = HKDF-SHA256(`,
        `    ikm  = X25519(${own}'s ak private, ${peer}'s ak) = ${encodeBase64url(secret ?? new Uint8Array())}`,
        "    salt = the two ak, bytewise in order, concatenated:",
        `           ${both[0]} ‖`,
        `           ${both[1]}`,
        `    info = ${JSON.stringify(PAIRWISE_INFO)})`,
        `    = ${encodeBase64url(key)}  (the same from either side)`,
      );
    }
    return key;
  }

  /** A box from `sender` to `recipient`, opened as the recipient opens it. */
  private box(
    sender: string,
    recipient: string,
    ref: number,
    sealed: { n: string; box: string },
    senderKey: string | undefined,
  ): void {
    const senderPairs = this.keys.get(sender);
    if (senderPairs === undefined) throw new Error(`unknown sender ${sender}`);
    const key = this.pairwise(recipient, sender, senderKey ?? publicKeyText(senderPairs.agreement));
    const label = { sender, recipient, ref };
    const text = openText(this.crypto, key, label, sealed);
    if (text === undefined) throw new Error(`#${this.number}: the box does not open`);
    if (senderKey !== undefined) {
      this.say(`  ak: ${sender}'s key as the server had it bound when the message was saved.`);
    }
    this.say(
      "  box: AES-256-GCM under P with the 12-byte nonce n, of the text in UTF-8, then the",
      "  16-byte tag; the associated data is these lines:",
      ...transcriptLines(sealedMessageAad(sender, recipient, ref)),
      `  ${recipient} opens it to: ${text}`,
    );
  }

  private chatAck(sender: string, recipient: string, ref: number, mac: string | undefined): void {
    const senderPairs = this.keys.get(sender);
    if (senderPairs === undefined) throw new Error(`unknown sender ${sender}`);
    const key = this.pairwise(recipient, sender, publicKeyText(senderPairs.agreement));
    const label = { sender, recipient, ref };
    if (
      !isChatAckMac(this.crypto, key, label, mac) ||
      chatAckMac(this.crypto, key, label) !== mac
    ) {
      throw new Error(`#${this.number}: the chat ack's MAC does not verify`);
    }
    this.say(
      "  mac: HMAC-SHA256 under P, first 16 bytes, of these lines (only the two ends know P):",
      `  | chatapp v2 chat ack`,
      `  | ${nameKey(sender)}`,
      `  | ${nameKey(recipient)}`,
      `  | ${ref}`,
      `  ${sender} prints [Message received by ${recipient}.] only for this MAC.`,
    );
  }
}

function seedText(pairs: KeyPairs, kind: KeyKind): string {
  return encodeBase64url(
    privateKeySeed(kind === "signing" ? pairs.signing.privateKey : pairs.agreement.privateKey),
  );
}

function transcriptLines(bytes: Uint8Array): string[] {
  return decoder
    .decode(bytes)
    .split("\n")
    .map((line) => `  | ${line}`);
}

function compareBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): number {
  const left = a ?? new Uint8Array();
  const right = b ?? new Uint8Array();
  for (let index = 0; index < Math.min(left.length, right.length); index++) {
    const difference = (left[index] ?? 0) - (right[index] ?? 0);
    if (difference !== 0) return difference;
  }
  return left.length - right.length;
}

/** The worked example as PROTOCOL.md shows it. */
export function workedExample(): string {
  const { sent, shown } = runExchange();
  const explainer = new Explainer(sent[0]?.at ?? 0);
  explainer.keysHeader();
  explainer.say(
    "",
    "alice starts, then bob; alice sends bob a chat; bob goes offline (dereg);",
    "alice's next message is saved at the server; bob comes back (reg) and gets it.",
  );
  for (const datagram of sent) explainer.datagram(datagram);
  explainer.say("");
  for (const [name, lines] of shown) {
    explainer.say(`${name} saw:`, ...lines.map((line) => `  >>> ${line}`));
  }
  return `${explainer.lines.join("\n")}\n`;
}

if (import.meta.main) process.stdout.write(workedExample());
