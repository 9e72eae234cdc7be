/**
 * Makes sure dist/chatapp exists and is built from the current sources, so that the
 * end-to-end tests of the binary run on a fresh clone instead of being skipped.
 *
 * Several test workers may start at once (`bun test --parallel`, each runs the
 * preload): one builds under a lock while the others wait, and the build goes to a
 * temporary file that is renamed into place, so no test ever sees half a binary.
 */
import {
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { hostTarget } from "../../src/cli/version.ts";
import { checkStarts, compile, gitCommit, ROOT } from "../../src/tools/build-config.ts";

export const BINARY_PATH = join(ROOT, "dist/chatapp");

/** What the binary is built from: a change to any of these makes it stale. */
const SOURCES = ["src", "package.json", "bun.lock"];
const LOCK_WAIT_MS = 120_000;
const ORPHAN_LOCK_MS = 10_000;

/** The newest modification time (epoch ms) of a file or of any file under a directory. */
export function newestMtime(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs;
  for (const entry of readdirSync(path)) {
    newest = Math.max(newest, newestMtime(join(path, entry)));
  }
  return newest;
}

/** True when `binary` exists and is no older than every file of `sources` (paths under `root`). */
export function isFresh(binary: string, root = ROOT, sources = SOURCES): boolean {
  let builtAt: number;
  try {
    builtAt = statSync(binary).mtimeMs;
  } catch {
    return false;
  }
  return sources.every((source) => newestMtime(join(root, source)) <= builtAt);
}

export type BinaryOutcome = "fresh" | "built";

/** Builds dist/chatapp unless it is fresh; throws (failing the test run) when the build fails. */
export async function ensureFreshBinary(binary = BINARY_PATH): Promise<BinaryOutcome> {
  if (isFresh(binary)) return "fresh";
  const dist = join(binary, "..");
  mkdirSync(dist, { recursive: true });
  const lock = join(dist, ".build-lock");
  await acquireLock(lock);
  try {
    // Another worker may have built it while this one waited for the lock.
    if (isFresh(binary)) return "fresh";
    await buildInto(binary);
    return "built";
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

async function buildInto(binary: string): Promise<void> {
  // Stamped with the start time, so a source saved during the build still counts as newer.
  const startedAt = new Date();
  const temporary = `${binary}.building-${process.pid}`;
  try {
    const result = await compile({
      outfile: temporary,
      targetName: hostTarget(),
      bytecode: true,
      commit: gitCommit(),
    });
    if (!result.ok) {
      throw new Error(`could not build ${binary} for the tests: ${result.errors.join("; ")}`);
    }
    const started = checkStarts(result.outfile);
    if (started instanceof Error) throw started;
    utimesSync(result.outfile, startedAt, startedAt);
    renameSync(result.outfile, binary);
  } finally {
    rmSync(temporary, { force: true });
  }
}

/** A directory as a lock: mkdir is atomic. A lock left by a process that died is taken over. */
async function acquireLock(lock: string): Promise<void> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, "pid"), String(process.pid));
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    if (lockHolderIsGone(lock)) {
      rmSync(lock, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `waited ${LOCK_WAIT_MS / 1000} s for another build of dist/chatapp (${lock})`,
      );
    }
    await Bun.sleep(50);
  }
}

function lockHolderIsGone(lock: string): boolean {
  let pid: number;
  try {
    pid = Number(readFileSync(join(lock, "pid"), "utf8"));
  } catch {
    // Its pid is written right after the mkdir: missing for long, the holder died in between.
    return lockAgeMs(lock) > ORPHAN_LOCK_MS;
  }
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ESRCH";
  }
}

function lockAgeMs(lock: string): number {
  try {
    return Date.now() - statSync(lock).mtimeMs;
  } catch {
    return 0;
  }
}
