// The job outbox: every NIP-90 hand-over (jobs.ts) is a row of the relay object's own SQLite from the
// moment its event is accepted until its hook has run, so that a hand-over the object did not finish
// (evicted, crashed, restarted, its code updated) is run again by its successor instead of being lost.
//
// A row is one hook call for one agent (the job, the deletion when it is a cancellation, the agent's
// name, which with the job's kind is its registration), so a slow agent never makes another run
// twice; or, on a connection shard other than 0, one call passed on to shard 0 (agent NULL).
//
// Life of a row: written synchronously, in the turn the event is accepted (or shard 0 is handed the
// calls), so the output gate holds the OK (or the RPC's answer) until it is durable: `OK true` means
// the hand-over will happen. Deleted when the hook's promise settles, resolved or rejected (a hook
// that threw was run: it is logged, not retried), or when shard 0 answered the forward. Rows of
// earlier instances are re-run (`leftovers`) when the object starts and when its alarm fires; the
// alarm is wanted within RERUN_AFTER_MS whenever rows exist. After MAX_RERUNS re-runs a row is
// dropped with an error in the log, so the table holds at most the hand-overs in progress plus a
// few leftovers on their way out.
//
// What is in flight is known per instance, in memory. A new instance starts with nothing in flight,
// so every row it finds is a leftover: the constructor runs again only for a new instance, and a
// Durable Object is not evicted for hibernation while waitUntil work is pending; a reset (crash,
// abort, deploy) cancels the old instance's I/O and closes its storage, so its hooks can neither
// finish their work nor delete their rows. A hook doing pure computation could still be running in
// the same isolate when its row is re-run; that is one more reason hooks must be idempotent
// (nip90.ts, EdgeAgentHandler). Within one instance, the alarm skips rows still in flight.
import type { AlarmClock } from "./alarm.ts";
import type { NostrEvent } from "./event.ts";

/** A leftover's alarm fires at most this long after its row was written (or last re-run). */
export const RERUN_AFTER_MS = 30_000;
/** Re-runs of a row before it is given up. */
export const MAX_RERUNS = 5;

export const OUTBOX_SCHEMA = `CREATE TABLE IF NOT EXISTS job_outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  job TEXT NOT NULL,
  deletion TEXT,
  agent TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL)`;

/** A hand-over to keep: a hook call for `agent`, or (agent null) a call for connection shard 0. */
export interface HandOver {
  job: NostrEvent;
  deletion?: NostrEvent;
  agent: string | null;
}

export type OutboxRow = HandOver & { id: number; attempts: number };

type SqlRow = { id: number; job: string; deletion: string | null; agent: string | null; attempts: number };

export class JobOutbox {
  readonly #sql: SqlStorage;
  readonly #clock: AlarmClock;
  readonly #inFlight = new Set<number>();

  constructor(sql: SqlStorage, clock: AlarmClock) {
    this.#sql = sql;
    this.#clock = clock;
    sql.exec(OUTBOX_SCHEMA);
  }

  /** Writes hand-overs (synchronously: call it in the turn the event is accepted); their row ids, in flight. */
  add(items: HandOver[]): number[] {
    if (items.length === 0) return [];
    const now = Date.now();
    const ids = items.map(({ job, deletion, agent }) => {
      const row = this.#sql
        .exec<{ id: number }>(
          "INSERT INTO job_outbox (job, deletion, agent, created_at) VALUES (?, ?, ?, ?) RETURNING id",
          JSON.stringify(job),
          deletion ? JSON.stringify(deletion) : null,
          agent,
          now,
        )
        .one();
      this.#inFlight.add(row.id);
      return row.id;
    });
    this.#clock.want(now + RERUN_AFTER_MS);
    return ids;
  }

  /** The hand-over is done (its hook settled, or shard 0 took it): the row goes. */
  done(id: number): void {
    this.#inFlight.delete(id);
    try {
      this.#sql.exec("DELETE FROM job_outbox WHERE id = ?", id);
    } catch (err) {
      // The instance was reset meanwhile: its successor re-runs the row.
      console.error(`relay: could not clear job hand-over ${id}`, err);
    }
  }

  /** The hand-over failed before it reached its hook (a forward): the row stays, for the alarm to retry. */
  release(id: number): void {
    this.#inFlight.delete(id);
  }

  /**
   * Rows this instance is not running: left by a predecessor, or released. Each is claimed (in flight,
   * its re-run counted) before it is returned; one re-run MAX_RERUNS times already is dropped. While
   * rows remain, the alarm is wanted again.
   */
  leftovers(): OutboxRow[] {
    const out: OutboxRow[] = [];
    for (const r of this.#sql.exec<SqlRow>("SELECT id, job, deletion, agent, attempts FROM job_outbox ORDER BY id").toArray()) {
      if (this.#inFlight.has(r.id)) continue;
      if (r.attempts >= MAX_RERUNS) {
        console.error(`relay: giving up the job hand-over ${r.id} (${r.agent ?? "to connection shard 0"}) after ${r.attempts} re-runs: ${r.job.slice(0, 200)}`);
        this.#sql.exec("DELETE FROM job_outbox WHERE id = ?", r.id);
        continue;
      }
      this.#sql.exec("UPDATE job_outbox SET attempts = attempts + 1 WHERE id = ?", r.id);
      this.#inFlight.add(r.id);
      const row: OutboxRow = { id: r.id, attempts: r.attempts + 1, job: JSON.parse(r.job) as NostrEvent, agent: r.agent };
      if (r.deletion !== null) row.deletion = JSON.parse(r.deletion) as NostrEvent;
      out.push(row);
    }
    if (this.size() > 0) this.#clock.want(Date.now() + RERUN_AFTER_MS);
    return out;
  }

  /** Rows in the table (in flight or not). */
  size(): number {
    return this.#sql.exec<{ n: number }>("SELECT count(*) AS n FROM job_outbox").one().n;
  }
}
