import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { isChatAckMac, openText } from "../../src/core/sealed-messages.ts";
import {
  hasValidMac,
  publicKeyText,
  registerTranscript,
  sessionKey,
  verifyText,
} from "../../src/core/session-crypto.ts";
import { decodeBase64urlOfLength } from "../../src/crypto/base64url.ts";
import { pairwiseKey } from "../../src/crypto/sealed-box.ts";
import { decodeMessage } from "../../src/protocol/codec.ts";
import type { ChallengeMessage, Message, RegisterMessage } from "../../src/protocol/messages.ts";
import { derivedKeyPairs, identityFor, testCrypto } from "../helpers/identities.ts";

const root = join(import.meta.dir, "..", "..");
const SCRIPT = "test/tools/worked-example.ts";

/** The text of the fenced block under PROTOCOL.md's "Worked example" heading. */
async function exampleInProtocol(): Promise<string> {
  const doc = await Bun.file(join(root, "PROTOCOL.md")).text();
  const section = doc.slice(doc.indexOf("\n## Worked example"));
  const start = section.indexOf("```text\n") + "```text\n".length;
  const end = section.indexOf("\n```", start);
  if (start < "```text\n".length || end < 0) throw new Error("PROTOCOL.md has no worked example");
  return `${section.slice(start, end)}\n`;
}

interface Datagram {
  readonly from: string;
  readonly to: string;
  readonly bytes: number;
  readonly text: string;
}

const HEADER = /^#\d+ t=\d+ ms {2}(\S+) → (\S+) {2}\S+, (\d+) bytes$/;

function datagramsOf(example: string): Datagram[] {
  const lines = example.split("\n");
  const found: Datagram[] = [];
  lines.forEach((line, index) => {
    const header = HEADER.exec(line);
    if (header === null) return;
    const [, from = "", to = "", bytes = "0"] = header;
    found.push({ from, to, bytes: Number(bytes), text: lines[index + 1] ?? "" });
  });
  return found;
}

/**
 * Checks every signature, MAC and box of the example from its datagrams alone, with the
 * keys of the labels it names: what a reader with another implementation would do.
 * Returns how many were checked and what failed.
 */
function verifyExample(example: string): { checked: number; failures: string[] } {
  const serverKeys = derivedKeyPairs("server 1");
  const challenges = new Map<string, ChallengeMessage>();
  const registrations = new Map<string, RegisterMessage>();
  const sessions = new Map<string, Uint8Array>();
  const failures: string[] = [];
  let checked = 0;
  const check = (ok: boolean, what: string): void => {
    checked++;
    if (!ok) failures.push(what);
  };
  const pairKey = (own: string, peerKey: string): Uint8Array => {
    const peer = decodeBase64urlOfLength(peerKey, 32);
    const key = peer && pairwiseKey(testCrypto, identityFor(own).agreement, peer);
    if (!key) throw new Error(`no pairwise key for ${own}`);
    return key;
  };
  const akOf = (name: string): string => publicKeyText(identityFor(name).agreement);

  for (const datagram of datagramsOf(example)) {
    const bytes = new TextEncoder().encode(datagram.text);
    const message: Message | undefined = decodeMessage(bytes);
    if (message === undefined || bytes.byteLength !== datagram.bytes) {
      failures.push(`not a datagram of ${datagram.bytes} bytes: ${datagram.text}`);
      continue;
    }
    const client = datagram.from === "server" ? datagram.to : datagram.from;
    const what = `${message.type} ${datagram.from} → ${datagram.to}`;
    if (message.type === "challenge") {
      check(message.ssk === publicKeyText(serverKeys.signing), `${what}: the server's key`);
      challenges.set(client, message);
    } else if (message.type === "register" && message.sig !== undefined) {
      const challenge = challenges.get(client);
      check(message.sk === publicKeyText(identityFor(client).signing), `${what}: the key`);
      const transcript =
        challenge && registerTranscript({ ...challenge, ...message, cookie: message.cookie ?? "" });
      check(
        transcript !== undefined && verifyText(testCrypto, message.sk, transcript, message.sig),
        `${what}: signature`,
      );
      registrations.set(client, message);
    } else if (message.type === "registered") {
      const challenge = challenges.get(client);
      const request = registrations.get(client);
      if (!challenge || !request) throw new Error(`${what} before its register`);
      const transcript = registerTranscript(
        { ...challenge, ...request, cookie: request.cookie ?? "" },
        message.sid,
      );
      const ssk = publicKeyText(serverKeys.signing);
      check(verifyText(testCrypto, ssk, transcript, message.sig), `${what}: signature`);
      const key = sessionKey(
        testCrypto,
        identityFor(client).agreement,
        challenge.sak,
        challenge.nonce,
        client,
        message.sid,
      );
      if (key) sessions.set(client, key);
    } else if (message.type === "chat") {
      const key = pairKey(message.to, akOf(message.from));
      const label = { sender: message.from, recipient: message.to, ref: message.id };
      check(openText(testCrypto, key, label, message) !== undefined, `${what}: box`);
    } else if (message.type === "ack" && datagram.from !== "server" && datagram.to !== "server") {
      const key = pairKey(datagram.from, akOf(datagram.to));
      const label = { sender: datagram.to, recipient: datagram.from, ref: message.id };
      check(isChatAckMac(testCrypto, key, label, message.mac), `${what}: mac`);
    } else if ("mac" in message) {
      const key = sessions.get(client);
      check(key !== undefined && hasValidMac(testCrypto, key, message), `${what}: mac`);
      if (message.type === "save") {
        const label = { sender: client, recipient: message.to, ref: message.ref ?? message.id };
        const opened = openText(testCrypto, pairKey(client, akOf(message.to)), label, message);
        check(opened !== undefined, `${what}: box`);
      }
      if (message.type === "stored") {
        for (const delivered of message.messages) {
          if (!("box" in delivered)) continue;
          const label = { sender: delivered.sender, recipient: client, ref: delivered.ref };
          const opened = openText(testCrypto, pairKey(client, delivered.ak), label, delivered);
          check(opened !== undefined, `${what}: box`);
        }
      }
    }
  }
  return { checked, failures };
}

describe("the worked example in PROTOCOL.md", () => {
  test("is exactly what the script prints", async () => {
    const run = Bun.spawn(["bun", SCRIPT], { cwd: root, stdout: "pipe", stderr: "pipe" });
    const [printed, errors, code] = await Promise.all([
      new Response(run.stdout).text(),
      new Response(run.stderr).text(),
      run.exited,
    ]);
    expect(errors).toBe("");
    expect(code).toBe(0);
    expect(await exampleInProtocol()).toBe(printed);
  });

  test("holds every datagram of the exchange, and each signature, MAC and box in it checks", async () => {
    const example = await exampleInProtocol();
    const types = datagramsOf(example).map((datagram) => JSON.parse(datagram.text).type);
    for (const type of ["register", "challenge", "registered", "table", "chat", "ack"]) {
      expect(types).toContain(type);
    }
    for (const type of ["deregister", "save", "stored"]) expect(types).toContain(type);
    const { checked, failures } = verifyExample(example);
    expect(failures).toEqual([]);
    // The server's key in 2 challenges, 3 signed registers (key and signature), 3
    // signed answers, a chat and its ack, 18 session MACs, the save's and the stored box.
    expect(checked).toBe(33);
  });

  test("the check fails when one character of a MAC or a box is changed", async () => {
    const example = await exampleInProtocol();
    const chat = datagramsOf(example).find((datagram) => datagram.text.includes('"type":"chat"'));
    const table = datagramsOf(example).find((datagram) => datagram.text.includes('"type":"table"'));
    if (!chat || !table) throw new Error("the example has no chat or no table");
    const flip = (text: string, field: string): string =>
      text.replace(
        new RegExp(`"${field}":"(.)`),
        (_, first: string) => `"${field}":"${first === "A" ? "B" : "A"}`,
      );
    const altered = example
      .replace(chat.text, flip(chat.text, "box"))
      .replace(table.text, flip(table.text, "mac"));
    const { failures } = verifyExample(altered);
    expect(failures).toEqual(["table server → alice: mac", "chat alice → bob: box"]);
  });

  test("every table's entries text shown hashes to the digest its MAC input shows", async () => {
    // Another implementation hashes what it reads here: a stale line would make every table MAC fail.
    const lines = (await exampleInProtocol()).split("\n");
    let checked = 0;
    lines.forEach((line, at) => {
      if (!line.includes("where clients is the digest")) return;
      const shown = /"clients":"([A-Za-z0-9_-]{43})"/.exec(lines[at - 1] ?? "")?.[1];
      const entries = (lines[at + 1] ?? "").trim();
      const digest = new Bun.CryptoHasher("sha256", new Uint8Array(32)).update(entries);
      expect(entries.startsWith("[[")).toBe(true);
      expect(digest.digest("base64url")).toBe(shown as string);
      checked++;
    });
    expect(checked).toBeGreaterThan(0);
  });
});
