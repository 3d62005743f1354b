// Moves what a run's checkpoints recorded (state.ts) out to the world, from the run object's alarm:
// the D1 mirror (run row, artifacts, parked idea, events), the package to R2, each event into the
// workspace's audit chain, and each event to the owner's webhook destinations with retries and
// exponential backoff. Every step is idempotent and marked done only once it landed, so an alarm
// cut short (eviction, a failing D1) repeats the rest next time and loses nothing.
import type { Cred } from "../auth.ts";
import type { Env } from "../env.ts";
import { readText } from "../../agents/host/planning/files.ts";
import type { FileService } from "../../runtime/types.ts";
import type { RunState } from "./state.ts";
import { insertEventStmt, insertParkedStmt, updateRunStmt, upsertArtifactStmt, type ArtifactRow, type Parked, type RunRow } from "./store.ts";
import { ensurePlanningSchema } from "./schema.ts";
import { deliver, destination, destinationsFor, wants } from "./webhooks.ts";

/** Attempts before a delivery is given up (the last waits about 2 hours at the default base). */
export const MAX_ATTEMPTS = 9;
const MAX_DELAY_MS = 6 * 3600_000;

export const packageKey = (run: string): string => `planning/${run}/package.md`;

export interface OutboxContext {
  env: Env;
  state: RunState;
  workspace: () => FileService;
  cred: Cred;
}

export async function flushOutbox(x: OutboxContext): Promise<void> {
  const { env, state } = x;
  const cfg = state.config!;
  await ensurePlanningSchema(env.DB);
  const db = env.DB;

  // The package, before the row names its key.
  const pending = state.get<string>("package_pending");
  let key: string | undefined;
  if (pending) {
    const text = await readText(x.workspace(), pending);
    if (text !== null) {
      key = packageKey(cfg.run);
      await env.BLOBS.put(key, text, { httpMetadata: { contentType: "text/markdown; charset=utf-8" }, customMetadata: { run: cfg.run, workspace: cfg.workspace, path: pending } });
    }
    state.set("package_done", pending);
    state.set("package_pending", null);
    if (key) state.set("row_dirty", true);
  }

  const stmts: D1PreparedStatement[] = [];
  const row = state.row;
  if (row && state.get<boolean>("row_dirty")) stmts.push(updateRunStmt(db, cfg.run, row as RunRow, key));
  const arts = state.dirtyArtifacts();
  for (const a of arts) stmts.push(upsertArtifactStmt(db, cfg.run, JSON.parse(a.row) as ArtifactRow));
  const parked = state.get<Parked & { dirty?: boolean }>("parked");
  if (parked?.dirty) stmts.push(insertParkedStmt(db, cfg.owner, cfg.workspace, parked));
  const evs = state.events("d1");
  for (const e of evs) stmts.push(insertEventStmt(db, cfg.run, e));
  if (stmts.length) {
    await db.batch(stmts);
    state.set("row_dirty", null);
    state.artifactsClean(arts);
    if (parked?.dirty) state.set("parked", { ...parked, dirty: false });
    for (const e of evs) state.eventDone("d1", e.seq);
  }

  // The workspace's audit chain: one entry per event, on the run's directory.
  const ws = env.WORKSPACE.get(env.WORKSPACE.idFromName(cfg.workspace));
  for (const e of state.events("audit")) {
    const r = await ws.auditAppend(x.cred, `plans/${cfg.run}`, `plan.${e.type}`, { seq: e.seq, ...JSON.parse(e.data) });
    if (!r.ok) throw new Error(`audit: ${r.error.message}`);
    state.eventDone("audit", e.seq);
  }

  // Webhooks: each event to each destination that wants it, as deliveries with their own retries.
  const fan = state.events("fanned");
  if (fan.length) {
    const dests = await destinationsFor(db, cfg.owner);
    for (const e of fan) {
      for (const d of dests) if (wants(d, e.type)) state.addDelivery(e.seq, d.id, Date.now());
      state.eventDone("fanned", e.seq);
    }
  }
  await deliverDue(x);
}

/** The event as a webhook body: the same bytes on every attempt (the signature covers them). */
export function eventBody(run: string, workspace: string, e: { seq: number; type: string; data: string; time: number }): string {
  return JSON.stringify({ id: `${run}.${e.seq}`, type: e.type, run, workspace, time: new Date(e.time).toISOString(), data: JSON.parse(e.data) });
}

async function deliverDue(x: OutboxContext): Promise<void> {
  const cfg = x.state.config!;
  const base = Math.max(1, Number(x.env.WEBHOOK_RETRY_MS ?? "") || 30_000);
  for (const d of x.state.dueDeliveries(Date.now())) {
    const e = x.state.event(d.seq);
    const dest = await destination(x.env.DB, d.dest);
    if (!e || !dest) {
      x.state.delivered(d.id, d.attempts, "dropped", "the destination was removed");
      continue;
    }
    const out = await deliver(x.env, dest, d.id, e.type, eventBody(cfg.run, cfg.workspace, e));
    const n = d.attempts + 1;
    if (out.ok) x.state.delivered(d.id, n, "delivered", `HTTP ${out.status}`);
    else if (!out.retry || n >= MAX_ATTEMPTS) x.state.delivered(d.id, n, "failed", out.why);
    else x.state.delivered(d.id, n, "pending", out.why, Date.now() + Math.min(MAX_DELAY_MS, base * 2 ** (n - 1)));
  }
}
