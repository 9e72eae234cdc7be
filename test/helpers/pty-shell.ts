import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Program } from "./process-driver.ts";

/** What a terminal shows, without its escape sequences (colours, cursor moves, modes). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: escape sequences are what this removes
const ESCAPES = /\x1b(?:\[[0-9;?]*[A-Za-z]|\][^\x07]*\x07|[=>])/g;

const quote = (word: string): string => `'${word.replaceAll("'", `'\\''`)}'`;

/**
 * An interactive bash in a pseudo-terminal, with job control, as a user's terminal
 * window: type into it, wait for what appears on its screen. Waits are on output with a
 * deadline, never on a timer alone.
 */
export class PtyShell implements AsyncDisposable {
  readonly #process: Bun.Subprocess;
  readonly #terminal: Bun.Terminal;
  readonly #decoder = new TextDecoder();
  #raw = "";
  #waiters = new Set<() => void>();
  /** The shell's own XDG_CONFIG_HOME: identities stay out of the user's ~/.config. */
  readonly #configHome = mkdtempSync(join(tmpdir(), "chatapp-config-"));

  constructor(private readonly program: Program) {
    this.#process = Bun.spawn(["bash", "--norc", "--noprofile", "-i"], {
      cwd: program.cwd,
      env: {
        ...program.env,
        PATH: process.env.PATH,
        PS1: "$ ",
        TERM: "xterm",
        HISTFILE: "",
        XDG_CONFIG_HOME: this.#configHome,
      },
      terminal: {
        cols: 200,
        rows: 50,
        data: (_terminal, data) => {
          this.#raw += this.#decoder.decode(data, { stream: true });
          for (const wake of [...this.#waiters]) wake();
        },
      },
    });
    const terminal = this.#process.terminal;
    if (!terminal) throw new Error("Bun.spawn gave no terminal");
    this.#terminal = terminal;
  }

  /** The screen's text so far, escape sequences removed, line ends as "\n". */
  screen(): string {
    return this.#raw.replace(ESCAPES, "").replaceAll("\r\n", "\n");
  }

  /** Bytes as the keyboard sends them: "\r" for Enter, "\x1a" for ctrl+z, "\x04" for ctrl+d. */
  press(keys: string): void {
    this.#terminal.write(keys);
  }

  /** Runs chatapp with these arguments at the shell's prompt. */
  runChatapp(args: readonly string[]): void {
    this.press(`${[...this.program.command, ...args].map(quote).join(" ")}\r`);
  }

  /** Marks how much of the screen there is now, for waitFor's `after`. */
  mark(): number {
    return this.screen().length;
  }

  /** Waits until the screen (from `after` on) matches; rejects with the screen after `timeoutMs`. */
  waitFor(
    match: string | RegExp,
    options: { after?: number; timeoutMs?: number } = {},
  ): Promise<string> {
    const { after = 0, timeoutMs = 10_000 } = options;
    const found = (): string | undefined => {
      const text = this.screen().slice(after);
      if (typeof match === "string") return text.includes(match) ? text : undefined;
      return match.test(text) ? text : undefined;
    };
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const text = found();
        if (text === undefined) return;
        this.#waiters.delete(check);
        clearTimeout(timer);
        resolve(text);
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`Timed out waiting for ${String(match)}. Screen:\n${this.screen()}`));
      }, timeoutMs);
      this.#waiters.add(check);
      check();
    });
  }

  /** Ends whatever job still runs (a stopped one too), then the shell. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.press("\x03");
    this.press("kill -KILL %% 2>/dev/null; exit\r");
    const exited = await Promise.race([
      this.#process.exited.then(() => true),
      Bun.sleep(5_000).then(() => false),
    ]);
    if (!exited) {
      this.#process.kill("SIGKILL");
      await this.#process.exited;
    }
    this.#terminal.close();
    rmSync(this.#configHome, { recursive: true, force: true });
  }
}
