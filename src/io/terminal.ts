import type { EventEmitter } from "node:events";
import * as readline from "node:readline";
import { sanitiseForTerminal } from "../text/sanitise.ts";
import { PipeLines } from "./pipe-lines.ts";

export const prompt = ">>> ";

const BRACKETED_PASTE_ON = "\x1b[?2004h";
const BRACKETED_PASTE_OFF = "\x1b[?2004l";
const PASTE_START = "\x1b[200~";
const PASTE_END = "\x1b[201~";

export type LeaveReason = "interrupt" | "hangup" | "terminate" | "end-of-input";

export interface TerminalEvents {
  /** A whole command line the user entered, empty ones included. */
  line(text: string): void;
  /** The user or the system ended the session; the caller decides when to exit. Called at most once. */
  leave(reason: LeaveReason): void;
}

export interface Terminal {
  /**
   * Prints `>>> ` + text as one line (control characters in text are shown escaped).
   * On a TTY the prompt and the half-typed input are redrawn below it.
   */
  show(text: string): void;
  /** From now on show the `>>> ` prompt (on a TTY only). */
  startPrompting(): void;
  /** Stops reading input and releases the terminal. Idempotent. */
  close(): void;
  /** Resolves once everything shown so far has been handed to the output, or the output failed. */
  flushed(): Promise<void>;
}

export interface TerminalIo {
  input: NodeJS.ReadableStream & { isTTY?: boolean };
  output: NodeJS.WritableStream & { isTTY?: boolean };
  /** Line editing with a prompt; by default only when both input and output are TTYs. */
  interactive?: boolean;
  /** Listen for SIGINT, SIGHUP, SIGTERM and SIGCONT on the process; by default true. */
  handleSignals?: boolean;
  /**
   * Ctrl+Z on a TTY: stops the process as a shell's job and returns once it is continued
   * (`fg`). By default sends SIGTSTP to the process itself.
   */
  suspend?: () => void;
}

const signalReasons = [
  ["SIGINT", "interrupt"],
  ["SIGHUP", "hangup"],
  ["SIGTERM", "terminate"],
] as const satisfies readonly (readonly [NodeJS.Signals, LeaveReason])[];

/**
 * Reads command lines and prints notices. Once the session has ended (leave fired
 * or close called) no further line is delivered.
 */
export function openTerminal(
  events: TerminalEvents,
  io: TerminalIo = { input: process.stdin, output: process.stdout },
): Terminal {
  const { input, output } = io;
  const interactive = io.interactive ?? (input.isTTY === true && output.isTTY === true);
  let prompting = false;
  let closed = false;
  let left = false;
  let inputEnded = false;
  let outputFailed = false;
  /** Ctrl+D closes readline; the client still prints the outcomes of what is outstanding. */
  let readlineClosed = false;

  const leave = (reason: LeaveReason): void => {
    if (left || closed) return;
    left = true;
    events.leave(reason);
  };

  // Bun's stdout calls a write's callback at once even when the data is still queued for
  // a full pipe; only `drain` says it has gone out, so flushed() waits for that.
  let awaitingDrain = false;
  let flushWaiters: (() => void)[] = [];
  const settleFlushed = (): void => {
    awaitingDrain = false;
    const waiters = flushWaiters;
    flushWaiters = [];
    for (const resolve of waiters) resolve();
  };
  output.on("drain", settleFlushed);
  output.on("close", settleFlushed);
  const write = (text: string): void => {
    if (!output.write(text)) awaitingDrain = true;
  };

  /** Runs terminal output; a write that throws (EPIPE, EIO) means the user is gone. */
  const guard = (draw: () => void): void => {
    if (outputFailed) return;
    try {
      draw();
    } catch {
      outputFailed = true;
      settleFlushed();
      leave("hangup");
    }
  };

  // Registered before readline's own listeners so the flag is set when readline,
  // handling the same `end`, flushes the half-typed text of a dying terminal as a line.
  input.on("end", () => {
    inputEnded = true;
  });
  // These stay attached after close: a late EIO or EPIPE must not become an uncaught error.
  input.on("error", () => {
    inputEnded = true;
    leave("hangup");
  });
  output.on("error", () => {
    outputFailed = true;
    settleFlushed();
    leave("hangup");
  });

  const rl = interactive
    ? readline.createInterface({
        input,
        output,
        terminal: true,
        prompt: "",
        removeHistoryDuplicates: true,
      })
    : undefined;
  const lines: EventEmitter & { close(): void } = rl ?? new PipeLines(input);

  /** Moves to the start of the prompt line and clears it and any wrapped input below. */
  const clearPromptArea = (): void => {
    if (!rl) return;
    const { rows } = rl.getCursorPos();
    readline.cursorTo(output, 0);
    if (rows > 0) readline.moveCursor(output, 0, -rows);
    readline.clearScreenDown(output);
  };

  // Bracketed paste: the terminal marks pasted text, so the lines of a multi-line paste
  // are not run one by one as commands. They are joined into the line being edited, and
  // Enter sends them as one.
  let pasting = false;
  const pasted: string[] = [];
  const onKeypress = (_text: string | undefined, key: { sequence?: string } | undefined): void => {
    if (!rl) return;
    if (key?.sequence === PASTE_START) {
      pasting = true;
      return;
    }
    if (key?.sequence !== PASTE_END) return;
    pasting = false;
    if (pasted.length === 0) return;
    const joined = [...pasted.splice(0), rl.line].join(" ");
    const editable = rl as unknown as { line: string; cursor: number; prevRows: number };
    editable.line = joined;
    editable.cursor = joined.length;
    guard(() => {
      clearPromptArea();
      editable.prevRows = 0;
      rl.prompt(true);
    });
  };
  if (rl) input.on("keypress", onKeypress);

  lines.on("line", (text: string) => {
    if (closed || left) return;
    // On a TTY a line ends with Enter; one that comes with the end of input is the
    // half-typed text of a terminal that went away, never meant to be sent.
    if (interactive && inputEnded) return;
    if (pasting) {
      pasted.push(text);
      return;
    }
    events.line(text);
    if (rl && prompting && !closed && !left) guard(() => rl.prompt());
  });
  lines.on("close", () => {
    if (rl && !readlineClosed) {
      readlineClosed = true;
      // The cursor is still after the prompt; what is printed from now on starts below it.
      if (!closed && prompting) guard(() => write(BRACKETED_PASTE_OFF));
      if (!closed) guard(clearPromptArea);
    }
    // A TTY whose input ended (rather than Ctrl+D, which closes readline directly) is gone.
    leave(interactive && inputEnded ? "hangup" : "end-of-input");
  });
  rl?.on("SIGINT", () => leave("interrupt"));

  const setRawMode = (raw: boolean): void => {
    const tty = input as { setRawMode?: (mode: boolean) => unknown };
    tty.setRawMode?.(raw);
  };
  const redrawPrompt = (): void => {
    if (!rl || closed || left || readlineClosed || !prompting) return;
    (rl as unknown as { prevRows: number }).prevRows = 0;
    rl.prompt(true);
  };
  // Ctrl+Z. readline's own handling leaves the input paused after `fg` (Bun 1.4.5): nothing
  // is echoed or run until a datagram wakes it. The shell saves the terminal's mode when a
  // job stops and restores it on `fg`, so it must be the user's normal mode when we stop.
  rl?.on("SIGTSTP", () => {
    guard(() => {
      setRawMode(false);
      (io.suspend ?? (() => process.kill(process.pid, "SIGTSTP")))();
      if (closed || readlineClosed) return;
      setRawMode(true);
      input.resume();
      redrawPrompt();
    });
  });
  // Stopped from outside (kill -STOP), the terminal kept its mode; the screen may not have.
  const onContinue = (): void => guard(redrawPrompt);
  // Seen when the terminal is gone: setRawMode fails with EIO.
  rl?.on("error", () => leave("hangup"));

  const signalHandlers = signalReasons.map(([signal, reason]) => {
    const handler = (): void => leave(reason);
    return [signal, handler] as const;
  });
  if (io.handleSignals ?? true) {
    for (const [signal, handler] of signalHandlers) process.on(signal, handler);
    process.on("SIGCONT", onContinue);
  }

  return {
    show(text) {
      const line = `${prompt}${sanitiseForTerminal(text)}\n`;
      if (!rl || closed || readlineClosed) {
        guard(() => write(line));
        return;
      }
      guard(() => {
        clearPromptArea();
        write(line);
        if (!prompting && rl.line === "") return;
        // The redraw moves up by readline's own row count first; after a paste that count
        // is stale (Bun 1.4.5), and here the cursor already is where the prompt belongs.
        // readline's clearLine() resets it the same way after its own newline.
        (rl as unknown as { prevRows: number }).prevRows = 0;
        rl.prompt(true);
      });
    },

    startPrompting() {
      if (!rl || closed || prompting) return;
      prompting = true;
      rl.setPrompt(prompt);
      guard(() => {
        write(BRACKETED_PASTE_ON);
        rl.prompt(true);
      });
    },

    close() {
      if (closed) return;
      closed = true;
      for (const [signal, handler] of signalHandlers) process.off(signal, handler);
      process.off("SIGCONT", onContinue);
      input.off("keypress", onKeypress);
      if (prompting && !readlineClosed) guard(() => write(BRACKETED_PASTE_OFF));
      // Leave the screen as if the prompt had never been there, so later output starts at column 0.
      if (interactive) guard(clearPromptArea);
      try {
        lines.close();
      } catch {
        // setRawMode on a terminal that is gone throws EIO; nothing is left to release.
      }
    },

    flushed() {
      return new Promise<void>((resolve) => {
        if (outputFailed || !awaitingDrain) {
          resolve();
          return;
        }
        flushWaiters.push(resolve);
      });
    },
  };
}
