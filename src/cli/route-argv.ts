import { quoteArg } from "./quote-arg.ts";
import { USAGE_ANY } from "./usage.ts";
import { UsageError } from "./usage-error.ts";

export type Route =
  | { readonly kind: "version" }
  /** The operator's `--release-name <name> [--data-dir DIR]`. */
  | { readonly kind: "release-name"; readonly args: string[] }
  /** Handed to citty: help anywhere, or `server`/`client` with the rest of the arguments. */
  | { readonly kind: "command"; readonly rawArgs: string[] };

const HELP_FLAGS = new Set(["--help", "-h"]);
const VERSION_FLAGS = new Set(["--version", "-v"]);
// citty cannot dispatch on a word that starts with "-", so the modes become subcommands.
const MODE_FLAGS = new Map([
  ["-s", "server"],
  ["-c", "client"],
]);
const MODE_WORDS = new Map([
  ["server", "server"],
  ["client", "client"],
]);
/** Options that take a separate value, which the search for the mode must step over. */
const VALUE_OPTIONS = new Set([
  "--bind",
  "--data-dir",
  "--retention",
  "--store-quota",
  "--simulate",
  "--http",
  "--http-bind",
  "--node-name",
  "--redis",
]);
const KNOWN_OPTIONS = new Set([...VALUE_OPTIONS, "--quiet", "--verbose"]);

const chooseMode = "use -s to run a server or -c to run a client";

/**
 * Finds the mode and moves it to the front. It is the first argument, or an `-s` /
 * `-c` after options only: `chatapp --data-dir X -s 5000` is `chatapp -s 5000 --data-dir X`.
 */
export function routeArgv(argv: readonly string[]): Route {
  const [first, ...others] = argv;
  if (first === "--release-name") return { kind: "release-name", args: others };
  if (first === undefined) throw new UsageError(`no mode given: ${chooseMode}`, USAGE_ANY);
  const found = findMode(argv);
  const rest = found ? argv.filter((_, i) => i !== found.index) : argv.slice(1);

  if (argv.some((arg) => HELP_FLAGS.has(arg))) {
    return { kind: "command", rawArgs: [found?.mode ?? first, ...rest] };
  }
  const version = argv.find((arg) => VERSION_FLAGS.has(arg));
  if (version !== undefined) {
    const other = argv.find((arg) => arg !== version);
    if (other !== undefined) {
      throw new UsageError(
        `${version} takes no other arguments, got ${quoteArg(other)}`,
        USAGE_ANY,
      );
    }
    return { kind: "version" };
  }
  if (found === undefined) {
    if (KNOWN_OPTIONS.has(first.split("=", 1)[0] ?? "")) {
      throw new UsageError(`no mode given: ${chooseMode}`, USAGE_ANY);
    }
    const what = first.startsWith("-") ? "unknown option" : "unknown mode";
    throw new UsageError(`${what} ${quoteArg(first)}: ${chooseMode}`, USAGE_ANY);
  }
  return { kind: "command", rawArgs: [found.mode, ...rest] };
}

function findMode(argv: readonly string[]): { mode: string; index: number } | undefined {
  const word = MODE_WORDS.get(argv[0] ?? "");
  if (word !== undefined) return { mode: word, index: 0 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    const mode = MODE_FLAGS.get(arg);
    if (mode !== undefined) return { mode, index: i };
    if (!arg.startsWith("-") || arg === "--") return undefined;
    if (VALUE_OPTIONS.has(arg)) i++;
  }
  return undefined;
}
