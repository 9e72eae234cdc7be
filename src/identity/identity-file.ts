import { randomBytes } from "node:crypto";
import {
  closeSync,
  fchmodSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import type { AgreementKeyPair, KeyKind, KeyPair, SigningKeyPair } from "../core/crypto-port.ts";
import { PUBLIC_KEY_BYTES } from "../core/crypto-port.ts";
import { decodeBase64urlOfLength, encodeBase64url } from "../crypto/base64url.ts";
import { keyPairFromSeed, nodeCryptoPort, privateKeySeed } from "../crypto/node-crypto-port.ts";
import { nameKey } from "../protocol/names.ts";

/** One failure of the files next to an identity; the message is one sentence that names the file and what to do. */
export class IdentityError extends Error {
  override readonly name = "IdentityError";

  constructor(
    message: string,
    readonly path: string,
    options?: { readonly cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface Identity {
  readonly signing: SigningKeyPair;
  readonly agreement: AgreementKeyPair;
  /** When the identity was created, ISO 8601 in UTC. */
  readonly createdAt: string;
}

export interface LoadedIdentity {
  readonly identity: Identity;
  /** True when this call created the file: the client can say so and show the fingerprint. */
  readonly created: boolean;
}

export const IDENTITY_FORMAT = "chatapp identity";
export const IDENTITY_VERSION = 1;
export const IDENTITY_EXTENSION = ".identity";

const PRIVATE_FILE_MODE = 0o600;
const PRIVATE_DIRECTORY_MODE = 0o700;
const ALGORITHMS = { signing: "Ed25519", agreement: "X25519" } as const;

export interface IdentityLocation {
  /** The `--identity FILE` option, when given; relative to the working directory. */
  readonly identityOption?: string | undefined;
  readonly name: string;
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly homeDirectory?: string;
}

/**
 * `--identity FILE` if given, else `$XDG_CONFIG_HOME/chatapp/<name>.identity`, else
 * `~/.config/chatapp/<name>.identity`, the name lower-cased since names ignore case.
 * A relative XDG_CONFIG_HOME is ignored, as the XDG base directory spec says.
 */
export function identityPath(location: IdentityLocation): string {
  if (location.identityOption !== undefined) return resolve(location.identityOption);
  const env = location.env ?? process.env;
  const xdg = env.XDG_CONFIG_HOME;
  const configHome =
    xdg !== undefined && isAbsolute(xdg)
      ? xdg
      : join(location.homeDirectory ?? homedir(), ".config");
  return join(configHome, "chatapp", `${nameKey(location.name)}${IDENTITY_EXTENSION}`);
}

export interface CompanionPaths {
  /** Peers' agreement keys, trusted on first use. */
  readonly knownKeys: string;
  /** Server signing keys, pinned per server address. */
  readonly servers: string;
  /** The (sender, ref) pairs already shown. */
  readonly shown: string;
}

/**
 * The files that live beside an identity and share its stem: `alice.identity` has
 * `alice.known-keys`, `alice.servers` and `alice.shown`. A file chosen with another
 * extension keeps it in the stem (`me.key` → `me.key.known-keys`), so a companion can
 * never be the identity file itself.
 */
export function companionPaths(identityFile: string): CompanionPaths {
  const stem = identityFile.endsWith(IDENTITY_EXTENSION)
    ? identityFile.slice(0, -IDENTITY_EXTENSION.length)
    : identityFile;
  return { knownKeys: `${stem}.known-keys`, servers: `${stem}.servers`, shown: `${stem}.shown` };
}

/**
 * The identity at `path`, created (with its directory) the first time. Creation is
 * atomic and never replaces a file that exists: the new identity is written to a
 * temporary file and hard-linked into place, which fails if another process got there
 * first, and then that process's identity is the one loaded.
 */
export function loadOrCreateIdentity(
  path: string,
  now: () => Date = () => new Date(),
): LoadedIdentity {
  if (fileExists(path)) return { identity: loadIdentity(path), created: false };
  const identity: Identity = {
    signing: nodeCryptoPort.generateKeyPair("signing"),
    agreement: nodeCryptoPort.generateKeyPair("agreement"),
    createdAt: now().toISOString(),
  };
  ensurePrivateDirectory(dirname(path), path);
  const placed = writeFileExclusively(path, `${JSON.stringify(identityJson(identity), null, 2)}\n`);
  return placed ? { identity, created: true } : { identity: loadIdentity(path), created: false };
}

/** The identity at `path`, or an IdentityError saying what is wrong with the file. */
export function loadIdentity(path: string): Identity {
  checkPrivateFile(path);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw unreadable(path, error);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw corrupted(path, "it is not JSON");
  }
  return identityFromJson(path, json);
}

/**
 * Refuses what ssh refuses for a private key: a file that is not a regular file, or one
 * that the group or others may read or write. `what` names the file in the message
 * ("identity file", "known-keys file"). Windows has no such mode bits to check.
 */
export function checkPrivateFile(path: string, what = "identity file"): void {
  let stats: ReturnType<typeof statSync>;
  try {
    stats = statSync(path);
  } catch (error) {
    throw unreadable(path, error, what);
  }
  if (!stats.isFile()) {
    const kind = stats.isDirectory() ? "a directory" : "not a regular file";
    throw new IdentityError(
      `the ${what} ${path} is ${kind}; move it away or choose another file with --identity`,
      path,
    );
  }
  const permissions = stats.mode & 0o777;
  if (process.platform !== "win32" && (permissions & 0o077) !== 0) {
    throw new IdentityError(
      `permissions ${permissions.toString(8).padStart(4, "0")} for ${path} are too open; chmod 600 ${path}`,
      path,
    );
  }
}

/** Creates `directory` (and its parents) readable by the owner only, if it does not exist. */
function ensurePrivateDirectory(directory: string, forFile: string): void {
  try {
    mkdirSync(directory, { recursive: true, mode: PRIVATE_DIRECTORY_MODE });
  } catch (error) {
    throw new IdentityError(
      `cannot create the directory ${directory} (${reason(error)}); create it yourself or choose another file with --identity`,
      forFile,
    );
  }
}

/**
 * Writes `text` to `path` with mode 0600 if no file is there: true if written, false if
 * a file appeared first (left untouched). The text is on disk before the name is.
 */
function writeFileExclusively(path: string, text: string): boolean {
  const temporary = temporaryPathFor(path);
  try {
    writePrivateFile(temporary, text);
    try {
      linkSync(temporary, path);
    } catch (error) {
      if (errorCode(error) === "EEXIST") return false;
      // A file system without hard links: rename, which is atomic but would replace a file.
      if (fileExists(path)) return false;
      renameSync(temporary, path);
    }
    syncDirectory(dirname(path));
    return true;
  } catch (error) {
    throw new IdentityError(
      `cannot write the identity file ${path} (${reason(error)}); check that its directory is writable or choose another file with --identity`,
      path,
    );
  } finally {
    removeQuietly(temporary);
  }
}

/** Writes a new file readable by its owner only and flushes it to disk; fails if `path` exists. */
function writePrivateFile(path: string, text: string): void {
  const descriptor = openSync(path, "wx", PRIVATE_FILE_MODE);
  try {
    fchmodSync(descriptor, PRIVATE_FILE_MODE);
    writeSync(descriptor, text);
    fsyncSync(descriptor);
  } finally {
    closeSync(descriptor);
  }
}

/**
 * Replaces `path` with `text` atomically (temporary file, fsync, rename): a reader sees
 * the old file or the new one, never half of either, even after a crash. Creates the
 * directory (0700) if needed.
 */
export function replacePrivateFile(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: PRIVATE_DIRECTORY_MODE });
  const temporary = temporaryPathFor(path);
  try {
    writePrivateFile(temporary, text);
    renameSync(temporary, path);
    syncDirectory(dirname(path));
  } finally {
    removeQuietly(temporary);
  }
}

function temporaryPathFor(path: string): string {
  return join(
    dirname(path),
    `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`,
  );
}

/** The errno code of a failed file operation ("ENOENT", ...), if it has one. */
export function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** What went wrong, short: "ENOTDIR: not a directory", without the call and path the message repeats. */
export function reason(error: unknown): string {
  const message = (error instanceof Error ? error.message : String(error)).replace(
    /, \w+ '.*'$/,
    "",
  );
  const code = errorCode(error);
  return code !== undefined && !message.startsWith(code) ? `${code}: ${message}` : message;
}

function identityJson(identity: Identity): unknown {
  return {
    format: IDENTITY_FORMAT,
    version: IDENTITY_VERSION,
    createdAt: identity.createdAt,
    signing: keyPairJson("signing", identity.signing),
    agreement: keyPairJson("agreement", identity.agreement),
  };
}

function keyPairJson(kind: KeyKind, pair: KeyPair<KeyKind>): unknown {
  return {
    algorithm: ALGORITHMS[kind],
    publicKey: encodeBase64url(pair.publicKey),
    privateKey: encodeBase64url(privateKeySeed(pair.privateKey)),
  };
}

function identityFromJson(path: string, json: unknown): Identity {
  if (!isRecord(json) || json.format !== IDENTITY_FORMAT) {
    throw corrupted(path, `it is not a "${IDENTITY_FORMAT}" file`);
  }
  if (json.version !== IDENTITY_VERSION) {
    throw new IdentityError(
      `the identity file ${path} has version ${JSON.stringify(json.version)}, which this chatapp cannot read; use the chatapp that wrote it, or a newer one`,
      path,
    );
  }
  const createdAt = json.createdAt;
  if (typeof createdAt !== "string" || Number.isNaN(Date.parse(createdAt))) {
    throw corrupted(path, "its createdAt is not a date");
  }
  return {
    signing: keyPairFromJson(path, "signing", json.signing),
    agreement: keyPairFromJson(path, "agreement", json.agreement),
    createdAt,
  };
}

function keyPairFromJson<Kind extends KeyKind>(
  path: string,
  kind: Kind,
  json: unknown,
): KeyPair<Kind> {
  if (!isRecord(json) || json.algorithm !== ALGORITHMS[kind]) {
    throw corrupted(path, `its ${kind} key is not an ${ALGORITHMS[kind]} key`);
  }
  const seed =
    typeof json.privateKey === "string"
      ? decodeBase64urlOfLength(json.privateKey, PUBLIC_KEY_BYTES)
      : undefined;
  const pair = seed === undefined ? undefined : keyPairFromSeed(kind, seed);
  if (pair === undefined)
    throw corrupted(path, `its ${kind} private key is not 32 bytes of base64url`);
  if (json.publicKey !== encodeBase64url(pair.publicKey)) {
    throw corrupted(path, `its ${kind} public key does not match its private key`);
  }
  return pair;
}

function corrupted(path: string, detail: string): IdentityError {
  return new IdentityError(
    `the identity file ${path} is corrupted (${detail}); restore it from a backup, or move it away to create a new identity (the server keeps the name for the old key)`,
    path,
  );
}

export function unreadable(path: string, error: unknown, what = "identity file"): IdentityError {
  return new IdentityError(
    `cannot read the ${what} ${path} (${reason(error)}); check the file and its permissions, or choose another file with --identity`,
    path,
    { cause: error },
  );
}

function fileExists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch (error) {
    // Anything but "not there" (a loop of links, no permission) is for loadIdentity to report;
    // a file in place of a directory on the way is for ensurePrivateDirectory.
    const code = errorCode(error);
    return code !== "ENOENT" && code !== "ENOTDIR";
  }
}

function syncDirectory(directory: string): void {
  let descriptor: number | undefined;
  try {
    descriptor = openSync(directory, "r");
    fsyncSync(descriptor);
  } catch {
    // Not every platform can fsync a directory (Windows); the rename is still atomic.
  } finally {
    if (descriptor !== undefined) closeSync(descriptor);
  }
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Already renamed into place, or never created.
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
