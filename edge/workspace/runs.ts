// Edge runs in progress in this workspace: at most MAX_RUNS_PER_WORKSPACE at once, so one
// client's busy programs cannot take the edge from everyone else (the edge has its own bound too,
// edge/http/run.ts). Kept in SQLite, so an evicted object still counts; a slot whose release was
// lost (a Worker killed mid-run) lapses after RUN_SLOT_MS, longer than any run may last.
import { busy } from "../errors.ts";

export const RUN_TABLES = `
CREATE TABLE IF NOT EXISTS runs(job TEXT PRIMARY KEY, started INTEGER NOT NULL);
`;

export const MAX_RUNS_PER_WORKSPACE = 2;
const RUN_SLOT_MS = 60 * 1000;

export class Runs {
  readonly #sql: SqlStorage;
  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  /** Takes a slot for `job`, or EAGAIN when every slot is taken. */
  admit(job: string): void {
    const now = Date.now();
    this.#sql.exec("DELETE FROM runs WHERE started < ?", now - RUN_SLOT_MS);
    const n = this.#sql.exec<{ n: number }>("SELECT count(*) AS n FROM runs").one().n;
    if (n >= MAX_RUNS_PER_WORKSPACE) throw busy(`${n} runs are in progress in this workspace (at most ${MAX_RUNS_PER_WORKSPACE}); try again when one ends`);
    this.#sql.exec("INSERT OR REPLACE INTO runs VALUES(?, ?)", job, now);
  }

  release(job: string): void {
    this.#sql.exec("DELETE FROM runs WHERE job = ?", job);
  }
}
