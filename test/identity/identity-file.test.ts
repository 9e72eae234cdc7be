import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeBase64url } from "../../src/crypto/base64url.ts";
import { nodeCryptoPort as port } from "../../src/crypto/node-crypto-port.ts";
import {
  companionPaths,
  IdentityError,
  identityPath,
  loadIdentity,
  loadOrCreateIdentity,
} from "../../src/identity/identity-file.ts";

let directory: string;

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), "chatapp-identity-"));
});

afterEach(() => {
  rmSync(directory, { recursive: true, force: true });
});

function thrownBy(action: () => unknown): IdentityError {
  try {
    action();
  } catch (error) {
    if (error instanceof IdentityError) return error;
    throw error;
  }
  throw new Error("expected an IdentityError, nothing was thrown");
}

function modeOf(path: string): number {
  return statSync(path).mode & 0o777;
}

describe("identityPath", () => {
  test("--identity wins, resolved against the working directory", () => {
    expect(identityPath({ identityOption: "/keys/me.identity", name: "Alice", env: {} })).toBe(
      "/keys/me.identity",
    );
    expect(identityPath({ identityOption: "me.identity", name: "Alice", env: {} })).toBe(
      join(process.cwd(), "me.identity"),
    );
  });

  test("else $XDG_CONFIG_HOME/chatapp/<name lower-cased>.identity", () => {
    const env = { XDG_CONFIG_HOME: "/xdg" };
    expect(identityPath({ name: "Alice", env, homeDirectory: "/home/a" })).toBe(
      "/xdg/chatapp/alice.identity",
    );
  });

  test("else ~/.config/chatapp/<name lower-cased>.identity, also when XDG_CONFIG_HOME is empty or relative", () => {
    const expected = "/home/a/.config/chatapp/alice.identity";
    for (const env of [{}, { XDG_CONFIG_HOME: "" }, { XDG_CONFIG_HOME: "relative/dir" }]) {
      expect(identityPath({ name: "ALICE", env, homeDirectory: "/home/a" })).toBe(expected);
    }
  });
});

describe("companionPaths", () => {
  test("files beside an identity share its stem", () => {
    expect(companionPaths("/c/alice.identity")).toEqual({
      knownKeys: "/c/alice.known-keys",
      servers: "/c/alice.servers",
      shown: "/c/alice.shown",
    });
  });

  test("another extension stays in the stem, so no companion is the identity file", () => {
    expect(companionPaths("/c/me.key").knownKeys).toBe("/c/me.key.known-keys");
    expect(companionPaths("/c/x.shown").shown).toBe("/c/x.shown.shown");
  });
});

describe("loadOrCreateIdentity", () => {
  test("creates the directory 0700 and the file 0600, holding two working key pairs", () => {
    const path = join(directory, "config", "chatapp", "alice.identity");
    const { identity, created } = loadOrCreateIdentity(
      path,
      () => new Date(Date.UTC(2030, 0, 2, 3, 4, 5)),
    );
    expect(created).toBe(true);
    expect(modeOf(join(directory, "config"))).toBe(0o700);
    expect(modeOf(join(directory, "config", "chatapp"))).toBe(0o700);
    expect(modeOf(path)).toBe(0o600);
    expect(identity.createdAt).toBe("2030-01-02T03:04:05.000Z");
    const signature = port.sign(identity.signing.privateKey, new Uint8Array([1, 2, 3]));
    expect(port.verify(identity.signing.publicKey, new Uint8Array([1, 2, 3]), signature)).toBe(
      true,
    );
    expect(
      port.agree(identity.agreement.privateKey, port.generateKeyPair("agreement").publicKey),
    ).toBeDefined();
  });

  test("the file is JSON with format, version, createdAt and raw keys in base64url", () => {
    const path = join(directory, "alice.identity");
    const { identity } = loadOrCreateIdentity(path);
    const json = JSON.parse(readFileSync(path, "utf8"));
    expect(Object.keys(json)).toEqual(["format", "version", "createdAt", "signing", "agreement"]);
    expect(json.format).toBe("chatapp identity");
    expect(json.version).toBe(1);
    expect(json.signing.algorithm).toBe("Ed25519");
    expect(json.agreement.algorithm).toBe("X25519");
    for (const pair of [json.signing, json.agreement]) {
      expect(pair.publicKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(pair.privateKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
    }
    expect(decodeBase64url(json.signing.publicKey)).toEqual(identity.signing.publicKey);
    expect(decodeBase64url(json.agreement.publicKey)).toEqual(identity.agreement.publicKey);
  });

  test("the private seed is a JWK 'd': WebCrypto imports it as the same key", async () => {
    const path = join(directory, "alice.identity");
    loadOrCreateIdentity(path);
    const json = JSON.parse(readFileSync(path, "utf8"));
    const jwk = {
      kty: "OKP",
      crv: "Ed25519",
      d: json.signing.privateKey,
      x: json.signing.publicKey,
    };
    const key = await crypto.subtle.importKey("jwk", jwk, "Ed25519", false, ["sign"]);
    const message = new Uint8Array([9]);
    const signature = new Uint8Array(await crypto.subtle.sign("Ed25519", key, message));
    expect(
      port.verify(decodeBase64url(json.signing.publicKey) as Uint8Array, message, signature),
    ).toBe(true);
  });

  test("a second run loads the same identity and leaves the file untouched", () => {
    const path = join(directory, "alice.identity");
    const first = loadOrCreateIdentity(path);
    const bytesBefore = readFileSync(path, "utf8");
    const second = loadOrCreateIdentity(path);
    expect(second.created).toBe(false);
    expect(second.identity.signing.publicKey).toEqual(first.identity.signing.publicKey);
    expect(second.identity.agreement.publicKey).toEqual(first.identity.agreement.publicKey);
    expect(second.identity.createdAt).toBe(first.identity.createdAt);
    expect(readFileSync(path, "utf8")).toBe(bytesBefore);
    const message = new Uint8Array([7]);
    const signature = port.sign(second.identity.signing.privateKey, message);
    expect(port.verify(first.identity.signing.publicKey, message, signature)).toBe(true);
  });

  test("no temporary file is left beside the identity", () => {
    loadOrCreateIdentity(join(directory, "alice.identity"));
    expect(readdirSync(directory)).toEqual(["alice.identity"]);
  });

  test("processes racing to create one identity all end up with the same one", async () => {
    const path = join(directory, "raced", "alice.identity");
    const script = join(import.meta.dir, "create-identity-child.ts");
    const outputs = await Promise.all(
      Array.from({ length: 4 }, async () => {
        const child = Bun.spawn([process.execPath, script, path], {
          stdout: "pipe",
          stderr: "inherit",
        });
        const output = await new Response(child.stdout).text();
        expect(await child.exited).toBe(0);
        return output.trim().split(" ");
      }),
    );
    const written = JSON.parse(readFileSync(path, "utf8")).signing.publicKey;
    expect(outputs.map(([key]) => key)).toEqual([written, written, written, written]);
    expect(outputs.filter(([, created]) => created === "true").length).toBe(1);
    expect(readdirSync(join(directory, "raced"))).toEqual(["alice.identity"]);
  });

  test("two identities in one directory are different keys", () => {
    const alice = loadOrCreateIdentity(join(directory, "alice.identity")).identity;
    const bob = loadOrCreateIdentity(join(directory, "bob.identity")).identity;
    expect(alice.signing.publicKey).not.toEqual(bob.signing.publicKey);
    expect(alice.agreement.publicKey).not.toEqual(bob.agreement.publicKey);
  });

  test("permissions looser than 0600 are refused as ssh does", () => {
    const path = join(directory, "alice.identity");
    loadOrCreateIdentity(path);
    chmodSync(path, 0o644);
    const error = thrownBy(() => loadOrCreateIdentity(path));
    expect(error.message).toBe(`permissions 0644 for ${path} are too open; chmod 600 ${path}`);
    expect(error.path).toBe(path);
    chmodSync(path, 0o640);
    expect(thrownBy(() => loadIdentity(path)).message).toStartWith("permissions 0640 for ");
    chmodSync(path, 0o400);
    expect(loadIdentity(path).signing.publicKey.length).toBe(32);
  });

  test("a directory where the file should be is refused, not replaced", () => {
    const path = join(directory, "alice.identity");
    mkdirSync(path);
    const error = thrownBy(() => loadOrCreateIdentity(path));
    expect(error.message).toBe(
      `the identity file ${path} is a directory; move it away or choose another file with --identity`,
    );
    expect(statSync(path).isDirectory()).toBe(true);
  });

  test("a file where the directory should be is a clear error", () => {
    writeFileSync(join(directory, "config"), "not a directory");
    const path = join(directory, "config", "chatapp", "alice.identity");
    const error = thrownBy(() => loadOrCreateIdentity(path));
    expect(error.message).toBe(
      `cannot create the directory ${join(directory, "config", "chatapp")} (ENOTDIR: not a directory); create it yourself or choose another file with --identity`,
    );
  });

  test("a file that is not JSON is reported as corrupted, with the way out", () => {
    const path = join(directory, "alice.identity");
    writeFileSync(path, "{ not json", { mode: 0o600 });
    const error = thrownBy(() => loadOrCreateIdentity(path));
    expect(error.message).toBe(
      `the identity file ${path} is corrupted (it is not JSON); restore it from a backup, or move it away to create a new identity (the server keeps the name for the old key)`,
    );
    expect(readFileSync(path, "utf8")).toBe("{ not json");
  });

  test("damaged fields are reported as corrupted, saying which", () => {
    const path = join(directory, "alice.identity");
    loadOrCreateIdentity(path);
    const good = JSON.parse(readFileSync(path, "utf8"));
    const other = port.generateKeyPair("signing");
    const damaged: [unknown, string][] = [
      [[], `it is not a "chatapp identity" file`],
      [{ ...good, format: "something else" }, `it is not a "chatapp identity" file`],
      [{ ...good, createdAt: "yesterday" }, "its createdAt is not a date"],
      [{ ...good, signing: undefined }, "its signing key is not an Ed25519 key"],
      [
        { ...good, agreement: { ...good.agreement, algorithm: "X448" } },
        "its agreement key is not an X25519 key",
      ],
      [
        { ...good, signing: { ...good.signing, privateKey: "short" } },
        "its signing private key is not 32 bytes of base64url",
      ],
      [
        {
          ...good,
          signing: {
            ...good.signing,
            publicKey: Buffer.from(other.publicKey).toString("base64url"),
          },
        },
        "its signing public key does not match its private key",
      ],
    ];
    for (const [json, detail] of damaged) {
      writeFileSync(path, JSON.stringify(json), { mode: 0o600 });
      expect(thrownBy(() => loadIdentity(path)).message).toStartWith(
        `the identity file ${path} is corrupted (${detail}); `,
      );
    }
  });

  test("a version this chatapp does not know is refused as such, not as corruption", () => {
    const path = join(directory, "alice.identity");
    loadOrCreateIdentity(path);
    const json = JSON.parse(readFileSync(path, "utf8"));
    writeFileSync(path, JSON.stringify({ ...json, version: 2 }), { mode: 0o600 });
    expect(thrownBy(() => loadIdentity(path)).message).toBe(
      `the identity file ${path} has version 2, which this chatapp cannot read; use the chatapp that wrote it, or a newer one`,
    );
  });

  test("a file that cannot be read is a clear error, and nothing is created in its place", () => {
    const path = join(directory, "alice.identity");
    symlinkSync(path, path);
    const error = thrownBy(() => loadOrCreateIdentity(path));
    expect(error.message).toBe(
      `cannot read the identity file ${path} (ELOOP: too many symbolic links encountered); check the file and its permissions, or choose another file with --identity`,
    );
  });

  test("IdentityError is an Error with its own name", () => {
    const error = new IdentityError("x", "/p");
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe("IdentityError");
  });
});
