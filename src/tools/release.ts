// bun run release: every release target into dist/release, with SHA256SUMS.
import { mkdir, rm, stat } from "node:fs/promises";
import { basename, join, relative } from "node:path";
import { hostTarget } from "../cli/version.ts";
import {
  type CompileResult,
  checkStarts,
  compile,
  gitCommit,
  RELEASE_TARGETS,
  ROOT,
  VERSION,
} from "./build-config.ts";

const releaseDir = join(ROOT, "dist/release");
await rm(releaseDir, { recursive: true, force: true });
await mkdir(releaseDir, { recursive: true });

const commit = gitCommit();
const sums: string[] = [];
for (const target of RELEASE_TARGETS) {
  const started = performance.now();
  const fileName = `chatapp-${VERSION}-${target.name}${target.exe ? ".exe" : ""}`;
  const request = {
    outfile: join(releaseDir, fileName),
    targetName: target.name,
    bunTarget: target.bunTarget,
    commit,
  };
  let result: CompileResult = await compile({ ...request, bytecode: true });
  let bytecode = "bytecode";
  if (!result.ok && result.bytecodeFailed) {
    console.log(
      `release: ${target.name}: bytecode failed (${result.errors.join("; ")}); building without it`,
    );
    result = await compile({ ...request, bytecode: false });
    bytecode = "no bytecode";
  }
  if (!result.ok) fail(`${target.name}: ${result.errors.join("; ")}`);
  if (basename(result.outfile) !== fileName)
    fail(`${target.name}: expected ${fileName}, got ${result.outfile}`);
  if (target.name === hostTarget()) {
    const versionLine = checkStarts(result.outfile);
    if (versionLine instanceof Error) fail(versionLine.message);
  }

  sums.push(`${await sha256(result.outfile)}  ${fileName}`);
  const megabytes = ((await stat(result.outfile)).size / 1e6).toFixed(1);
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `release: ${relative(ROOT, result.outfile)}  ${megabytes} MB  ${bytecode}  ${seconds} s`,
  );
}
await Bun.write(join(releaseDir, "SHA256SUMS"), `${sums.join("\n")}\n`);
console.log(
  `release: ${relative(ROOT, releaseDir)}/SHA256SUMS (check with: sha256sum -c SHA256SUMS)`,
);

async function sha256(path: string): Promise<string> {
  const hasher = new Bun.CryptoHasher("sha256");
  for await (const chunk of Bun.file(path).stream()) hasher.update(chunk);
  return hasher.digest("hex");
}

function fail(message: string): never {
  console.error(`release: ${message}`);
  process.exit(1);
}
