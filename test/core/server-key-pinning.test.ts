import { describe, expect, test } from "bun:test";
import { type ClientEffect, createClientState } from "../../src/core/client-state.ts";
import { publicKeyText } from "../../src/core/session-crypto.ts";
import { stepClient } from "../../src/core/step-client.ts";
import { decodeBase64url } from "../../src/crypto/base64url.ts";
import { encodeMessage } from "../../src/protocol/codec.ts";
import type { Address } from "../../src/protocol/messages.ts";
import { notices } from "../../src/text/notices.ts";
import { derivedKeyPairs, identityFor, testCrypto } from "../helpers/identities.ts";

const SERVER: Address = { ip: "127.0.0.1", port: 5000 };
const NOW = Date.UTC(2030, 0, 1);
const pinned = publicKeyText(derivedKeyPairs("the server x met on an earlier run").signing);
const impostor = derivedKeyPairs("a server with other keys at the same address");

function fingerprint(key: string): string {
  const bytes = decodeBase64url(key);
  if (!bytes) throw new Error(`not a key: ${key}`);
  return testCrypto.fingerprint(bytes);
}

/** x starts with `pinnedServerKey` for SERVER, and a challenge with the impostor's keys answers its register. */
function challengedBy(pinnedServerKey: string): ClientEffect[] {
  const state = createClientState({
    name: "x",
    server: SERVER,
    firstRequestId: 1,
    crypto: testCrypto,
    identity: identityFor("x"),
    pinnedServerKey,
  });
  const [first] = stepClient(state, { kind: "start" }, NOW);
  if (first?.kind !== "send") throw new Error("the client did not send its register");
  const challenge = encodeMessage({
    type: "challenge",
    id: first.message.id,
    cookie: "c".repeat(32),
    nonce: "n".repeat(22),
    ssk: publicKeyText(impostor.signing),
    sak: publicKeyText(impostor.agreement),
  });
  return stepClient(state, { kind: "datagram", from: SERVER, bytes: challenge }, NOW + 1);
}

describe("the server's key pinned per address", () => {
  test("a server at the pinned address with another key gets no signed register: a loud warning, exit 1", () => {
    const effects = challengedBy(pinned);
    expect(effects.filter((effect) => effect.kind === "send")).toEqual([]);
    expect(effects).toContainEqual({
      kind: "show",
      text: notices.serverKeyChanged(
        "127.0.0.1:5000",
        fingerprint(pinned),
        fingerprint(publicKeyText(impostor.signing)),
      ),
    });
    expect(effects).toContainEqual({ kind: "exit", code: 1 });
  });

  test("the same challenge from the server whose key is pinned is answered with a signed register", () => {
    const effects = challengedBy(publicKeyText(impostor.signing));
    const sent = effects.flatMap((effect) => (effect.kind === "send" ? [effect.message] : []));
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ type: "register", cookie: "c".repeat(32) });
    expect(effects.some((effect) => effect.kind === "exit")).toBe(false);
  });
});
