// The live file tree: the `nodes` table, one row per path (a directory's children are the rows
// whose `parent` is its path). Lookups that fail say why, as POSIX does: ENOENT, or ENOTDIR
// when an ancestor is a file.
import { basename, parent } from "../../runtime/path.ts";
import type { WireStat } from "../../services/remote-wire.ts";
import { fail, nowNs } from "./reply.ts";

export const TREE_TABLES = `
CREATE TABLE IF NOT EXISTS nodes(path TEXT PRIMARY KEY, parent TEXT NOT NULL, name TEXT NOT NULL,
  type TEXT NOT NULL, ino INTEGER NOT NULL, size INTEGER NOT NULL, extents TEXT NOT NULL,
  atime TEXT NOT NULL, mtime TEXT NOT NULL, ctime TEXT NOT NULL, version INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS nodes_parent ON nodes(parent, name);
`;

/** A node's own fields (where it is comes from its path). */
export interface NodeFields {
  type: "file" | "dir"; ino: number; size: number; extents: string; atime: string; mtime: string; ctime: string; version: number;
}

export interface NodeRow extends NodeFields {
  path: string; parent: string; name: string;
  [k: string]: string | number | ArrayBuffer | null;
}

/** What a stat needs (a live node, or a path's state in history). */
export interface StatSource { type: string; ino: number; size: number; mtime: string; atime?: string; ctime?: string; version?: number }

/** A node row for `path` (parent and name derived from it). */
export function nodeRow(path: string, fields: NodeFields): NodeRow {
  const { type, ino, size, extents, atime, mtime, ctime, version } = fields;
  return { path, parent: parent(path), name: basename(path), type, ino, size, extents, atime, mtime, ctime, version };
}

export function statOf(n: StatSource): WireStat {
  return {
    type: n.type as "file" | "dir", size: n.size, ino: n.ino, nlink: n.type === "dir" ? 2 : 1,
    atime: n.atime ?? n.mtime, mtime: n.mtime, ctime: n.ctime ?? n.mtime,
    ...(n.version !== undefined ? { version: n.version } : {}),
  };
}

export class Tree {
  readonly #sql: SqlStorage;
  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  node(path: string): NodeRow | null {
    return this.#sql.exec<NodeRow>("SELECT * FROM nodes WHERE path = ?", path).toArray()[0] ?? null;
  }

  /** The node at `path`, or ENOENT / ENOTDIR (when an ancestor is a file). */
  need(path: string): NodeRow {
    const n = this.node(path);
    if (n) return n;
    this.#ancestorsAreDirs(path);
    return fail("ENOENT", `/${path}`, path);
  }

  /** The parent directory of a path about to be created. */
  needParentDir(path: string): NodeRow {
    if (path === "") fail("EEXIST", "/ exists", path);
    const up = parent(path);
    const par = this.node(up);
    if (!par) {
      this.#ancestorsAreDirs(up);
      return fail("ENOENT", `/${up}`, up);
    }
    if (par.type !== "dir") fail("ENOTDIR", `/${up} is not a directory`, up);
    return par;
  }

  hasChildren(path: string): boolean {
    return this.#sql.exec("SELECT 1 FROM nodes WHERE parent = ? LIMIT 1", path).toArray().length > 0;
  }

  children(path: string): NodeRow[] {
    return this.#sql.exec<NodeRow>("SELECT * FROM nodes WHERE parent = ? AND path != '' ORDER BY name", path).toArray();
  }

  /** A node and everything below it. */
  subtree(path: string): NodeRow[] {
    return this.#sql.exec<NodeRow>("SELECT * FROM nodes WHERE path = ? OR substr(path, 1, ?) = ?", path, path.length + 1, path + "/").toArray();
  }

  put(n: NodeRow): void {
    this.#sql.exec(
      "INSERT INTO nodes VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET type = excluded.type, ino = excluded.ino, size = excluded.size, extents = excluded.extents, atime = excluded.atime, mtime = excluded.mtime, ctime = excluded.ctime, version = excluded.version",
      n.path, n.parent, n.name, n.type, n.ino, n.size, n.extents, n.atime, n.mtime, n.ctime, n.version,
    );
  }

  delete(path: string): void {
    this.#sql.exec("DELETE FROM nodes WHERE path = ?", path);
  }

  /** A directory's mtime and ctime move when its entries change. */
  touchDir(path: string): void {
    const t = nowNs();
    this.#sql.exec("UPDATE nodes SET mtime = ?, ctime = ? WHERE path = ?", t, t, path);
  }

  /** Files and bytes in the live tree. */
  usage(): { files: number; bytes: number } {
    return this.#sql.exec<{ files: number; bytes: number }>(
      "SELECT count(*) AS files, coalesce(sum(size), 0) AS bytes FROM nodes WHERE type = 'file'",
    ).one();
  }

  #ancestorsAreDirs(path: string): void {
    let p = path;
    while (p !== "") {
      p = parent(p);
      const a = this.node(p);
      if (a) {
        if (a.type !== "dir") fail("ENOTDIR", `/${p} is not a directory`, p);
        return;
      }
    }
  }
}
