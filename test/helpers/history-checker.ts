/**
 * The history invariant of SPEC §7 ("no message is silently lost or shown twice"),
 * checked on what users saw: which messages were sent and what each sender was
 * told about them, and every line each recipient's processes showed. It works the
 * same for real processes and for the simulated cores.
 *
 * - A message whose sender was told `[Message received by y.]`,
 *   `[Messages received by the server and saved]` or `[Message received by Server.]`
 *   reaches each intended recipient: shown exactly once by the end, or (when the
 *   caller says what the server still holds) not shown and still stored exactly once.
 * - A message whose sender was told it failed (`[Client y exists!!]`,
 *   `[Server not responding]`, a refusal) is shown at most once to each recipient.
 * - Nothing is shown twice, nothing is shown that was never sent, nothing reaches a
 *   client it was not meant for or in the wrong form (direct / channel, sender), and
 *   stored messages come after `[You have messages]`.
 *
 * One duplicate is reported apart, as a known defect of protocol v1 rather than
 * mixed in with the rest: a message shown, then shown again from the server's store
 * after a later registration (or still stored for one). It happens when a recipient
 * showed a message but all of its acknowledgements were lost, so the sender's save
 * or the server's channel fan-out stored a copy; a stored message carries nothing
 * that would let the recipient recognise it (see test/core/faults.test.ts).
 *
 * Texts must be unique and printable as they are (no character the client escapes),
 * so that a shown line names its message exactly.
 */
import { notices } from "../../src/text/notices.ts";

/** What the sender was told in the end, read from its status lines. */
export type Outcome =
  /** `[Message received by y.]` */
  | "delivered"
  /** `[Messages received by the server and saved]` */
  | "saved"
  /** `[Message received by Server.]` */
  | "posted"
  /** `[Client y exists!!]`: y was alive; it may or may not have shown the direct attempt. */
  | "exists"
  /** `[Server not responding]` / `[Server not responding.]`: the sender was told it failed. */
  | "failed"
  /** Any other answer: refused by the client or the server (unknown name, offline, too long…). */
  | "refused"
  /** No status line at all: a bug, unless the sender's process was killed. */
  | "untold";

export interface SentMessage {
  /** Unique among all messages of the run. */
  readonly text: string;
  readonly sender: string;
  /** The recipient's name, or undefined for a channel message (`send_all`). */
  readonly to: string | undefined;
  /** The lines the sender was shown about this message, in order (with or without `>>> `). */
  readonly told: readonly string[];
}

/** A message the server still holds at the end (from its store). */
export interface StillStored {
  readonly recipient: string;
  readonly sender: string;
  readonly kind: "direct" | "channel";
  readonly text: string;
}

export interface History {
  /** Every client name of the run: the channel reaches all of them but the sender. */
  readonly names: readonly string[];
  readonly sent: readonly SentMessage[];
  /** For each name, the stdout lines of each of its processes, in the order they ran. */
  readonly shown: Readonly<Record<string, readonly (readonly string[])[]>>;
  /** What the server still stores at the end; omitted when the run ends with everything delivered. */
  readonly storedAtEnd?: readonly StillStored[];
}

export interface HistoryReport {
  /** Violations of the invariant. */
  readonly problems: readonly string[];
  /** The known defect: shown, then shown again from the store (or still stored for that). */
  readonly shownAgainFromStore: readonly string[];
  readonly outcomes: Readonly<Record<Outcome, number>>;
  /** Lines that showed a message, over all recipients. */
  readonly sightings: number;
  /** Confirmed messages that reached a recipient as "still stored" rather than shown. */
  readonly stillStored: number;
}

type Format = "direct" | "stored-direct" | "channel" | "stored-channel";

interface Sighting {
  readonly message: SentMessage;
  readonly format: Format;
  /** Which registration of which process showed it: a new `reg` starts a new one. */
  readonly session: number;
  readonly line: string;
}

const PROMPT = ">>> ";
const NAME = "[A-Za-z0-9][A-Za-z0-9_.-]{0,31}";
const TIMESTAMP = "\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}Z";
const LIVE_CHANNEL = new RegExp(`^\\[Channel_Message (${NAME}): ([\\s\\S]*)\\]$`);
const STORED_CHANNEL = new RegExp(`^Channel-Message (${NAME}): ${TIMESTAMP} ([\\s\\S]*)$`);
const STORED_DIRECT = new RegExp(`^(${NAME}): ${TIMESTAMP} ([\\s\\S]*)$`);
const LIVE_DIRECT = new RegExp(`^(${NAME}): ([\\s\\S]*)$`);

export function stripPrompt(line: string): string {
  return line.startsWith(PROMPT) ? line.slice(PROMPT.length) : line;
}

const sameName = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();

/** The sender's final word on a message, from the lines it was shown about it. */
export function outcomeOf(message: Pick<SentMessage, "to" | "told">): Outcome {
  const told = message.told.map(stripPrompt);
  const has = (line: string): boolean => told.includes(line);
  if (message.to === undefined) {
    if (has(notices.channelReceivedByServer)) return "posted";
    if (has(notices.channelServerNotResponding) || has(notices.serverNotResponding)) {
      return "failed";
    }
  } else {
    const to = message.to;
    if (told.some((line) => sameName(line, notices.messageReceivedBy(to)))) return "delivered";
    if (has(notices.savedByServer)) return "saved";
    if (told.some((line) => sameName(line, notices.clientExists(to)))) return "exists";
    if (has(notices.serverNotResponding)) return "failed";
  }
  const answered = told.some(
    (line) =>
      line.startsWith("[") &&
      line !== notices.tableUpdated &&
      !line.startsWith("[No ACK from ") &&
      !line.startsWith("[Channel_Message "),
  );
  return answered ? "refused" : "untold";
}

function isConfirmed(outcome: Outcome): boolean {
  return outcome === "delivered" || outcome === "saved" || outcome === "posted";
}

function isStoredFormat(format: Format): boolean {
  return format === "stored-direct" || format === "stored-channel";
}

function intendedFor(message: SentMessage, name: string): boolean {
  return message.to === undefined ? !sameName(message.sender, name) : sameName(message.to, name);
}

/** Reads one line as a message sighting: undefined if it shows no message of the run. */
function readLine(
  line: string,
  byText: ReadonlyMap<string, SentMessage>,
): { message: SentMessage | undefined; format: Format; sender: string } | undefined {
  const candidates: [Format, RegExp][] = [
    ["channel", LIVE_CHANNEL],
    ["stored-channel", STORED_CHANNEL],
    ["stored-direct", STORED_DIRECT],
    ["direct", LIVE_DIRECT],
  ];
  let firstMatch: { format: Format; sender: string } | undefined;
  for (const [format, pattern] of candidates) {
    const match = pattern.exec(line);
    if (!match) continue;
    const sender = match[1] ?? "";
    const message = byText.get(match[2] ?? "");
    if (message) return { message, format, sender };
    firstMatch ??= { format, sender };
  }
  return firstMatch ? { message: undefined, ...firstMatch } : undefined;
}

/** A copy that only the store can have made: each sighting in its own registration, all after the first from the store. */
function isShownAgainFromStore(sightings: readonly Sighting[]): boolean {
  const [first, ...later] = sightings;
  if (!first) return false;
  const sessions = new Set(sightings.map((sighting) => sighting.session));
  return (
    later.every((sighting) => isStoredFormat(sighting.format)) && sessions.size === sightings.length
  );
}

export function checkHistory(history: History): HistoryReport {
  const problems: string[] = [];
  const shownAgainFromStore: string[] = [];
  const byText = new Map<string, SentMessage>();
  for (const message of history.sent) {
    if (byText.has(message.text))
      problems.push(`two messages have the text ${JSON.stringify(message.text)}`);
    byText.set(message.text, message);
  }

  // Who saw what, in which form, in which session.
  const seen = new Map<string, Map<SentMessage, Sighting[]>>();
  let sightingCount = 0;
  for (const name of history.names) {
    const byMessage = new Map<SentMessage, Sighting[]>();
    seen.set(name, byMessage);
    let session = 0;
    for (const lines of history.shown[name] ?? []) {
      session++;
      let announced = false;
      for (const raw of lines) {
        const line = stripPrompt(raw);
        if (line === notices.welcome) {
          session++;
          announced = false;
          continue;
        }
        if (line === notices.youHaveMessages) announced = true;
        const read = readLine(line, byText);
        if (!read) continue;
        const { message, format, sender } = read;
        if (!message) {
          // A name and a colon, but no text anybody sent: only a message line has that shape.
          problems.push(`${name} was shown something never sent: ${JSON.stringify(line)}`);
          continue;
        }
        sightingCount++;
        byMessage.set(message, [
          ...(byMessage.get(message) ?? []),
          { message, format, session, line },
        ]);
        if (!intendedFor(message, name)) {
          problems.push(
            `${name} was shown a message meant for someone else: ${JSON.stringify(line)}`,
          );
        }
        const channel = format === "channel" || format === "stored-channel";
        if (channel !== (message.to === undefined) || !sameName(sender, message.sender)) {
          problems.push(`${name} was shown a message in the wrong form: ${JSON.stringify(line)}`);
        }
        if (isStoredFormat(format) && !announced) {
          problems.push(
            `${name} was shown a stored message before [You have messages]: ${JSON.stringify(line)}`,
          );
        }
      }
    }
  }

  const stored = new Map<string, number>();
  const storedKey = (recipient: string, text: string): string =>
    `${recipient.toLowerCase()}\u0000${text}`;
  for (const held of history.storedAtEnd ?? []) {
    const message = byText.get(held.text);
    if (!message) {
      problems.push(
        `the server holds a message never sent, for ${held.recipient}: ${JSON.stringify(held.text)}`,
      );
      continue;
    }
    if (!intendedFor(message, held.recipient) || !sameName(held.sender, message.sender)) {
      problems.push(
        `the server holds ${JSON.stringify(held.text)} for ${held.recipient}, who is not its recipient`,
      );
    }
    const key = storedKey(held.recipient, held.text);
    stored.set(key, (stored.get(key) ?? 0) + 1);
  }

  const outcomes: Record<Outcome, number> = {
    delivered: 0,
    saved: 0,
    posted: 0,
    exists: 0,
    failed: 0,
    refused: 0,
    untold: 0,
  };
  let stillStored = 0;
  for (const message of history.sent) {
    const outcome = outcomeOf(message);
    outcomes[outcome]++;
    const label = `${JSON.stringify(message.text)} from ${message.sender} (${outcome})`;
    if (outcome === "untold")
      problems.push(`${label}: its sender was never told what became of it`);
    for (const name of history.names) {
      if (!intendedFor(message, name)) continue;
      const sightings = seen.get(name)?.get(message) ?? [];
      const held = stored.get(storedKey(name, message.text)) ?? 0;
      const lines = sightings.map((sighting) => sighting.line).join(" | ");
      if (held > 1) problems.push(`${label} is stored ${held} times for ${name}`);
      if (sightings.length > 1) {
        if (isShownAgainFromStore(sightings)) {
          shownAgainFromStore.push(`${name} was shown ${label} again from the store: ${lines}`);
        } else {
          problems.push(`${name} was shown ${label} ${sightings.length} times: ${lines}`);
        }
      }
      if (sightings.length > 0 && held > 0) {
        shownAgainFromStore.push(
          `${name} was shown ${label}, and it is still stored for them: ${lines}`,
        );
      }
      if (isConfirmed(outcome) && sightings.length === 0) {
        if (held === 1) stillStored++;
        else problems.push(`${label} was never shown to ${name}, nor is it stored for them`);
      }
    }
  }
  return { problems, shownAgainFromStore, outcomes, sightings: sightingCount, stillStored };
}
