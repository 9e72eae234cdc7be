// bun run build: the standalone executable for this machine, dist/chatapp.
import { join, relative } from "node:path";
import { hostTarget } from "../cli/version.ts";
import { checkStarts, compile, gitCommit, ROOT } from "./build-config.ts";

const started = performance.now();
const result = await compile({
  outfile: join(ROOT, "dist/chatapp"),
  targetName: hostTarget(),
  bytecode: true,
  commit: gitCommit(),
});
if (!result.ok) {
  for (const error of result.errors) console.error(`build: ${error}`);
  process.exit(1);
}
const versionLine = checkStarts(result.outfile);
if (versionLine instanceof Error) {
  console.error(`build: ${versionLine.message}`);
  process.exit(1);
}
const seconds = ((performance.now() - started) / 1000).toFixed(1);
console.log(`build: ${relative(ROOT, result.outfile)} (${versionLine}) in ${seconds} s`);
