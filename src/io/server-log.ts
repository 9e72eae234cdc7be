import { type ConsolaReporter, createConsola, type LogObject } from "consola/core";
import type { LogLevel } from "../cli/options.ts";
import { sanitiseForTerminal } from "../text/sanitise.ts";

/** Where log lines go: a stream, and whether a person is watching it. */
export interface LogStream {
  readonly write: (text: string) => unknown;
  readonly isTTY?: boolean | undefined;
}

export interface ServerLog {
  error(text: string): void;
  warn(text: string): void;
  info(text: string): void;
  debug(text: string): void;
}

export interface ServerLogOptions {
  readonly level: LogLevel;
  /** Info and debug lines; warnings and errors go to `err`. */
  readonly out?: LogStream;
  readonly err?: LogStream;
}

// consola's numbers: 0 error, 1 warn, 3 info, 4 debug.
const consolaLevels = { quiet: 1, normal: 3, verbose: 4 } as const;
const WARN_LEVEL = 1;

/**
 * The server's log: one line per event. In a file or a pipe each line starts with
 * an ISO-8601 UTC time, as journald and Docker expect; in a terminal, with a short
 * local time. consola's own reporters rewrite text and are not used.
 */
export function createServerLog(options: ServerLogOptions): ServerLog {
  const out = options.out ?? process.stdout;
  const err = options.err ?? process.stderr;
  const reporter: ConsolaReporter = {
    log(entry: LogObject) {
      const stream = entry.level <= WARN_LEVEL ? err : out;
      const text = entry.args.map((arg) => String(arg)).join(" ");
      writeSafely(
        stream,
        `${formatLogLine(entry.date, entry.type, text, stream.isTTY === true)}\n`,
      );
    },
  };
  // An explicit level: `bun test` sets NODE_ENV=test, which would lower consola's default.
  const consola = createConsola({
    level: consolaLevels[options.level],
    throttle: 0,
    reporters: [reporter],
  });
  return {
    error: (text) => consola.error(text),
    warn: (text) => consola.warn(text),
    info: (text) => consola.info(text),
    debug: (text) => consola.debug(text),
  };
}

/** `2026-11-30T15:04:05.123Z INFO text`, or `15:04:05 INFO text` in a terminal. */
export function formatLogLine(date: Date, type: string, text: string, terminal: boolean): string {
  const time = terminal ? shortLocalTime(date) : date.toISOString();
  return `${time} ${type.toUpperCase()} ${sanitiseForTerminal(text)}`;
}

function shortLocalTime(date: Date): string {
  const two = (n: number) => String(n).padStart(2, "0");
  return `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}`;
}

function writeSafely(stream: LogStream, text: string): void {
  try {
    stream.write(text);
  } catch {
    // The reader went away (EPIPE): the server goes on without its log.
  }
}
