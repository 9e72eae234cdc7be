/** What a user can type at the `>>> ` prompt. */
export type Command =
  | { readonly kind: "send"; readonly to: string; readonly text: string }
  | { readonly kind: "send-all"; readonly text: string }
  | { readonly kind: "dereg"; readonly name: string }
  | { readonly kind: "reg"; readonly name: string }
  | { readonly kind: "list" }
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
  list: "list",
  help: "help",
  quit: "quit",
} as const;

export const helpLines: readonly string[] = [
  `${commandUsage.send}    message one client directly (stored by the server if it is away)`,
  `${commandUsage.sendAll}       message every client through the server's channel`,
  `${commandUsage.dereg}            go offline; the server keeps your messages`,
  `${commandUsage.reg}              come back online and get the messages kept for you`,
  `${commandUsage.list}                    show the client table`,
  `${commandUsage.help}                    show this list`,
  `${commandUsage.quit}                    leave without telling the server (as ctrl+c or ctrl+d)`,
];

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

export function parseCommandLine(line: string): ParsedLine {
  const trimmed = line.trim();
  if (trimmed === "") return { kind: "empty" };
  const [word, rest] = firstWord(trimmed);
  switch (word) {
    case "send": {
      const [to, text] = firstWord(rest);
      return to && text ? command({ kind: "send", to, text }) : usage(commandUsage.send);
    }
    case "send_all":
      return rest ? command({ kind: "send-all", text: rest }) : usage(commandUsage.sendAll);
    case "dereg":
    case "reg": {
      const [name, extra] = firstWord(rest);
      if (!name || extra) return usage(commandUsage[word]);
      return command({ kind: word, name });
    }
    case "list":
    case "help":
    case "quit":
      return rest ? usage(commandUsage[word]) : command({ kind: word });
    default:
      return { kind: "unknown", word };
  }
}
