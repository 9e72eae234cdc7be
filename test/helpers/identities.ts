/**
 * Key pairs for the in-memory worlds: one identity per chat name (as the default
 * identity file is per name), one server key pair per world, all made in memory.
 */
import type { ServerState } from "../../src/core/server-state.ts";
import {
  type KeyPairs,
  publicKeyText,
  registerTranscript,
  signText,
} from "../../src/core/session-crypto.ts";
import { nonceFor } from "../../src/core/step-server.ts";
import { nodeCryptoPort } from "../../src/crypto/node-crypto-port.ts";
import type { RegisterMessage } from "../../src/protocol/messages.ts";
import { nameKey } from "../../src/protocol/names.ts";

export const testCrypto = nodeCryptoPort;

export function newKeyPairs(): KeyPairs {
  return {
    signing: nodeCryptoPort.generateKeyPair("signing"),
    agreement: nodeCryptoPort.generateKeyPair("agreement"),
  };
}

const byName = new Map<string, KeyPairs>();

/** The same pairs for the same name (ignoring case) for the whole test run. */
export function identityFor(name: string): KeyPairs {
  const key = nameKey(name);
  let pairs = byName.get(key);
  if (!pairs) {
    pairs = newKeyPairs();
    byName.set(key, pairs);
  }
  return pairs;
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
