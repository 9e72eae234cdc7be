/**
 * The identity layer for the benchmarks' simulated clients (PROTOCOL.md, "Identity
 * layer"): each name has its own key pairs (derived from the name, made once), signs the
 * server's challenge, derives the session key from the `registered` answer, and puts the
 * session's MAC on every request and ack. The fields are the plain JSON the swarms send.
 */
import {
  publicKeyText,
  registerTranscript,
  sessionKey,
  signText,
  withMac,
} from "../../src/core/session-crypto.ts";
import { nodeCryptoPort } from "../../src/crypto/node-crypto-port.ts";
import type { Message, Sealed } from "../../src/protocol/messages.ts";
import { derivedKeyPairs } from "../helpers/identities.ts";
import { sealedBy } from "../helpers/sealed.ts";

type Fields = Record<string, unknown>;

interface Challenge {
  readonly cookie: string;
  readonly nonce: string;
  readonly ssk: string;
  readonly sak: string;
}

function challengeOf(fields: Fields): Challenge | undefined {
  const { cookie, nonce, ssk, sak } = fields;
  return typeof cookie === "string" &&
    typeof nonce === "string" &&
    typeof ssk === "string" &&
    typeof sak === "string"
    ? { cookie, nonce, ssk, sak }
    : undefined;
}

export class BenchIdentity {
  readonly #keys;
  readonly sk: string;
  readonly ak: string;
  #challenge: Challenge | undefined;
  /** The current session's key; undefined before the first `registered`. */
  sessionKey: Uint8Array | undefined;

  constructor(readonly name: string) {
    this.#keys = derivedKeyPairs(`bench ${name}`);
    this.sk = publicKeyText(this.#keys.signing);
    this.ak = publicKeyText(this.#keys.agreement);
  }

  /** `text` sealed for `recipient` (whose agreement key is `recipientKey`) as the message `ref`: `n` and `box`. */
  seal(recipient: string, recipientKey: string, ref: number, text: string): Sealed {
    return sealedBy(this.name, recipient, ref, text, { keys: this.#keys, recipientKey });
  }

  /** A `register` answered with its challenge's cookie and our signature; undefined if the challenge is malformed. */
  answerChallenge(register: Fields, challenge: Fields): Fields | undefined {
    const given = challengeOf(challenge);
    const { id } = register;
    if (!given || typeof id !== "number") return undefined;
    this.#challenge = given;
    const transcript = registerTranscript({
      ...given,
      name: this.name,
      sk: this.sk,
      ak: this.ak,
      id,
    });
    const { pad: _pad, ...bare } = register;
    return {
      ...bare,
      cookie: given.cookie,
      sig: signText(nodeCryptoPort, this.#keys.signing, transcript),
    };
  }

  /** Takes the session a `registered` answer opened; false when there was no challenge to derive it from. */
  registered(sid: string): boolean {
    const challenge = this.#challenge;
    if (!challenge) return false;
    this.sessionKey = sessionKey(
      nodeCryptoPort,
      this.#keys.agreement,
      challenge.sak,
      challenge.nonce,
      this.name,
      sid,
    );
    return this.sessionKey !== undefined;
  }

  /** The fields with the session's MAC (as they are, before any session). */
  withMac(fields: Fields): Fields {
    return this.sessionKey
      ? withMac(nodeCryptoPort, this.sessionKey, fields as unknown as Message)
      : fields;
  }
}
