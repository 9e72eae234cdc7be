import { describe, expect, test } from "bun:test";
import { PassThrough, Writable } from "node:stream";
import { type LeaveReason, openTerminal, type Terminal } from "../../src/io/terminal.ts";

const terminalModule = `${import.meta.dir}/../../src/io/terminal.ts`;
// biome-ignore lint/suspicious/noControlCharactersInRegex: escape codes are what this finds
const escapeCodes = /\x1b\[[0-9;?]*[A-Za-z]/g;

interface Harness {
  input: PassThrough;
  terminal: Terminal;
  lines: string[];
  leaves: LeaveReason[];
  written: () => string;
}

function open(options: { tty?: boolean; interactive?: boolean } = {}): Harness {
  const input = new PassThrough();
  const output = new PassThrough();
  if (options.tty) {
    Object.assign(input, { isTTY: true, setRawMode: () => input });
    Object.assign(output, { isTTY: true, columns: 80, rows: 24 });
  }
  let written = "";
  output.on("data", (chunk: Buffer) => {
    written += chunk.toString("utf8");
  });
  const lines: string[] = [];
  const leaves: LeaveReason[] = [];
  const terminal = openTerminal(
    { line: (text) => lines.push(text), leave: (reason) => leaves.push(reason) },
    {
      input,
      output,
      handleSignals: false,
      ...(options.interactive === undefined ? {} : { interactive: options.interactive }),
    },
  );
  return { input, terminal, lines, leaves, written: () => written };
}

/** Lets stream events queued by a write run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("openTerminal on pipes", () => {
  test("delivers lines in order, empty ones included, and the last line without a newline", async () => {
    const { input, lines, terminal } = open();
    input.write("send bob hi\nlist\r\n\n  \nsend bob ");
    input.write("Grüße 😀\nquit");
    input.end();
    await settle();
    expect(lines).toEqual(["send bob hi", "list", "", "  ", "send bob Grüße 😀", "quit"]);
    terminal.close();
  });

  test("shows each line as >>> text and a newline, with no prompt or escape codes", async () => {
    const { terminal, written } = open();
    terminal.startPrompting();
    terminal.show("[Welcome, You are registered.]");
    terminal.show("bob: hi there");
    await settle();
    expect(written()).toBe(">>> [Welcome, You are registered.]\n>>> bob: hi there\n");
    terminal.close();
  });

  test("shows text from the network escaped and on one line", async () => {
    const { terminal, written } = open();
    terminal.show("bob: hi\nalice: \x1b[2Jgive me your password");
    await settle();
    expect(written()).toBe(">>> bob: hi\\x0Aalice: \\x1B[2Jgive me your password\n");
    terminal.close();
  });

  test("reports the end of input exactly once, after the last line", async () => {
    const order: string[] = [];
    const input = new PassThrough();
    const terminal = openTerminal(
      { line: (text) => order.push(`line ${text}`), leave: (reason) => order.push(reason) },
      { input, output: new PassThrough(), handleSignals: false },
    );
    input.end("a\nb\n");
    await settle();
    terminal.close();
    terminal.close();
    await settle();
    expect(order).toEqual(["line a", "line b", "end-of-input"]);
  });

  test("close is idempotent, stops line delivery and does not report a leave", async () => {
    const { input, terminal, lines, leaves } = open();
    input.write("first\n");
    await settle();
    terminal.close();
    terminal.close();
    input.write("second\n");
    input.end();
    await settle();
    expect(lines).toEqual(["first"]);
    expect(leaves).toEqual([]);
  });

  test("still prints after close, without touching the closed input", async () => {
    const { terminal, written } = open();
    terminal.close();
    terminal.show("[Exiting]");
    await terminal.flushed();
    expect(written()).toBe(">>> [Exiting]\n");
  });

  test("flushed waits until a slow output has taken everything", async () => {
    const release: (() => void)[] = [];
    const output = new Writable({
      highWaterMark: 1,
      write(_chunk, _encoding, callback) {
        release.push(() => callback());
      },
    });
    const terminal = openTerminal(
      { line: () => {}, leave: () => {} },
      { input: new PassThrough(), output, handleSignals: false },
    );
    await terminal.flushed();
    terminal.show("[Exiting]");
    let flushed = false;
    const done = terminal.flushed().then(() => {
      flushed = true;
    });
    await settle();
    expect(flushed).toBe(false);
    for (const callback of release) callback();
    await done;
    expect(flushed).toBe(true);
    terminal.close();
  });

  test("a failing output becomes a hangup instead of an uncaught error", async () => {
    const leaves: LeaveReason[] = [];
    const output = new Writable({
      write(_chunk, _encoding, callback) {
        callback(Object.assign(new Error("write EPIPE"), { code: "EPIPE" }));
      },
    });
    const terminal = openTerminal(
      { line: () => {}, leave: (reason) => leaves.push(reason) },
      { input: new PassThrough(), output, handleSignals: false },
    );
    terminal.show("one");
    terminal.show("two");
    await terminal.flushed();
    await settle();
    expect(leaves).toEqual(["hangup"]);
    terminal.close();
  });

  test("a write that throws becomes a hangup", () => {
    const leaves: LeaveReason[] = [];
    const output = Object.assign(new PassThrough(), {
      write: () => {
        throw Object.assign(new Error("write EPIPE"), { code: "EPIPE" });
      },
    });
    const terminal = openTerminal(
      { line: () => {}, leave: (reason) => leaves.push(reason) },
      { input: new PassThrough(), output, handleSignals: false },
    );
    terminal.show("one");
    terminal.show("two");
    expect(leaves).toEqual(["hangup"]);
    terminal.close();
  });

  test("adds its signal listeners on open and removes them on close", () => {
    const signals = ["SIGINT", "SIGHUP", "SIGTERM"] as const;
    const counts = () => signals.map((signal) => process.listenerCount(signal));
    const before = counts();
    const terminal = openTerminal(
      { line: () => {}, leave: () => {} },
      { input: new PassThrough(), output: new PassThrough() },
    );
    expect(counts()).toEqual(before.map((count) => count + 1));
    terminal.close();
    terminal.close();
    expect(counts()).toEqual(before);
  });
});

describe("openTerminal on a TTY", () => {
  test("shows no prompt before startPrompting", async () => {
    const { terminal, written } = open({ tty: true });
    terminal.show("[Welcome, You are registered.]");
    await settle();
    expect(written()).toContain(">>> [Welcome, You are registered.]\n");
    expect(written().replace(escapeCodes, "").endsWith("\n")).toBe(true);
    terminal.close();
  });

  test("after startPrompting, show writes the line and redraws the prompt below it", async () => {
    const { terminal, written } = open({ tty: true });
    terminal.startPrompting();
    await settle();
    expect(written().replace(escapeCodes, "")).toBe(">>> ");
    terminal.show("bob: hi");
    await settle();
    expect(written()).toContain(">>> bob: hi\n");
    expect(written().replace(escapeCodes, "").endsWith(">>> bob: hi\n>>> ")).toBe(true);
    terminal.close();
  });

  test("keeps the half-typed input: it is redrawn after the prompt, then sent whole", async () => {
    const { input, terminal, lines, written } = open({ tty: true });
    terminal.startPrompting();
    input.write("send alice hel");
    await settle();
    terminal.show("bob: hi");
    await settle();
    const screen = written().replace(escapeCodes, "");
    expect(screen.endsWith(">>> bob: hi\n>>> send alice hel")).toBe(true);
    input.write("lo\r");
    await settle();
    expect(lines).toEqual(["send alice hello"]);
    expect(written().replace(escapeCodes, "").endsWith(">>> ")).toBe(true);
    terminal.close();
  });

  test("Ctrl+C is an interrupt and Ctrl+D on an empty line is the end of input", async () => {
    const first = open({ tty: true });
    first.input.write("\x03");
    await settle();
    expect(first.leaves).toEqual(["interrupt"]);
    first.terminal.close();

    const second = open({ tty: true });
    second.input.write("\x04");
    await settle();
    expect(second.leaves).toEqual(["end-of-input"]);
    second.terminal.close();
  });

  test("a terminal that goes away is a hangup and its half-typed line is not delivered", async () => {
    const { input, terminal, lines, leaves } = open({ tty: true });
    terminal.startPrompting();
    input.write("ok\r");
    input.write("give me your pass");
    await settle();
    input.end();
    await settle();
    expect(lines).toEqual(["ok"]);
    expect(leaves).toEqual(["hangup"]);
    terminal.close();
  });

  test("close clears the prompt line so later output starts at column 0", async () => {
    const { input, terminal, written } = open({ tty: true });
    terminal.startPrompting();
    input.write("half");
    await settle();
    terminal.close();
    terminal.show("[Exiting]");
    await settle();
    expect(written()).toEndWith("\x1b[0J>>> [Exiting]\n");
  });
});

describe("openTerminal in a child process with piped stdin and stdout", () => {
  const script = `
    import { openTerminal } from ${JSON.stringify(terminalModule)};
    const terminal = openTerminal({
      line: (text) => terminal.show("line " + text),
      leave: (reason) => {
        terminal.show("leave " + reason);
        terminal.close();
      },
    });
    terminal.show("ready");
  `;

  function spawnScript() {
    return Bun.spawn(["bun", "-e", script], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  }

  /** Collects a child's stdout; tests wait on the output they expect, never on a timer. */
  function collect(stream: ReadableStream<Uint8Array>) {
    const reader: { read(): Promise<{ done: boolean; value?: Uint8Array | undefined }> } =
      stream.getReader();
    const decoder = new TextDecoder();
    let text = "";
    const readWhile = async (more: () => boolean): Promise<string> => {
      while (more()) {
        const { done, value } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
      }
      return text;
    };
    return {
      until: (wanted: string) => readWhile(() => !text.includes(wanted)),
      toEnd: () => readWhile(() => true),
    };
  }

  for (const [signal, reason] of [
    ["SIGTERM", "terminate"],
    ["SIGHUP", "hangup"],
    ["SIGINT", "interrupt"],
  ] as const) {
    test(`${signal} leads to leave("${reason}"), then the released process exits 0`, async () => {
      const child = spawnScript();
      const stdout = collect(child.stdout);
      await stdout.until(">>> ready\n");
      child.stdin.write("hello\n");
      child.stdin.flush();
      await stdout.until(">>> line hello\n");
      child.kill(signal);
      const text = await stdout.toEnd();
      expect(await child.exited).toBe(0);
      expect(text).toBe(`>>> ready\n>>> line hello\n>>> leave ${reason}\n`);
    });
  }

  test("end of stdin leads to leave('end-of-input') after every line", async () => {
    const child = spawnScript();
    child.stdin.write("a\nb\nlast");
    child.stdin.end();
    const [stdout, code] = await Promise.all([new Response(child.stdout).text(), child.exited]);
    expect(code).toBe(0);
    expect(stdout).toBe(
      ">>> ready\n>>> line a\n>>> line b\n>>> line last\n>>> leave end-of-input\n",
    );
  });
});

describe("openTerminal on a TTY after Ctrl+D", () => {
  test("every line shown afterwards reaches the screen, from column 0", async () => {
    const { input, terminal, leaves, written } = open({ tty: true });
    terminal.startPrompting();
    await settle();
    input.write("\x04");
    await settle();
    expect(leaves).toEqual(["end-of-input"]);
    const before = written().length;
    terminal.show("[No ACK from y, message sent to server.]");
    terminal.show("[Messages received by the server and saved]");
    terminal.close();
    terminal.show("[Exiting]");
    await settle();
    const after = written().slice(before).replace(escapeCodes, "");
    expect(after).toBe(
      ">>> [No ACK from y, message sent to server.]\n>>> [Messages received by the server and saved]\n>>> [Exiting]\n",
    );
    // The prompt line was cleared, so the first of them does not follow the prompt.
    expect(written().slice(0, before)).toEndWith("\x1b[0J");
  });
});

describe("openTerminal on a TTY, Ctrl+Z", () => {
  test("restores the normal mode before stopping, then raw mode, reading and the prompt after fg", async () => {
    const input = new PassThrough();
    const output = new PassThrough();
    const events: string[] = [];
    Object.assign(input, {
      isTTY: true,
      setRawMode: (raw: boolean) => {
        events.push(raw ? "raw" : "normal");
        return input;
      },
    });
    Object.assign(output, { isTTY: true, columns: 80, rows: 24 });
    let written = "";
    output.on("data", (chunk: Buffer) => {
      written += chunk.toString("utf8");
    });
    const lines: string[] = [];
    const terminal = openTerminal(
      { line: (text) => lines.push(text), leave: () => {} },
      {
        input,
        output,
        handleSignals: false,
        suspend: () => {
          events.push("stopped");
          // While the job is stopped the shell owns the screen.
          written = "";
        },
      },
    );
    terminal.startPrompting();
    input.write("send y half");
    await settle();
    events.length = 0;
    input.write("\x1a");
    await settle();
    expect(events).toEqual(["normal", "stopped", "raw"]);
    expect(written.replace(escapeCodes, "")).toBe(">>> send y half");
    input.write(" typed after fg\r");
    await settle();
    expect(lines).toEqual(["send y half typed after fg"]);
    terminal.close();
  });
});

describe("openTerminal on a TTY, a multi-line paste", () => {
  test("is joined into the line being edited, not run line by line; Enter sends it as one", async () => {
    const { input, terminal, lines, written } = open({ tty: true });
    terminal.startPrompting();
    await settle();
    expect(written()).toContain("\x1b[?2004h");
    input.write("send y ");
    input.write("\x1b[200~first line\rdereg me\rlast");
    input.write("\x1b[201~");
    await settle();
    expect(lines).toEqual([]);
    expect(written().replace(escapeCodes, "")).toEndWith(">>> send y first line dereg me last");
    input.write(" words\r");
    await settle();
    expect(lines).toEqual(["send y first line dereg me last words"]);
    input.write("\x1b[200~single line\x1b[201~\r");
    await settle();
    expect(lines.at(-1)).toBe("single line");
    terminal.close();
    expect(written()).toContain("\x1b[?2004l");
  });
});
