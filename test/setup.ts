import { setDefaultTimeout } from "bun:test";

// Reaches only the first test file of a run (Bun 1.4.5); `bun run test` and .ci/run
// also pass --timeout, and the end-to-end tests set theirs explicitly.
setDefaultTimeout(30_000);
