import { join, resolve } from "node:path";
import packageJson from "../../package.json" with { type: "json" };

export const ROOT = resolve(import.meta.dir, "../..");
export const ENTRYPOINT = join(ROOT, "src/main.ts");

export interface ReleaseTarget {
  /** What users see: the file name suffix and `BUILD_TARGET`. */
  readonly name: string;
  readonly bunTarget: Bun.Build.CompileTarget;
  readonly exe: boolean;
}

export const RELEASE_TARGETS: readonly ReleaseTarget[] = [
  { name: "linux-x64", bunTarget: "bun-linux-x64", exe: false },
  { name: "linux-arm64", bunTarget: "bun-linux-arm64", exe: false },
  { name: "linux-x64-musl", bunTarget: "bun-linux-x64-musl", exe: false },
  { name: "darwin-x64", bunTarget: "bun-darwin-x64", exe: false },
  { name: "darwin-arm64", bunTarget: "bun-darwin-arm64", exe: false },
  { name: "windows-x64", bunTarget: "bun-windows-x64", exe: true },
];

export const VERSION = packageJson.version;

/** The short commit of the working tree, or "unknown" outside a git checkout. */
export function gitCommit(): string {
  try {
    const result = Bun.spawnSync(["git", "rev-parse", "--short", "HEAD"], {
      cwd: ROOT,
      stdout: "pipe",
      stderr: "ignore",
    });
    const commit = result.stdout.toString().trim();
    return result.exitCode === 0 && commit !== "" ? commit : "unknown";
  } catch {
    return "unknown";
  }
}

export interface CompileRequest {
  readonly outfile: string;
  /** The build's name for `BUILD_TARGET`, e.g. `linux-x64-musl`. */
  readonly targetName: string;
  /** Omitted: the host. */
  readonly bunTarget?: Bun.Build.CompileTarget;
  readonly bytecode: boolean;
  readonly commit: string;
}

export type CompileResult =
  | { readonly ok: true; readonly outfile: string }
  | { readonly ok: false; readonly bytecodeFailed: boolean; readonly errors: readonly string[] };

/**
 * One standalone executable. ESM is required with bytecode (CJS bytecode breaks
 * consola's `import.meta`); the executable must not read `.env` or `bunfig.toml`
 * from whatever directory the user runs it in.
 */
export async function compile(request: CompileRequest): Promise<CompileResult> {
  const output = await Bun.build({
    entrypoints: [ENTRYPOINT],
    compile: {
      outfile: request.outfile,
      autoloadDotenv: false,
      autoloadBunfig: false,
      autoloadTsconfig: false,
      autoloadPackageJson: false,
      // Collects garbage sooner: a server at 10,000 clients peaked at 1.2 GB without it.
      execArgv: ["--smol"],
      ...(request.bunTarget === undefined ? {} : { target: request.bunTarget }),
    },
    target: "bun",
    format: "esm",
    minify: true,
    bytecode: request.bytecode,
    define: {
      BUILD_VERSION: JSON.stringify(VERSION),
      BUILD_COMMIT: JSON.stringify(request.commit),
      BUILD_TARGET: JSON.stringify(request.targetName),
    },
    throw: false,
  });
  // A failed bytecode step is logged as an error while `success` stays true, and
  // the executable it leaves behind may die at start.
  const errors = output.logs.filter((log) => log.level === "error").map((log) => log.message);
  const outfile = output.outputs.find((artifact) => artifact.kind === "entry-point")?.path;
  if (!output.success || errors.length > 0 || outfile === undefined) {
    return {
      ok: false,
      bytecodeFailed: errors.some((message) => message.includes("Failed to generate bytecode")),
      errors: errors.length > 0 ? errors : ["the build produced no executable"],
    };
  }
  return { ok: true, outfile };
}

/**
 * Runs a fresh executable with `--version` in an empty environment: a build that
 * reports success can still leave a binary that dies at start. Returns its
 * version line.
 */
export function checkStarts(executable: string): string | Error {
  const run = Bun.spawnSync([executable, "--version"], {
    env: { PATH: "/nonexistent" },
    stdout: "pipe",
    stderr: "pipe",
  });
  const out = run.stdout.toString().trim();
  if (run.exitCode !== 0 || !out.startsWith(`chatapp ${VERSION} (`)) {
    const detail = `${out} ${run.stderr.toString().trim()}`.trim();
    return new Error(`${executable} --version failed (exit ${run.exitCode}): ${detail}`);
  }
  return out;
}
