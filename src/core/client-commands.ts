/** What a user can type at the `>>> ` prompt. */
export type Command =
  | { readonly kind: "send"; readonly to: string; readonly text: string }
  | { readonly kind: "send-all"; readonly text: string }
  | { readonly kind: "dereg"; readonly name: string }
  | { readonly kind: "reg"; readonly name: string }
  | { readonly kind: "list"; readonly prefix: string }
  | { readonly kind: "whois"; readonly name: string }
  | { readonly kind: "trust"; readonly name: string }
  | { readonly kind: "help" }
  | { readonly kind: "quit" };

export type ParsedLine =
  | { readonly kind: "command"; readonly command: Command }
  | { readonly kind: "empty" }
  | { readonly kind: "usage"; readonly usage: string }
  | { readonly kind: "unknown"; readonly word: string };

export const commandUsage = {
  send: "send <name> <message>",
  sendAll: "send_all <message>",
  dereg: "dereg <name>",
  reg: "reg <name>",
  list: "list [<prefix>]",
  whois: "whois <name>",
  trust: "trust <name>",
  help: "help",
  quit: "quit",
} as const;

const helpRows: readonly (readonly [string, string])[] = [
  [commandUsage.send, "message one client directly (stored by the server if it is away)"],
  [commandUsage.sendAll, "message every client through the server's channel"],
  [commandUsage.dereg, "go offline; the server keeps your messages"],
  [commandUsage.reg, "come back online and get the messages kept for you"],
  [commandUsage.list, "show the client table, or only the names that start with <prefix>"],
  [commandUsage.whois, "show a client's address, status and key fingerprint (yours too)"],
  [commandUsage.trust, "accept the new key of a client whose key changed"],
  [commandUsage.help, "show this list"],
  [commandUsage.quit, "leave without telling the server, once messages on their way are done"],
  // The words of the original Python client, for people who arrive with its habits.
  ["showall, exit", "the same as list and quit"],
  ["send <name> : <message>", "also accepted, as is send_all : <message>"],
];

const helpColumn = Math.max(...helpRows.map(([usage]) => usage.length)) + 2;

export const helpLines: readonly string[] = helpRows.map(
  ([usage, what]) => `${usage.padEnd(helpColumn)}${what}`,
);

function command(value: Command): ParsedLine {
  return { kind: "command", command: value };
}

function usage(line: string): ParsedLine {
  return { kind: "usage", usage: line };
}

/** Splits off the first word; the rest keeps its inner spacing, trimmed at both ends. */
function firstWord(text: string): [string, string] {
  const match = /^(\S+)\s*([\s\S]*)$/.exec(text);
  return match ? [match[1] ?? "", (match[2] ?? "").trim()] : ["", ""];
}

/**
 * A message is everything after the one space that separates it from what comes before,
 * spaces at either end included, as typed. A lone `:` there is a separator too
 * (`send y : hi` sends `hi`), but one that starts a word is text (`send y :-)`).
 */
function messageText(afterSeparator: string): string | undefined {
  const colon = /^\s+:(?:\s([\s\S]*))?$/.exec(afterSeparator);
  const text = colon ? (colon[1] ?? "") : afterSeparator.slice(1);
  return text.trim() === "" ? undefined : text;
}

export function parseCommandLine(line: string): ParsedLine {
  const typed = line.trimStart();
  if (typed.trim() === "") return { kind: "empty" };
  const [word = "", afterWord = ""] = /^(\S+)([\s\S]*)$/.exec(typed)?.slice(1) ?? [];
  const rest = afterWord.trim();
  switch (word) {
    case "send": {
      const [to = "", afterName = ""] = /^\s+(\S+)([\s\S]*)$/.exec(afterWord)?.slice(1) ?? [];
      const text = messageText(afterName);
      return to && text !== undefined
        ? command({ kind: "send", to, text })
        : usage(commandUsage.send);
    }
    case "send_all": {
      const text = messageText(afterWord);
      return text === undefined ? usage(commandUsage.sendAll) : command({ kind: "send-all", text });
    }
    case "dereg":
    case "reg":
    case "whois":
    case "trust": {
      const [name, extra] = firstWord(rest);
      if (!name || extra) return usage(commandUsage[word]);
      return command({ kind: word, name });
    }
    case "list":
    case "showall": {
      const [prefix, extra] = firstWord(rest);
      return extra ? usage(commandUsage.list) : command({ kind: "list", prefix });
    }
    case "help":
      return rest ? usage(commandUsage.help) : command({ kind: "help" });
    case "quit":
    case "exit":
      return rest ? usage(commandUsage.quit) : command({ kind: "quit" });
    default:
      return { kind: "unknown", word };
  }
}
