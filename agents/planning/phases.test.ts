import { describe, expect, it } from "vitest";
import { PHASES, checkPhases, phaseStem } from "./phases.ts";

describe("the phase table", () => {
  it("is the reference order, and every phase reads only earlier ones", () => {
    expect(PHASES.map((p) => p.name)).toEqual([
      "intake", "opportunity", "customer-intel", "market-research", "competitive-intel", "kill-test", "revenue-expansion", "strategy",
      "business-model", "product-design", "gtm-marketing", "content-engine", "tech-arch", "analytics", "launch-execution", "synthesis", "task-reconciliation",
    ]);
    expect(() => checkPhases(PHASES)).not.toThrow();
    for (const p of PHASES) expect(p.sections.length).toBeGreaterThan(0);
    expect(phaseStem(2)).toBe("03-customer-intel");
  });

  it("refuses a phase that reads a later one, or a name twice", () => {
    const [a, b] = [PHASES[0]!, PHASES[1]!];
    expect(() => checkPhases([b, a])).toThrow(/not an earlier phase/);
    expect(() => checkPhases([a, a])).toThrow(/twice/);
  });
});
