import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeBase64url } from "../../src/crypto/base64url.ts";
import { companionPaths, IdentityError } from "../../src/identity/identity-file.ts";
import { KnownKeys, loadKnownKeys } from "../../src/identity/known-keys.ts";

let directory: string;
let paths: ReturnType<typeof companionPaths>;

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), "chatapp-known-keys-"));
  paths = companionPaths(join(directory, "alice.identity"));
});

afterEach(() => {
  rmSync(directory, { recursive: true, force: true });
});

const keyOf = (fill: number): string => encodeBase64url(new Uint8Array(32).fill(fill));
const firstDay = new Date(Date.UTC(2030, 0, 1));
const secondDay = new Date(Date.UTC(2030, 0, 2));

function peers(): KnownKeys {
  return loadKnownKeys(paths).peers;
}

describe("KnownKeys", () => {
  test("with no files yet, every name is new and nothing is written", () => {
    const books = loadKnownKeys(paths);
    expect(books.peers.check("bob", keyOf(1))).toBe("new");
    expect(books.servers.check("127.0.0.1:5000", keyOf(1))).toBe("new");
    expect(books.peers.size).toBe(0);
    expect(() => statSync(paths.knownKeys)).toThrow();
  });

  test("a trusted key is known, also after a restart, in a 0600 file", () => {
    peers().trust("bob", keyOf(1), firstDay);
    const reloaded = peers();
    expect(reloaded.check("bob", keyOf(1))).toBe("known");
    expect(reloaded.get("bob")).toEqual({ key: keyOf(1), firstSeen: "2030-01-01T00:00:00.000Z" });
    expect(statSync(paths.knownKeys).mode & 0o777).toBe(0o600);
    expect(readFileSync(paths.knownKeys, "utf8")).toBe(
      `# chatapp known-keys file: <name> <public key, base64url> <first seen, UTC>\nbob ${keyOf(1)} 2030-01-01T00:00:00.000Z\n`,
    );
  });

  test("a different key for a known name is changed until trusted, and then replaces the old one", () => {
    const book = peers();
    book.trust("bob", keyOf(1), firstDay);
    book.trust("carol", keyOf(3), firstDay);
    expect(book.check("bob", keyOf(2))).toBe("changed");
    expect(peers().check("bob", keyOf(2))).toBe("changed");
    expect(book.get("bob")?.key).toBe(keyOf(1));

    book.trust("bob", keyOf(2), secondDay);
    expect(book.check("bob", keyOf(2))).toBe("known");
    expect(book.check("bob", keyOf(1))).toBe("changed");
    const reloaded = peers();
    expect(reloaded.get("bob")).toEqual({ key: keyOf(2), firstSeen: "2030-01-02T00:00:00.000Z" });
    expect(reloaded.check("carol", keyOf(3))).toBe("known");
    expect(reloaded.size).toBe(2);
  });

  test("names ignore case", () => {
    peers().trust("Bob", keyOf(1), firstDay);
    const reloaded = peers();
    expect(reloaded.check("BOB", keyOf(1))).toBe("known");
    expect(reloaded.check("bob", keyOf(2))).toBe("changed");
    expect([...reloaded.entries()].map(([label]) => label)).toEqual(["bob"]);
  });

  test("trusting the key already known keeps its first-seen time and the file as it was", () => {
    const book = peers();
    book.trust("bob", keyOf(1), firstDay);
    const before = readFileSync(paths.knownKeys, "utf8");
    book.trust("BOB", keyOf(1), secondDay);
    expect(book.get("bob")?.firstSeen).toBe("2030-01-01T00:00:00.000Z");
    expect(readFileSync(paths.knownKeys, "utf8")).toBe(before);
  });

  test("learn trusts the names not seen before, in one append, and leaves known ones as they were", () => {
    const book = peers();
    book.learn([{ label: "bob", key: keyOf(1) }], firstDay);
    const header = readFileSync(paths.knownKeys, "utf8");
    book.learn(
      [
        { label: "Carol", key: keyOf(3) },
        { label: "bob", key: keyOf(2) },
        { label: "dave", key: keyOf(4) },
      ],
      secondDay,
    );
    expect(book.check("bob", keyOf(2))).toBe("changed");
    expect(readFileSync(paths.knownKeys, "utf8")).toBe(
      `${header}carol ${keyOf(3)} 2030-01-02T00:00:00.000Z\ndave ${keyOf(4)} 2030-01-02T00:00:00.000Z\n`,
    );
    expect(statSync(paths.knownKeys).mode & 0o777).toBe(0o600);
    const reloaded = peers();
    expect([...reloaded.entries()].map(([label, { key }]) => [label, key])).toEqual([
      ["bob", keyOf(1)],
      ["carol", keyOf(3)],
      ["dave", keyOf(4)],
    ]);
  });

  test("a last line cut short by a crash is not trusted, and the next learn rewrites the file whole", () => {
    peers().learn([{ label: "bob", key: keyOf(1) }], firstDay);
    writeFileSync(
      paths.knownKeys,
      `${readFileSync(paths.knownKeys, "utf8")}carol ${keyOf(3).slice(0, 20)}`,
    );
    const book = peers();
    expect(book.check("carol", keyOf(3))).toBe("new");
    book.learn([{ label: "dave", key: keyOf(4) }], secondDay);
    const reloaded = peers();
    expect(reloaded.check("bob", keyOf(1))).toBe("known");
    expect(reloaded.check("dave", keyOf(4))).toBe("known");
    expect(readFileSync(paths.knownKeys, "utf8")).not.toContain(keyOf(3).slice(0, 20));
  });

  test("server keys are pinned per address in their own file", () => {
    const books = loadKnownKeys(paths);
    books.servers.trust("127.0.0.1:5000", keyOf(9), firstDay);
    books.servers.trust("[::1]:5000", keyOf(8), firstDay);
    const reloaded = loadKnownKeys(paths);
    expect(reloaded.servers.check("127.0.0.1:5000", keyOf(9))).toBe("known");
    expect(reloaded.servers.check("127.0.0.1:5000", keyOf(8))).toBe("changed");
    expect(reloaded.servers.check("127.0.0.1:5001", keyOf(9))).toBe("new");
    expect(reloaded.servers.check("[::1]:5000", keyOf(8))).toBe("known");
    expect(reloaded.peers.size).toBe(0);
    expect(readFileSync(paths.servers, "utf8")).toStartWith("# chatapp servers file: <address> ");
  });

  test("comments and blank lines are skipped; a damaged line is an error naming the line", () => {
    writeFileSync(paths.knownKeys, `# hand-edited\n\nbob ${keyOf(1)} 2030-01-01T00:00:00.000Z\n`, {
      mode: 0o600,
    });
    expect(peers().check("bob", keyOf(1))).toBe("known");
    const damaged = [
      `bob ${keyOf(1)}`,
      `bob ${keyOf(1).slice(1)} 2030-01-01T00:00:00.000Z`,
      `bob ${keyOf(1)} not-a-date`,
      `bob ${keyOf(1)} 2030-01-01T00:00:00.000Z extra`,
    ];
    for (const line of damaged) {
      writeFileSync(paths.knownKeys, `# header\n${line}\n`, { mode: 0o600 });
      let error: unknown;
      try {
        peers();
      } catch (thrown) {
        error = thrown;
      }
      expect(error).toBeInstanceOf(IdentityError);
      expect((error as IdentityError).message).toBe(
        `the known-keys file ${paths.knownKeys} is corrupted at line 2 (expected "<name> <key> <first seen>"); fix that line, or delete it to trust the next key seen`,
      );
    }
  });

  test("a known-keys file others may read or write is refused", () => {
    writeFileSync(paths.knownKeys, "", { mode: 0o600 });
    chmodSync(paths.knownKeys, 0o664);
    expect(() => peers()).toThrow(
      `permissions 0664 for ${paths.knownKeys} are too open; chmod 600 ${paths.knownKeys}`,
    );
  });

  test("a key that cannot be saved is still trusted for this run, and the error says so", () => {
    writeFileSync(join(directory, "blocker"), "a file where a directory should be");
    const book = KnownKeys.load(
      join(directory, "blocker", "x.known-keys"),
      "known-keys file",
      "name",
    );
    let error: unknown;
    try {
      book.trust("bob", keyOf(1), firstDay);
    } catch (thrown) {
      error = thrown;
    }
    expect(error).toBeInstanceOf(IdentityError);
    expect((error as IdentityError).message).toStartWith(
      `cannot save the known-keys file ${join(directory, "blocker", "x.known-keys")} (`,
    );
    expect(book.check("bob", keyOf(1))).toBe("known");
  });

  test("a label with spaces or a key that is not 43 base64url characters is a caller's bug", () => {
    const book = peers();
    expect(() => book.trust("bob smith", keyOf(1))).toThrow(RangeError);
    expect(() => book.trust("", keyOf(1))).toThrow(RangeError);
    expect(() => book.trust("bob", "short")).toThrow(RangeError);
    expect(book.size).toBe(0);
  });
});
