import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { PUBLIC_KEY_BYTES } from "../core/crypto-port.ts";
import { decodeBase64urlOfLength } from "../crypto/base64url.ts";
import {
  type CompanionPaths,
  checkPrivateFile,
  errorCode,
  IdentityError,
  reason,
  replacePrivateFile,
  unreadable,
} from "./identity-file.ts";

/** What a key is to us: never seen for that label, the one we trust, or a different one (warn, do not use). */
export type KeyCheck = "new" | "known" | "changed";

export interface KnownKey {
  /** The public key, base64url without padding (43 characters). */
  readonly key: string;
  /** When this key was first trusted for the label, ISO 8601 in UTC. */
  readonly firstSeen: string;
}

/** The two books of trust on first use kept beside an identity. */
export interface KnownKeyBooks {
  /** Peers' names → their agreement public keys (`<stem>.known-keys`). */
  readonly peers: KnownKeys;
  /** Server addresses ("ip:port") → the server's signing key (`<stem>.servers`). */
  readonly servers: KnownKeys;
}

export function loadKnownKeys(paths: CompanionPaths): KnownKeyBooks {
  return {
    peers: KnownKeys.load(paths.knownKeys, "known-keys file", "name"),
    servers: KnownKeys.load(paths.servers, "servers file", "address"),
  };
}

const LABEL_PATTERN = /^\S+$/;

/**
 * Trust on first use, as ssh's known_hosts: the first key seen for a label is kept, a
 * different one later is "changed" until the user trusts it. Labels ignore case (names
 * do; an IPv6 address may be written either way). One line per label in the file:
 * `<label> <key> <first seen>`, after a `#` header saying so. Every change rewrites
 * the file atomically with mode 0600.
 */
export class KnownKeys {
  readonly #keys: Map<string, KnownKey>;
  /** The file ends in a line cut short: appending to it would glue a new line to it. */
  #torn: boolean;

  private constructor(
    readonly path: string,
    private readonly what: string,
    private readonly labelMeaning: string,
    { keys, torn }: { keys: Map<string, KnownKey>; torn: boolean },
  ) {
    this.#keys = keys;
    this.#torn = torn;
  }

  /** The keys in `path` (none if it does not exist yet); `what` names the file in errors. */
  static load(path: string, what: string, labelMeaning: string): KnownKeys {
    return new KnownKeys(path, what, labelMeaning, readKeys(path, what, labelMeaning));
  }

  check(label: string, key: string): KeyCheck {
    const known = this.#keys.get(label.toLowerCase());
    if (known === undefined) return "new";
    return known.key === key ? "known" : "changed";
  }

  get(label: string): KnownKey | undefined {
    return this.#keys.get(label.toLowerCase());
  }

  /**
   * Trusts `key` for `label` from now on, replacing any other key, and saves the file.
   * Trusting the key already known changes nothing. If the file cannot be written the
   * key stays trusted for this process and an IdentityError says so.
   */
  trust(label: string, key: string, now: Date = new Date()): void {
    checkLabelAndKey(label, key, this.labelMeaning);
    if (this.check(label, key) === "known") return;
    this.#keys.set(label.toLowerCase(), { key, firstSeen: now.toISOString() });
    try {
      replacePrivateFile(this.path, this.#text());
      this.#torn = false;
    } catch (error) {
      throw this.#unsaved(error);
    }
  }

  #unsaved(error: unknown): IdentityError {
    return new IdentityError(
      `cannot save the ${this.what} ${this.path} (${reason(error)}); the key is trusted until chatapp exits, check that the directory is writable`,
      this.path,
    );
  }

  /**
   * Trusts each key whose label has none yet (trust on first use), appending their lines
   * to the file in one write, without fsync: a power cut may lose the last ones, which are
   * then learnt again from the next table. Labels already known keep their key: a changed
   * one is the user's to accept, with `trust`. If the file cannot be written the keys stay
   * trusted for this process and an IdentityError says so.
   */
  learn(keys: Iterable<{ readonly label: string; readonly key: string }>, now = new Date()): void {
    const lines: string[] = [];
    for (const { label, key } of keys) {
      checkLabelAndKey(label, key, this.labelMeaning);
      if (this.#keys.has(label.toLowerCase())) continue;
      const known = { key, firstSeen: now.toISOString() };
      this.#keys.set(label.toLowerCase(), known);
      lines.push(`${label.toLowerCase()} ${key} ${known.firstSeen}\n`);
    }
    if (lines.length === 0) return;
    try {
      if (existsSync(this.path) && !this.#torn) {
        appendFileSync(this.path, lines.join(""), { mode: 0o600 });
      } else {
        replacePrivateFile(this.path, this.#text());
        this.#torn = false;
      }
    } catch (error) {
      throw this.#unsaved(error);
    }
  }

  get size(): number {
    return this.#keys.size;
  }

  /** Labels (lower-cased) and their keys, in the order they were first trusted. */
  entries(): IterableIterator<[string, KnownKey]> {
    return this.#keys.entries();
  }

  #text(): string {
    const lines = [
      `# chatapp ${this.what}: <${this.labelMeaning}> <public key, base64url> <first seen, UTC>`,
    ];
    for (const [label, { key, firstSeen }] of this.#keys)
      lines.push(`${label} ${key} ${firstSeen}`);
    return `${lines.join("\n")}\n`;
  }
}

function checkLabelAndKey(label: string, key: string, labelMeaning: string): void {
  if (!LABEL_PATTERN.test(label))
    throw new RangeError(
      `a ${labelMeaning} to trust cannot be empty or contain spaces: ${JSON.stringify(label)}`,
    );
  if (decodeBase64urlOfLength(key, PUBLIC_KEY_BYTES) === undefined) {
    throw new RangeError(
      `a key to trust is 43 characters of base64url, not ${JSON.stringify(key)}`,
    );
  }
}

function readKeys(
  path: string,
  what: string,
  labelMeaning: string,
): { keys: Map<string, KnownKey>; torn: boolean } {
  const keys = new Map<string, KnownKey>();
  let text: string;
  try {
    checkPrivateFile(path, what);
    text = readFileSync(path, "utf8");
  } catch (error) {
    if (error instanceof IdentityError && isAbsence(error.cause)) return { keys, torn: false };
    if (error instanceof IdentityError) throw error;
    throw unreadable(path, error, what);
  }
  const lines = text.split("\n");
  // A last line without its newline is an append a crash cut short: not trusted, learnt again.
  const torn = lines.pop() !== "";
  lines.forEach((line, index) => {
    if (line.trim() === "" || line.startsWith("#")) return;
    const [label, key, firstSeen, ...rest] = line.trim().split(/\s+/);
    const valid =
      label !== undefined &&
      key !== undefined &&
      decodeBase64urlOfLength(key, PUBLIC_KEY_BYTES) !== undefined &&
      firstSeen !== undefined &&
      !Number.isNaN(Date.parse(firstSeen)) &&
      rest.length === 0;
    if (!valid) {
      throw new IdentityError(
        `the ${what} ${path} is corrupted at line ${index + 1} (expected "<${labelMeaning}> <key> <first seen>"); fix that line, or delete it to trust the next key seen`,
        path,
      );
    }
    keys.set(label.toLowerCase(), { key, firstSeen });
  });
  return { keys, torn };
}

function isAbsence(error: unknown): boolean {
  const code = errorCode(error);
  return code === "ENOENT" || code === "ENOTDIR";
}
