/**
 * A real server is killed with SIGKILL at seeded moments while a sender saves messages
 * for an offline recipient and the recipient now and then comes back (`reg`) to collect
 * them. Every save the server acknowledged must reach the recipient exactly once over
 * the whole run, as a client shows it (a copy under a sender and `ref` already received
 * is recognised and not shown again); nothing may arrive twice or out of nowhere.
 *
 * The moments: any time; or a few hundred microseconds behind a save or behind the
 * recipient's ack of a stored batch, where the server is between committing and
 * answering, or between an ack and the commit that removes what it acknowledged.
 *
 * `SOAK=1` runs ten times as many kills (`bun run soak`); `CRASH_SEED=n` picks the seed.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { seededRandom } from "../../src/io/seeded-random.ts";
import { notices } from "../../src/text/notices.ts";
import {
  type ChatProcess,
  ChatSession,
  killAll,
  LOOPBACK,
  sourceProgram,
} from "../helpers/process-driver.ts";
import { describeAnswer, RawPeer } from "../helpers/raw-peer.ts";
import { registeredNetwork } from "../helpers/simulated-network.ts";

afterAll(killAll);

const SOAK = process.env.SOAK === "1";
const KILLS = SOAK ? 500 : 50;
const SEED = Number(process.env.CRASH_SEED ?? 7_211);
/** How long the server runs between a start and its kill. */
const UP_MIN_MS = 20;
const UP_MAX_MS = 250;
/** The sender keeps this many saves outstanding and starts one at most this often. */
const SENDER_WINDOW = 4;
const SENDER_PACE_MS = 15;
/** The recipient stays away this long between visits. */
const AWAY_MIN_MS = 100;
const AWAY_MAX_MS = 400;
/** A kill right behind an event lands this long after it, at most: inside the server's work on it. */
const BEHIND_SAVE_MAX_US = 1_500;
const BEHIND_ACK_MAX_US = 300;
/** How long a kill waits for its event before it happens anyway. */
const EVENT_WAIT_MS = 1_000;
/** Budget per kill (start-up included), for the test's timeout. */
const PER_KILL_BUDGET_MS = 700;

const DATA_DIRECTORY = /data directory: .* \((\d+) known client\(s\), (\d+) stored message\(s\)\)$/;

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Spins for a few hundred microseconds: a timer cannot wait that little. Bounded by time. */
function spin(microseconds: number): void {
  const until = performance.now() + microseconds / 1000;
  let turns = 0;
  while (performance.now() < until && turns < 10_000_000) turns++;
}

type Moment = "any time" | "behind a save" | "behind a stored ack";

interface Trigger {
  readonly moment: Moment;
  readonly fire: () => void;
}

test(
  `acknowledged saves survive ${KILLS} SIGKILLs of the server and are delivered exactly once`,
  async () => {
    const startedAt = performance.now();
    // Two streams, so that the plan of kills depends on the seed alone, not on timing.
    const planRandom = seededRandom(SEED);
    const workRandom = seededRandom(SEED ^ 0x5eed);
    const between = (random: () => number, min: number, max: number) =>
      min + Math.floor(random() * (max - min + 1));
    await using chat = await ChatSession.open(sourceProgram);

    // Every start must open the store: its log line says what the store holds.
    let handle = await chat.startServer();
    const port = handle.port;
    const starts: string[] = [];
    const servers: ChatProcess[] = [];
    const checkStarted = async (server: ChatProcess) => {
      servers.push(server);
      starts.push(await server.waitForLine(DATA_DIRECTORY));
    };
    await checkStarted(handle.process);
    const serverAddress = { ip: LOOPBACK, port };

    const sender = await RawPeer.open(serverAddress);
    const recipient = await RawPeer.open(serverAddress);
    try {
      expect(describeAnswer(await sender.register("sender"))).toBe("registered");
      expect(describeAnswer(await recipient.register("recipient"))).toBe("registered");
      expect(describeAnswer(await recipient.request({ type: "deregister" }))).toBe("ack");

      let stopped = false;
      let trigger: Trigger | undefined;
      const pull = (moment: Moment) => {
        if (trigger?.moment === moment) trigger.fire();
      };
      recipient.afterServerRequest = (message) => {
        if (message.type === "stored") pull("behind a stored ack");
      };

      const outcomes = new Map<string, string>();
      const senderLoop = async () => {
        const inFlight = new Set<Promise<void>>();
        for (let n = 0; !stopped && n < 100_000; n++) {
          const text = `save ${n} of run ${SEED}`;
          outcomes.set(text, "pending");
          const save = sender
            .request({ type: "save", to: "recipient", text })
            .then((answer) => void outcomes.set(text, describeAnswer(answer)));
          pull("behind a save");
          inFlight.add(save);
          save.finally(() => inFlight.delete(save));
          if (inFlight.size >= SENDER_WINDOW) await Promise.race(inFlight);
          await pause(SENDER_PACE_MS);
        }
        await Promise.all(inFlight);
      };

      let visits = 0;
      // Copies of messages received before count too: they arrive, and are not shown again.
      const received = () => recipient.stored.length + recipient.repeats;
      const recipientLoop = async () => {
        for (let visit = 0; !stopped && visit < 10_000; visit++) {
          await pause(between(workRandom, AWAY_MIN_MS, AWAY_MAX_MS));
          if (stopped) break;
          visits++;
          const before = received();
          const answer = await recipient.register("recipient");
          if (answer !== "no answer" && answer.type === "registered") {
            // Stays until what was pending has come; a kill may cut the delivery short.
            const { pending } = answer;
            await recipient
              .waitFor(() => received() - before >= pending, "the stored messages", 1_000)
              .catch(() => {});
          }
          await recipient.request({ type: "deregister" });
        }
      };

      const kills = new Map<Moment, number>();
      const crashLoop = async () => {
        for (let kill = 0; kill < KILLS; kill++) {
          const draw = planRandom();
          const planned: Moment =
            draw < 0.4 ? "any time" : draw < 0.8 ? "behind a save" : "behind a stored ack";
          const delayUs = Math.floor(
            planRandom() * (planned === "behind a save" ? BEHIND_SAVE_MAX_US : BEHIND_ACK_MAX_US),
          );
          await pause(between(planRandom, UP_MIN_MS, UP_MAX_MS));
          const server = handle.process;
          expect(server.exitCode).toBeUndefined();
          let moment: Moment = "any time";
          if (planned !== "any time") {
            await new Promise<void>((resolve) => {
              const fallback = setTimeout(resolve, EVENT_WAIT_MS);
              trigger = {
                moment: planned,
                fire: () => {
                  trigger = undefined;
                  spin(delayUs);
                  moment = planned;
                  server.kill("SIGKILL");
                  clearTimeout(fallback);
                  resolve();
                },
              };
            });
            trigger = undefined;
          }
          if (moment === "any time") server.kill("SIGKILL");
          kills.set(moment, (kills.get(moment) ?? 0) + 1);
          expect(await server.waitForExit()).toBe(137);
          handle = await chat.startServer({ port, dataDir: handle.dataDir });
          await checkStarted(handle.process);
        }
      };

      const workload = Promise.all([senderLoop(), recipientLoop()]);
      try {
        await crashLoop();
      } finally {
        stopped = true;
        trigger = undefined;
        await workload;
      }

      // Quiet now: the recipient comes back once more and collects everything left.
      const answer = await recipient.register("recipient");
      if (answer === "no answer" || answer.type !== "registered") {
        throw new Error(`the final reg got ${describeAnswer(answer)}`);
      }
      const collected = received();
      const tables = recipient.tables.length;
      await recipient.waitFor(
        () => received() >= collected + answer.pending && recipient.tables.length > tables,
        `${answer.pending} stored message(s) and the table after them`,
      );
      // Nothing is left on the server.
      expect(describeAnswer(await recipient.request({ type: "deregister" }))).toBe("ack");
      const again = await recipient.register("recipient");
      expect(again !== "no answer" && again.type === "registered" ? again.pending : again).toBe(0);

      const deliveries = new Map<string, number>();
      for (const stored of recipient.stored) {
        deliveries.set(stored.text, (deliveries.get(stored.text) ?? 0) + 1);
      }
      const acked = [...outcomes].filter(([, outcome]) => outcome === "ack").map(([text]) => text);
      const duplicates = [...deliveries].filter(([, count]) => count > 1).map(([text]) => text);
      const lost = acked.filter((text) => !deliveries.has(text));
      const unknown = [...deliveries.keys()].filter((text) => !outcomes.has(text));
      const unackedDelivered = [...deliveries.keys()].filter(
        (text) => outcomes.has(text) && outcomes.get(text) !== "ack",
      );
      const byOutcome = new Map<string, number>();
      for (const outcome of outcomes.values()) {
        byOutcome.set(outcome, (byOutcome.get(outcome) ?? 0) + 1);
      }
      // A text shown twice came under two names (sender and ref): it was stored twice.
      const describeDuplicate = (text: string) => {
        const copies = recipient.stored.filter((stored) => stored.text === text);
        const first = copies[0]?.at ?? 0;
        return `${JSON.stringify(text)} (${outcomes.get(text)}): ${copies
          .map((stored) => `ref ${stored.ref} received by the server at +${stored.at - first} ms`)
          .join("; ")}`;
      };
      const duplicateReport = duplicates.slice(0, 6).map(describeDuplicate);
      if (duplicates.length > 6) duplicateReport.push(`and ${duplicates.length - 6} more`);

      console.log(
        [
          `crash durability, seed ${SEED}: ${KILLS} SIGKILLs (${[...kills].map(([moment, count]) => `${count} ${moment}`).join(", ")}), ${starts.length} clean starts, ${visits} recipient visits`,
          `  saves sent ${outcomes.size}: ${[...byOutcome].map(([outcome, count]) => `${outcome} ${count}`).join(", ")}`,
          `  delivered ${recipient.stored.length} (${deliveries.size} distinct; never acknowledged: ${unackedDelivered.length}${unackedDelivered.map((text) => `, ${outcomes.get(text)}`).join("")}); copies recognised by sender and ref and not shown again: ${recipient.repeats}`,
          `  duplicates=${duplicates.length} lost=${lost.length} unknown=${unknown.length}`,
          `  ${Math.round(performance.now() - startedAt)} ms`,
        ].join("\n"),
      );

      expect(starts).toHaveLength(KILLS + 1);
      // After the first start, each one opened the store it was killed over, both clients in it.
      for (const line of starts.slice(1)) expect(DATA_DIRECTORY.exec(line)?.[1]).toBe("2");
      const complaints = servers.flatMap((server) => server.lines("stderr"));
      expect(complaints.filter((line) => /error|could not|corrupt/i.test(line))).toEqual([]);
      expect(acked.length).toBeGreaterThan(KILLS);
      expect(duplicateReport).toEqual([]);
      expect(lost).toEqual([]);
      expect(unknown).toEqual([]);
      for (const stored of recipient.stored) {
        expect(stored.sender).toBe("sender");
        expect(stored.kind).toBe("direct");
      }
    } finally {
      sender.close();
      recipient.close();
    }
  },
  15_000 + KILLS * PER_KILL_BUDGET_MS,
);

// The window the kills behind a stored ack hit, on the core, deterministically: the
// recipient acknowledged a batch (and showed it), the server died before it read the ack.
describe("core: a crash between a stored batch's ack and its removal", () => {
  test("the batch is not shown again at the next reg", () => {
    const network = registeredNetwork(["x", "y"]);
    const [x, y] = [network.client("x"), network.client("y")];
    y.type("dereg y");
    network.settle();
    x.type("send y shown once");
    network.settle();
    expect(x.shown().at(-1)).toBe(notices.savedByServer);
    const heal = network.drop(
      (d) => d.from === "y" && d.to === "server" && d.message.type === "ack",
    );
    y.type("reg y");
    network.advance(100);
    expect(y.shown().filter((line) => line.endsWith("shown once"))).toHaveLength(1);
    network.restartServer();
    heal();
    y.type("dereg y");
    network.settle();
    y.type("reg y");
    network.settle();
    expect(y.shown().filter((line) => line.endsWith("shown once"))).toHaveLength(1);
  });
});

// A save committed just before a crash, retried to the restarted server after its
// recipient came back and was shown it: the sender should hear "saved". Today it is told
// "[Client y exists!!]", a failure, for a message that was shown once: the promise (told
// failed, shown at most once) holds, but a user who sends it again makes a second
// message. Known limitation: once delivered, the server keeps no durable record of
// (sender, ref) to recognise the retry. Kept as test.failing until it does.
describe("core: a save committed just before a crash, retried after the recipient came back", () => {
  test.failing("is not refused as recipient-online", () => {
    const network = registeredNetwork(["x", "y"]);
    const [x, y] = [network.client("x"), network.client("y")];
    y.type("dereg y");
    network.settle();
    const heal = network.drop(
      (d) => d.from === "server" && d.to === "x" && d.message.type === "ack",
    );
    x.type("send y saved before the crash");
    network.advance(100);
    network.restartServer();
    heal();
    y.type("reg y");
    network.advance(100);
    expect(y.shown().filter((line) => line.endsWith("saved before the crash"))).toHaveLength(1);
    network.settle();
    expect(
      x.shown().filter((line) => line.startsWith("[Message") || line.startsWith("[Client y")),
    ).toEqual([notices.savedByServer]);
  });
});
