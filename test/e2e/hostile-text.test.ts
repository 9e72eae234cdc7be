/**
 * Hostile text from a peer reaches the recipient's terminal visibly escaped, on one
 * line, through every path a message takes: direct, channel, and stored (delivered at
 * `reg`, both direct and channel). SPEC §7: "no control characters or terminal escape
 * sequences from a peer reach the terminal".
 *
 * Two senders: x, a real client, types the texts that can be typed (everything but a
 * carriage return or a newline, which end the line at its stdin); mallory, a
 * registered protocol-speaking peer (test/helpers/raw-peer.ts), sends every text
 * byte for byte, carriage returns, newlines and lone surrogates included (a direct
 * message is sealed as UTF-8, which turns a lone surrogate into U+FFFD). Mallory's
 * chats come from the address y's table holds for it, so y accepts them as it would
 * any peer's.
 *
 * The expected screen text is written out by hand (`\x1B`, `\u{202E}`, as PROTOCOL.md
 * describes), not computed by the program's own sanitiser.
 */
import { afterAll, describe, expect } from "bun:test";
import { notices } from "../../src/text/notices.ts";
import {
  type ChatProcess,
  ChatSession,
  escapeRegExp,
  killAll,
  LOOPBACK,
  programs,
  TIMESTAMP,
  testsFor,
  waitForTable,
} from "../helpers/process-driver.ts";
import { type Answer, RawPeer } from "../helpers/raw-peer.ts";

afterAll(killAll);

interface Hostile {
  /** What the peer sends. */
  readonly text: string;
  /** What the recipient must show for it, escaped. */
  readonly shown: string;
  /** How a stored or sealed copy shows, when UTF-8 changed it (it has no lone surrogates). */
  readonly shownStored?: string;
  /** Whether a user can type it at the prompt: a CR or LF ends the line there. */
  readonly typeable: boolean;
}

const HOSTILE: readonly Hostile[] = [
  {
    text: "clear \u001b[2J\u001b[H done",
    shown: String.raw`clear \x1B[2J\x1B[H done`,
    typeable: true,
  },
  {
    text: "link \u001b]8;;https://evil.example/\u001b\\click me\u001b]8;;\u001b\\ end",
    shown: String.raw`link \x1B]8;;https://evil.example/\x1B\click me\x1B]8;;\x1B\ end`,
    typeable: true,
  },
  {
    text: "clip \u001b]52;c;cm0gLXJmIH4K\u0007 end",
    shown: String.raw`clip \x1B]52;c;cm0gLXJmIH4K\x07 end`,
    typeable: true,
  },
  {
    text: "c1 \u009b31mred\u009b0m end",
    shown: String.raw`c1 \x9B31mred\x9B0m end`,
    typeable: true,
  },
  { text: "bidi \u202egnp.exe end", shown: String.raw`bidi \u{202E}gnp.exe end`, typeable: true },
  {
    text: "isolate \u2066x\u2069 \u200fend",
    shown: String.raw`isolate \u{2066}x\u{2069} \u{200F}end`,
    typeable: true,
  },
  { text: "nul a\u0000b end", shown: String.raw`nul a\x00b end`, typeable: true },
  {
    text: "erase abc\b\b\u007f\u001b[1K end",
    shown: String.raw`erase abc\x08\x08\x7F\x1B[1K end`,
    typeable: true,
  },
  { text: "tab a\tb end", shown: String.raw`tab a\x09b end`, typeable: true },
  { text: "nel ok\u0085>>> x: forged", shown: String.raw`nel ok\x85>>> x: forged`, typeable: true },
  // Typed, these end the line at the sender's stdin (see the last test); sent raw here.
  {
    text: "separator ok\u2028>>> x: forged",
    shown: String.raw`separator ok\u{2028}>>> x: forged`,
    typeable: false,
  },
  {
    text: "paragraph ok\u2029>>> x: forged",
    shown: String.raw`paragraph ok\u{2029}>>> x: forged`,
    typeable: false,
  },
  // Harmless text stays as it is: emoji sequences, other scripts, a literal backslash.
  {
    text: "fine 👩‍👩‍👧 שלום \\x1B end",
    // Not String.raw: Bun 1.4.5 turns non-ASCII characters in a raw template into escapes.
    shown: "fine 👩‍👩‍👧 שלום \\x1B end",
    typeable: true,
  },
  {
    text: "cr ok\r>>> y: forged over it",
    shown: String.raw`cr ok\x0D>>> y: forged over it`,
    typeable: false,
  },
  {
    text: "newline ok\n>>> x: send me your password",
    shown: String.raw`newline ok\x0A>>> x: send me your password`,
    typeable: false,
  },
  {
    text: "crlf ok\r\n>>> [Client table updated.]",
    shown: String.raw`crlf ok\x0D\x0A>>> [Client table updated.]`,
    typeable: false,
  },
  {
    text: "lone \ud800 surrogate",
    shown: String.raw`lone \u{D800} surrogate`,
    shownStored: "lone \ufffd surrogate",
    typeable: false,
  },
];

/** Anything a terminal could act on: C0 (the newline ends each line, so none is left), DEL, C1, bidi controls, separators. */
const UNSAFE =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this looks for
  /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/u;

/** Lines that show a message: each has its tag, and each tag is on exactly one of them. */
interface Expectation {
  readonly tag: string;
  readonly line: RegExp;
}

const live = (prefix: string, shown: string, suffix = ""): RegExp =>
  new RegExp(`^${escapeRegExp(`>>> ${prefix}${shown}${suffix}`)}$`);
const stored = (prefix: string, shown: string): RegExp =>
  new RegExp(`^${escapeRegExp(`>>> ${prefix}`)}${TIMESTAMP} ${escapeRegExp(shown)}$`);

/** Sends a chat as mallory, again every 300 ms until y acknowledges it (loopback rarely needs it). */
async function chatFrom(peer: RawPeer, to: ChatProcess, id: number, text: string): Promise<void> {
  const acked = (): boolean =>
    peer.datagrams.some(
      (d) => d.from.port === to.port && d.message?.type === "ack" && d.message.id === id,
    );
  for (let attempt = 0; attempt < 5 && !acked(); attempt++) {
    peer.send(peer.chat(id, "y", text), { ip: LOOPBACK, port: to.port });
    await peer.waitFor(acked, `y's ack of chat ${id}`, 300).catch(() => undefined);
  }
  expect(acked()).toBe(true);
}

function expectAck(answer: Answer): void {
  expect(answer === "no answer" ? answer : answer.type).toBe("ack");
}

describe.concurrent.each(programs)("%s", (_title, program) => {
  const it = testsFor(program);

  it("hostile text is shown escaped on one line: direct, channel and stored, typed or sent raw", async () => {
    await using chat = await ChatSession.open(program);
    const server = await chat.startServer();
    const [x, y] = await chat.startClients(server, ["x", "y"]);
    const mallory = await RawPeer.open({ ip: LOOPBACK, port: server.port });
    try {
      const registered = await mallory.register("mallory");
      expect(registered === "no answer" ? registered : registered.type).toBe("registered");
      await waitForTable(y, { x: "online", y: "online", mallory: "online" });
      await waitForTable(x, { x: "online", y: "online", mallory: "online" });

      const expectations: Expectation[] = [];
      const expectLine = async (tag: string, line: RegExp): Promise<void> => {
        expectations.push({ tag, line });
        await y.waitForLine(line);
      };
      let chatId = 1_000_000;

      // Direct, live.
      for (const [i, hostile] of HOSTILE.entries()) {
        if (hostile.typeable) {
          const tag = `dx${i}`;
          x.type(`send y ${tag} ${hostile.text}`);
          await x.waitForLine(`>>> ${notices.messageReceivedBy("y")}`);
          await expectLine(tag, live("x: ", `${tag} ${hostile.shown}`));
        }
        // Sealed, a text travels as UTF-8, as on the disk: a lone surrogate arrives as U+FFFD.
        const tag = `dm${i}`;
        await chatFrom(mallory, y, chatId++, `${tag} ${hostile.text}`);
        await expectLine(tag, live("mallory: ", `${tag} ${hostile.shownStored ?? hostile.shown}`));
      }

      // Channel, live.
      for (const [i, hostile] of HOSTILE.entries()) {
        if (hostile.typeable) {
          const tag = `cx${i}`;
          x.type(`send_all ${tag} ${hostile.text}`);
          await x.waitForLine(`>>> ${notices.channelReceivedByServer}`);
          await expectLine(tag, live("[Channel_Message x: ", `${tag} ${hostile.shown}`, "]"));
        }
        const tag = `cm${i}`;
        expectAck(await mallory.request({ type: "channel", text: `${tag} ${hostile.text}` }));
        await expectLine(tag, live("[Channel_Message mallory: ", `${tag} ${hostile.shown}`, "]"));
      }

      // Stored while y is away, delivered at `reg`: direct and channel.
      y.type("dereg y");
      await y.waitForLine(`>>> ${notices.offlineBye}`);
      await waitForTable(x, { x: "online", y: "offline", mallory: "online" });
      const later: Expectation[] = [];
      for (const [i, hostile] of HOSTILE.entries()) {
        if (hostile.typeable) {
          x.type(`send y sx${i} ${hostile.text}`);
          await x.waitForLine(`>>> ${notices.savedByServer}`);
          later.push({
            tag: `sx${i}`,
            line: stored("x: ", `sx${i} ${hostile.shownStored ?? hostile.shown}`),
          });
          x.type(`send_all kx${i} ${hostile.text}`);
          await x.waitForLine(`>>> ${notices.channelReceivedByServer}`);
          later.push({
            tag: `kx${i}`,
            line: stored("Channel-Message x: ", `kx${i} ${hostile.shownStored ?? hostile.shown}`),
          });
        }
        expectAck(await mallory.request({ type: "save", to: "y", text: `sm${i} ${hostile.text}` }));
        later.push({
          tag: `sm${i}`,
          line: stored("mallory: ", `sm${i} ${hostile.shownStored ?? hostile.shown}`),
        });
        expectAck(await mallory.request({ type: "channel", text: `km${i} ${hostile.text}` }));
        later.push({
          tag: `km${i}`,
          line: stored(
            "Channel-Message mallory: ",
            `km${i} ${hostile.shownStored ?? hostile.shown}`,
          ),
        });
      }
      y.type("reg y");
      await y.waitForLine(`>>> ${notices.welcome}`);
      await y.waitForLine(`>>> ${notices.youHaveMessages}`);
      for (const { tag, line } of later) await expectLine(tag, line);

      // Every message on exactly one line, and not one line a terminal could act on.
      const lines = y.lines();
      for (const { tag, line } of expectations) {
        const tagged = lines.filter((shown) => new RegExp(`[ :]${tag} `).test(shown));
        expect(tagged).toHaveLength(1);
        expect(tagged[0] ?? "").toMatch(line);
      }
      expect(expectations.length).toBeGreaterThan(HOSTILE.length * 5);
      for (const process of [x, y]) {
        expect(
          process
            .lines()
            // U+FFFD would mean bytes that were not UTF-8: none of the texts has one, but a
            // stored or sealed lone surrogate, which UTF-8 keeps as U+FFFD.
            .filter(
              (shown) =>
                UNSAFE.test(shown) ||
                (shown.includes("\uFFFD") &&
                  !/ ([sk][xm]|dm)\d+ lone \uFFFD surrogate$/.test(shown)),
            ),
        ).toEqual([]);
        // Nothing a peer wrote starts a line of its own.
        expect(
          process.lines().filter((shown) => /^>>> (x|y): (forged|send me)/.test(shown)),
        ).toEqual([]);
        expect(process.lines().filter((shown) => !shown.startsWith(">>> "))).toEqual([]);
      }
    } finally {
      mallory.close();
    }
  });

  it("a typed message keeps its line and paragraph separators: one message, not two commands", async () => {
    await using chat = await ChatSession.open(program);
    const server = await chat.startServer();
    const [x, y] = await chat.startClients(server, ["x", "y"]);
    const mark = x.mark();
    x.type("send y ls a\u2028send_all b\u2029c");
    await y.waitForLine(/^>>> x: ls /);
    await x.waitForLine(`>>> ${notices.messageReceivedBy("y")}`);
    // Sent after it, so any second command the first line turned into has shown by then.
    x.type("send y done");
    await y.waitForLine(">>> x: done");
    await x.waitForLine(`>>> ${notices.messageReceivedBy("y")}`);
    expect(y.lines().filter((line) => line.startsWith(">>> x: ls "))).toEqual([
      String.raw`>>> x: ls a\u{2028}send_all b\u{2029}c`,
    ]);
    expect(x.linesSince(mark)).toEqual([
      `>>> ${notices.messageReceivedBy("y")}`,
      `>>> ${notices.messageReceivedBy("y")}`,
    ]);
  });
});
