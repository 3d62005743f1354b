// Answers of recent batches, by request id (`rid`, services/remote-wire.ts BatchRequest). When
// an answer is lost after the batch committed, the client resends it with the same rid; this
// object answers with what it answered the first time and does not run it again, so a retry
// never reports a false EEXIST/ENOENT for work that already landed. Kept in SQLite (an evicted
// object still remembers) for at least ANSWER_KEEP_MS, and the newest ANSWER_KEEP_COUNT longer.
// Answers are per actor (one key's rid says nothing to another) and bound to the batch they
// answered: the same rid with other operations is EINVAL.
import { sha256 } from "@noble/hashes/sha2.js";
import type { WireOp } from "../../services/remote-wire.ts";
import { hex } from "../bytes.ts";
import type { OpResult } from "./ops.ts";
import { fail } from "./reply.ts";

export const ANSWER_TABLES = `
CREATE TABLE IF NOT EXISTS answers(actor TEXT NOT NULL, rid TEXT NOT NULL, time INTEGER NOT NULL, ops TEXT NOT NULL,
  results TEXT NOT NULL, PRIMARY KEY(actor, rid));
`;

export const ANSWER_KEEP_MS = 10 * 60 * 1000;
export const ANSWER_KEEP_COUNT = 1000;
/** Answers bigger than this (huge listings) are not kept: a retry of that batch runs again. */
const MAX_KEPT_BYTES = 1024 * 1024;

const digest = (ops: WireOp[], atomic: boolean): string => hex(sha256(new TextEncoder().encode(JSON.stringify([atomic, ops]))));

export class Answers {
  readonly #sql: SqlStorage;
  #puts = 0;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  /** The answer given to this rid before, or null. */
  get(actor: string, rid: string, ops: WireOp[], atomic: boolean): OpResult[] | null {
    const r = this.#sql.exec<{ ops: string; results: string }>("SELECT ops, results FROM answers WHERE actor = ? AND rid = ?", actor, rid).toArray()[0];
    if (!r) return null;
    if (r.ops !== digest(ops, atomic)) fail("EINVAL", `request id ${rid} was used for a different batch`);
    return JSON.parse(r.results) as OpResult[];
  }

  put(actor: string, rid: string, ops: WireOp[], atomic: boolean, results: OpResult[]): void {
    const json = JSON.stringify(results);
    if (json.length > MAX_KEPT_BYTES) return;
    const now = Date.now();
    this.#sql.exec("INSERT OR REPLACE INTO answers VALUES(?, ?, ?, ?, ?)", actor, rid, now, digest(ops, atomic), json);
    if (++this.#puts % 32 === 0) {
      this.#sql.exec("DELETE FROM answers WHERE time < ? AND rowid NOT IN (SELECT rowid FROM answers ORDER BY time DESC LIMIT ?)", now - ANSWER_KEEP_MS, ANSWER_KEEP_COUNT);
    }
  }
}
