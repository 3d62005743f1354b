// `oanix plan`: a planning run in a workspace (agents/host/planning/). Progress on stderr, one
// line per phase step; --json prints the summary on stdout. Exit status: 0 completed, 1 killed,
// paused or failed (the run record says why; --resume RUN goes on), 2 a usage or setup error.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { loadProgram } from "../runtime/modules.ts";
import { providerFrom } from "../services/cap/llm-provider.ts";
import { PlanError, resumePlan, startPlan, type PlanOptions, type Progress } from "../agents/host/planning/orchestrator.ts";
import { listParked, listRuns, loadRecord, summary, type RunRecord } from "../agents/host/planning/record.ts";
import { LockBusy, LockLost } from "../agents/host/planning/lock.ts";
import { nodeDriver } from "../agents/host/planning/lock-node.ts";
import { openSource } from "./sources.ts";
import { UsageError } from "./usage.ts";

export const PLAN_HELP = `oanix plan "IDEA" [options]      a planning run: the idea through every phase
oanix plan --resume RUN [options]  go on with a paused, failed or interrupted run
oanix plan --list | --parked       the runs, or the parked (killed) ideas, in the workspace

Options:
  --llm PROVIDER          offline (default) or openai:BASE_URL[#MODEL] (key: OANIX_LLM_KEY or OPENAI_API_KEY)
  --workspace SOURCE      where plans/ lives: dir:PATH (default dir:.), mem:, http://HOST/w/NAME
  --review-iterations N   reviews of a phase before the best version is kept (default 3)
  --max-pivots N          PIVOTs before a further one parks the idea (default 2)
  --budget TOKENS         tokens this invocation may spend; past it the run pauses
  --max-tokens N          max_tokens asked of the model per call
  --json                  the summary (or list) as JSON on stdout
`;

interface PlanArgs {
  idea?: string;
  resume?: string;
  mode: "run" | "list" | "parked";
  llm: string;
  workspace: string;
  reviewIterations?: number;
  maxPivots?: number;
  budget?: number;
  maxTokens?: number;
  json: boolean;
}

export function parsePlanArgs(argv: string[]): PlanArgs {
  const a: PlanArgs = { mode: "run", llm: "offline", workspace: "dir:.", json: false };
  const value = (i: number, flag: string): string => {
    const v = argv[i + 1];
    if (v === undefined) throw new UsageError(`${flag} needs a value`);
    return v;
  };
  const whole = (v: string, flag: string, min: number): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < min) throw new UsageError(`${flag} takes a whole number ≥ ${min} (got "${v}")`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i]!;
    if (f === "--llm") a.llm = value(i++, f);
    else if (f === "--workspace") a.workspace = value(i++, f);
    else if (f === "--review-iterations") a.reviewIterations = whole(value(i++, f), f, 1);
    else if (f === "--max-pivots") a.maxPivots = whole(value(i++, f), f, 0);
    else if (f === "--budget") a.budget = whole(value(i++, f), f, 1);
    else if (f === "--max-tokens") a.maxTokens = whole(value(i++, f), f, 1);
    else if (f === "--resume") a.resume = value(i++, f);
    else if (f === "--list") a.mode = "list";
    else if (f === "--parked") a.mode = "parked";
    else if (f === "--json") a.json = true;
    else if (f.startsWith("-") && f !== "-") throw new UsageError(`unknown option ${f} (try oanix plan --help)`);
    else if (a.idea !== undefined) throw new UsageError("plan takes one IDEA (quote it)");
    else a.idea = f;
  }
  if (a.mode === "run" && a.idea === undefined && !a.resume) throw new UsageError('plan needs an IDEA, as in oanix plan "a bakery that …" (try oanix plan --help)');
  if (a.resume && a.idea !== undefined) throw new UsageError("--resume takes no IDEA");
  if (a.llm !== "offline" && !a.llm.startsWith("openai:")) throw new UsageError(`--llm ${a.llm}: use offline or openai:BASE_URL[#MODEL]`);
  return a;
}

const AGENTS = new URL("../agents/build/", import.meta.url);

async function programs(): Promise<PlanOptions["programs"]> {
  const load = async (name: string) => {
    try {
      return await loadProgram(readFileSync(fileURLToPath(new URL(`${name}.wasm`, AGENTS))));
    } catch (e) {
      throw new UsageError(`agents/build/${name}.wasm: ${(e as Error).message} (run npm run build:agents)`);
    }
  };
  return { phase: await load("phase"), reviewer: await load("reviewer") };
}

export function progressLine(p: Progress): string {
  const n = `${String(p.index + 1).padStart(2, "0")}/${p.of}`;
  const what = p.step === "verdict" ? `verdict ${p.verdict}` : p.step === "review" ? `score ${p.score ?? "—"} ${p.review}` : "written";
  return `plan ${n} ${p.phase.padEnd(19)} ${p.pivot ? `pivot ${p.pivot} ` : ""}iter ${p.iteration}  ${what.padEnd(16)} tokens ${p.tokens} (run ${p.totalTokens})`;
}

export async function planCommand(argv: string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(PLAN_HELP);
    return 0;
  }
  const a = parsePlanArgs(argv);
  const workspace = (await openSource(a.workspace, { readOnly: false })).service;
  const out = (v: unknown, text: string): void => void process.stdout.write(a.json ? JSON.stringify(v, null, 2) + "\n" : text);
  if (a.mode === "list") {
    const runs = await listRuns(workspace);
    out(runs.map((r) => ({ run: r.run, idea: r.idea, status: r.status, phase: r.current?.phase ?? r.phases.at(-1)?.phase ?? null, pivots: r.pivots, tokens: r.tokens, updatedAt: r.updatedAt })),
      runs.map((r) => `${r.run}  ${r.status.padEnd(9)} ${String(r.phases.length).padStart(2)} phases  ${r.idea}\n`).join(""));
    return 0;
  }
  if (a.mode === "parked") {
    const ps = await listParked(workspace);
    out(ps, ps.map((p) => `${p.run}  ${p.phase}  revisit in ${p.revisitMonths} months  ${p.idea}${p.refinedIdea ? ` (refined: ${p.refinedIdea})` : ""}: ${p.reason}\n`).join(""));
    return 0;
  }
  let provider;
  try {
    provider = providerFrom(a.llm, { apiKey: process.env.OANIX_LLM_KEY || process.env.OPENAI_API_KEY || undefined });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const o: PlanOptions = {
    workspace, provider, llm: a.llm, programs: await programs(), reviewIterations: a.reviewIterations, maxPivots: a.maxPivots,
    budgetTokens: a.budget, maxTokens: a.maxTokens, onProgress: (p) => void process.stderr.write(progressLine(p) + "\n"),
    driver: nodeDriver(),
  };
  let rec: RunRecord;
  try {
    if (a.resume) {
      const r = await loadRecord(workspace, a.resume);
      if (!r) throw new UsageError(`no run ${a.resume} in the workspace`);
      process.stderr.write(`plan ${r.run} resuming (${r.status}) at ${r.current?.phase ?? r.phases.at(-1)?.phase ?? "the start"}\n`);
    }
    rec = a.resume ? await resumePlan(a.resume, o) : await startPlan(a.idea!, o);
  } catch (e) {
    if (e instanceof PlanError) throw new UsageError(e.message);
    // Another driver has the run: say who, change nothing.
    if (e instanceof LockBusy || e instanceof LockLost) {
      process.stderr.write(`plan: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
  const tail = rec.status === "completed" ? `package ${rec.package}`
    : rec.status === "killed" ? `parked: ${rec.parked?.reason} (revisit in ${rec.parked?.revisitMonths} months)`
    : `${rec.error?.agent} ${rec.error?.phase} iteration ${rec.error?.iteration}: ${rec.error?.code}: ${rec.error?.message}; go on with oanix plan --resume ${rec.run}`;
  process.stderr.write(`plan ${rec.run} ${rec.status}: ${tail} (${rec.tokens} tokens, ${rec.calls} calls)\n`);
  if (a.json) process.stdout.write(JSON.stringify(summary(rec), null, 2) + "\n");
  return rec.status === "completed" ? 0 : 1;
}
