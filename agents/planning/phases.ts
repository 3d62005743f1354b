// The planning phases, in the order a run takes them. One line each: adding, removing or
// reordering a phase is an edit of this table and nothing else. A phase's `inputs` name earlier
// phases whose artifacts its agent reads; `sections` are the headings its artifact must have;
// `review` sends it through the reviewer loop. The kill test is the phase named "kill-test": its
// answer carries the VERDICT marker (see markers.ts).

export interface PhaseDef {
  name: string;
  purpose: string;
  inputs: string[];
  sections: string[];
  review: boolean;
}

const p = (name: string, purpose: string, inputs: string[], sections: string[], review: boolean): PhaseDef => ({ name, purpose, inputs, sections, review });

export const PHASES: readonly PhaseDef[] = [
  p("intake", "Restate the idea, who it is for and what success means", [], ["Idea", "Audience", "Assumptions", "Success criteria"], false),
  p("opportunity", "Size the problem and say why now", ["intake"], ["Problem", "Why now", "Opportunity size"], true),
  p("customer-intel", "Describe the customers, their jobs and pains", ["intake", "opportunity"], ["Segments", "Jobs to be done", "Pains", "Evidence"], true),
  p("market-research", "Map the market, its size and its trends", ["intake", "opportunity", "customer-intel"], ["Market size", "Trends", "Channels"], true),
  p("competitive-intel", "Name the competitors and the gap between them", ["intake", "market-research"], ["Competitors", "Alternatives", "Gap"], true),
  p("kill-test", "Decide GO, PIVOT (with a refined idea) or KILL (with a reason and when to revisit)", ["intake", "opportunity", "customer-intel", "market-research", "competitive-intel"], ["Verdict", "Reasons"], false),
  p("revenue-expansion", "Find revenue beyond the first product", ["customer-intel", "market-research"], ["Streams", "Expansion paths"], true),
  p("strategy", "Choose the position and the bets", ["opportunity", "competitive-intel", "kill-test"], ["Positioning", "Bets", "Risks"], true),
  p("business-model", "Pricing, unit economics and costs", ["strategy", "revenue-expansion"], ["Pricing", "Unit economics", "Costs"], true),
  p("product-design", "The product's first version and its core flows", ["customer-intel", "strategy"], ["Core flows", "MVP scope", "Out of scope"], true),
  p("gtm-marketing", "How the first customers are reached", ["customer-intel", "strategy", "business-model"], ["Channels", "Messaging", "First 100 customers"], true),
  p("content-engine", "What content is made, for whom, how often", ["gtm-marketing"], ["Themes", "Formats", "Cadence"], false),
  p("tech-arch", "The system that builds the product", ["product-design"], ["Components", "Data", "Build vs buy"], true),
  p("analytics", "What is measured and what it decides", ["product-design", "business-model"], ["North star", "Metrics", "Instrumentation"], false),
  p("launch-execution", "The launch plan, milestones and owners", ["product-design", "gtm-marketing", "tech-arch"], ["Milestones", "Launch plan", "Risks"], true),
  p("synthesis", "The whole plan in one document", ["intake", "opportunity", "kill-test", "strategy", "business-model", "product-design", "gtm-marketing", "launch-execution"], ["Summary", "Plan", "Open questions"], true),
  p("task-reconciliation", "The work as a list of tasks, reconciled with the plan", ["synthesis", "launch-execution", "tech-arch"], ["Tasks", "Dependencies"], false),
];

export const KILL_TEST = "kill-test";

/** The phase named `name`, or undefined. */
export const phaseNamed = (name: string): PhaseDef | undefined => PHASES.find((ph) => ph.name === name);

/** "03-customer-intel": the file stem of phase number `index` (0-based). */
export const phaseStem = (index: number, phases: readonly PhaseDef[] = PHASES): string => `${String(index + 1).padStart(2, "0")}-${phases[index]!.name}`;

/** Checks a phase table: unique names, inputs only from earlier phases. Throws on the first fault. */
export function checkPhases(phases: readonly PhaseDef[]): void {
  const seen = new Set<string>();
  for (const ph of phases) {
    if (!/^[a-z][a-z0-9-]*$/.test(ph.name)) throw new Error(`phase "${ph.name}": a name is lower-case letters, digits and dashes`);
    if (seen.has(ph.name)) throw new Error(`phase "${ph.name}" is listed twice`);
    for (const i of ph.inputs) if (!seen.has(i)) throw new Error(`phase "${ph.name}" reads "${i}", which is not an earlier phase`);
    seen.add(ph.name);
  }
}
