import { FAULT_SPEC_SYNTAX } from "../io/fault-injection.ts";
import { NAME_RULE } from "../protocol/names.ts";
import {
  DEFAULT_DATA_DIR,
  DEFAULT_HTTP_BIND,
  DEFAULT_RETENTION_DAYS,
  DEFAULT_STORE_QUOTA,
  PORT_MAX,
  PORT_MIN,
} from "./parse-args.ts";
import { USAGE_CLIENT } from "./usage.ts";

/** Help is written for an 80-column terminal. */
export const HELP_WIDTH = 80;
/** Where every description starts, in every table of every help. */
const TERM_WIDTH = 20;

const portRule = `an integer from ${PORT_MIN} to ${PORT_MAX}, without leading zeros`;
const ipRule = "an IPv4 address such as 127.0.0.1, an IPv6 address such as ::1, or localhost";

type Row = readonly [term: string, description: string];

const simulateRow: Row = [
  "--simulate FAULTS",
  `inject faults into this process's own UDP traffic, for experiments: ${FAULT_SPEC_SYNTAX}; without seed= the seed is this process's port`,
];

const serverOnlyRows: readonly Row[] = [
  [
    "--bind ADDRESS",
    `listen on this address only: ${ipRule}; 0.0.0.0 or :: for all interfaces (the default)`,
  ],
  [
    "--data-dir DIR",
    `where the client table and stored messages are kept (default ${DEFAULT_DATA_DIR})`,
  ],
  [
    "--retention DAYS",
    `forget offline names with nothing stored after this many days (default ${DEFAULT_RETENTION_DAYS})`,
  ],
  [
    "--store-quota N",
    `keep at most N stored messages in all; saves beyond are refused (default ${DEFAULT_STORE_QUOTA.toLocaleString("en-US")})`,
  ],
  [
    "--http PORT",
    "serve GET /healthz and GET /metrics (Prometheus text format) over HTTP on this TCP port; off unless given",
  ],
  [
    "--http-bind ADDRESS",
    `the address --http listens on (default ${DEFAULT_HTTP_BIND}: this machine only); 0.0.0.0 or :: for all interfaces`,
  ],
  [
    "--node-name NAME",
    "this server's name in its metrics (default: the host name and <port>, as in myhost:5000)",
  ],
  [
    "--redis URL",
    "keep the client table and stored messages in Redis instead of SQLite, as in redis://127.0.0.1:6379/0 (also CHATAPP_REDIS_URL)",
  ],
  ["--quiet", "log only warnings and errors"],
  ["--verbose", "log debugging detail too, and each dropped datagram as it arrives"],
];
const serverOptionRows: readonly Row[] = [...serverOnlyRows, simulateRow];

const identityRow: Row = [
  "--identity FILE",
  "the key pair this name registers with, created (mode 0600) on first use; default $XDG_CONFIG_HOME/chatapp/<name>.identity, else ~/.config/chatapp/<name>.identity",
];

const placement = "Options may come before the mode as well: chatapp --data-dir X -s 5000 works.";

export function rootHelp(versionLine: string): string {
  return [
    versionLine,
    "Chat over UDP. The server (-s) keeps the client table, stores messages for",
    "offline clients and relays the group channel; clients (-c) talk to each other",
    "directly.",
    "",
    "Usage:",
    "  chatapp -s <port> [options]",
    "  chatapp -c <name> <server-ip> <server-port> <client-port> [options]",
    "  chatapp --release-name <name> [--data-dir DIR | --redis URL]",
    "                      let a name bind a new key",
    "  chatapp --help | --version",
    "",
    "Arguments:",
    ...table([
      ["<port>", `the server's UDP port, ${portRule}`],
      ["<name>", NAME_RULE],
      ["<server-ip>", `the server's address: ${ipRule}`],
      ["<server-port>", "the server's <port>"],
      ["<client-port>", `the client's own UDP port, ${portRule}`],
    ]),
    "",
    "Server options (-s):",
    ...table(serverOnlyRows),
    "",
    "Client options (-c):",
    ...table([identityRow]),
    "",
    "Options of both modes (-s and -c):",
    ...table([simulateRow]),
    "",
    placement,
    "chatapp -s --help and chatapp -c --help describe one mode.",
  ].join("\n");
}

export function serverHelp(): string {
  return [
    "Usage: chatapp -s <port> [options]",
    "",
    ...wrap(
      "Runs the server: it keeps the client table, stores messages for offline clients and relays the group channel. Stop it with ctrl+c.",
      HELP_WIDTH,
    ),
    "",
    ...table([["<port>", `the UDP port to listen on, ${portRule}`]]),
    "",
    "Options:",
    ...table(serverOptionRows),
    "",
    placement,
  ].join("\n");
}

export function clientHelp(): string {
  return [
    USAGE_CLIENT,
    "",
    ...wrap(
      "Runs a client: it registers <name> with the server, then reads commands at the prompt (type help there for the list). Leave with quit, ctrl+c or ctrl+d.",
      HELP_WIDTH,
    ),
    "",
    ...table([
      ["<name>", NAME_RULE],
      ["<server-ip>", `the server's address: ${ipRule}`],
      ["<server-port>", `the server's UDP port, ${portRule}`],
      ["<client-port>", `the UDP port this client listens on, ${portRule}`],
    ]),
    "",
    "Options:",
    ...table([identityRow, simulateRow]),
    "",
    placement,
  ].join("\n");
}

/**
 * Two columns: terms indented by 2, descriptions from column TERM_WIDTH + 2 and
 * wrapped there; a term too long for its column gets the description below it.
 */
export function table(rows: readonly Row[]): string[] {
  const indent = " ".repeat(2 + TERM_WIDTH);
  const lines: string[] = [];
  for (const [term, description] of rows) {
    const text = wrap(description, HELP_WIDTH - indent.length);
    if (term.length > TERM_WIDTH - 2) {
      lines.push(`  ${term}`);
      for (const line of text) lines.push(`${indent}${line}`);
      continue;
    }
    const [first = "", ...rest] = text;
    lines.push(`  ${term.padEnd(TERM_WIDTH)}${first}`.trimEnd());
    for (const line of rest) lines.push(`${indent}${line}`);
  }
  return lines;
}

/** Breaks text into lines of at most `width` characters at spaces (a longer word stands alone). */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === "" ? word : `${line} ${word}`;
    }
  }
  if (line !== "") lines.push(line);
  return lines;
}
