/**
 * Commands that run in a mount namespace of their own (`unshare -m`), so a test can give
 * one process a small or read-only file system without touching anyone else's. Needs
 * root (CI runs as root); `canMountPrivately()` says whether this machine allows it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export function canMountPrivately(): boolean {
  const probe = mkdtempSync(join(tmpdir(), "chatapp-ns-probe-"));
  try {
    const result = Bun.spawnSync(
      ["unshare", "-m", "--propagation", "private", "mount", "-t", "tmpfs", "tmpfs", probe],
      { stdout: "ignore", stderr: "ignore" },
    );
    return result.exitCode === 0;
  } catch {
    return false;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

/** `command`, with a fresh tmpfs of `size` (as `1m`) mounted at `directory` for it alone. */
export function onPrivateTmpfs(
  directory: string,
  size: string,
  command: readonly string[],
): string[] {
  const script =
    'dir=$1; size=$2; shift 2; mount -t tmpfs -o "size=$size" tmpfs "$dir" && exec "$@"';
  return inPrivateMounts(script, [directory, size, ...command]);
}

/** `command`, with `directory` mounted read-only for it alone. */
export function withReadOnly(directory: string, command: readonly string[]): string[] {
  const script =
    'dir=$1; shift; mount --bind "$dir" "$dir" && mount -o remount,ro,bind "$dir" && exec "$@"';
  return inPrivateMounts(script, [directory, ...command]);
}

/** A shell `script` run with `args` in a mount namespace of its own. */
function inPrivateMounts(script: string, args: readonly string[]): string[] {
  return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", ...args];
}
