import { FAULT_SPEC_SYNTAX } from "../io/fault-injection.ts";
import { NAME_RULE } from "../protocol/names.ts";
import { DEFAULT_DATA_DIR, PORT_MAX, PORT_MIN } from "./parse-args.ts";
import { USAGE_CLIENT, USAGE_SERVER } from "./usage.ts";

const portRule = `an integer from ${PORT_MIN} to ${PORT_MAX}`;
const ipRule = "an IPv4 address such as 127.0.0.1, an IPv6 address, or localhost";

const simulateLine = `  --simulate FAULTS  inject faults into this side's UDP traffic for experiments: ${FAULT_SPEC_SYNTAX}`;

const serverOptions = [
  `  --data-dir DIR   where the client table and stored messages are kept (default ${DEFAULT_DATA_DIR})`,
  "  --quiet          log only warnings and errors",
  "  --verbose        log debugging detail as well (dropped datagrams, socket problems)",
  simulateLine,
];

export function rootHelp(versionLine: string): string {
  return [
    versionLine,
    "Chat over UDP: clients talk to each other directly; the server keeps the client",
    "table, stores messages for offline clients and relays the group channel.",
    "",
    "Usage:",
    "  chatapp -s <port> [--data-dir DIR] [--quiet | --verbose]   run the server",
    "  chatapp -c <name> <server-ip> <server-port> <client-port>  run a client",
    "  chatapp --release-name <name> [--data-dir DIR]             let a name bind a new key",
    "  chatapp --help | --version",
    "",
    "Arguments:",
    `  <port>, <server-port>, <client-port>  UDP ports, each ${portRule}`,
    `  <server-ip>  ${ipRule}`,
    `  <name>       ${NAME_RULE}`,
    "",
    "Server options:",
    ...serverOptions,
    "",
    "chatapp -s --help and chatapp -c --help describe one mode.",
  ].join("\n");
}

export function serverHelp(): string {
  return [
    USAGE_SERVER,
    "",
    "Runs the server: it keeps the client table, stores messages for offline clients",
    "and relays the group channel. Stop it with ctrl+c.",
    "",
    `  <port>           the UDP port to listen on, ${portRule}`,
    ...serverOptions,
  ].join("\n");
}

export function clientHelp(): string {
  return [
    USAGE_CLIENT,
    "",
    "Runs a client: it registers <name> with the server, then reads commands at the",
    "prompt (type help there for the list). Leave with quit, ctrl+c or ctrl+d.",
    "",
    `  <name>         ${NAME_RULE}`,
    `  <server-ip>    the server's address: ${ipRule}`,
    `  <server-port>  the server's UDP port, ${portRule}`,
    `  <client-port>  the UDP port this client listens on, ${portRule}`,
    simulateLine,
  ].join("\n");
}
