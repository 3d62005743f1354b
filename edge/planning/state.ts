// A planning run's Durable Object state, in its SQLite: the run's settings, whether it is to be
// driven, and the outbox of what its checkpoints produced and the world must still hear about
// (the D1 mirror, events for D1, the audit chain and webhooks, the package for R2, deliveries).
// Every write here is synchronous, so a checkpoint is recorded before the driver goes on.
import type { RunRecord, RunStatus } from "../../agents/host/planning/record.ts";
import type { Principal } from "../auth.ts";
import { eventsOf } from "./events.ts";
import { artifactRows, runRow, type RunRow } from "./store.ts";

export interface RunConfig {
  run: string;
  owner: string;
  workspace: string;
  principal: Principal;
  idea: string;
  llm: string;
  reviewIterations?: number;
  maxPivots?: number;
  maxTokens?: number;
  /** The run may spend tokens until its record counts this many (null: no budget). */
  limit: number | null;
  created: number;
}

export type StoredEvent = { seq: number; key: string; type: string; data: string; time: number };
export type Delivery = { id: string; seq: number; dest: string; attempts: number; next_at: number };
export type DeliveryInfo = Delivery & { state: string; last: string | null };

const TABLES = `
CREATE TABLE IF NOT EXISTS kv(k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events(seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, type TEXT NOT NULL,
  data TEXT NOT NULL, time INTEGER NOT NULL, d1 INTEGER NOT NULL DEFAULT 0, audit INTEGER NOT NULL DEFAULT 0, fanned INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS artifacts(pass INTEGER NOT NULL, idx INTEGER NOT NULL, version INTEGER NOT NULL, row TEXT NOT NULL,
  dirty INTEGER NOT NULL, PRIMARY KEY (pass, idx, version));
CREATE TABLE IF NOT EXISTS deliveries(id TEXT PRIMARY KEY, seq INTEGER NOT NULL, dest TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
  next_at INTEGER NOT NULL, state TEXT NOT NULL DEFAULT 'pending', last TEXT);
`;

export class RunState {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
    sql.exec(TABLES);
  }

  get<T>(k: string): T | null {
    const r = this.#sql.exec<{ v: string }>("SELECT v FROM kv WHERE k = ?", k).toArray()[0];
    return r ? (JSON.parse(r.v) as T) : null;
  }

  set(k: string, v: unknown): void {
    if (v === null || v === undefined) this.#sql.exec("DELETE FROM kv WHERE k = ?", k);
    else this.#sql.exec("INSERT OR REPLACE INTO kv VALUES (?, ?)", k, JSON.stringify(v));
  }

  get config(): RunConfig | null {
    return this.get<RunConfig>("config");
  }
  /** What the object does with the run: drive it ("running") or wait for a resume. */
  get state(): RunStatus | null {
    return this.get<RunStatus>("state");
  }
  /** Counts starts and resumes (each end of the run is one event per epoch). */
  get epoch(): number {
    return this.get<number>("epoch") ?? 1;
  }
  get row(): RunRow | null {
    return this.get<RunRow>("row");
  }

  /** Records what a checkpoint says: the run's row, its artifacts and events, parked idea, package. */
  observe(rec: RunRecord): void {
    const row = runRow(rec);
    if (JSON.stringify(row) !== JSON.stringify(this.row)) {
      this.set("row", row);
      this.set("row_dirty", true);
    }
    for (const a of artifactRows(rec)) {
      const json = JSON.stringify(a);
      const old = this.#sql.exec<{ row: string }>("SELECT row FROM artifacts WHERE pass = ? AND idx = ? AND version = ?", a.pass, a.idx, a.version).toArray()[0];
      if (old?.row !== json) this.#sql.exec("INSERT OR REPLACE INTO artifacts VALUES (?, ?, ?, ?, 1)", a.pass, a.idx, a.version, json);
    }
    for (const e of eventsOf(rec, this.epoch)) {
      this.#sql.exec("INSERT OR IGNORE INTO events (key, type, data, time) VALUES (?, ?, ?, ?)", e.key, e.type, JSON.stringify({ run: rec.run, ...e.data }), Date.now());
    }
    if (rec.parked && !this.get("parked")) this.set("parked", { ...rec.parked, dirty: true });
    if (rec.status === "completed" && rec.package && this.get<string>("package_done") !== rec.package) this.set("package_pending", rec.package);
  }

  /** A failure the record does not show (the driver itself kept failing): the run's end, reported. */
  fail(error: { phase: string; iteration: number; agent: string; code: string; message: string }): void {
    const row = this.row;
    if (row) {
      this.set("row", { ...row, status: "failed", error: JSON.stringify(error) });
      this.set("row_dirty", true);
    }
    this.#sql.exec("INSERT OR IGNORE INTO events (key, type, data, time) VALUES (?, ?, ?, ?)", `end:${this.epoch}`, "run_failed",
      JSON.stringify({ run: this.config?.run, status: "failed", error }), Date.now());
    this.set("state", "failed");
  }

  dirtyArtifacts(): Array<{ pass: number; idx: number; version: number; row: string }> {
    return this.#sql.exec<{ pass: number; idx: number; version: number; row: string }>("SELECT pass, idx, version, row FROM artifacts WHERE dirty = 1 LIMIT 90").toArray();
  }
  artifactsClean(rows: Array<{ pass: number; idx: number; version: number; row: string }>): void {
    for (const r of rows) this.#sql.exec("UPDATE artifacts SET dirty = 0 WHERE pass = ? AND idx = ? AND version = ? AND row = ?", r.pass, r.idx, r.version, r.row);
  }

  events(where: "d1" | "audit" | "fanned", limit = 50): StoredEvent[] {
    return this.#sql.exec<StoredEvent>(`SELECT seq, key, type, data, time FROM events WHERE ${where} = 0 ORDER BY seq LIMIT ?`, limit).toArray();
  }
  eventDone(where: "d1" | "audit" | "fanned", seq: number): void {
    this.#sql.exec(`UPDATE events SET ${where} = 1 WHERE seq = ?`, seq);
  }
  event(seq: number): StoredEvent | null {
    return this.#sql.exec<StoredEvent>("SELECT seq, key, type, data, time FROM events WHERE seq = ?", seq).toArray()[0] ?? null;
  }

  addDelivery(seq: number, dest: string, at: number): void {
    this.#sql.exec("INSERT OR IGNORE INTO deliveries (id, seq, dest, next_at) VALUES (?, ?, ?, ?)", `${seq}:${dest}`, seq, dest, at);
  }
  dueDeliveries(now: number): Delivery[] {
    return this.#sql.exec<Delivery>("SELECT id, seq, dest, attempts, next_at FROM deliveries WHERE state = 'pending' AND next_at <= ? ORDER BY next_at LIMIT 20", now).toArray();
  }
  delivered(id: string, attempts: number, state: "pending" | "delivered" | "failed" | "dropped", last: string, nextAt = 0): void {
    this.#sql.exec("UPDATE deliveries SET attempts = ?, state = ?, last = ?, next_at = ? WHERE id = ?", attempts, state, last, nextAt, id);
  }
  deliveries(): DeliveryInfo[] {
    return this.#sql.exec<DeliveryInfo>("SELECT * FROM deliveries ORDER BY seq, id").toArray();
  }

  /** When the outbox next needs the alarm: now if anything waits, else the next delivery. */
  nextDue(): number | null {
    const waiting = this.get<boolean>("row_dirty") || (this.get<{ dirty?: boolean }>("parked")?.dirty ?? false) || this.get("package_pending") !== null
      || this.#sql.exec("SELECT 1 FROM artifacts WHERE dirty = 1 LIMIT 1").toArray().length > 0
      || this.#sql.exec("SELECT 1 FROM events WHERE d1 = 0 OR audit = 0 OR fanned = 0 LIMIT 1").toArray().length > 0;
    const d = this.#sql.exec<{ t: number | null }>("SELECT min(next_at) AS t FROM deliveries WHERE state = 'pending'").toArray()[0]?.t ?? null;
    const retry = this.get<number>("outbox_retry_at") ?? 0;
    const now = waiting ? Math.max(Date.now(), retry) : null;
    return now === null ? d : d === null ? now : Math.min(now, d);
  }
}
