import { expect, test } from "bun:test";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REDIS_INSTALL_HINT } from "./redis-server.ts";

const FIXTURE = join(import.meta.dir, "fixtures", "needs-redis.ts");

/** Runs the fixture's tests in a child `bun test` whose PATH has no redis-server. */
async function runWithoutRedis(env: Record<string, string>) {
  const child = Bun.spawn([process.execPath, "test", FIXTURE], {
    // Outside the repository: no preload, no build, just the fixture.
    cwd: tmpdir(),
    env: { PATH: "/nonexistent", HOME: tmpdir(), ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  return { code, output: stdout + stderr };
}

test("without redis-server the Redis tests are skipped with one line saying how to install it", async () => {
  const { code, output } = await runWithoutRedis({});
  expect(code).toBe(0);
  expect(output.split("\n").filter((line) => line === REDIS_INSTALL_HINT)).toHaveLength(1);
  expect(output).toContain("(skip) needs redis > runs only with redis-server");
  expect(output).toContain("(pass) a test that needs no Redis runs either way");
});

test("with CHATAPP_REQUIRE_REDIS=1 a missing redis-server fails the run", async () => {
  const { code, output } = await runWithoutRedis({ CHATAPP_REQUIRE_REDIS: "1" });
  expect(code).not.toBe(0);
  expect(output).toContain(
    "CHATAPP_REQUIRE_REDIS=1 but redis-server is not installed (apt-get install redis-server)",
  );
  expect(output).toContain("(fail) needs redis");
});
