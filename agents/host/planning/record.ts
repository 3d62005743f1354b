// The run record: plans/RUN/run.json in the workspace, the run's one durable state. It is written
// after every agent that finished (a checkpoint), so a run interrupted anywhere resumes from it and
// repeats no model call that already answered. Parked ideas go to plans/parked.jsonl.
import type { FileService } from "../../../runtime/types.ts";
import { appendLine, list, readText, writeText } from "./files.ts";
import type { Review, Verdict } from "./markers.ts";

export const PLANS = "plans";
export const PARKED = `${PLANS}/parked.jsonl`;

export type RunStatus = "running" | "completed" | "killed" | "paused" | "failed";

/** One try at a phase: the agent's artifact and, for reviewed phases, the review. */
export interface Iteration {
  n: number;
  artifact: string;
  json: string;
  tokens: number;
  review?: string;
  verdict?: Review;
  score?: number | null;
  reviewDefaulted?: boolean;
  reviewTokens?: number;
}

export interface PhaseResult {
  phase: string;
  /** The kept (best-scored) version, NN-PHASE.md, and its fields. */
  artifact: string;
  json: string;
  score: number | null;
  review: Review | null;
  best: number;
  iterations: Iteration[];
  tokens: number;
  /** The kill test's verdict, and whether the marker was missing (GO by default). */
  verdict?: Verdict;
  verdictDefaulted?: boolean;
}

export interface ParkedIdea {
  idea: string;
  refinedIdea?: string;
  run: string;
  phase: string;
  reason: string;
  revisitMonths: number;
  parkedAt: string;
}

export interface RunError {
  phase: string;
  iteration: number;
  agent: "phase" | "reviewer" | "host";
  /** errno name (EDQUOT, EIO, ETIMEDOUT, EROFS, …) or the exit reason (trap, timeout, memory). */
  code: string;
  message: string;
}

export interface RunRecord {
  version: 1;
  run: string;
  idea: string;
  /** The idea after the last PIVOT (what the phases work on). */
  refinedIdea?: string;
  status: RunStatus;
  llm: string;
  reviewIterations: number;
  maxPivots: number;
  pivots: number;
  /** Index of the next phase to run in the phase table. */
  next: number;
  phases: PhaseResult[];
  /** The phase in progress and its finished iterations. */
  current?: { phase: string; iterations: Iteration[] };
  /** Earlier passes, one per PIVOT: where their artifacts went and why. */
  pivotHistory: { pivot: number; dir: string; from: string; to: string }[];
  /** A PIVOT decided whose artifacts are not yet moved (makes the move safe to repeat). */
  pivotPending?: { to: string };
  verdict?: Verdict;
  parked?: ParkedIdea;
  error?: RunError;
  tokens: number;
  calls: number;
  package?: string;
  createdAt: string;
  updatedAt: string;
}

export const runDir = (run: string): string => `${PLANS}/${run}`;
export const recordPath = (run: string): string => `${runDir(run)}/run.json`;

export async function saveRecord(fs: FileService, rec: RunRecord): Promise<void> {
  rec.updatedAt = new Date().toISOString();
  await writeText(fs, recordPath(rec.run), JSON.stringify(rec, null, 2) + "\n");
}

export async function loadRecord(fs: FileService, run: string): Promise<RunRecord | null> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(run)) return null;
  const text = await readText(fs, recordPath(run));
  if (text === null) return null;
  const rec = JSON.parse(text) as RunRecord;
  if (rec.version !== 1 || rec.run !== run) throw new Error(`${recordPath(run)}: not a run record of this version`);
  return rec;
}

/** Every run in the workspace, oldest first. */
export async function listRuns(fs: FileService): Promise<RunRecord[]> {
  const out: RunRecord[] = [];
  for (const e of await list(fs, PLANS)) {
    if (e.type !== "dir") continue;
    const rec = await loadRecord(fs, e.name).catch(() => null);
    if (rec) out.push(rec);
  }
  return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}

export async function park(fs: FileService, p: ParkedIdea): Promise<void> {
  await appendLine(fs, PARKED, JSON.stringify(p));
}

export async function listParked(fs: FileService): Promise<ParkedIdea[]> {
  const text = await readText(fs, PARKED);
  if (!text) return [];
  return text.split("\n").filter((l) => l.trim()).flatMap((l) => {
    try {
      return [JSON.parse(l) as ParkedIdea];
    } catch {
      return []; // A line cut by a crash mid-append is skipped, not fatal.
    }
  });
}

/** A new run id: UTC date and time, then random hex (sorts by creation). */
export function newRunId(now = new Date()): string {
  const t = now.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  const r = crypto.getRandomValues(new Uint8Array(3));
  return `${t}-${[...r].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** The summary the issue specifies (paths relative to the workspace root). */
export function summary(rec: RunRecord): Record<string, unknown> {
  return {
    run: rec.run, idea: rec.idea, ...(rec.refinedIdea ? { refinedIdea: rec.refinedIdea } : {}), status: rec.status,
    verdict: rec.verdict ?? null, pivots: rec.pivots,
    phases: rec.phases.map((r) => ({ phase: r.phase, artifact: r.artifact, score: r.score, review: r.review, iterations: r.iterations.length })),
    package: rec.package ?? null, tokens: rec.tokens, calls: rec.calls,
    ...(rec.parked ? { parked: rec.parked } : {}), ...(rec.error ? { error: rec.error } : {}),
  };
}
