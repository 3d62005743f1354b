// Planning runs in D1 (schema.ts): the rows that mirror each run's record (one row per run, one per
// kept artifact version, one per parked idea, one per event), written by the run's Durable Object,
// and the reads behind GET /api/planning/*. The files themselves stay in the run's workspace; a row
// names an artifact by its file name within its pass (`pass` counts the PIVOTs before it), and the
// path is made on reading: an earlier pass lives under plans/RUN/pivot-N/.
import { fsError } from "../../runtime/errors.ts";
import { PHASES } from "../../agents/planning/phases.ts";
import type { RunRecord, RunStatus } from "../../agents/host/planning/record.ts";
import { ensurePlanningSchema } from "./schema.ts";

export interface RunRow {
  status: RunStatus;
  current_phase: string | null;
  refined_idea: string | null;
  kill_verdict: string | null;
  pivot_count: number;
  tokens: number;
  calls: number;
  package_path: string | null;
  error: string | null;
}

export interface ArtifactRow {
  pass: number;
  idx: number;
  phase: string;
  /** 0: the kept version (NN-PHASE.md); n: the n-th try. */
  version: number;
  name: string;
  review_name: string | null;
  review_verdict: string | null;
  overall_score: number | null;
  kill_verdict: string | null;
  review_iterations: number | null;
  tokens: number;
}

const base = (p: string): string => p.slice(p.lastIndexOf("/") + 1);
const indexOf = (phase: string): number => PHASES.findIndex((p) => p.name === phase) + 1;

export function runRow(rec: RunRecord): RunRow {
  return {
    status: rec.status,
    current_phase: rec.current?.phase ?? PHASES[rec.next]?.name ?? rec.phases.at(-1)?.phase ?? null,
    refined_idea: rec.refinedIdea ?? null,
    kill_verdict: rec.verdict ?? null,
    pivot_count: rec.pivots,
    tokens: rec.tokens,
    calls: rec.calls,
    package_path: rec.package ?? null,
    error: rec.error ? JSON.stringify(rec.error) : null,
  };
}

/** Every version the record knows in its current pass: kept ones and the phase in progress. */
export function artifactRows(rec: RunRecord): ArtifactRow[] {
  const rows: ArtifactRow[] = [];
  const tries = (phase: string, its: RunRecord["phases"][number]["iterations"]) => {
    for (const it of its) {
      rows.push({
        pass: rec.pivots, idx: indexOf(phase), phase, version: it.n, name: base(it.artifact), review_name: it.review ? base(it.review) : null,
        review_verdict: it.verdict ?? null, overall_score: it.score ?? null, kill_verdict: null, review_iterations: null, tokens: it.tokens + (it.reviewTokens ?? 0),
      });
    }
  };
  for (const r of rec.phases) {
    rows.push({
      pass: rec.pivots, idx: indexOf(r.phase), phase: r.phase, version: 0, name: base(r.artifact), review_name: null, review_verdict: r.review,
      overall_score: r.score, kill_verdict: r.verdict ?? null, review_iterations: r.iterations.length, tokens: r.tokens,
    });
    tries(r.phase, r.iterations);
  }
  if (rec.current) tries(rec.current.phase, rec.current.iterations);
  return rows;
}

export interface NewRun { id: string; owner: string; workspace: string; idea: string; llm: string; created: number }

export async function insertRun(db: D1Database, r: NewRun, row: RunRow): Promise<void> {
  await ensurePlanningSchema(db);
  await db.prepare(
    `INSERT INTO planning_runs (id, owner, workspace, idea, llm, status, current_phase, refined_idea, kill_verdict, pivot_count, tokens, calls, package_path, error, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).bind(r.id, r.owner, r.workspace, r.idea, r.llm, row.status, row.current_phase, row.refined_idea, row.kill_verdict, row.pivot_count, row.tokens, row.calls, row.package_path, row.error, r.created, Date.now()).run();
}

export function updateRunStmt(db: D1Database, id: string, row: RunRow, packageKey?: string): D1PreparedStatement {
  return db.prepare(
    `UPDATE planning_runs SET status = ?, current_phase = ?, refined_idea = ?, kill_verdict = ?, pivot_count = ?, tokens = ?, calls = ?,
       package_path = ?, error = ?, package_key = coalesce(?, package_key), updated_at = ? WHERE id = ?`,
  ).bind(row.status, row.current_phase, row.refined_idea, row.kill_verdict, row.pivot_count, row.tokens, row.calls, row.package_path, row.error, packageKey ?? null, Date.now(), id);
}

export function upsertArtifactStmt(db: D1Database, run: string, a: ArtifactRow): D1PreparedStatement {
  return db.prepare(
    `INSERT INTO planning_artifacts (run_id, pass, idx, phase, version, name, review_name, review_verdict, overall_score, kill_verdict, review_iterations, tokens, created_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (run_id, pass, idx, version) DO UPDATE SET name = excluded.name, review_name = excluded.review_name, review_verdict = excluded.review_verdict,
       overall_score = excluded.overall_score, kill_verdict = excluded.kill_verdict, review_iterations = excluded.review_iterations, tokens = excluded.tokens`,
  ).bind(run, a.pass, a.idx, a.phase, a.version, a.name, a.review_name, a.review_verdict, a.overall_score, a.kill_verdict, a.review_iterations, a.tokens, Date.now());
}

export interface Parked { idea: string; refinedIdea?: string; run: string; phase: string; reason: string; revisitMonths: number; parkedAt: string }

export function insertParkedStmt(db: D1Database, owner: string, workspace: string, p: Parked): D1PreparedStatement {
  return db.prepare(
    `INSERT OR IGNORE INTO planning_parked_ideas (run_id, owner, workspace, idea, refined_idea, source_phase, reason, revisit_estimate_months, created_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).bind(p.run, owner, workspace, p.idea, p.refinedIdea ?? null, p.phase, p.reason, p.revisitMonths, Date.parse(p.parkedAt) || Date.now());
}

export function insertEventStmt(db: D1Database, run: string, e: { seq: number; time: number; type: string; data: string }): D1PreparedStatement {
  return db.prepare("INSERT OR IGNORE INTO planning_events (run_id, seq, time, type, data) VALUES (?, ?, ?, ?, ?)").bind(run, e.seq, e.time, e.type, e.data);
}

// ---------------------------------------------------------------- reads (the API's shapes)

const iso = (ms: number): string => new Date(ms).toISOString();

type Row = Record<string, unknown>;

export async function listRuns(db: D1Database, owner: string): Promise<Array<Record<string, unknown>>> {
  await ensurePlanningSchema(db);
  const rs = await db.prepare("SELECT id, idea, status, current_phase, workspace, created_at, updated_at FROM planning_runs WHERE owner = ? ORDER BY created_at DESC LIMIT 200").bind(owner).all<Row>();
  return rs.results.map((r) => ({
    id: r.id, idea: r.idea, status: r.status, phase: r.current_phase, workspace: r.workspace, createdAt: iso(r.created_at as number), updatedAt: iso(r.updated_at as number),
  }));
}

/** The run row if `owner` owns it (ENOENT otherwise: another key's run does not exist for you). */
export async function runOf(db: D1Database, owner: string, id: string): Promise<Row> {
  await ensurePlanningSchema(db);
  const r = await db.prepare("SELECT * FROM planning_runs WHERE id = ? AND owner = ?").bind(id, owner).first<Row>();
  if (!r) throw fsError("ENOENT", `no planning run ${id.slice(0, 100)}`);
  return r;
}

export async function getRun(db: D1Database, owner: string, id: string): Promise<Record<string, unknown>> {
  const r = await runOf(db, owner, id);
  const [arts, evs, parked] = await Promise.all([
    db.prepare("SELECT * FROM planning_artifacts WHERE run_id = ? ORDER BY pass, idx, version").bind(id).all<Row>(),
    db.prepare("SELECT seq, time, type, data FROM planning_events WHERE run_id = ? ORDER BY seq").bind(id).all<Row>(),
    db.prepare("SELECT * FROM planning_parked_ideas WHERE run_id = ?").bind(id).first<Row>(),
  ]);
  const pivots = r.pivot_count as number;
  const dir = (pass: number): string => (pass < pivots ? `plans/${id}/pivot-${pass + 1}` : `plans/${id}`);
  const phases: Array<Record<string, unknown> & { iterations: unknown[] }> = [];
  const byKey = new Map<string, (typeof phases)[number]>();
  for (const a of arts.results) {
    const pass = a.pass as number;
    const key = `${pass}:${a.idx}`;
    let ph = byKey.get(key);
    if (!ph) {
      ph = { phase: a.phase, index: a.idx, pass, artifact: null, score: null, review: null, verdict: null, iterations: [] };
      byKey.set(key, ph);
      phases.push(ph);
    }
    const at = (name: unknown): string | null => (typeof name === "string" ? `${dir(pass)}/${name}` : null);
    if (a.version === 0) Object.assign(ph, { artifact: at(a.name), score: a.overall_score, review: a.review_verdict, verdict: a.kill_verdict, tokens: a.tokens });
    else ph.iterations.push({ n: a.version, artifact: at(a.name), review: at(a.review_name), verdict: a.review_verdict, score: a.overall_score, tokens: a.tokens });
  }
  return {
    id, idea: r.idea, refinedIdea: r.refined_idea, status: r.status, phase: r.current_phase, workspace: r.workspace, llm: r.llm,
    pivots, verdict: r.kill_verdict, tokens: r.tokens, calls: r.calls,
    package: r.package_path ? { path: r.package_path, key: r.package_key ?? null } : null,
    error: r.error ? JSON.parse(r.error as string) : null,
    parked: parked ? parkedOf(parked) : null,
    createdAt: iso(r.created_at as number), updatedAt: iso(r.updated_at as number),
    phases,
    events: evs.results.map((e) => ({ seq: e.seq, type: e.type, time: iso(e.time as number), data: JSON.parse(e.data as string) })),
  };
}

const parkedOf = (p: Row): Record<string, unknown> => ({
  run: p.run_id, workspace: p.workspace, idea: p.idea, refinedIdea: p.refined_idea, phase: p.source_phase, reason: p.reason,
  revisitMonths: p.revisit_estimate_months, parkedAt: iso(p.created_at as number),
});

export async function listParked(db: D1Database, owner: string): Promise<Array<Record<string, unknown>>> {
  await ensurePlanningSchema(db);
  const rs = await db.prepare("SELECT * FROM planning_parked_ideas WHERE owner = ? ORDER BY created_at DESC LIMIT 500").bind(owner).all<Row>();
  return rs.results.map(parkedOf);
}
