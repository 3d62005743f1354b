// The official WASI test suite (wasip1: C, AssemblyScript, Rust) on the OANIX host. The bar
// is 70 of 72 (only the two socket tests may fail); OANIX passes them all, so every test must pass.
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { SUITE_DIR, listTests, runTest } from "./conformance/suite.ts";

const present = existsSync(SUITE_DIR);
if (!present) console.warn(`conformance: skipped, no WASI test suite at ${SUITE_DIR}`);

describe.skipIf(!present)("wasi-testsuite wasm32-wasip1", () => {
  const tests = present ? listTests() : [];
  it("finds the 72 tests of the three languages", () => {
    expect(tests.length).toBe(72);
  });
  for (const t of tests) {
    it(t.name, async () => {
      const r = await runTest(t);
      expect(r.detail).toBe("");
      expect(r.passed).toBe(true);
    });
  }
});
