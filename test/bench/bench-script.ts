/**
 * One benchmark run alone (`bun test/bench/<name>.ts [--quick] [--source] ...`): its
 * arguments, the child processes cleaned up on exit or a signal, and an exit code:
 * 0 done, 1 something broke, 2 the arguments were wrong.
 */
import { binaryProgram, ProcessGroup, type Program, sourceProgram } from "./processes.ts";

export interface BenchArguments {
  readonly quick: boolean;
  /** A value for each numeric option given, by its flag (`--clients`). */
  readonly numbers: ReadonlyMap<string, number>;
}

/** A numeric option: what it needs, said in the error when it is wrong. */
export interface NumericOption {
  readonly needs: string;
  readonly wholeNumber: boolean;
}

export async function runBenchAlone(
  name: string,
  usage: string,
  options: Readonly<Record<string, NumericOption>>,
  run: (group: ProcessGroup, program: Program, args: BenchArguments) => Promise<void>,
): Promise<number> {
  let quick = false;
  let source = false;
  const numbers = new Map<string, number>();
  const args = process.argv.slice(2);
  for (let index = 0; index < args.length; index++) {
    const arg = args[index] ?? "";
    const option = options[arg];
    if (arg === "--quick") quick = true;
    else if (arg === "--source") source = true;
    else if (option) {
      const value = Number(args[++index]);
      if (!(value > 0) || (option.wholeNumber && !Number.isInteger(value))) {
        console.error(`${arg} needs ${option.needs}, got ${args[index]}\n${usage}`);
        return 2;
      }
      numbers.set(arg, value);
    } else {
      console.error(`unknown argument ${arg}\n${usage}`);
      return 2;
    }
  }
  const program = source || !binaryProgram ? sourceProgram : binaryProgram;
  const group = new ProcessGroup();
  process.on("exit", () => group.cleanUpNow());
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => void group.cleanUp().finally(() => process.exit(130)));
  }
  try {
    await run(group, program, { quick, numbers });
    return 0;
  } catch (error) {
    console.error(`\n${name}: broken: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  } finally {
    await group.cleanUp();
  }
}
