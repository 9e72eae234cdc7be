import { afterAll, describe, expect, test } from "bun:test";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isFresh, newestMtime } from "../helpers/fresh-binary.ts";

const scratch = mkdtempSync(join(tmpdir(), "chatapp-fresh-binary-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const HELPER = join(import.meta.dir, "../helpers/fresh-binary.ts");

function touch(path: string, atSeconds: number): void {
  writeFileSync(path, "");
  utimesSync(path, atSeconds, atSeconds);
}

describe("isFresh", () => {
  test("missing, older than a source, or as new as every source", () => {
    const root = mkdtempSync(join(scratch, "root-"));
    const binary = join(root, "chatapp");
    writeFileSync(join(root, "a.ts"), "");
    utimesSync(join(root, "a.ts"), 1000, 1000);
    expect(isFresh(binary, root, ["a.ts"])).toBe(false);

    touch(binary, 2000);
    expect(isFresh(binary, root, ["a.ts"])).toBe(true);

    utimesSync(join(root, "a.ts"), 3000, 3000);
    expect(isFresh(binary, root, ["a.ts"])).toBe(false);
  });

  test("a file deep in a source directory counts", () => {
    const root = mkdtempSync(join(scratch, "root-"));
    const deep = join(root, "src/core");
    mkdirSync(deep, { recursive: true });
    touch(join(deep, "x.ts"), 5000);
    utimesSync(join(root, "src/core"), 1000, 1000);
    utimesSync(join(root, "src"), 1000, 1000);
    expect(newestMtime(join(root, "src"))).toBe(5_000_000);
    touch(join(root, "chatapp"), 4000);
    expect(isFresh(join(root, "chatapp"), root, ["src"])).toBe(false);
  });
});

describe("ensureFreshBinary", () => {
  test("workers starting at once: one builds, the others wait and find it fresh", async () => {
    const binary = join(mkdtempSync(join(scratch, "dist-")), "chatapp");
    const script = `const { ensureFreshBinary } = await import(${JSON.stringify(HELPER)}); console.log(await ensureFreshBinary(${JSON.stringify(binary)}));`;
    const workers = [1, 2, 3].map(() =>
      Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" }),
    );
    const outcomes = await Promise.all(
      workers.map(async (worker) => {
        const [out, err, code] = await Promise.all([
          new Response(worker.stdout).text(),
          new Response(worker.stderr).text(),
          worker.exited,
        ]);
        expect({ code, err }).toEqual({ code: 0, err: "" });
        return out.trim();
      }),
    );
    expect(outcomes.sort()).toEqual(["built", "fresh", "fresh"]);

    const dist = join(binary, "..");
    // Nothing left behind: no lock, no half-built temporary file.
    expect(readdirSync(dist)).toEqual(["chatapp"]);
    expect(statSync(binary).mode & 0o111).not.toBe(0);
    const version = Bun.spawnSync([binary, "--version"], { stdout: "pipe" });
    expect(version.stdout.toString()).toStartWith("chatapp ");
  }, 60_000);
});
