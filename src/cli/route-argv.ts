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
const MODES = new Map([
  ["-s", "server"],
  ["server", "server"],
  ["-c", "client"],
  ["client", "client"],
]);

export function routeArgv(argv: readonly string[]): Route {
  const [first, ...rest] = argv;
  if (first === undefined) {
    throw new UsageError("no mode given: use -s to run a server or -c to run a client", USAGE_ANY);
  }
  if (first === "--release-name") return { kind: "release-name", args: rest };
  const mode = MODES.get(first);
  if (argv.some((arg) => HELP_FLAGS.has(arg))) {
    return { kind: "command", rawArgs: [mode ?? first, ...rest] };
  }
  if (argv.some((arg) => VERSION_FLAGS.has(arg))) return { kind: "version" };
  if (mode === undefined) {
    const what = first.startsWith("-") ? "unknown option" : "unknown mode";
    throw new UsageError(
      `${what} ${quoteArg(first)}: the first argument must be -s (server) or -c (client)`,
      USAGE_ANY,
    );
  }
  return { kind: "command", rawArgs: [mode, ...rest] };
}
