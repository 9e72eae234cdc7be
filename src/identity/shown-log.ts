import {
  closeSync,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
  writeSync,
} from "node:fs";
import { dirname } from "node:path";
import { shownKey } from "../core/shown-messages.ts";
import { isValidName, nameKey } from "../protocol/names.ts";
import {
  errorCode,
  IdentityError,
  reason,
  replacePrivateFile,
  unreadable,
} from "./identity-file.ts";

export const SHOWN_LOG_LIMIT = 100_000;

const HEADER = "# chatapp shown messages: <sender> <ref>, oldest first\n";
const LINE_PATTERN = /^(\S+) (0|[1-9][0-9]{0,15})$/;

export { shownKey };

export interface ShownLogOptions {
  /** How many (sender, ref) pairs are remembered; the oldest go first. */
  readonly maxEntries?: number;
  /** Told of the first write failure (and the first after writes worked again); memory still holds every pair. */
  readonly onWriteError?: (error: IdentityError) => void;
}

/**
 * The (sender, ref) pairs this identity has shown, kept in `<stem>.shown` so that a
 * restarted client never shows a message twice. Recording appends one line with one
 * write(2), no fsync: the line survives the process being killed, which is the restart
 * that matters; a power cut may lose the last lines, and at worst shows those messages
 * again. The file is rewritten from memory when it grows past twice the bound.
 */
export class ShownLog {
  readonly #shown = new Set<string>();
  readonly #maxEntries: number;
  readonly #onWriteError: (error: IdentityError) => void;
  #descriptor: number | undefined;
  #linesInFile = 0;
  #compactAtLines: number;
  #failing = false;
  /** Lines of the file that were not a (sender, ref) pair when it was loaded, and were skipped. */
  readonly skippedLines: number;

  private constructor(
    readonly path: string,
    options: ShownLogOptions,
  ) {
    this.#maxEntries = options.maxEntries ?? SHOWN_LOG_LIMIT;
    if (!Number.isSafeInteger(this.#maxEntries) || this.#maxEntries < 1) {
      throw new RangeError(`maxEntries must be a positive integer, not ${this.#maxEntries}`);
    }
    this.#onWriteError = options.onWriteError ?? (() => {});
    this.#compactAtLines = 2 * this.#maxEntries;
    const { skipped, torn } = this.#load();
    this.skippedLines = skipped;
    if (torn || this.#linesInFile > this.#compactAtLines) this.#compact();
    else this.#openForAppend();
  }

  /** Loads `path` (nothing if it does not exist yet) and opens it for appending. */
  static open(path: string, options: ShownLogOptions = {}): ShownLog {
    return new ShownLog(path, options);
  }

  has(sender: string, ref: number): boolean {
    return this.#shown.has(shownKey(sender, ref));
  }

  /** Remembers that the message was shown: true if it was not yet, false if it already was (do not show it). */
  record(sender: string, ref: number): boolean {
    if (!isValidName(sender) || !Number.isSafeInteger(ref) || ref < 0) {
      throw new RangeError(
        `cannot record a shown message from ${JSON.stringify(sender)} with ref ${ref}`,
      );
    }
    const key = shownKey(sender, ref);
    if (this.#shown.has(key)) return false;
    this.#remember(key);
    this.#append(`${nameKey(sender)} ${ref}\n`);
    if (this.#linesInFile > this.#compactAtLines) this.#compact();
    return true;
  }

  get size(): number {
    return this.#shown.size;
  }

  /** Every remembered key (see shownKey), oldest first: what a client core's window starts from. */
  keys(): IterableIterator<string> {
    return this.#shown.values();
  }

  close(): void {
    if (this.#descriptor === undefined) return;
    closeSync(this.#descriptor);
    this.#descriptor = undefined;
  }

  #remember(key: string): void {
    this.#shown.add(key);
    if (this.#shown.size > this.#maxEntries) {
      const oldest = this.#shown.values().next().value;
      if (oldest !== undefined) this.#shown.delete(oldest);
    }
  }

  #load(): { skipped: number; torn: boolean } {
    let text: string;
    try {
      if (statSync(this.path).isDirectory()) {
        throw new IdentityError(
          `the shown-messages file ${this.path} is a directory; move it away or choose another file with --identity`,
          this.path,
        );
      }
      text = readFileSync(this.path, "utf8");
    } catch (error) {
      const code = errorCode(error);
      if (code === "ENOENT" || code === "ENOTDIR") return { skipped: 0, torn: false };
      if (error instanceof IdentityError) throw error;
      throw unreadable(this.path, error, "shown-messages file");
    }
    // A last line without its newline was cut short by a crash ("bob 12" may be "bob 123"): not trusted.
    const torn = text.length > 0 && !text.endsWith("\n");
    const lines = text.split("\n");
    lines.pop();
    let skipped = torn ? 1 : 0;
    for (const line of lines) {
      if (line.startsWith("#")) continue;
      this.#linesInFile++;
      const match = LINE_PATTERN.exec(line);
      const sender = match?.[1];
      const ref = Number(match?.[2]);
      if (sender === undefined || !isValidName(sender) || !Number.isSafeInteger(ref)) {
        skipped++;
        continue;
      }
      this.#remember(shownKey(sender, ref));
    }
    return { skipped, torn };
  }

  #openForAppend(): void {
    try {
      mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
      this.#descriptor = openSync(this.path, "a", 0o600);
      if (fstatSync(this.#descriptor).size === 0) writeSync(this.#descriptor, HEADER);
    } catch (error) {
      this.#failed(error);
    }
  }

  #append(line: string): void {
    if (this.#descriptor === undefined) this.#openForAppend();
    if (this.#descriptor === undefined) return;
    try {
      writeSync(this.#descriptor, line);
      this.#linesInFile++;
      this.#failing = false;
    } catch (error) {
      this.#failed(error);
    }
  }

  /** Rewrites the file with what memory holds; if that fails, the log grows a while longer before the next try. */
  #compact(): void {
    this.close();
    const lines = Array.from(this.#shown, (key) => `${key.replace("#", " ")}\n`);
    try {
      replacePrivateFile(this.path, HEADER + lines.join(""));
      this.#linesInFile = lines.length;
      this.#compactAtLines = 2 * this.#maxEntries;
    } catch (error) {
      this.#failed(error);
      this.#compactAtLines = this.#linesInFile + this.#maxEntries;
    }
    this.#openForAppend();
  }

  #failed(error: unknown): void {
    if (this.#failing) return;
    this.#failing = true;
    this.#onWriteError(
      new IdentityError(
        `cannot save shown messages to ${this.path} (${reason(error)}); they are remembered until chatapp exits, check that the directory is writable`,
        this.path,
        { cause: error },
      ),
    );
  }
}
