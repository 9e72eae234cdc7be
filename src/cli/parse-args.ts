import { isIPv6 } from "node:net";
import { type FaultSpec, FaultSpecError, parseFaultSpec } from "../io/fault-injection.ts";
import { MAX_NAME_LENGTH } from "../protocol/messages.ts";
import { isValidName, NAME_RULE } from "../protocol/names.ts";
import type { ClientOptions, LogLevel, ServerOptions } from "./options.ts";
import { quoteArg } from "./quote-arg.ts";
import { USAGE_CLIENT, USAGE_RELEASE, USAGE_SERVER } from "./usage.ts";
import { UsageError } from "./usage-error.ts";

export const PORT_MIN = 1024;
export const PORT_MAX = 65535;
export const DEFAULT_DATA_DIR = "./chatapp-data";

const CLIENT_ARGUMENTS = ["<name>", "<server-ip>", "<server-port>", "<client-port>"] as const;

/** Validates what follows `-s`: `<port> [--data-dir DIR] [--quiet | --verbose]`. */
export function parseServerArgs(args: readonly string[]): ServerOptions {
  function refuse(message: string): never {
    throw new UsageError(message, USAGE_SERVER);
  }
  const positionals: string[] = [];
  let dataDir: string | undefined;
  let simulate: FaultSpec | undefined;
  let quiet = false;
  let verbose = false;

  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? "";
    if (arg === "--") {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (!isOption(arg)) {
      positionals.push(arg);
      continue;
    }
    const { flag, inlineValue } = splitOption(arg);
    switch (flag) {
      case "--data-dir": {
        let value = inlineValue;
        if (value === undefined) {
          const next = args[i + 1];
          if (next === undefined || isOption(next)) {
            refuse("--data-dir needs a directory, as in --data-dir ./chatapp-data");
          }
          value = next;
          i++;
        }
        if (value === "") refuse("--data-dir must not be empty");
        if (dataDir !== undefined) refuse("--data-dir is given twice");
        dataDir = value;
        break;
      }
      case "--simulate": {
        if (simulate !== undefined) refuse("--simulate is given twice");
        const value = inlineValue ?? args[++i];
        simulate = parseSimulate(value, USAGE_SERVER);
        break;
      }
      case "--quiet":
      case "--verbose":
        if (inlineValue !== undefined) refuse(`${flag} takes no value, got ${quoteArg(arg)}`);
        if (flag === "--quiet") quiet = true;
        else verbose = true;
        break;
      default:
        refuse(
          `unknown option ${quoteArg(arg)} (server options: --data-dir, --quiet, --verbose, --simulate)`,
        );
    }
  }

  if (quiet && verbose) refuse("--quiet and --verbose cannot be used together");
  const [portText, extra] = positionals;
  if (portText === undefined) refuse("missing argument <port>");
  if (extra !== undefined) {
    refuse(
      `unexpected argument ${quoteArg(extra)} (server mode takes 1 argument, got ${positionals.length})`,
    );
  }
  const logLevel: LogLevel = quiet ? "quiet" : verbose ? "verbose" : "normal";
  return {
    port: parsePort("port", portText, USAGE_SERVER),
    dataDir: dataDir ?? DEFAULT_DATA_DIR,
    logLevel,
    ...(simulate ? { simulate } : {}),
  };
}

/** Validates what follows `--release-name`: `<name> [--data-dir DIR]`. */
export function parseReleaseArgs(args: readonly string[]): { name: string; dataDir: string } {
  const [name, ...rest] = args;
  const refuse = (message: string): never => {
    throw new UsageError(message, USAGE_RELEASE);
  };
  if (name === undefined || isOption(name)) return refuse("--release-name needs a name");
  if (!isValidName(name))
    return refuse(`name ${quoteArg(name)} is not allowed: a name is ${NAME_RULE}`);
  let dataDir: string | undefined;
  for (let i = 0; i < rest.length; i++) {
    const { flag, inlineValue } = splitOption(rest[i] ?? "");
    if (flag !== "--data-dir") return refuse(`unexpected argument ${quoteArg(rest[i] ?? "")}`);
    const value = inlineValue ?? rest[++i];
    if (value === undefined || value === "") return refuse("--data-dir needs a directory");
    if (dataDir !== undefined) return refuse("--data-dir is given twice");
    dataDir = value;
  }
  return { name, dataDir: dataDir ?? DEFAULT_DATA_DIR };
}

/** Validates what follows `-c`: `<name> <server-ip> <server-port> <client-port>`. */
export function parseClientArgs(args: readonly string[]): ClientOptions {
  const positionals: string[] = [];
  let simulate: FaultSpec | undefined;
  let identity: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? "";
    if (arg === "--") {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (isOption(arg)) {
      const { flag, inlineValue } = splitOption(arg);
      if (flag === "--identity") {
        const value = inlineValue ?? args[++i];
        if (value === undefined || isOption(value)) {
          throw new UsageError(
            "--identity needs a file, as in --identity ./alice.identity",
            USAGE_CLIENT,
          );
        }
        if (value === "") throw new UsageError("--identity must not be empty", USAGE_CLIENT);
        if (identity !== undefined) {
          throw new UsageError("--identity is given twice", USAGE_CLIENT);
        }
        identity = value;
        continue;
      }
      if (flag !== "--simulate") {
        throw new UsageError(
          `unknown option ${quoteArg(arg)} (client options: --identity, --simulate)`,
          USAGE_CLIENT,
        );
      }
      if (simulate !== undefined) throw new UsageError("--simulate is given twice", USAGE_CLIENT);
      simulate = parseSimulate(inlineValue ?? args[++i], USAGE_CLIENT);
      continue;
    }
    positionals.push(arg);
  }

  const [name, serverIp, serverPort, clientPort, extra] = positionals;
  if (
    name === undefined ||
    serverIp === undefined ||
    serverPort === undefined ||
    clientPort === undefined
  ) {
    const missing = CLIENT_ARGUMENTS[positionals.length] ?? "";
    throw new UsageError(
      `missing argument ${missing} (client mode takes 4 arguments, got ${positionals.length})`,
      USAGE_CLIENT,
    );
  }
  if (extra !== undefined) {
    throw new UsageError(
      `unexpected argument ${quoteArg(extra)} (client mode takes 4 arguments, got ${positionals.length})`,
      USAGE_CLIENT,
    );
  }
  return {
    name: checkName(name),
    serverIp: parseServerIp(serverIp),
    serverPort: parsePort("server-port", serverPort, USAGE_CLIENT),
    clientPort: parsePort("client-port", clientPort, USAGE_CLIENT),
    ...(identity === undefined ? {} : { identity }),
    ...(simulate ? { simulate } : {}),
  };
}

/** Without `seed=`, runs are repeatable with seed 1. */
function parseSimulate(value: string | undefined, usage: string): FaultSpec {
  if (value === undefined || isOption(value)) {
    throw new UsageError("--simulate needs faults, as in --simulate loss=0.2,dup=0.1", usage);
  }
  try {
    return parseFaultSpec(value, 1);
  } catch (error) {
    if (error instanceof FaultSpecError) throw new UsageError(error.message, usage);
    throw error;
  }
}

/** `label` names the argument in the message: `port`, `server-port` or `client-port`. */
export function parsePort(label: string, text: string, usage: string): number {
  const port = /^[0-9]{1,5}$/.test(text) ? Number(text) : Number.NaN;
  if (!(port >= PORT_MIN && port <= PORT_MAX)) {
    throw new UsageError(
      `${label} must be an integer from ${PORT_MIN} to ${PORT_MAX}, got ${quoteArg(text)}`,
      usage,
    );
  }
  return port;
}

/**
 * Returns an IP literal: the UDP socket takes literals only, and names other
 * than `localhost` are refused rather than looked up, so nothing waits on DNS.
 */
export function parseServerIp(text: string): string {
  function refuse(why: string): never {
    throw new UsageError(`server-ip ${quoteArg(text)} ${why}`, USAGE_CLIENT);
  }
  const notOwnAddress = "give the address of the machine the server runs on";

  if (text === "") throw new UsageError("server-ip must not be empty", USAGE_CLIENT);
  if (text.toLowerCase() === "localhost") return "127.0.0.1";

  if (/^[0-9.]+$/.test(text)) {
    const parts = text.split(".");
    if (parts.length !== 4 || parts.some((part) => part === "")) {
      refuse("is not a valid IPv4 address: it needs four numbers from 0 to 255 separated by dots");
    }
    for (const part of parts) {
      if (part.length > 1 && part.startsWith("0")) {
        refuse(`is not a valid IPv4 address: "${part}" has a leading zero`);
      }
      if (Number(part) > 255) refuse(`is not a valid IPv4 address: ${part} is greater than 255`);
    }
    const first = Number(parts[0]);
    if (first === 0)
      refuse(`is not a destination address; for a server on this machine use 127.0.0.1`);
    if (text === "255.255.255.255") refuse(`is the broadcast address; ${notOwnAddress}`);
    if (first >= 224 && first <= 239) refuse(`is a multicast address; ${notOwnAddress}`);
    if (first >= 240) refuse(`is a reserved address; ${notOwnAddress}`);
    return text;
  }

  if (text.includes(":")) {
    const literal = (
      text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text
    ).toLowerCase();
    if (!isIPv6(literal)) refuse("is not a valid IPv6 address");
    if (/^[0:]+$/.test(literal))
      refuse("is the unspecified address; for a server on this machine use ::1");
    if (literal.startsWith("ff")) refuse(`is a multicast address; ${notOwnAddress}`);
    return literal;
  }

  const looksLikeHostName = /^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.?$/.test(text);
  throw new UsageError(
    `server-ip must be an IPv4 address such as 127.0.0.1, an IPv6 address or localhost, got ${quoteArg(text)}` +
      (looksLikeHostName ? " (host names other than localhost are not looked up)" : ""),
    USAGE_CLIENT,
  );
}

/** The server also checks names; refusing here saves a round trip and says exactly why. */
export function checkName(name: string): string {
  if (isValidName(name)) return name;
  function refuse(why: string): never {
    throw new UsageError(
      `name ${quoteArg(name)} is not allowed: ${why}; a name is ${NAME_RULE}`,
      USAGE_CLIENT,
    );
  }
  if (name === "") refuse("it is empty");
  const badCharacter = [...name].find((char) => !/^[A-Za-z0-9_.-]$/.test(char));
  if (badCharacter !== undefined) refuse(`it contains ${quoteArg(badCharacter)}`);
  if (name.length > MAX_NAME_LENGTH) refuse(`it has ${name.length} characters`);
  return refuse(`it starts with ${quoteArg(name.slice(0, 1))}`);
}

/** `-5` is a (bad) value, not an option, so the port check can say what is wrong with it. */
function isOption(arg: string): boolean {
  return arg.startsWith("-") && arg !== "-" && !/^-[0-9]/.test(arg);
}

function splitOption(arg: string): { flag: string; inlineValue: string | undefined } {
  const equals = arg.indexOf("=");
  return equals === -1
    ? { flag: arg, inlineValue: undefined }
    : { flag: arg.slice(0, equals), inlineValue: arg.slice(equals + 1) };
}
