import { runMain } from "citty";
import { IdentityError } from "../identity/identity-file.ts";
import { runClient } from "../io/client-runtime.ts";
import { BindError, PortInUseError, StoreOpenError } from "../io/errors.ts";
import { releaseName, releaseNameInRedis } from "../io/release-name.ts";
import { runServer } from "../io/server-runtime.ts";
import { describeRedisUrl } from "../store/redis-store.ts";
import { notices } from "../text/notices.ts";
import { sanitiseForTerminal } from "../text/sanitise.ts";
import { createCommands, type Mode } from "./commands.ts";
import { clientHelp, rootHelp, serverHelp } from "./help.ts";
import type { ClientOptions, ServerOptions } from "./options.ts";
import { parseClientArgs, parseReleaseArgs, parseServerArgs } from "./parse-args.ts";
import { routeArgv } from "./route-argv.ts";
import { UsageError } from "./usage-error.ts";
import { formatVersion, versionInfo } from "./version.ts";

export interface CliDeps {
  readonly runServer: (options: ServerOptions) => Promise<number>;
  readonly runClient: (options: ClientOptions) => Promise<number>;
  readonly writeOut: (text: string) => void;
  readonly writeErr: (text: string) => void;
}

const processDeps: CliDeps = {
  runServer,
  runClient,
  // console.log, not stream.write: citty exits right after printing help, and a
  // pending stream write can be cut off by process.exit.
  writeOut: (text) => writeLine(console.log, text),
  writeErr: (text) => writeLine(console.error, text),
};

/**
 * Runs one command line and resolves to the exit code: 0 done, 1 failed at run
 * time, 2 refused arguments. `--help` is the exception: citty exits by itself.
 */
export async function runCli(
  argv: readonly string[],
  deps: CliDeps = processDeps,
): Promise<number> {
  try {
    const route = routeArgv(argv);
    const info = versionInfo();
    if (route.kind === "version") {
      deps.writeOut(formatVersion(info));
      return 0;
    }
    if (route.kind === "release-name") {
      const { name, dataDir, redis } = parseReleaseArgs(route.args, process.env);
      const outcome = redis ? await releaseNameInRedis(redis, name) : releaseName(dataDir, name);
      if (outcome.released === undefined) {
        const where = redis
          ? `Redis at ${describeRedisUrl(redis)}`
          : `the data directory ${dataDir}`;
        deps.writeErr(`chatapp: ${notices.releaseUnknown(name, where)}`);
        return 1;
      }
      deps.writeOut(notices.released(outcome.released, outcome.droppedMessages));
      return 0;
    }

    let exitCode = 0;
    let failure: { readonly error: unknown } | undefined;
    // runMain prints anything thrown from `run` with its stack, so nothing may escape it.
    const runMode = async (mode: Mode, args: readonly string[]): Promise<void> => {
      try {
        exitCode =
          mode === "server"
            ? await deps.runServer(parseServerArgs(args, process.env))
            : await deps.runClient(parseClientArgs(args));
      } catch (error) {
        failure = { error };
      }
    };
    const commands = createCommands(info.version, runMode);
    await runMain(commands.root, {
      rawArgs: route.rawArgs,
      showUsage: async (command) => {
        const shown: unknown = command;
        const help =
          shown === commands.server
            ? serverHelp()
            : shown === commands.client
              ? clientHelp()
              : rootHelp(formatVersion(info));
        deps.writeOut(help);
      },
    });
    return failure === undefined ? exitCode : reportError(failure.error, deps.writeErr);
  } catch (error) {
    return reportError(error, deps.writeErr);
  }
}

/** Prints one reason (and for refused arguments, the usage line); never a stack trace. */
export function reportError(error: unknown, writeErr: (text: string) => void): number {
  if (error instanceof UsageError) {
    writeErr(`chatapp: ${error.message}\n${error.usage}`);
    return 2;
  }
  if (
    error instanceof PortInUseError ||
    error instanceof BindError ||
    error instanceof StoreOpenError ||
    error instanceof IdentityError
  ) {
    writeErr(`chatapp: ${oneLine(error.message)}`);
    return 1;
  }
  const message = error instanceof Error ? error.message : String(error);
  writeErr(`chatapp: internal error: ${oneLine(message)}`);
  return 1;
}

/** The whole program: run the command line, let the output drain, exit with the code. */
export async function runCliAndExit(argv: readonly string[]): Promise<never> {
  const crash = (error: unknown): void => {
    process.exitCode = reportError(error, processDeps.writeErr);
    process.exit();
  };
  process.on("uncaughtException", crash);
  process.on("unhandledRejection", crash);

  process.exitCode = await runCli(argv);
  await Promise.all([drain(process.stdout), drain(process.stderr)]);
  // A runtime may leave a handle open (stdin, a timer); its result is final.
  process.exit();
}

function oneLine(text: string): string {
  return sanitiseForTerminal(text.split("\n", 1)[0] ?? "");
}

function writeLine(print: (text: string) => void, text: string): void {
  try {
    print(text);
  } catch {
    // The reader went away (EPIPE); there is no one left to tell.
  }
}

function drain(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    setTimeout(resolve, 1000).unref();
    try {
      stream.write("", () => resolve());
    } catch {
      resolve();
    }
  });
}
