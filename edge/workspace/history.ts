// Versions, history, snapshots. Every committed change is a version (a counter in meta); the
// `versions` table logs who did what, `history` keeps each path's state at each version (a NULL
// type is a removal), so any file and any listing can be read as of a version, and a fork copies
// the tree at one. Snapshots name versions.
import { parent, basename } from "../../runtime/path.ts";
import { NAME_RE } from "../../services/remote-wire.ts";
import type { AuditOutbox } from "./audit.ts";
import type { Meta } from "./meta.ts";
import { fail, nowNs } from "./reply.ts";
import type { NodeRow } from "./tree.ts";

export const HISTORY_TABLES = `
CREATE TABLE IF NOT EXISTS history(path TEXT NOT NULL, version INTEGER NOT NULL, parent TEXT NOT NULL,
  type TEXT, ino INTEGER, size INTEGER, extents TEXT, mtime TEXT, PRIMARY KEY(path, version));
CREATE INDEX IF NOT EXISTS history_parent ON history(parent, version);
CREATE TABLE IF NOT EXISTS versions(version INTEGER PRIMARY KEY, time TEXT NOT NULL, actor TEXT NOT NULL,
  action TEXT NOT NULL, path TEXT NOT NULL, detail TEXT);
CREATE TABLE IF NOT EXISTS snapshots(name TEXT PRIMARY KEY, version INTEGER NOT NULL, time TEXT NOT NULL);
`;

/** A path's state at a version. */
export interface PastNode { path: string; type: string; ino: number; size: number; extents: string; mtime: string }

export class History {
  readonly #sql: SqlStorage;
  readonly #meta: Meta;
  readonly #audit: AuditOutbox;

  constructor(sql: SqlStorage, meta: Meta, audit: AuditOutbox) {
    this.#sql = sql;
    this.#meta = meta;
    this.#audit = audit;
  }

  /** Keeps `path`'s state (null: removed) at version `v`. */
  keep(path: string, v: number, n: NodeRow | null): void {
    this.#sql.exec(
      "INSERT INTO history VALUES(?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path, version) DO UPDATE SET type = excluded.type, ino = excluded.ino, size = excluded.size, extents = excluded.extents, mtime = excluded.mtime",
      path, v, parent(path), n?.type ?? null, n?.ino ?? null, n?.size ?? null, n?.extents ?? null, n?.mtime ?? null,
    );
  }

  /** Logs version `v` and its audit entry (same transaction as the change). */
  commit(v: number, actor: string, action: string, path: string, detail?: unknown): void {
    this.#sql.exec("INSERT INTO versions VALUES(?, ?, ?, ?, ?, ?)", v, nowNs(), actor, action, path,
      detail === undefined ? null : JSON.stringify(detail));
    this.#audit.append(actor, action, { path, version: v, ...(detail && typeof detail === "object" ? detail : {}) });
  }

  /** EINVAL for a version this workspace has not reached. */
  checkVersion(v: number): void {
    if (v > this.#meta.version) fail("EINVAL", `version ${v} is in the future`);
  }

  /** The state of a path as of version `v`, or null if it did not exist then. */
  nodeAt(path: string, v: number): PastNode | null {
    this.checkVersion(v);
    const r = this.#sql.exec(
      "SELECT path, type, ino, size, extents, mtime FROM history WHERE path = ? AND version <= ? ORDER BY version DESC LIMIT 1", path, v,
    ).toArray()[0];
    if (!r || r.type === null) return null;
    return r as unknown as PastNode;
  }

  /** A directory's entries as of version `v`. */
  listingAt(path: string, v: number): Array<PastNode & { name: string }> {
    this.checkVersion(v);
    return this.#sql.exec(
      `SELECT h.path, h.type, h.ino, h.size, h.extents, h.mtime FROM history h
       WHERE h.parent = ? AND h.path != '' AND h.version = (SELECT max(version) FROM history WHERE path = h.path AND version <= ?)
       AND h.type IS NOT NULL ORDER BY h.path`, path, v,
    ).toArray().map((r) => ({ ...(r as unknown as PastNode), name: basename(r.path as string) }));
  }

  /** Every path that existed at version `v` (a fork's tree). */
  treeAt(v: number): PastNode[] {
    this.checkVersion(v);
    return this.#sql.exec(
      `SELECT h.path, h.type, h.ino, h.size, h.extents, h.mtime FROM history h
       WHERE h.version = (SELECT max(version) FROM history WHERE path = h.path AND version <= ?) AND h.type IS NOT NULL AND h.path != ''
       ORDER BY h.path`, v).toArray() as unknown as PastNode[];
  }

  /** The version log, or one path's history, newest first. */
  log(path: string | undefined, limit: number): { version: number; entries: unknown[] } {
    const rows = path === undefined
      ? this.#sql.exec("SELECT * FROM versions ORDER BY version DESC LIMIT ?", limit).toArray()
      : this.#sql.exec(
        `SELECT v.version, v.time, v.actor, v.action, v.path, v.detail, h.size, h.type FROM history h JOIN versions v ON v.version = h.version
         WHERE h.path = ? ORDER BY h.version DESC LIMIT ?`, path, limit).toArray();
    return {
      version: this.#meta.version,
      entries: rows.map((r) => ({ ...r, detail: r.detail ? JSON.parse(r.detail as string) : undefined, deleted: path !== undefined && r.type === null })),
    };
  }

  /** Names the current version. */
  snapshot(name: string, actor: string): { name: string; version: number } {
    if (!NAME_RE.test(name)) fail("EINVAL", "bad snapshot name");
    if (this.snapshotVersion(name) !== null) fail("EEXIST", `snapshot ${name}`);
    const v = this.#meta.version;
    this.#sql.exec("INSERT INTO snapshots VALUES(?, ?, ?)", name, v, nowNs());
    this.#audit.append(actor, "snapshot", { name, version: v });
    return { name, version: v };
  }

  snapshots(): Array<{ name: string; version: number; time: string }> {
    return this.#sql.exec("SELECT * FROM snapshots ORDER BY version").toArray() as unknown as Array<{ name: string; version: number; time: string }>;
  }

  snapshotVersion(name: string): number | null {
    const r = this.#sql.exec<{ version: number }>("SELECT version FROM snapshots WHERE name = ?", name).toArray()[0];
    return r ? r.version : null;
  }
}
