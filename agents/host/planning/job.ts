// Planning as a NIP-90 job (kind 5060, result 6060; agents/planning/README.md): a provider's handler
// (agents/host/serve.ts `handlers`) that takes the idea from the request's first input and answers
// with the package (text/markdown, the default) or the run's summary (application/json); a killed
// run answers its parked record with a ["status", "killed"] tag. A run that pauses (the budget) or
// fails is an `error` feedback naming why. Each job's run lives in its own workspace (memory by
// default; a host that gives one per request id resumes a job picked up again after a restart
// from its checkpoint), and progress goes out as `processing` feedback, one line per step.
import type { Program } from "../../../runtime/modules.ts";
import type { FileService } from "../../../runtime/types.ts";
import type { LlmProvider } from "../../../services/cap/llm-provider.ts";
import { MemService } from "../../../services/mem.ts";
import type { HandlerOutcome, JobHandler } from "../serve.ts";
import type { JobSpec } from "../spec.ts";
import { readText } from "./files.ts";
import { LockBusy } from "./lock.ts";
import { checkIdea, PlanError, resumePlan, startPlan, type PlanOptions, type Progress } from "./orchestrator.ts";
import { loadRecord, summary } from "./record.ts";

export const PLAN_KIND = 5060;

export interface PlanJobOptions {
  programs: { phase: Program; reviewer: Program };
  /** The models this server offers by name ("offline", "openai:…"); the first is the default. */
  llms: Record<string, () => LlmProvider>;
  /** Most tokens one job may spend (a request's `budget` param may ask for less). */
  maxBudget?: number;
  /** The run's workspace for a request (default: a fresh memory one). */
  workspace?: (spec: JobSpec) => FileService;
  driver?: PlanOptions["driver"];
  agentTimeMs?: number;
}

const refuse = (reason: string): HandlerOutcome => ({ ok: false, cancelled: false, reason });

function whole(params: Record<string, string>, name: string, min: number, max: number): number | undefined {
  const v = params[name];
  if (v === undefined) return undefined;
  if (!/^\d{1,9}$/.test(v) || Number(v) < min || Number(v) > max) throw new PlanError(`param ${name} takes a whole number from ${min} to ${max} (got "${v.slice(0, 20)}")`);
  return Number(v);
}

const line = (p: Progress): string =>
  `${String(p.index + 1).padStart(2, "0")}/${p.of} ${p.phase}${p.pivot ? ` pivot ${p.pivot}` : ""} iter ${p.iteration}: ` +
  (p.step === "verdict" ? `verdict ${p.verdict}` : p.step === "review" ? `score ${p.score ?? "—"} ${p.review}` : "written") + ` (${p.totalTokens} tokens in the run)`;

export function planJob(o: PlanJobOptions): JobHandler {
  const names = Object.keys(o.llms);
  if (!names.length) throw new Error("planJob: offer at least one llm");
  return async (spec, { signal, progress }) => {
    let opts: PlanOptions;
    let idea: string;
    try {
      idea = checkIdea(spec.input[0]?.data ?? "");
      const llm = spec.params.llm ?? names[0]!;
      if (!o.llms[llm]) throw new PlanError(`param llm "${llm.slice(0, 60)}" is not offered here (${names.join(", ")})`);
      const budget = whole(spec.params, "budget", 1, o.maxBudget ?? 1e9) ?? o.maxBudget;
      opts = {
        workspace: o.workspace?.(spec) ?? new MemService(), provider: o.llms[llm]!(), llm, programs: o.programs,
        reviewIterations: whole(spec.params, "review-iterations", 1, 10), maxPivots: whole(spec.params, "max-pivots", 0, 10),
        ...(budget !== undefined ? { budgetTokens: budget } : {}), ...(o.driver ? { driver: o.driver } : {}), ...(o.agentTimeMs ? { agentTimeMs: o.agentTimeMs } : {}),
        signal, onProgress: (p) => progress(line(p)),
      };
    } catch (e) {
      if (e instanceof PlanError) return refuse(e.message);
      throw e;
    }
    const run = `job-${spec.id.slice(0, 16)}`;
    let rec;
    try {
      // Picked up again after a restart, in a workspace that kept the run: go on from its checkpoint.
      rec = (await loadRecord(opts.workspace, run)) ? await resumePlan(run, opts) : await startPlan(idea, { ...opts, run });
    } catch (e) {
      if (e instanceof PlanError || e instanceof LockBusy) return refuse(e.message);
      throw e;
    }
    if (signal.aborted) return { ok: false, cancelled: true, reason: "cancelled" };
    if (rec.status === "killed") return { ok: true, content: JSON.stringify(rec.parked), tags: [["status", "killed"]] };
    if (rec.status !== "completed") return refuse(`the run ${rec.status}: ${rec.error?.agent} ${rec.error?.phase}: ${rec.error?.message ?? "no reason given"} (${rec.tokens} tokens spent)`);
    const json = spec.output === "application/json";
    const content = json ? JSON.stringify(summary(rec)) : ((await readText(opts.workspace, rec.package!)) ?? "");
    return { ok: true, content, tags: [["status", "completed"]] };
  };
}
