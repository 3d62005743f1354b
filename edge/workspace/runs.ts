// Edge runs in progress in this workspace: at most MAX_RUNS_PER_WORKSPACE at once, so one
// client's busy programs cannot take the edge from everyone else (the edge has its own bound too,
// edge/http/run.ts). Kept in SQLite, so an evicted object still counts; a slot whose release was
// lost (a Worker killed mid-run) lapses after RUN_SLOT_MS, longer than any run may last.
// A caller that will wait (an edge provider's job) leaves its name when refused; a release answers
// the longest-waiting names, so the caller can wake them instead of their polling for a slot.
import { busy } from "../errors.ts";

export const RUN_TABLES = `
CREATE TABLE IF NOT EXISTS runs(job TEXT PRIMARY KEY, started INTEGER NOT NULL);
`;

export const RUN_WAITER_TABLES = `
CREATE TABLE IF NOT EXISTS run_waiters(waiter TEXT PRIMARY KEY, since INTEGER NOT NULL);
`;

export const MAX_RUNS_PER_WORKSPACE = 2;
const RUN_SLOT_MS = 60 * 1000;
/** Waiters named to a releaser at once (they race for the slot; the others keep their place). */
const WAKE_AT_ONCE = 4;
/** A waiter that has not come back for this long has stopped waiting. */
const WAITER_MS = 5 * 60 * 1000;

export class Runs {
  readonly #sql: SqlStorage;
  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  /** Takes a slot for `job`, or EAGAIN when every slot is taken (`waiter`, if given, is kept in line). */
  admit(job: string, waiter?: string): void {
    const now = Date.now();
    this.#sql.exec("DELETE FROM runs WHERE started < ?", now - RUN_SLOT_MS);
    const n = this.#sql.exec<{ n: number }>("SELECT count(*) AS n FROM runs").one().n;
    if (n >= MAX_RUNS_PER_WORKSPACE) {
      if (waiter !== undefined) this.#sql.exec("INSERT OR IGNORE INTO run_waiters VALUES(?, ?)", waiter, now);
      throw busy(`${n} runs are in progress in this workspace (at most ${MAX_RUNS_PER_WORKSPACE}); try again when one ends`);
    }
    if (waiter !== undefined) this.#sql.exec("DELETE FROM run_waiters WHERE waiter = ?", waiter);
    this.#sql.exec("INSERT OR REPLACE INTO runs VALUES(?, ?)", job, now);
  }

  /** Gives the slot back; answers who has waited longest for one (to be woken). */
  release(job: string): string[] {
    this.#sql.exec("DELETE FROM runs WHERE job = ?", job);
    this.#sql.exec("DELETE FROM run_waiters WHERE since < ?", Date.now() - WAITER_MS);
    return this.#sql.exec<{ waiter: string }>("SELECT waiter FROM run_waiters ORDER BY since, waiter LIMIT ?", WAKE_AT_ONCE).toArray().map((r) => r.waiter);
  }
}
