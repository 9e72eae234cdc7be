import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IdentityError } from "../../src/identity/identity-file.ts";
import { SHOWN_LOG_LIMIT, ShownLog, shownKey } from "../../src/identity/shown-log.ts";

let directory: string;
let path: string;
const opened: ShownLog[] = [];

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), "chatapp-shown-"));
  path = join(directory, "alice.shown");
});

afterEach(() => {
  for (const log of opened.splice(0)) log.close();
  rmSync(directory, { recursive: true, force: true });
});

function open(options: Parameters<typeof ShownLog.open>[1] = {}, at = path): ShownLog {
  const log = ShownLog.open(at, options);
  opened.push(log);
  return log;
}

function dataLines(): string[] {
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((line) => line !== "" && !line.startsWith("#"));
}

describe("ShownLog", () => {
  test("record says whether a message is new; a second record of it says no", () => {
    const log = open();
    expect(log.has("bob", 1)).toBe(false);
    expect(log.record("bob", 1)).toBe(true);
    expect(log.has("bob", 1)).toBe(true);
    expect(log.record("bob", 1)).toBe(false);
    expect(log.has("bob", 2)).toBe(false);
    expect(log.has("carol", 1)).toBe(false);
    expect(log.size).toBe(1);
  });

  test("senders ignore case", () => {
    const log = open();
    log.record("Bob", 5);
    expect(log.has("BOB", 5)).toBe(true);
    expect(log.record("bob", 5)).toBe(false);
  });

  test("a restarted client remembers what it showed, closed or killed", () => {
    const first = open();
    first.record("bob", 1);
    first.record("carol", 2);
    first.close();
    const second = open();
    expect(second.has("bob", 1)).toBe(true);
    expect(second.has("carol", 2)).toBe(true);
    // Not closed, as when the process is killed: each record is already in the file.
    second.record("dave", 3);
    const third = open();
    expect(third.has("dave", 3)).toBe(true);
    expect(third.size).toBe(3);
  });

  test("the file is created 0600, one line per message after a header", () => {
    const log = open();
    log.record("Bob", 1);
    log.record("carol", 42);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readFileSync(path, "utf8")).toBe(
      "# chatapp shown messages: <sender> <ref>, oldest first\nbob 1\ncarol 42\n",
    );
  });

  test("keys are oldest first and match the core's shown-window keys", () => {
    const log = open();
    log.record("Bob", 2);
    log.record("alice", 1);
    expect([...log.keys()]).toEqual(["bob#2", "alice#1"]);
    expect(shownKey("Bob", 2)).toBe("bob#2");
  });

  test("the bound holds: the oldest messages are forgotten first, also across a restart", () => {
    const log = open({ maxEntries: 10 });
    for (let ref = 1; ref <= 25; ref++) {
      log.record("bob", ref);
      expect(log.size).toBeLessThanOrEqual(10);
    }
    expect(log.has("bob", 15)).toBe(false);
    expect(log.has("bob", 16)).toBe(true);
    expect(log.has("bob", 25)).toBe(true);
    const restarted = open({ maxEntries: 10 });
    expect([...restarted.keys()]).toEqual(
      Array.from({ length: 10 }, (_, index) => `bob#${16 + index}`),
    );
  });

  test("the file is rewritten when it passes twice the bound, and never grows beyond", () => {
    const log = open({ maxEntries: 10 });
    for (let ref = 1; ref <= 20; ref++) log.record("bob", ref);
    expect(dataLines().length).toBe(20);
    log.record("bob", 21);
    expect(dataLines()).toEqual(Array.from({ length: 10 }, (_, index) => `bob ${12 + index}`));
    for (let ref = 22; ref <= 100; ref++) {
      log.record("bob", ref);
      expect(dataLines().length).toBeLessThanOrEqual(20);
    }
    expect(open({ maxEntries: 10 }).has("bob", 100)).toBe(true);
  });

  test("a file grown past twice the bound by an older client is compacted when loaded", () => {
    writeFileSync(path, Array.from({ length: 50 }, (_, index) => `bob ${index}\n`).join(""));
    const log = open({ maxEntries: 10 });
    expect(log.size).toBe(10);
    expect(dataLines()).toEqual(Array.from({ length: 10 }, (_, index) => `bob ${40 + index}`));
  });

  test("corrupted lines are skipped and counted; the good ones are kept", () => {
    const lines = [
      "bob 1",
      "garbage",
      "bob",
      "bob -3",
      "bob 01",
      "-bob 4",
      "bob 99999999999999999",
      "carol 2",
      "",
    ];
    writeFileSync(path, lines.join("\n"));
    const log = open();
    expect(log.skippedLines).toBe(6);
    expect([...log.keys()]).toEqual(["bob#1", "carol#2"]);
  });

  test("a last line cut short by a crash is not trusted, and the next record starts a fresh line", () => {
    writeFileSync(path, "bob 1\nbob 2");
    const log = open();
    expect(log.has("bob", 1)).toBe(true);
    expect(log.has("bob", 2)).toBe(false);
    expect(log.skippedLines).toBe(1);
    log.record("bob", 23);
    expect(dataLines()).toEqual(["bob 1", "bob 23"]);
    expect(open().has("bob", 23)).toBe(true);
  });

  test("a write failure is reported once, never thrown, and memory still works", () => {
    writeFileSync(join(directory, "blocker"), "a file where a directory should be");
    const reports: IdentityError[] = [];
    const log = open(
      { onWriteError: (error) => reports.push(error) },
      join(directory, "blocker", "x.shown"),
    );
    expect(log.record("bob", 1)).toBe(true);
    expect(log.record("bob", 2)).toBe(true);
    expect(log.record("bob", 1)).toBe(false);
    expect(reports.length).toBe(1);
    expect(reports[0]).toBeInstanceOf(IdentityError);
    expect(reports[0]?.message).toStartWith(
      `cannot save shown messages to ${join(directory, "blocker", "x.shown")} (`,
    );
    expect(log.has("bob", 2)).toBe(true);
  });

  test("a directory where the file should be is a clear error at start", () => {
    mkdirSync(path);
    expect(() => open()).toThrow(
      `the shown-messages file ${path} is a directory; move it away or choose another file with --identity`,
    );
  });

  test("an invalid sender or ref is a caller's bug, and nothing is written", () => {
    const log = open();
    expect(() => log.record("bob smith", 1)).toThrow(RangeError);
    expect(() => log.record("bob", -1)).toThrow(RangeError);
    expect(() => log.record("bob", 1.5)).toThrow(RangeError);
    expect(log.size).toBe(0);
    expect(dataLines()).toEqual([]);
  });

  test("the default bound is 100,000 and a full log loads back whole", () => {
    expect(SHOWN_LOG_LIMIT).toBe(100_000);
    writeFileSync(
      path,
      Array.from({ length: SHOWN_LOG_LIMIT }, (_, index) => `u${index % 97} ${index}\n`).join(""),
    );
    const log = open();
    expect(log.size).toBe(SHOWN_LOG_LIMIT);
    expect(log.has("u0", 0)).toBe(true);
    expect(log.record("u0", SHOWN_LOG_LIMIT)).toBe(true);
    expect(log.has("u0", 0)).toBe(false);
    expect(log.size).toBe(SHOWN_LOG_LIMIT);
  });
});
