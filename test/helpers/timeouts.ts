/**
 * For tests that run long on purpose (thousands of simulated seeds or clients): plain
 * `bun test` gives a test 5 s, since the preload's setDefaultTimeout reaches only the
 * first test file (Bun 1.4.5, docs/PLATFORM-NOTES.md), so such a test names its own.
 */
export const LONG_TEST_TIMEOUT_MS = 120_000;
