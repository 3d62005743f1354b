// D1: jobs with the lifecycle queued → running → succeeded | failed, their events, and the
// per-workspace SHA-256 hash-chained audit log (written by each workspace DO, which is the only
// writer of its chain, so the chain never forks). The schema is edge/migrations/0001_init.sql, which
// the Worker also applies on first use (so `wrangler dev` needs no migration step).
import { FsError } from "../runtime/errors.ts";
import initSql from "./migrations/0001_init.sql";
import { sha256 } from "@noble/hashes/sha2.js";
import { hex } from "./bytes.ts";

/** One audit entry's hash: SHA-256 over the previous hash and the entry's fields. */
export function auditHash(prev: string, seq: number, ws: string, time: number, actor: string, action: string, detail: string): string {
  return hex(sha256(new TextEncoder().encode(`${prev}\n${JSON.stringify([seq, ws, time, actor, action, detail])}`)));
}

/**
 * The statements of a migration file, for `schemaOnce`: `--` comments dropped, split at `;`. (The
 * migrations hold no `;` inside a string or a trigger body; one that does needs a real splitter.)
 */
export function statementsOf(sql: string): string[] {
  return sql.replace(/--[^\n]*/g, "").split(";").map((s) => s.trim()).filter(Boolean);
}

const SCHEMA_STATEMENTS = statementsOf(initSql);

/** Applies `statements` once per isolate and database (idempotent: each is IF NOT EXISTS); a failed try is tried again on the next call. */
export function schemaOnce(statements: readonly string[]): (db: D1Database) => Promise<void> {
  const ready = new WeakMap<D1Database, Promise<void>>();
  return (db) => {
    let p = ready.get(db);
    if (!p) {
      p = db.batch(statements.map((s) => db.prepare(s))).then(() => undefined);
      p.catch(() => ready.delete(db));
      ready.set(db, p);
    }
    return p;
  };
}

/** Applies the jobs and audit schema once per isolate. */
export const ensureSchema = schemaOnce(SCHEMA_STATEMENTS);

export type JobState = "queued" | "running" | "succeeded" | "failed";
const NEXT: Record<JobState, JobState[]> = { queued: ["running", "failed"], running: ["succeeded", "failed"], succeeded: [], failed: [] };

export interface Job {
  id: string; workspace: string; kind: string; input: unknown; state: JobState;
  created_at: number; updated_at: number; actor: string; result?: unknown; error?: string | null;
}

const jobOf = (r: Record<string, unknown>): Job => ({
  ...(r as unknown as Job),
  input: JSON.parse(r.input as string),
  result: r.result ? JSON.parse(r.result as string) : undefined,
});

export async function createJob(db: D1Database, ws: string, actor: string, kind: string, input: unknown): Promise<Job> {
  await ensureSchema(db);
  if (typeof kind !== "string" || !/^[A-Za-z0-9._:-]{1,64}$/.test(kind)) throw new FsError("EINVAL", "job kind must be a short name");
  const id = crypto.randomUUID();
  const now = Date.now();
  await db.batch([
    db.prepare("INSERT INTO jobs (id, workspace, kind, input, state, created_at, updated_at, actor) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?)")
      .bind(id, ws, kind, JSON.stringify(input ?? null), now, now, actor),
    db.prepare("INSERT INTO job_events (job_id, time, type, data) VALUES (?, ?, 'queued', NULL)").bind(id, now),
  ]);
  return { id, workspace: ws, kind, input: input ?? null, state: "queued", created_at: now, updated_at: now, actor };
}

/** Moves a job along its lifecycle; a transition that is not allowed is EINVAL (409 never races). */
export async function transition(db: D1Database, ws: string, id: string, to: JobState, out: { result?: unknown; error?: string } = {}): Promise<Job> {
  await ensureSchema(db);
  if (!(to in NEXT)) throw new FsError("EINVAL", `unknown job state ${String(to)}`);
  const from = (Object.keys(NEXT) as JobState[]).filter((s) => NEXT[s].includes(to));
  if (!from.length) throw new FsError("EINVAL", `no job can move to ${to}`);
  const now = Date.now();
  // The conditional UPDATE is the lock: two racing transitions cannot both succeed.
  const r = await db.prepare(
    `UPDATE jobs SET state = ?, updated_at = ?, result = coalesce(?, result), error = coalesce(?, error)
     WHERE id = ? AND workspace = ? AND state IN (${from.map(() => "?").join(", ")})`,
  ).bind(to, now, out.result === undefined ? null : JSON.stringify(out.result), out.error ?? null, id, ws, ...from).run();
  if (!r.meta.changes) {
    const cur = await db.prepare("SELECT state FROM jobs WHERE id = ? AND workspace = ?").bind(id, ws).first<{ state: string }>();
    if (!cur) throw new FsError("ENOENT", `job ${id}`);
    throw new FsError("EINVAL", `job ${id} is ${cur.state}; it cannot become ${to}`);
  }
  await addEvent(db, id, to, out.error ? { error: out.error } : out.result !== undefined ? { result: out.result } : undefined);
  return (await getJob(db, ws, id)).job;
}

export async function addEvent(db: D1Database, id: string, type: string, data?: unknown): Promise<void> {
  await ensureSchema(db);
  await db.prepare("INSERT INTO job_events (job_id, time, type, data) VALUES (?, ?, ?, ?)")
    .bind(id, Date.now(), type, data === undefined ? null : JSON.stringify(data)).run();
}

export async function getJob(db: D1Database, ws: string, id: string): Promise<{ job: Job; events: Array<{ time: number; type: string; data: unknown }> }> {
  await ensureSchema(db);
  const r = await db.prepare("SELECT * FROM jobs WHERE id = ? AND workspace = ?").bind(id, ws).first<Record<string, unknown>>();
  if (!r) throw new FsError("ENOENT", `job ${id}`);
  const ev = await db.prepare("SELECT time, type, data FROM job_events WHERE job_id = ? ORDER BY id").bind(id).all<{ time: number; type: string; data: string | null }>();
  return { job: jobOf(r), events: ev.results.map((e) => ({ time: e.time, type: e.type, data: e.data ? JSON.parse(e.data) : undefined })) };
}

export async function listJobs(db: D1Database, ws: string, state?: string): Promise<Job[]> {
  await ensureSchema(db);
  const q = state
    ? db.prepare("SELECT * FROM jobs WHERE workspace = ? AND state = ? ORDER BY created_at DESC LIMIT 200").bind(ws, state)
    : db.prepare("SELECT * FROM jobs WHERE workspace = ? ORDER BY created_at DESC LIMIT 200").bind(ws);
  return (await q.all<Record<string, unknown>>()).results.map(jobOf);
}

export interface AuditEntry { seq: number; time: number; actor: string; action: string; detail: unknown; hash: string }

export async function auditEntries(db: D1Database, ws: string, after = 0, limit = 200): Promise<AuditEntry[]> {
  await ensureSchema(db);
  const r = await db.prepare("SELECT seq, time, actor, action, detail, hash FROM audit WHERE workspace = ? AND seq > ? ORDER BY seq LIMIT ?")
    .bind(ws, after, Math.max(1, Math.min(1000, limit))).all<Record<string, unknown>>();
  return r.results.map((e) => ({ ...(e as unknown as AuditEntry), detail: JSON.parse(e.detail as string) }));
}

/**
 * Recomputes the chain: every entry's hash from its fields and its predecessor's hash, sequence
 * numbers without gaps, and the last hash equal to the head the workspace DO holds (so deleting
 * the newest entries is detected too).
 */
export async function verifyAudit(db: D1Database, ws: string, head: { seq: number; head: string }): Promise<{ ok: boolean; entries: number; brokenAt?: number; reason?: string }> {
  await ensureSchema(db);
  let prev = "0".repeat(64);
  let expect = 1;
  let after = 0;
  for (;;) {
    const rows = (await db.prepare("SELECT * FROM audit WHERE workspace = ? AND seq > ? ORDER BY seq LIMIT 500").bind(ws, after).all<Record<string, unknown>>()).results;
    if (!rows.length) break;
    for (const r of rows) {
      const seq = r.seq as number;
      if (seq !== expect) return { ok: false, entries: expect - 1, brokenAt: expect, reason: `entry ${expect} is missing` };
      if (r.prev !== prev) return { ok: false, entries: seq - 1, brokenAt: seq, reason: "prev does not link to the entry before" };
      const h = auditHash(prev, seq, ws, r.time as number, r.actor as string, r.action as string, r.detail as string);
      if (h !== r.hash) return { ok: false, entries: seq - 1, brokenAt: seq, reason: "entry does not match its hash" };
      prev = h;
      expect++;
      after = seq;
    }
  }
  if (expect - 1 !== head.seq) return { ok: false, entries: expect - 1, brokenAt: expect, reason: `chain ends at ${expect - 1}, the workspace is at ${head.seq}` };
  if (head.seq > 0 && prev !== head.head) return { ok: false, entries: expect - 1, brokenAt: head.seq, reason: "last hash differs from the workspace's head" };
  return { ok: true, entries: expect - 1 };
}
