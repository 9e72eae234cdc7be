/**
 * Key pairs for the in-memory worlds: one identity per chat name (as the default
 * identity file is per name), one server key pair per world, all made in memory.
 * Identities are derived from a label and cached, so a world of 10,000 names costs
 * 10,000 key imports once per test process, and the same label gives the same keys in
 * every run (a seeded simulation must replay byte for byte).
 */
import { createHash } from "node:crypto";
import type { CryptoPort, KeyKind, KeyPair } from "../../src/core/crypto-port.ts";
import { nonceFor } from "../../src/core/server-admission.ts";
import type { ServerState } from "../../src/core/server-state.ts";
import {
  type KeyPairs,
  publicKeyText,
  registerTranscript,
  signText,
} from "../../src/core/session-crypto.ts";
import { keyPairFromSeed, nodeCryptoPort } from "../../src/crypto/node-crypto-port.ts";
import { seededRandom } from "../../src/io/seeded-random.ts";
import type { RegisterMessage } from "../../src/protocol/messages.ts";
import { nameKey } from "../../src/protocol/names.ts";

export const testCrypto = nodeCryptoPort;

export function newKeyPairs(): KeyPairs {
  return {
    signing: nodeCryptoPort.generateKeyPair("signing"),
    agreement: nodeCryptoPort.generateKeyPair("agreement"),
  };
}

function seededPair<Kind extends KeyKind>(kind: Kind, seed: Uint8Array): KeyPair<Kind> {
  const pair = keyPairFromSeed(kind, seed);
  if (!pair) throw new Error("a key seed is 32 bytes");
  return pair;
}

function derivedSeed(label: string, kind: KeyKind): Uint8Array {
  return Uint8Array.from(
    createHash("sha256").update(`chatapp test key\n${kind}\n${label}`).digest(),
  );
}

const byLabel = new Map<string, KeyPairs>();

/** The key pairs for `label`: the same in every run, made once per test process. */
export function derivedKeyPairs(label: string): KeyPairs {
  let pairs = byLabel.get(label);
  if (!pairs) {
    pairs = {
      signing: seededPair("signing", derivedSeed(label, "signing")),
      agreement: seededPair("agreement", derivedSeed(label, "agreement")),
    };
    byLabel.set(label, pairs);
  }
  return pairs;
}

/** The same pairs for the same name (ignoring case), in every test and every run. */
export function identityFor(name: string): KeyPairs {
  return derivedKeyPairs(`name ${nameKey(name)}`);
}

/**
 * The node port with its randomness drawn from a seed: the server's nonce secret and
 * every key pair a core makes are the same in every run of a seeded simulation.
 */
export function seededCrypto(seed: number): CryptoPort {
  const random = seededRandom(seed);
  const randomBytes = (length: number): Uint8Array =>
    Uint8Array.from({ length }, () => Math.floor(random() * 256));
  return {
    ...nodeCryptoPort,
    randomBytes,
    generateKeyPair: <Kind extends KeyKind>(kind: Kind): KeyPair<Kind> =>
      seededPair(kind, randomBytes(32)),
  };
}

/**
 * A registration signed for the server `state` as if its challenge with `cookie` had come
 * (a real client learns the nonce from the challenge; a test that drives the core may
 * skip that round trip). The same name gets the same keys unless `keys` says otherwise.
 */
export function signedRegistration(
  state: ServerState,
  fields: { name: string; id: number; cookie: string; keys?: KeyPairs },
): RegisterMessage {
  const keys = fields.keys ?? identityFor(fields.name);
  const sk = publicKeyText(keys.signing);
  const ak = publicKeyText(keys.agreement);
  const transcript = registerTranscript({
    ssk: state.ssk,
    sak: state.sak,
    nonce: nonceFor(state, fields.cookie),
    cookie: fields.cookie,
    name: fields.name,
    sk,
    ak,
    id: fields.id,
  });
  return {
    type: "register",
    id: fields.id,
    name: fields.name,
    sk,
    ak,
    cookie: fields.cookie,
    sig: signText(nodeCryptoPort, keys.signing, transcript),
  };
}

/** The agreement key a table entry carries for `name` (the one identityFor gives it). */
export function agreementKeyOf(name: string): string {
  return publicKeyText(identityFor(name).agreement);
}
