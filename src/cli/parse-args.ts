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
export const DEFAULT_RETENTION_DAYS = 30;
export const DEFAULT_STORE_QUOTA = 100_000;
export const DEFAULT_HTTP_BIND = "127.0.0.1";
export const NODE_NAME_RULE =
  "1 to 64 characters: ASCII letters, digits, _ . : - [ ], starting with a letter or digit";

const CLIENT_ARGUMENTS = ["<name>", "<server-ip>", "<server-port>", "<client-port>"] as const;

/**
 * Validates what follows `-s`: `<port> [--bind ADDRESS] [--data-dir DIR] [--quiet | --verbose]
 * [--simulate FAULTS] [--http PORT [--http-bind ADDRESS]] [--node-name NAME] [--redis URL]`.
 * `CHATAPP_REDIS_URL` in `env` stands for `--redis` when the flag is not given.
 */
export function parseServerArgs(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>> = {},
): ServerOptions {
  function refuse(message: string): never {
    throw new UsageError(message, USAGE_SERVER);
  }
  const positionals: string[] = [];
  let dataDir: string | undefined;
  let bind: string | undefined;
  let simulate: string | undefined;
  let retentionDays: number | undefined;
  let storeQuota: number | undefined;
  let httpPort: number | undefined;
  let httpBind: string | undefined;
  let nodeName: string | undefined;
  let redis: string | undefined;
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
      case "--bind": {
        const value = inlineValue ?? args[i + 1];
        if (inlineValue === undefined) {
          if (value === undefined || isOption(value)) {
            refuse("--bind needs an address, as in --bind 127.0.0.1");
          }
          i++;
        }
        if (bind !== undefined) refuse("--bind is given twice");
        bind = parseBindAddress(value ?? "");
        break;
      }
      case "--http": {
        const value = inlineValue ?? args[i + 1];
        if (inlineValue === undefined) {
          if (value === undefined || isOption(value)) {
            refuse("--http needs a TCP port, as in --http 9100");
          }
          i++;
        }
        if (httpPort !== undefined) refuse("--http is given twice");
        httpPort = parsePort("--http", value ?? "", USAGE_SERVER);
        break;
      }
      case "--http-bind": {
        const value = inlineValue ?? args[i + 1];
        if (inlineValue === undefined) {
          if (value === undefined || isOption(value)) {
            refuse("--http-bind needs an address, as in --http-bind 127.0.0.1");
          }
          i++;
        }
        if (httpBind !== undefined) refuse("--http-bind is given twice");
        httpBind = parseIp(value ?? "", {
          label: "--http-bind",
          usage: USAGE_SERVER,
          forBind: true,
        });
        break;
      }
      case "--node-name": {
        const value = inlineValue ?? args[i + 1];
        if (inlineValue === undefined) {
          if (value === undefined || isOption(value)) {
            refuse("--node-name needs a name, as in --node-name chat-1");
          }
          i++;
        }
        if (nodeName !== undefined) refuse("--node-name is given twice");
        if (!isValidNodeName(value ?? "")) {
          refuse(
            `--node-name ${quoteArg(value ?? "")} is not allowed: a node name is ${NODE_NAME_RULE}`,
          );
        }
        nodeName = value;
        break;
      }
      case "--redis": {
        const value = inlineValue ?? args[i + 1];
        if (inlineValue === undefined) {
          if (value === undefined || isOption(value)) {
            refuse("--redis needs a URL, as in --redis redis://127.0.0.1:6379/0");
          }
          i++;
        }
        if (redis !== undefined) refuse("--redis is given twice");
        redis = parseRedisUrl("--redis", value ?? "", refuse);
        break;
      }
      case "--simulate": {
        if (simulate !== undefined) refuse("--simulate is given twice");
        simulate = simulateValue(inlineValue ?? args[++i], USAGE_SERVER);
        break;
      }
      case "--retention":
      case "--store-quota": {
        const example = flag === "--retention" ? "--retention 30" : "--store-quota 100000";
        const what = flag === "--retention" ? "a number of days" : "a number of messages";
        const value = inlineValue ?? args[i + 1];
        if (inlineValue === undefined) {
          if (value === undefined || isOption(value))
            refuse(`${flag} needs ${what}, as in ${example}`);
          i++;
        }
        const amount = parseWholeNumber(value ?? "");
        if (amount === undefined || amount < 1) {
          refuse(
            `${flag} must be ${what} from 1 up, as in ${example}; got ${quoteArg(value ?? "")}`,
          );
        }
        if (flag === "--retention") {
          if (retentionDays !== undefined) refuse("--retention is given twice");
          retentionDays = amount;
        } else {
          if (storeQuota !== undefined) refuse("--store-quota is given twice");
          storeQuota = amount;
        }
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
          `unknown option ${quoteArg(arg)} (server options: --bind, --data-dir, --retention, --store-quota, --quiet, --verbose, --simulate, --http, --http-bind, --node-name, --redis)`,
        );
    }
  }

  if (quiet && verbose) refuse("--quiet and --verbose cannot be used together");
  if (httpBind !== undefined && httpPort === undefined) {
    refuse("--http-bind needs --http, as in --http 9100 --http-bind 127.0.0.1");
  }
  const [portText, extra] = positionals;
  if (portText === undefined) refuse("missing argument <port>");
  if (extra !== undefined) {
    refuse(
      `unexpected argument ${quoteArg(extra)} (server mode takes 1 argument, got ${positionals.length})`,
    );
  }
  const logLevel: LogLevel = quiet ? "quiet" : verbose ? "verbose" : "normal";
  const port = parsePort("port", portText, USAGE_SERVER);
  return {
    port,
    ...(bind === undefined ? {} : { bind }),
    dataDir: dataDir ?? DEFAULT_DATA_DIR,
    retentionDays: retentionDays ?? DEFAULT_RETENTION_DAYS,
    storeQuota: storeQuota ?? DEFAULT_STORE_QUOTA,
    logLevel,
    ...(simulate === undefined ? {} : { simulate: parseSimulate(simulate, port, USAGE_SERVER) }),
    ...(httpPort === undefined
      ? {}
      : { http: { port: httpPort, bind: httpBind ?? DEFAULT_HTTP_BIND } }),
    ...(nodeName === undefined ? {} : { nodeName }),
    ...redisOption(redis, env, refuse),
  };
}

function redisOption(
  flag: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  refuse: (message: string) => never,
): { readonly redis?: string } {
  if (flag !== undefined) return { redis: flag };
  const fromEnv = env.CHATAPP_REDIS_URL;
  if (fromEnv === undefined || fromEnv === "") return {};
  return { redis: parseRedisUrl("CHATAPP_REDIS_URL", fromEnv, refuse) };
}

/** `redis://[user:password@]host[:port][/db]` or `rediss://`; checked before anything connects. */
export function parseRedisUrl(
  label: string,
  text: string,
  refuse: (message: string) => never,
): string {
  const example = "redis://127.0.0.1:6379/0";
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return refuse(`${label} must be a Redis URL, as in ${example}; got ${quoteArg(text)}`);
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
    return refuse(
      `${label} must start with redis:// or rediss://, as in ${example}; got ${quoteArg(text)}`,
    );
  }
  if (url.hostname === "") return refuse(`${label} needs a host, as in ${example}`);
  if (!/^(\/|\/[0-9]{1,2})?$/.test(url.pathname)) {
    return refuse(`${label} may end with a database number only, as in ${example}`);
  }
  return text;
}

/** A node name goes into log lines and metric labels: kept short and plain. */
export function isValidNodeName(name: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9_.:[\]-]{0,63}$/.test(name);
}

/** Validates what follows `--release-name`: `<name> [--data-dir DIR | --redis URL]`. */
export function parseReleaseArgs(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>> = {},
): { name: string; dataDir: string; redis?: string } {
  const [name, ...rest] = args;
  const refuse = (message: string): never => {
    throw new UsageError(message, USAGE_RELEASE);
  };
  if (name === undefined || isOption(name)) return refuse("--release-name needs a name");
  if (!isValidName(name))
    return refuse(`name ${quoteArg(name)} is not allowed: a name is ${NAME_RULE}`);
  let dataDir: string | undefined;
  let redis: string | undefined;
  for (let i = 0; i < rest.length; i++) {
    const { flag, inlineValue } = splitOption(rest[i] ?? "");
    if (flag !== "--data-dir" && flag !== "--redis") {
      return refuse(`unexpected argument ${quoteArg(rest[i] ?? "")}`);
    }
    const value = inlineValue ?? rest[++i];
    if (flag === "--redis") {
      if (value === undefined || value === "") return refuse("--redis needs a URL");
      if (redis !== undefined) return refuse("--redis is given twice");
      redis = parseRedisUrl("--redis", value, refuse);
      continue;
    }
    if (value === undefined || value === "") return refuse("--data-dir needs a directory");
    if (dataDir !== undefined) return refuse("--data-dir is given twice");
    dataDir = value;
  }
  if (redis !== undefined && dataDir !== undefined) {
    return refuse(
      "--data-dir and --redis cannot be used together: the name is in one or the other",
    );
  }
  const fromRedis =
    dataDir === undefined
      ? redis !== undefined
        ? { redis }
        : redisOption(undefined, env, refuse)
      : {};
  return { name, dataDir: dataDir ?? DEFAULT_DATA_DIR, ...fromRedis };
}

/** A whole number written plainly (no sign, no leading zero, no exponent), or undefined. */
function parseWholeNumber(text: string): number | undefined {
  if (!/^(0|[1-9][0-9]{0,14})$/.test(text)) return undefined;
  return Number(text);
}

/** Validates what follows `-c`: `<name> <server-ip> <server-port> <client-port>`. */
export function parseClientArgs(args: readonly string[]): ClientOptions {
  const positionals: string[] = [];
  let simulate: string | undefined;
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
      simulate = simulateValue(inlineValue ?? args[++i], USAGE_CLIENT);
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
  const checkedName = checkName(name);
  const checkedIp = parseServerIp(serverIp);
  const checkedServerPort = parsePort("server-port", serverPort, USAGE_CLIENT);
  const ownPort = parsePort("client-port", clientPort, USAGE_CLIENT);
  return {
    name: checkedName,
    serverIp: checkedIp,
    serverPort: checkedServerPort,
    clientPort: ownPort,
    ...(identity === undefined ? {} : { identity }),
    ...(simulate === undefined ? {} : { simulate: parseSimulate(simulate, ownPort, USAGE_CLIENT) }),
  };
}

function simulateValue(value: string | undefined, usage: string): string {
  if (value === undefined || isOption(value)) {
    throw new UsageError("--simulate needs faults, as in --simulate loss=0.2,dup=0.1", usage);
  }
  return value;
}

/**
 * Without `seed=` the seed is the process's own port: the two sides of a run never
 * share a seed, and the same command line repeats the same faults.
 */
function parseSimulate(value: string, ownPort: number, usage: string): FaultSpec {
  try {
    return parseFaultSpec(value, ownPort);
  } catch (error) {
    if (error instanceof FaultSpecError) throw new UsageError(error.message, usage);
    throw error;
  }
}

/**
 * `label` names the argument in the message: `port`, `server-port` or `client-port`.
 * A leading zero is refused, as in an IPv4 address, where some tools read it as octal.
 */
export function parsePort(label: string, text: string, usage: string): number {
  if (/^0+[1-9][0-9]*$/.test(text)) {
    const plain = text.replace(/^0+/, "");
    throw new UsageError(`${label} ${quoteArg(text)} has a leading zero; write ${plain}`, usage);
  }
  const port = /^[1-9][0-9]{0,4}$/.test(text) ? Number(text) : Number.NaN;
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
  return parseIp(text, { label: "server-ip", usage: USAGE_CLIENT, forBind: false });
}

/**
 * The address for `--bind`: the same rules as the server IP, except that the
 * unspecified addresses `0.0.0.0` (all IPv4 interfaces) and `::` (all) are allowed.
 */
export function parseBindAddress(text: string): string {
  return parseIp(text, { label: "--bind", usage: USAGE_SERVER, forBind: true });
}

interface IpRules {
  readonly label: string;
  readonly usage: string;
  readonly forBind: boolean;
}

function parseIp(text: string, rules: IpRules): string {
  const { label, usage, forBind } = rules;
  function refuse(why: string): never {
    throw new UsageError(`${label} ${quoteArg(text)} ${why}`, usage);
  }
  const notOwnAddress = forBind
    ? "give an address of this machine"
    : "give the address of the machine the server runs on";

  if (text === "") throw new UsageError(`${label} must not be empty`, usage);
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
    if (forBind && text === "0.0.0.0") return text;
    if (first === 0) {
      refuse(
        forBind
          ? "is not an address of this machine; 0.0.0.0 means all IPv4 interfaces"
          : "is not a destination address; for a server on this machine use 127.0.0.1",
      );
    }
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
    if (/^[0:]+$/.test(literal)) {
      if (forBind) return "::";
      refuse("is the unspecified address; for a server on this machine use ::1");
    }
    if (literal.startsWith("ff")) refuse(`is a multicast address; ${notOwnAddress}`);
    return literal;
  }

  const looksLikeHostName = /^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.?$/.test(text);
  throw new UsageError(
    `${label} must be an IPv4 address such as 127.0.0.1, an IPv6 address or localhost, got ${quoteArg(text)}` +
      (looksLikeHostName ? " (host names other than localhost are not looked up)" : ""),
    usage,
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
