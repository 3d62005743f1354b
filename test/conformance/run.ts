// `npm run conformance`: prints every failing test and `N passed, M failed`.
import { existsSync } from "node:fs";
import { SUITE_DIR, runSuite } from "./suite.ts";

if (!existsSync(SUITE_DIR)) {
  console.log(`conformance: skipped, no WASI test suite at ${SUITE_DIR} (set OANIX_WASI_TESTSUITE)`);
  process.exit(0);
}
const results = await runSuite();
for (const r of results) if (!r.passed) console.log(`FAIL ${r.name}: ${r.detail}`);
const failed = results.filter((r) => !r.passed).length;
console.log(`${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
