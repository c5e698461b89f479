/**
 * Every custom error that our contracts declare is asserted by name somewhere in the tests, so a
 * new failure path cannot land untested. (Line coverage of contracts/ is checked separately by
 * scripts/check-coverage.mjs after `hardhat test --coverage`.)
 */
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";

async function filesUnder(dir: string, suffixes: string[]): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && suffixes.some((s) => e.name.endsWith(s)))
    .map((e) => join(e.parentPath, e.name));
}

describe("custom errors", () => {
  it("are each asserted by at least one test", async () => {
    const declared = new Map<string, string>();
    for (const file of await filesUnder("contracts", [".sol"])) {
      for (const match of (await readFile(file, "utf8")).matchAll(/^\s*error\s+(\w+)\s*\(/gm)) {
        declared.set(match[1]!, file);
      }
    }
    assert.ok(declared.size > 40, `found only ${declared.size} custom errors: is the pattern right?`);
    const testFiles = (await filesUnder("test", [".ts", ".sol"])).filter((f) => !f.endsWith("errors.test.ts"));
    const tests = (await Promise.all(testFiles.map((f) => readFile(f, "utf8")))).join("\n");
    const untested = [...declared].filter(
      ([name]) => !new RegExp(`["'\`]${name}["'\`]|\\b${name}\\.selector`).test(tests),
    );
    assert.deepEqual(
      untested.map(([name, file]) => `${name} (${file})`),
      [],
      "custom errors no test asserts",
    );
  });
});
