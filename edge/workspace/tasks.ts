// Task files: this object is the authority (versioned, audited); the Worker writes them through
// to KV for fast reads (`taskKey`).
import { INLINE_MAX, NAME_RE } from "../../services/remote-wire.ts";
import type { History } from "./history.ts";
import type { Meta } from "./meta.ts";
import { buf, fail } from "./reply.ts";

export const TASK_TABLES = `
CREATE TABLE IF NOT EXISTS tasks(id TEXT NOT NULL, file TEXT NOT NULL, data BLOB NOT NULL, version INTEGER NOT NULL,
  PRIMARY KEY(id, file));
`;

export const taskKey = (ws: string, id: string, file: string): string => `task:${ws}:${id}:${file}`;

export class Tasks {
  readonly #sql: SqlStorage;
  readonly #meta: Meta;
  readonly #history: History;

  constructor(sql: SqlStorage, meta: Meta, history: History) {
    this.#sql = sql;
    this.#meta = meta;
    this.#history = history;
  }

  /** Writes one task file as a version (call inside a transaction). */
  put(actor: string, id: string, file: string, data: Uint8Array): { version: number } {
    if (!NAME_RE.test(id) || !NAME_RE.test(file)) fail("EINVAL", "bad task id or file name");
    if (data.length > INLINE_MAX) fail("EFBIG", `task files are at most ${INLINE_MAX} bytes`);
    const v = this.#meta.nextVersion();
    this.#sql.exec("INSERT INTO tasks VALUES(?, ?, ?, ?) ON CONFLICT(id, file) DO UPDATE SET data = excluded.data, version = excluded.version",
      id, file, buf(data), v);
    this.#history.commit(v, actor, "task", `.task/${id}/${file}`, { size: data.length });
    return { version: v };
  }

  get(id: string, file: string): Uint8Array | null {
    const r = this.#sql.exec<{ data: ArrayBuffer }>("SELECT data FROM tasks WHERE id = ? AND file = ?", id, file).toArray()[0];
    return r ? new Uint8Array(r.data) : null;
  }
}
