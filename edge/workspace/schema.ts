// The workspace object's schema, versioned: `meta.schema_version` says which of the ordered
// MIGRATIONS have run; a wake runs only the missing ones (usually none), each in a transaction
// with its version bump. Each concern owns its tables (meta.ts, tree.ts, ...); a migration names
// them. Objects made before versioning had every v1 table: step 1 is IF NOT EXISTS throughout.
import { ANSWER_TABLES } from "./answers.ts";
import { AUDIT_TABLES } from "./audit.ts";
import { GRANT_TABLES } from "./grants.ts";
import { HISTORY_TABLES } from "./history.ts";
import { LOG_TABLES } from "./logs.ts";
import { META_TABLES } from "./meta.ts";
import { PIECE_TABLES } from "./pieces.ts";
import { PRINCIPAL_TABLES } from "./principals.ts";
import { TASK_TABLES } from "./tasks.ts";
import { RUN_TABLES, RUN_WAITER_TABLES } from "./runs.ts";
import { STAGING_TABLES } from "./staging.ts";
import { TREE_TABLES } from "./tree.ts";
import { CAP_TABLES } from "./caps.ts";
import { SECRET_TABLES } from "./secrets.ts";

/** Ordered steps: MIGRATIONS[i] brings the schema from version i to i + 1. Append only. */
export const MIGRATIONS: readonly string[] = [
  META_TABLES + TREE_TABLES + PIECE_TABLES + HISTORY_TABLES + GRANT_TABLES + PRINCIPAL_TABLES + AUDIT_TABLES + TASK_TABLES + LOG_TABLES,
  STAGING_TABLES,
  ANSWER_TABLES,
  RUN_TABLES,
  CAP_TABLES + SECRET_TABLES,
  RUN_WAITER_TABLES,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

function versionOf(sql: SqlStorage): number {
  if (!sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").toArray().length) return 0;
  const r = sql.exec<{ v: number }>("SELECT v FROM meta WHERE k = 'schema_version'").toArray()[0];
  return r ? Number(r.v) : 0;
}

/** Brings this object's schema up to SCHEMA_VERSION; answers the version it found. */
export function migrate(storage: DurableObjectStorage): number {
  const sql = storage.sql;
  const found = versionOf(sql);
  if (found > SCHEMA_VERSION) throw new Error(`workspace schema ${found} is newer than this code (${SCHEMA_VERSION})`);
  for (let v = found; v < SCHEMA_VERSION; v++) {
    storage.transactionSync(() => {
      sql.exec(MIGRATIONS[v]!);
      sql.exec("INSERT INTO meta(k, v) VALUES('schema_version', ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v", v + 1);
    });
  }
  return found;
}
