import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");
const PURE_ENTRY_POINTS = [
  "src/core/crypto-port.ts",
  "src/crypto/base64url.ts",
  "src/crypto/fingerprint.ts",
  "src/crypto/sealed-box.ts",
];

/** Every module `entry` imports, directly or not, mapped to its import specifiers. */
function importGraph(entry: string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const pending = [join(ROOT, entry)];
  for (let file = pending.pop(); file !== undefined; file = pending.pop()) {
    if (graph.has(file)) continue;
    const source = readFileSync(file, "utf8");
    const specifiers = Array.from(
      source.matchAll(/^\s*(?:import|export)[^"']*?from\s+["']([^"']+)["']/gm),
      (match) => match[1] ?? "",
    );
    graph.set(file, specifiers);
    for (const specifier of specifiers) {
      if (specifier.startsWith(".")) pending.push(resolve(dirname(file), specifier));
    }
  }
  return graph;
}

describe("the modules the core may use stay pure", () => {
  for (const entry of PURE_ENTRY_POINTS) {
    test(`${entry} reaches no node:, bun or package import`, () => {
      const graph = importGraph(entry);
      const impure = [...graph].flatMap(([file, specifiers]) =>
        specifiers
          .filter((specifier) => !specifier.startsWith("."))
          .map((specifier) => `${relative(ROOT, file)}: ${specifier}`),
      );
      expect(impure).toEqual([]);
      expect(graph.size).toBeGreaterThan(0);
    });

    test(`${entry} reads no clock or random source of its own`, () => {
      for (const file of importGraph(entry).keys()) {
        expect(readFileSync(file, "utf8")).not.toMatch(
          /Date\.now|new Date\(|Math\.random|getRandomValues|performance\.now/,
        );
      }
    });
  }

  test("the check sees an impure import when there is one", () => {
    const graph = importGraph("src/crypto/node-crypto-port.ts");
    expect(graph.get(join(ROOT, "src/crypto/node-crypto-port.ts"))).toContain("node:crypto");
  });
});
