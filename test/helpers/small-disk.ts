/**
 * A server whose data directory is a 1 MB tmpfs of its own (a private mount
 * namespace), and a way to fill that disk from outside while it runs: how tests
 * make the store refuse writes. Needs what `canMountPrivately()` checks.
 */
import { closeSync, openSync, writeSync } from "node:fs";
import { onPrivateTmpfs } from "./private-mount.ts";
import { binaryProgram, type Program } from "./process-driver.ts";

export function serverOnSmallDisk(mountPoint: string): Program {
  return {
    ...binaryProgram,
    label: "dist/chatapp on a 1 MB tmpfs",
    command: onPrivateTmpfs(mountPoint, "1m", binaryProgram.command),
    env: { ...binaryProgram.env, PATH: "/usr/sbin:/usr/bin:/sbin:/bin" },
  };
}

/** Writes into `path` (the server's own view of the mount: /proc/<pid>/root/…) until the disk is full. */
export function fillDisk(path: string): void {
  const fd = openSync(path, "w");
  const chunk = Buffer.alloc(16 * 1024, 0x61);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOSPC") throw error;
  } finally {
    closeSync(fd);
  }
}
