// The audit outbox: hash-chained entries written in the same transaction as the change they
// record, then moved to D1 by an alarm (edge/d1.ts), so no acknowledged change lacks its entry.
// This object is the only writer of its chain, so the chain never forks.
import { ensureSchema, auditHash } from "../d1.ts";
import type { Meta } from "./meta.ts";

export const AUDIT_TABLES = `
CREATE TABLE IF NOT EXISTS audit_outbox(seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, actor TEXT NOT NULL,
  action TEXT NOT NULL, detail TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL);
`;

/**
 * The bound: an entry reaches D1 at most this long after it was written (plus the flush), however
 * many changes follow it. The alarm is due at the oldest unflushed entry's time plus this; later
 * entries never move it later.
 */
export const AUDIT_FLUSH_MS = 250;

export class AuditOutbox {
  readonly #sql: SqlStorage;
  readonly #meta: Meta;
  readonly #db: D1Database;
  readonly #arm: () => void;

  constructor(sql: SqlStorage, meta: Meta, db: D1Database, arm: () => void) {
    this.#sql = sql;
    this.#meta = meta;
    this.#db = db;
    this.#arm = arm;
  }

  /** When the alarm must next flush: the oldest unflushed entry's time plus the bound. */
  due(): number | null {
    const r = this.#sql.exec<{ time: number }>("SELECT time FROM audit_outbox ORDER BY seq LIMIT 1").toArray()[0];
    return r ? r.time + AUDIT_FLUSH_MS : null;
  }

  /** Appends one entry to the chain (call inside the change's transaction). */
  append(actor: string, action: string, detail: unknown): void {
    const seq = ((this.#meta.get("audit_seq") as number | null) ?? 0) + 1;
    const prev = (this.#meta.get("audit_head") as string | null) ?? "0".repeat(64);
    const time = Date.now();
    const d = JSON.stringify(detail ?? {});
    const hash = auditHash(prev, seq, this.#meta.name, time, actor, action, d);
    this.#sql.exec("INSERT INTO audit_outbox VALUES(?, ?, ?, ?, ?, ?, ?)", seq, time, actor, action, d, prev, hash);
    this.#meta.set("audit_seq", seq);
    this.#meta.set("audit_head", hash);
    this.#arm();
  }

  get head(): { seq: number; head: string } {
    return { seq: (this.#meta.get("audit_seq") as number | null) ?? 0, head: (this.#meta.get("audit_head") as string | null) ?? "" };
  }

  /** Moves the outbox to D1. Idempotent (INSERT OR IGNORE on (workspace, seq)). */
  async flush(): Promise<{ seq: number; head: string }> {
    await ensureSchema(this.#db);
    for (;;) {
      const rows = this.#sql.exec("SELECT * FROM audit_outbox ORDER BY seq LIMIT 200").toArray();
      if (!rows.length) break;
      const ws = this.#meta.name;
      await this.#db.batch(rows.map((r) => this.#db.prepare(
        "INSERT OR IGNORE INTO audit(workspace, seq, time, actor, action, detail, prev, hash) VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
      ).bind(ws, r.seq, r.time, r.actor, r.action, r.detail, r.prev, r.hash)));
      const last = rows[rows.length - 1]!.seq as number;
      this.#sql.exec("DELETE FROM audit_outbox WHERE seq <= ?", last);
    }
    return this.head;
  }
}
