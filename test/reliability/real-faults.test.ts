/**
 * The history invariant (test/helpers/history-checker.ts) with real processes on
 * loopback and real, seeded faults: a fault-free server and three clients started with
 * `--simulate loss=0.2,dup=0.1,delay=0-40,seed=<n>`, so that a fifth of every
 * client's datagrams, in and out, are lost, a tenth duplicated, and all delayed (so
 * reordered). A scripted workload of direct and channel messages runs on all three at
 * once; mid-way c de-registers, the others write to it, and it comes back with `reg`.
 *
 * The faults are seeded, but the timing is real, so which datagram a fault hits can
 * differ from run to run. Nothing here depends on it: every command is followed to its
 * final status line, whatever it is (a client whose `dereg` or `save` goes unanswered
 * exits, as SPEC §4 says, and is left out from then on); every client that still runs
 * then goes offline and comes back (`dereg`, `reg`) to collect what was stored for it;
 * the test waits until every posted channel message has been shown to, or stored for,
 * every member (it polls what the processes printed and the server's store, both
 * observable); then everything stops and the history is checked against what was
 * shown and what the server still holds.
 *
 * `FAULT_SEED=n` picks other seeds.
 */
import { Database } from "bun:sqlite";
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { MAX_TEXT_LENGTH } from "../../src/protocol/messages.ts";
import { DATABASE_FILE_NAME, openSqliteStore } from "../../src/store/sqlite-store.ts";
import { notices } from "../../src/text/notices.ts";
import {
  checkHistory,
  type History,
  type SentMessage,
  stripPrompt,
} from "../helpers/history-checker.ts";
import {
  type ChatProcess,
  ChatSession,
  escapeRegExp,
  freePort,
  killAll,
  LOOPBACK,
  type ServerHandle,
  sourceProgram,
  WELCOME,
  waitForTable,
} from "../helpers/process-driver.ts";
import { readWithIdentityFiles } from "../helpers/sealed.ts";

afterAll(killAll);

const FAULTS = "loss=0.2,dup=0.1,delay=0-40";
const SEED = Number(process.env.FAULT_SEED ?? 4_242);
const NAMES = ["a", "b", "c"] as const;
type Name = (typeof NAMES)[number];
const TEST_TIMEOUT_MS = 40_000;
/** A command's longest legitimate run: a direct try (500 ms), then a save retried for 3 s. */
const COMMAND_TIMEOUT_MS = 10_000;
/** How long the end waits for channel deliveries and stored batches still under way. */
const QUIET_TIMEOUT_MS = 10_000;
/** How often the end looks at the output and the store again while it waits. */
const POLL_MS = 25;

/** Every line that ends a command: its answer, a refusal, or giving up. */
const FINAL_NOTICES: readonly (string | ((name: string) => string))[] = [
  notices.messageReceivedBy,
  notices.savedByServer,
  notices.clientExists,
  notices.serverNotResponding,
  notices.channelReceivedByServer,
  notices.channelServerNotResponding,
  notices.offlineBye,
  notices.welcome,
  notices.unknownRecipient,
  notices.serverRefusedUnknownRecipient,
  notices.mailboxFull,
  notices.notRegistered,
  notices.alreadyRegistered,
  notices.alreadyOffline,
  notices.nameTaken,
  notices.badName,
  notices.serverTooLong(MAX_TEXT_LENGTH),
  notices.sessionExpired,
];
const FINAL_LINE = new RegExp(
  `^>>> (${FINAL_NOTICES.map((notice) =>
    typeof notice === "string"
      ? escapeRegExp(notice)
      : escapeRegExp(notice("\u0000")).replace("\u0000", ".+"),
  ).join("|")})$`,
);

interface User {
  readonly name: Name;
  readonly port: number;
  /** Every process started under this name, in order; the last one is the one that runs. */
  readonly processes: ChatProcess[];
  /** Exited after its server gave up answering (SPEC §4): it takes no more commands. */
  gone: boolean;
  online: boolean;
}

function current(user: User): ChatProcess {
  const process = user.processes.at(-1);
  if (!process) throw new Error(`${user.name} has no process`);
  return process;
}

/**
 * Starts a client with faults and waits for its welcome. Under 20% loss all six tries
 * of a registration can go unanswered (about one start in 300): the client then says
 * `[Server not responding]` and exits, and another process takes its place on the same
 * port (the server gives a name back to the address that holds it).
 */
async function startUser(
  chat: ChatSession,
  server: ServerHandle,
  name: Name,
  seed: number,
): Promise<User> {
  const user: User = { name, port: await freePort(), processes: [], gone: false, online: false };
  for (let attempt = 0; attempt < 4; attempt++) {
    const spec = `${FAULTS},seed=${seed + 1_000 * attempt}`;
    const args = ["-c", name, LOOPBACK, String(server.port), String(user.port), "--simulate", spec];
    const process = chat.spawn(args, `client ${name}`, user.port);
    user.processes.push(process);
    try {
      await process.waitForLine(WELCOME, { timeoutMs: COMMAND_TIMEOUT_MS });
      user.online = true;
      return user;
    } catch (error) {
      await process.stop();
      if (!process.lines().includes(`>>> ${notices.serverNotResponding}`)) throw error;
    }
  }
  throw new Error(`${name} could not register in four starts`);
}

interface CommandResult {
  /** The lines shown from typing the command to its final status line. */
  readonly told: readonly string[];
  readonly final: string;
}

/** Types a command and waits for its final status line; notes when the client exits over it. */
async function run(user: User, line: string): Promise<CommandResult> {
  const process = current(user);
  const mark = process.mark();
  process.type(line);
  const final = await process.waitForLine(FINAL_LINE, { timeoutMs: COMMAND_TIMEOUT_MS });
  const since = process.linesSince(mark);
  const end = since.indexOf(final);
  const told = since.slice(0, end + 1);
  const shown = stripPrompt(final);
  if (shown === notices.offlineBye) user.online = false;
  if (shown === notices.welcome) user.online = true;
  if (shown === notices.serverNotResponding && !line.startsWith("reg ")) {
    // SPEC §4 and §5: `[Server not responding]`, `[Exiting]`, and the client is gone.
    await process.waitForLine(`>>> ${notices.exiting}`);
    expect(await process.waitForExit()).toBe(1);
    user.gone = true;
    user.online = false;
  }
  return { told, final };
}

type Step = `send ${Name}` | "send_all";

const PAYLOADS = [
  "hello there",
  "héllo wörld",
  "世界 😀 and friends",
  "two  spaces  inside",
  "see you at 5",
  "αβγ δεζ",
  "a longer one: the quick brown fox jumps over the lazy dog",
] as const;

/** Sends with unique texts, and what each sender was told. */
class Workload {
  readonly sent: SentMessage[] = [];
  #next = 0;

  async steps(user: User, steps: readonly Step[]): Promise<void> {
    for (const step of steps) {
      if (user.gone) return;
      const n = this.#next++;
      const text = `rf${n} ${PAYLOADS[n % PAYLOADS.length] ?? ""}`;
      const to = step === "send_all" ? undefined : step.slice("send ".length);
      const { told } = await run(
        user,
        to === undefined ? `send_all ${text}` : `send ${to} ${text}`,
      );
      this.sent.push({ text, sender: user.name, to, told });
    }
  }
}

/** Reads what the server holds now, without writing: the server keeps the database open. */
function storedNow(dataDir: string): { recipient: string; text: string }[] {
  const db = new Database(join(dataDir, DATABASE_FILE_NAME), { readonly: true });
  try {
    return db
      .query<{ recipient: string; text: string }, []>("SELECT recipient, text FROM messages")
      .all();
  } finally {
    db.close();
  }
}

/** Polls an observable condition (output, the store) until it holds; false on timeout. */
async function until(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) return false;
    await Bun.sleep(POLL_MS);
  }
  return true;
}

/** `dereg` and `reg`, so that what the server stored for this user is delivered. */
async function collectStored(user: User, dataDir: string): Promise<void> {
  if (user.gone) return;
  if (user.online) await run(user, `dereg ${user.name}`);
  for (let attempt = 0; attempt < 3 && !user.gone && !user.online; attempt++) {
    await run(user, `reg ${user.name}`);
  }
  if (!user.online) return;
  // Its stored batches come under the same faults; what is left stays stored, and counts so.
  await until(
    () => !storedNow(dataDir).some((held) => held.recipient.toLowerCase() === user.name),
    QUIET_TIMEOUT_MS / 2,
  );
}

function shownBy(user: User, text: string): boolean {
  return user.processes.some((process) =>
    process.lines().some((line) => line.endsWith(` ${text}`) || line.endsWith(` ${text}]`)),
  );
}

test(
  `three clients under ${FAULTS}: nothing confirmed is lost, nothing is shown twice or invented`,
  async () => {
    const startedAt = performance.now();
    await using chat = await ChatSession.open(sourceProgram);
    const server = await chat.startServer();
    const users = {} as Record<Name, User>;
    for (const [index, name] of NAMES.entries()) {
      users[name] = await startUser(chat, server, name, SEED + 10 * index);
    }
    const everyone = Object.fromEntries(NAMES.map((name) => [name, "online" as const]));
    let tablesComplete = 0;
    for (const user of Object.values(users)) {
      try {
        // Under loss a push can miss a client for its whole 3 s; the workload copes with that.
        await waitForTable(current(user), everyone, { timeoutMs: 6_000 });
        tablesComplete++;
      } catch {
        // A stale table makes `send` refuse or go to the server; the history says which.
      }
    }

    const workload = new Workload();
    const { a, b, c } = users;
    await Promise.all([
      workload.steps(a, ["send b", "send_all", "send c", "send b"]),
      workload.steps(b, ["send a", "send c", "send_all", "send a"]),
      workload.steps(c, ["send a", "send_all", "send b", "send c"]),
    ]);
    if (!c.gone) await run(c, "dereg c");
    await Promise.all([
      workload.steps(a, ["send c", "send_all", "send b", "send c"]),
      workload.steps(b, ["send c", "send a", "send_all", "send c"]),
    ]);
    if (!c.gone && !c.online) await run(c, "reg c");
    await Promise.all([
      workload.steps(a, ["send c", "send b", "send_all"]),
      workload.steps(b, ["send_all", "send c", "send a"]),
      workload.steps(c, ["send a", "send_all", "send b", "send c"]),
    ]);

    // Everyone collects what the server kept for them.
    await Promise.all(Object.values(users).map((user) => collectStored(user, server.dataDir)));

    // Quiet: every posted channel message has been shown to, or stored for, every member.
    const posted = workload.sent.filter((message) =>
      message.told.some((line) => stripPrompt(line) === notices.channelReceivedByServer),
    );
    const pendingDeliveries = (): string[] => {
      const held = storedNow(server.dataDir);
      return posted.flatMap((message) =>
        NAMES.filter((name) => name !== message.sender)
          .filter((name) => !shownBy(users[name], message.text))
          .filter(
            (name) =>
              !held.some((h) => h.recipient.toLowerCase() === name && h.text === message.text),
          )
          .map((name) => `${JSON.stringify(message.text)} to ${name}`),
      );
    };
    const quiet = await until(() => pendingDeliveries().length === 0, QUIET_TIMEOUT_MS);
    expect(quiet ? [] : pendingDeliveries()).toEqual([]);

    // Everything stops cleanly: clients at the end of their input, the server on SIGTERM.
    for (const user of Object.values(users)) {
      if (user.gone) continue;
      const process = current(user);
      process.endInput();
      expect(await process.waitForExit({ timeoutMs: COMMAND_TIMEOUT_MS })).toBe(0);
    }
    server.process.kill("SIGTERM");
    expect(await server.process.waitForExit()).toBe(0);
    const store = openSqliteStore(server.dataDir);
    // Direct messages are sealed: read them as their recipients would.
    const storedAtEnd = (() => {
      try {
        return readWithIdentityFiles(store.load().messages, chat.configHome);
      } finally {
        store.close();
      }
    })();

    const report = checkHistory({
      names: NAMES,
      sent: workload.sent,
      shown: Object.fromEntries(
        Object.values(users).map((user) => [user.name, user.processes.map((p) => p.lines())]),
      ),
      storedAtEnd,
    });
    const told = workload.sent.flatMap((message) => message.told.map(stripPrompt));
    console.log(
      `real faults (${FAULTS}, seeds ${SEED}, ${SEED + 10}, ${SEED + 20}): ${workload.sent.length} messages, ` +
        `outcomes ${JSON.stringify(report.outcomes)}, ${report.sightings} lines showed them, ` +
        `${told.filter((line) => line.startsWith("[No ACK from ")).length} direct tries without an ack, ` +
        `${report.stillStored} confirmed still stored at the end, ${storedAtEnd.length} stored in all, ` +
        `${tablesComplete}/3 first tables complete, ` +
        `${Object.values(users).filter((user) => user.gone).length} clients gone, ` +
        `${Object.values(users).reduce((n, user) => n + user.processes.length - 1, 0)} restarts, ` +
        `${Math.round(performance.now() - startedAt)} ms`,
    );
    expect(report.problems).toEqual([]);
    expect(report.shownAgainFromStore).toEqual([]);
    // The run did what it claims: many messages, most of them confirmed, some through the store.
    expect(workload.sent.length).toBeGreaterThanOrEqual(20);
    const confirmed = report.outcomes.delivered + report.outcomes.saved + report.outcomes.posted;
    expect(confirmed).toBeGreaterThan(workload.sent.length / 2);
    expect(report.outcomes.saved).toBeGreaterThan(0);
  },
  TEST_TIMEOUT_MS,
);

describe("the history checker finds what it is there to find", () => {
  const TS = "2026-01-02T03:04:05Z";
  const toB: SentMessage = {
    text: "m1 hi",
    sender: "a",
    to: "b",
    told: [">>> [Message received by b.]"],
  };
  const saved: SentMessage = {
    text: "m2 later",
    sender: "a",
    to: "c",
    told: [
      "[No ACK from c, message sent to server.]",
      "[Messages received by the server and saved]",
    ],
  };
  const posted: SentMessage = {
    text: "m3 all",
    sender: "b",
    to: undefined,
    told: ["[Message received by Server.]"],
  };
  const failed: SentMessage = {
    text: "m4 lost",
    sender: "c",
    to: "a",
    told: ["[No ACK from a, message sent to server.]", "[Client a exists!!]"],
  };
  const clean: History = {
    names: ["a", "b", "c"],
    sent: [toB, saved, posted, failed],
    shown: {
      a: [[">>> [Welcome, You are registered.]", ">>> [Channel_Message b: m3 all]"]],
      b: [[">>> [Welcome, You are registered.]", ">>> a: m1 hi"]],
      c: [
        [
          ">>> [Welcome, You are registered.]",
          ">>> [Channel_Message b: m3 all]",
          ">>> [You are Offline. Bye.]",
          ">>> [Welcome, You are registered.]",
          ">>> [You have messages]",
          `>>> a: ${TS} m2 later`,
        ],
      ],
    },
  };
  const withLines = (name: string, lines: readonly string[]): History => ({
    ...clean,
    shown: { ...clean.shown, [name]: [...(clean.shown[name] ?? []), lines] },
  });

  test("a clean history passes, with its outcomes counted", () => {
    const report = checkHistory(clean);
    expect(report.problems).toEqual([]);
    expect(report.shownAgainFromStore).toEqual([]);
    expect(report.outcomes).toMatchObject({ delivered: 1, saved: 1, posted: 1, exists: 1 });
    expect(report.sightings).toBe(4);
  });

  test("loss, duplicates, inventions, misdirection, wrong forms and order are each reported", () => {
    const cases: [History, RegExp][] = [
      [{ ...clean, shown: { ...clean.shown, b: [[]] } }, /never shown to b/],
      [withLines("b", [">>> a: m1 hi"]), /shown .*m1 hi.* 2 times/],
      [withLines("a", [">>> c: m4 lost", ">>> c: m4 lost"]), /shown .*m4 lost.* 2 times/],
      [withLines("a", [">>> b: m9 never sent"]), /never sent/],
      [withLines("c", [">>> a: m1 hi"]), /meant for someone else/],
      [withLines("b", [">>> [Channel_Message a: m1 hi]"]), /wrong form/],
      [
        withLines("b", [">>> [Welcome, You are registered.]", `>>> a: ${TS} m1 hi`]),
        /before \[You have messages\]/,
      ],
      [
        { ...clean, sent: [...clean.sent, { text: "m5", sender: "a", to: "b", told: [] }] },
        /never told/,
      ],
    ];
    for (const [history, problem] of cases) {
      expect(checkHistory(history).problems.join("\n")).toMatch(problem);
    }
  });

  test("what the server still holds counts as stored once, and a copy shown and stored is reported", () => {
    const away: History = {
      ...clean,
      shown: { ...clean.shown, c: [[">>> [Channel_Message b: m3 all]"]] },
    };
    const held = { recipient: "c", sender: "a", kind: "direct", text: "m2 later" } as const;
    expect(checkHistory(away).problems.join("\n")).toMatch(/never shown to c/);
    const stillStored = checkHistory({ ...away, storedAtEnd: [held] });
    expect(stillStored.problems).toEqual([]);
    expect(stillStored.stillStored).toBe(1);
    expect(checkHistory({ ...clean, storedAtEnd: [held] }).shownAgainFromStore).toHaveLength(1);
    expect(checkHistory({ ...away, storedAtEnd: [held, held] }).problems.join("\n")).toMatch(
      /stored 2 times/,
    );
    const again = withLines("b", [
      ">>> [Welcome, You are registered.]",
      ">>> [You have messages]",
      `>>> a: ${TS} m1 hi`,
    ]);
    expect(checkHistory(again).problems).toEqual([]);
    expect(checkHistory(again).shownAgainFromStore).toHaveLength(1);
  });
});
