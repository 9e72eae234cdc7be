import { setDefaultTimeout } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureFreshBinary } from "./helpers/fresh-binary.ts";

// Reaches only the first test file of a run (Bun 1.4.5); `bun run test` and .ci/run
// also pass --timeout, and the end-to-end tests set theirs explicitly.
setDefaultTimeout(30_000);

// The end-to-end tests run the compiled binary as well as the source: build it when
// it is missing or older than the sources, rather than skip those tests.
const started = performance.now();
if ((await ensureFreshBinary()) === "built") {
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.error(`test setup: built dist/chatapp from the current sources in ${seconds} s`);
}

// A backstop: anything a test starts without choosing a config directory (a spawned
// child inheriting this environment, an identity path left to its default) writes its
// identity here, never into the user's ~/.config. The e2e helpers give each session
// its own directory on top of this.
const configHome = mkdtempSync(join(tmpdir(), "chatapp-test-config-"));
process.env.XDG_CONFIG_HOME = configHome;
process.on("exit", () => rmSync(configHome, { recursive: true, force: true }));
