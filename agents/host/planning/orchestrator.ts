// The planning orchestrator: takes an idea through the phases (agents/planning/phases.ts), each a
// WASI agent, with review loops and the kill test, checkpointing the run record after every agent.
// Platform-neutral: the workspace is any FileService, the model any LlmProvider, the agents
// compiled Programs; the CLI (cli/plan.ts) drives it in Node, and the edge can drive the same core
// (one `step` per Workflow step or alarm; see agents/planning/README.md).
import type { Program } from "../../../runtime/modules.ts";
import type { FileService } from "../../../runtime/types.ts";
import type { LlmProvider } from "../../../services/cap/llm-provider.ts";
import { KILL_TEST, PHASES, phaseStem, type PhaseDef } from "../../planning/phases.ts";
import { Metered, runAgent, type AgentOutcome } from "./agents.ts";
import { LockLost, RunLock, type LockOptions } from "./lock.ts";
import { list, moveIfThere, readText, writeText } from "./files.ts";
import { parseLine, parseReview, parseRevisit, parseVerdict } from "./markers.ts";
import { writePackage } from "./package.ts";
import { loadRecord, newRunId, park, runDir, saveRecord, type Iteration, type PhaseResult, type RunError, type RunRecord } from "./record.ts";

export const MAX_IDEA_CHARS = 4000;

export interface Progress {
  run: string;
  phase: string;
  index: number;
  of: number;
  pivot: number;
  iteration: number;
  /** What just finished: the phase agent's artifact, or its review. */
  step: "artifact" | "review" | "verdict";
  score: number | null;
  review: string | null;
  verdict?: string;
  tokens: number;
  totalTokens: number;
}

export interface PlanOptions {
  workspace: FileService;
  provider: LlmProvider;
  /** The provider as the record names it ("offline", "openai:URL"). */
  llm: string;
  programs: { phase: Program; reviewer: Program };
  reviewIterations?: number;
  maxPivots?: number;
  /** Tokens this invocation may spend (a run out of them pauses). */
  budgetTokens?: number;
  /** Wall time of one agent (ms), 180 s by default. */
  agentTimeMs?: number;
  /** max_tokens asked of the model per call. */
  maxTokens?: number;
  phases?: readonly PhaseDef[];
  /** Run at most this many agents, then return the run checkpointed and still "running" (a host
   * that drives runs in slices, such as an edge alarm or Workflow step, resumes it next time). */
  maxAgents?: number;
  onProgress?: (p: Progress) => void;
  /** Stops the run between agents (it stays "running", checkpointed, to be resumed). */
  signal?: AbortSignal;
  /** The new run's id (startPlan); a fresh one by default. */
  run?: string;
  /** Called after every checkpoint with the record just written (the edge mirrors it to D1 and
   * derives the run's events from it; a host that dies before it returns sees the same record on
   * resume). */
  onCheckpoint?: (rec: RunRecord) => void | Promise<void>;
  /** Who drives, for the run's lock (lock.ts): one driver at a time, however many resumers. */
  driver?: LockOptions;
}

/** A bad request (empty idea, unknown run): nothing was started. */
export class PlanError extends Error {}

export function checkIdea(idea: string): string {
  const t = idea.trim();
  if (!t) throw new PlanError("the idea is empty");
  if (t.length > MAX_IDEA_CHARS) throw new PlanError(`the idea is ${t.length} characters; at most ${MAX_IDEA_CHARS}`);
  return t;
}

/** Starts a run; answers its record once it completed, was killed, paused or failed. */
export async function startPlan(idea: string, o: PlanOptions): Promise<RunRecord> {
  const now = new Date().toISOString();
  const rec: RunRecord = {
    version: 1, run: o.run ?? newRunId(), idea: checkIdea(idea), status: "running", llm: o.llm,
    reviewIterations: o.reviewIterations ?? 3, maxPivots: o.maxPivots ?? 2, pivots: 0, next: 0,
    phases: [], pivotHistory: [], tokens: 0, calls: 0, createdAt: now, updatedAt: now,
  };
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(rec.run)) throw new PlanError(`"${rec.run}" is not a run id`);
  if (!Number.isInteger(rec.reviewIterations) || rec.reviewIterations < 1) throw new PlanError("--review-iterations takes a whole number ≥ 1");
  if (!Number.isInteger(rec.maxPivots) || rec.maxPivots < 0) throw new PlanError("--max-pivots takes a whole number ≥ 0");
  if (await loadRecord(o.workspace, rec.run).catch(() => null)) throw new PlanError(`run ${rec.run} exists already`);
  try {
    await saveRecord(o.workspace, rec);
  } catch (e) {
    throw new PlanError(`cannot write the run record in the workspace (${(e as Error).message}); is it read-only?`);
  }
  return locked(rec.run, o, (lock) => drive(rec, o, lock));
}

/** Resumes a paused, failed or interrupted run from its last checkpoint. */
export async function resumePlan(run: string, o: PlanOptions): Promise<RunRecord> {
  const first = await loadRecord(o.workspace, run);
  if (!first) throw new PlanError(`no run ${run} in the workspace`);
  if (first.status === "completed" || first.status === "killed") return first;
  return locked(run, o, async (lock) => {
    // Read again under the lock: the checkpoint of whoever drove last.
    const rec = (await loadRecord(o.workspace, run))!;
    if (rec.status === "completed" || rec.status === "killed") return rec;
    rec.status = "running";
    delete rec.error;
    return drive(rec, o, lock);
  });
}

/** Runs `fn` holding the run's lock (LockBusy when another driver holds it). */
async function locked(run: string, o: PlanOptions, fn: (lock: RunLock) => Promise<RunRecord>): Promise<RunRecord> {
  const lock = await RunLock.acquire(o.workspace, run, o.driver ?? { owner: `host#${crypto.randomUUID()}` });
  try {
    return await fn(lock);
  } finally {
    await lock.release();
  }
}

async function drive(rec: RunRecord, o: PlanOptions, lock: RunLock): Promise<RunRecord> {
  const phases = o.phases ?? PHASES;
  const metered = new Metered(o.provider, { limit: o.budgetTokens });
  const fs = o.workspace;
  const counted = { tokens: 0, calls: 0 };
  /** The checkpoint: this invocation's tokens and calls added, the record written (by the lock's
   * holder only: a driver whose lease was taken over throws LockLost and writes nothing). */
  const save = async (): Promise<void> => {
    await lock.check();
    rec.tokens += metered.tokens - counted.tokens;
    rec.calls += metered.calls - counted.calls;
    counted.tokens = metered.tokens;
    counted.calls = metered.calls;
    await saveRecord(fs, rec);
    await o.onCheckpoint?.(rec);
  };
  const slice = { left: o.maxAgents ?? Infinity };
  const stop = async (status: "paused" | "failed", error: RunError): Promise<RunRecord> => {
    rec.status = status;
    rec.error = error;
    await save();
    return rec;
  };
  try {
    if (rec.pivotPending) await movePass(fs, rec);
    while (rec.next < phases.length) {
      const ph = phases[rec.next]!;
      const done = await runPhase(rec, ph, phases, o, metered, save, slice);
      if ("yield" in done) {
        await save();
        return rec;
      }
      if ("error" in done) return await stop(done.error.code === "EDQUOT" ? "paused" : "failed", done.error);
      rec.phases.push(done.result);
      rec.next++;
      delete rec.current;
      if (ph.name === KILL_TEST) {
        const text = (await readText(fs, done.result.artifact)) ?? "";
        const { verdict, defaulted } = parseVerdict(text);
        done.result.verdict = verdict;
        done.result.verdictDefaulted = defaulted;
        rec.verdict = verdict;
        report(o, rec, ph, phases, { step: "verdict", iteration: done.result.best, score: done.result.score, review: null, verdict, tokens: 0 });
        const parkIt = async (reason: string): Promise<RunRecord> => {
          rec.parked = { idea: rec.idea, refinedIdea: rec.refinedIdea, run: rec.run, phase: ph.name, reason, revisitMonths: parseRevisit(text), parkedAt: new Date().toISOString() };
          await park(fs, rec.parked);
          rec.status = "killed";
          await save();
          return rec;
        };
        if (verdict === "KILL") return await parkIt(parseLine(text, "REASON") ?? "killed by the kill test (no reason given)");
        if (verdict === "PIVOT") {
          if (rec.pivots >= rec.maxPivots) return await parkIt(`a PIVOT after ${rec.pivots} pivot(s), the most allowed: ${parseLine(text, "REFINED") ?? "no refined idea given"}`);
          rec.pivotPending = { to: parseLine(text, "REFINED") ?? rec.refinedIdea ?? rec.idea };
          await save();
          await movePass(fs, rec);
        }
      }
      await save();
    }
    rec.package = await writePackage(fs, rec, phases);
    rec.status = "completed";
    await save();
    return rec;
  } catch (e) {
    if (e instanceof LockLost) throw e;
    // The workspace refused a write (read-only, gone): keep what is written, say so.
    const err = e as { code?: string; message?: string };
    const error: RunError = { phase: phases[rec.next]?.name ?? "package", iteration: rec.current?.iterations.length ?? 0, agent: "host", code: err.code ?? "EIO", message: err.message ?? String(e) };
    rec.status = "failed";
    rec.error = error;
    await save().catch(() => {});
    return rec;
  }
}

/** Moves this pass's artifacts under pivot-N/ and restarts from the first phase (safe to repeat). */
async function movePass(fs: FileService, rec: RunRecord): Promise<void> {
  const to = rec.pivotPending!.to;
  const pivot = rec.pivots + 1;
  const dir = `${runDir(rec.run)}/pivot-${pivot}`;
  for (const e of await list(fs, runDir(rec.run))) {
    if (e.type === "file" && /^\d\d-/.test(e.name)) {
      if (!(await readText(fs, `${dir}/.keep`))) await writeText(fs, `${dir}/.keep`, "");
      await moveIfThere(fs, `${runDir(rec.run)}/${e.name}`, `${dir}/${e.name}`);
    }
  }
  const moved = (p: string): string => p.replace(`${runDir(rec.run)}/`, `${dir}/`);
  rec.pivotHistory.push({ pivot, dir, from: rec.refinedIdea ?? rec.idea, to });
  for (const r of rec.phases) {
    r.artifact = moved(r.artifact);
    r.json = moved(r.json);
    for (const it of r.iterations) Object.assign(it, { artifact: moved(it.artifact), json: moved(it.json), ...(it.review ? { review: moved(it.review) } : {}) });
  }
  rec.pivots = pivot;
  rec.refinedIdea = to;
  rec.phases = [];
  rec.next = 0;
  delete rec.pivotPending;
}

function report(o: PlanOptions, rec: RunRecord, ph: PhaseDef, phases: readonly PhaseDef[], p: Omit<Progress, "run" | "phase" | "index" | "of" | "pivot" | "totalTokens">): void {
  o.onProgress?.({ run: rec.run, phase: ph.name, index: phases.indexOf(ph), of: phases.length, pivot: rec.pivots, totalTokens: rec.tokens, ...p });
}

/** One phase: artifact, then (if reviewed) review and revise until ACCEPT or the iteration limit. */
async function runPhase(
  rec: RunRecord, ph: PhaseDef, phases: readonly PhaseDef[], o: PlanOptions, metered: Metered, save: () => Promise<void>, slice: { left: number },
): Promise<{ result: PhaseResult } | { error: RunError } | { yield: true }> {
  const fs = o.workspace;
  const stem = `${runDir(rec.run)}/${phaseStem(rec.next, phases)}`;
  if (rec.current?.phase !== ph.name) rec.current = { phase: ph.name, iterations: [] };
  const its = rec.current.iterations;
  const idea = rec.refinedIdea ?? rec.idea;
  const env = () => ({
    workspace: fs, writable: runDir(rec.run), provider: metered, wallTimeMs: o.agentTimeMs ?? 180_000,
    tokensLeft: o.budgetTokens === undefined ? Infinity : o.budgetTokens - metered.tokens,
  });
  const failed = (agent: "phase" | "reviewer", n: number, out: AgentOutcome & { ok: false }): { error: RunError } => ({ error: { phase: ph.name, iteration: n, agent, code: out.code, message: out.message } });
  const phaseDef = { name: ph.name, purpose: ph.purpose, sections: ph.sections };
  const inputs = ph.inputs.map((name) => rec.phases.find((r) => r.phase === name)?.artifact).filter((p): p is string => !!p);

  for (;;) {
    const last = its.at(-1);
    if (last && (!ph.review || last.verdict !== undefined)) {
      if (!ph.review || last.verdict === "ACCEPT" || its.length >= rec.reviewIterations) break;
    }
    if (slice.left-- <= 0 || o.signal?.aborted) return { yield: true };
    if (!last || last.verdict !== undefined) {
      const n = its.length + 1;
      const it: Iteration = { n, artifact: `${stem}.i${n}.md`, json: `${stem}.i${n}.json`, tokens: 0 };
      const spec = {
        run: rec.run, idea, index: rec.next + 1, of: phases.length, iteration: n, phase: phaseDef,
        decides: ph.name === KILL_TEST, inputs, out: { md: it.artifact, json: it.json },
        ...(o.maxTokens ? { maxTokens: o.maxTokens } : {}),
        ...(last ? { revise: { artifact: last.artifact, review: last.review } } : {}),
      };
      const out = await runAgent(o.programs.phase, "phase", spec, env());
      if (!out.ok) return failed("phase", n, out);
      it.tokens = out.tokens;
      its.push(it);
      await save();
      if (!ph.review) report(o, rec, ph, phases, { step: "artifact", iteration: n, score: null, review: null, tokens: it.tokens });
      continue;
    }
    // Review the last version.
    const review = `${stem}.i${last.n}.review.md`;
    const out = await runAgent(o.programs.reviewer, "reviewer", { idea, phase: phaseDef, artifact: last.artifact, out: review, ...(o.maxTokens ? { maxTokens: o.maxTokens } : {}) }, env());
    if (!out.ok) return failed("reviewer", last.n, out);
    const r = parseReview((await readText(fs, review)) ?? "");
    Object.assign(last, { review, verdict: r.review, score: r.score, reviewDefaulted: r.defaulted, reviewTokens: out.tokens });
    await save();
    report(o, rec, ph, phases, { step: "review", iteration: last.n, score: r.score, review: r.review, tokens: last.tokens + out.tokens });
  }

  // Keep the best-scored version (the first of equals; unscored ranks last) as NN-PHASE.md/.json.
  const best = its.reduce((a, b) => ((b.score ?? -1) > (a.score ?? -1) ? b : a));
  const kept = { artifact: `${stem}.md`, json: `${stem}.json` };
  await writeText(fs, kept.artifact, (await readText(fs, best.artifact)) ?? "");
  let fields: Record<string, unknown> = {};
  try {
    fields = JSON.parse((await readText(fs, best.json)) ?? "{}");
  } catch {
    // The agent's fields are unreadable: the host's own still go in.
  }
  const verdict = ph.name === KILL_TEST ? parseVerdict((await readText(fs, best.artifact)) ?? "") : undefined;
  const result: PhaseResult = {
    phase: ph.name, ...kept, score: best.score ?? null, review: best.verdict ?? null, best: best.n, iterations: its,
    tokens: its.reduce((n, i) => n + i.tokens + (i.reviewTokens ?? 0), 0),
  };
  await writeText(fs, kept.json, JSON.stringify({ ...fields, score: result.score, review: result.review, verdict: verdict?.verdict ?? null, iterations: its.length, best: best.n }, null, 2) + "\n");
  return { result };
}
