// The workspace Durable Object: one file tree per workspace, kept in the object's SQLite storage.
// - nodes: the live tree (path, parent, type, ino, size, extents, times, version).
// - pieces: small content-addressed pieces (≤ INLINE_MAX); big ones are R2 objects staged by the
//   Worker before it calls in, so this object never holds large bodies in memory.
// - history: every committed change of a path at its version (reads "as of version N").
// - versions/snapshots: the version log and named versions; forks copy metadata, share pieces.
// - grants/nonces: capability grants and NIP-98 replay protection.
// - audit_outbox: hash-chained audit entries, written in the same transaction as the change they
//   record and flushed to D1 by an alarm (so no acknowledged change lacks its audit entry).
// - tasks, log_*: task files (written through to KV) and logs (buffered here, segments to R2).
// Every RPC method answers a Reply (never throws across RPC): errors carry an FsError code and the
// HTTP status from the one table in services/remote-wire.ts.
import { DurableObject } from "cloudflare:workers";
import { sha256 } from "@noble/hashes/sha2.js";
import { FsError } from "../runtime/errors.ts";
import type { OpenFlags } from "../runtime/types.ts";
import {
  STATUS_OF, INLINE_MAX, MAX_FILE_BYTES, MAX_READ, NAME_RE, wirePath, toWireError,
  type WireOp, type WireStat, type WireDirEntry,
} from "../services/remote-wire.ts";
import { AuthError, allowed, actorOf, hex, newToken, type Cred, type Principal, type Grant } from "./auth.ts";
import { writeAt, truncateTo, slice, foldRuns, tidy, sizeOf, type Extent } from "./extents.ts";
import { ensureSchema, auditHash } from "./d1.ts";
import type { Env, Reply } from "./env.ts";

/** A staged body part: bytes (small) or an R2 object the Worker already wrote. */
export type Part = Uint8Array | { r2: string; size: number };
/** A piece of a read answer: bytes, a range of an R2 object, or a run of zeros. */
export type Seg = Uint8Array | { r2: string; off: number; len: number } | number;

export type DoResult =
  | { ok: true; stat?: WireStat; entries?: WireDirEntry[]; segs?: Seg[]; eof?: boolean; written?: number }
  | { ok: false; error: { code: string; message: string } };

export interface Access { path: string; write: boolean }

interface NodeRow {
  path: string; parent: string; name: string; type: "file" | "dir"; ino: number; size: number;
  extents: string; atime: string; mtime: string; ctime: string; version: number;
  [k: string]: string | number | ArrayBuffer | null;
}

const MAX_EXTENTS = 64;
export const SESSION_MS = 10 * 60 * 1000;
const LOG_FLUSH_BYTES = 256 * 1024;
const nowNs = (): string => (BigInt(Date.now()) * 1_000_000n).toString();
const parentOf = (p: string): string => (p.includes("/") ? p.slice(0, p.lastIndexOf("/")) : "");
const nameOf = (p: string): string => p.slice(p.lastIndexOf("/") + 1);
const fail = (code: ConstructorParameters<typeof FsError>[0], msg: string): never => {
  throw new FsError(code, msg);
};
const buf = (u: Uint8Array): ArrayBuffer =>
  u.byteOffset === 0 && u.byteLength === u.buffer.byteLength && u.buffer instanceof ArrayBuffer
    ? u.buffer
    : (u.slice().buffer as ArrayBuffer);

function replyOf<T>(fn: () => T): Reply<T> {
  try {
    return { ok: true, value: fn() };
  } catch (e) {
    return errorReply(e);
  }
}

export function errorReply(e: unknown): { ok: false; status: number; error: { code: string; message: string } } {
  if (e instanceof AuthError) return { ok: false, status: e.status, error: { code: "EACCES", message: e.message } };
  const w = toWireError(e);
  if (!(e instanceof FsError)) console.error("workspace: unexpected error", e);
  return { ok: false, status: STATUS_OF[w.code], error: w };
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v);
CREATE TABLE IF NOT EXISTS nodes(path TEXT PRIMARY KEY, parent TEXT NOT NULL, name TEXT NOT NULL,
  type TEXT NOT NULL, ino INTEGER NOT NULL, size INTEGER NOT NULL, extents TEXT NOT NULL,
  atime TEXT NOT NULL, mtime TEXT NOT NULL, ctime TEXT NOT NULL, version INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS nodes_parent ON nodes(parent, name);
CREATE TABLE IF NOT EXISTS pieces(hash TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS history(path TEXT NOT NULL, version INTEGER NOT NULL, parent TEXT NOT NULL,
  type TEXT, ino INTEGER, size INTEGER, extents TEXT, mtime TEXT, PRIMARY KEY(path, version));
CREATE INDEX IF NOT EXISTS history_parent ON history(parent, version);
CREATE TABLE IF NOT EXISTS versions(version INTEGER PRIMARY KEY, time TEXT NOT NULL, actor TEXT NOT NULL,
  action TEXT NOT NULL, path TEXT NOT NULL, detail TEXT);
CREATE TABLE IF NOT EXISTS snapshots(name TEXT PRIMARY KEY, version INTEGER NOT NULL, time TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS grants(id TEXT PRIMARY KEY, token_hash TEXT UNIQUE, pubkey TEXT, prefix TEXT NOT NULL,
  write INTEGER NOT NULL, expires INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sessions(token_hash TEXT PRIMARY KEY, pubkey TEXT NOT NULL, expires INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS nonces(id TEXT PRIMARY KEY, exp INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS audit_outbox(seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, actor TEXT NOT NULL,
  action TEXT NOT NULL, detail TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks(id TEXT NOT NULL, file TEXT NOT NULL, data BLOB NOT NULL, version INTEGER NOT NULL,
  PRIMARY KEY(id, file));
CREATE TABLE IF NOT EXISTS log_streams(stream TEXT PRIMARY KEY, length INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS log_chunks(stream TEXT NOT NULL, start INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY(stream, start));
CREATE TABLE IF NOT EXISTS log_segments(stream TEXT NOT NULL, start INTEGER NOT NULL, len INTEGER NOT NULL, key TEXT NOT NULL,
  PRIMARY KEY(stream, start));
`;

interface Tail { writer: WritableStreamDefaultWriter<Uint8Array>; live: boolean; queue: Uint8Array[] }

export class Workspace extends DurableObject<Env> {
  private sql: SqlStorage;
  private tails = new Map<string, Set<Tail>>();
  private logFlush: Promise<void> | undefined;
  private nonceSweep = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(SCHEMA);
  }

  // ---------------------------------------------------------------- meta, auth

  private meta(k: string): string | number | null {
    const r = this.sql.exec<{ v: string | number | null }>("SELECT v FROM meta WHERE k = ?", k).toArray()[0];
    return r ? r.v : null;
  }
  private setMeta(k: string, v: string | number): void {
    this.sql.exec("INSERT INTO meta(k, v) VALUES(?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v", k, v);
  }
  private get owner(): string | null {
    return this.meta("owner") as string | null;
  }
  private get wsName(): string {
    return (this.meta("name") as string | null) ?? "?";
  }

  private grantOf(r: Record<string, SqlStorageValue>): Grant {
    return {
      id: r.id as string, prefix: r.prefix as string, write: r.write === 1, expires: r.expires as number,
      ...(r.pubkey ? { pubkey: r.pubkey as string } : {}),
    };
  }

  /** Authenticates a credential: replay check for NIP-98, grant lookup for tokens. */
  private principal(cred: Cred): Principal {
    if (cred.type === "internal") return cred.principal;
    const now = Date.now();
    if (cred.type === "token") {
      const h = hex(sha256(new TextEncoder().encode(cred.token)));
      const r = this.sql.exec("SELECT * FROM grants WHERE token_hash = ?", h).toArray()[0];
      if (!r) {
        // A session token stands for its key: the key's rights now, not when it was minted.
        const s = this.sql.exec<{ pubkey: string; expires: number }>("SELECT pubkey, expires FROM sessions WHERE token_hash = ?", h).toArray()[0];
        if (!s) throw new AuthError(401, "unknown or revoked capability token");
        if (s.expires <= now) throw new AuthError(401, "session expired");
        return this.keyPrincipal(s.pubkey, now);
      }
      if (r.revoked === 1) throw new AuthError(401, "unknown or revoked capability token");
      if ((r.expires as number) <= now) throw new AuthError(401, "capability token expired");
      return { kind: "token", grant: this.grantOf(r) };
    }
    if (this.sql.exec("SELECT 1 FROM nonces WHERE id = ?", cred.id).toArray().length) {
      throw new AuthError(401, "NIP-98: this signed request was already used (replay)");
    }
    this.sql.exec("INSERT INTO nonces(id, exp) VALUES(?, ?)", cred.id, cred.exp);
    if (++this.nonceSweep % 64 === 0) {
      this.sql.exec("DELETE FROM nonces WHERE exp < ?", Math.floor(now / 1000));
      this.sql.exec("DELETE FROM sessions WHERE expires < ?", now);
    }
    return this.keyPrincipal(cred.pubkey, now);
  }

  private keyPrincipal(pubkey: string, now: number): Principal {
    if (this.owner === pubkey) return { kind: "owner", pubkey };
    const grants = this.sql
      .exec("SELECT * FROM grants WHERE pubkey = ? AND revoked = 0 AND expires > ?", pubkey, now)
      .toArray()
      .map((r) => this.grantOf(r));
    return { kind: "key", pubkey, grants };
  }

  /**
   * Trades one NIP-98 request for a session token (a bearer capability that stands for the key,
   * with the key's current rights, for SESSION_MS), so a client signs once, not per request.
   */
  session(cred: Cred): Reply<{ token: string; expires: number; pubkey: string }> {
    return replyOf(() => {
      if (cred.type !== "key") throw new AuthError(403, "a session is opened with a key (NIP-98)");
      const p = this.principal(cred);
      this.exists();
      if (p.kind === "key" && !p.grants.length) throw new AuthError(403, "this key has no rights in this workspace");
      const token = newToken();
      const expires = Date.now() + SESSION_MS;
      this.sql.exec("INSERT INTO sessions VALUES(?, ?, ?)", hex(sha256(new TextEncoder().encode(token))), cred.pubkey, expires);
      return { token, expires, pubkey: cred.pubkey };
    });
  }

  private exists(): void {
    if (!this.owner) throw new FsError("ENOENT", "no such workspace");
  }

  private check(p: Principal, access: Access[]): void {
    for (const a of access) {
      if (!allowed(p, a.path, a.write)) {
        throw new AuthError(403, `${a.write ? "write" : "read"} access to /${a.path} not granted`);
      }
    }
  }

  /** Authenticate and authorise in one step (the Worker uses this before staging big bodies). */
  authenticate(cred: Cred, access: Access[]): Reply<Principal> {
    return replyOf(() => {
      const p = this.principal(cred);
      this.exists();
      this.check(p, access);
      return p;
    });
  }

  /** The first key to create a workspace owns it; creating it again as its owner is a no-op. */
  create(cred: Cred, name: string): Reply<{ created: boolean; owner: string }> {
    return replyOf(() => {
      if (cred.type !== "key") throw new AuthError(403, "only a key (NIP-98) can create a workspace");
      if (!NAME_RE.test(name)) fail("EINVAL", "bad workspace name");
      this.principal(cred);
      const owner = this.owner;
      if (owner && owner !== cred.pubkey) throw new AuthError(403, "workspace is owned by another key");
      if (owner) return { created: false, owner };
      this.ctx.storage.transactionSync(() => this.init(name, cred.pubkey));
      return { created: true, owner: cred.pubkey };
    });
  }

  private init(name: string, owner: string): void {
    const t = nowNs();
    this.setMeta("name", name);
    this.setMeta("owner", owner);
    this.setMeta("created", Date.now());
    this.setMeta("version", 0);
    this.setMeta("ino", 1);
    this.sql.exec("INSERT OR IGNORE INTO nodes VALUES('', '', '', 'dir', 1, 0, '[]', ?, ?, ?, 0)", t, t, t);
    this.historyOf("", 0, this.node(""));
    this.audit(`key:${owner}`, "create", { owner });
  }

  info(cred: Cred): Reply<Record<string, unknown>> {
    return replyOf(() => {
      const p = this.principal(cred);
      this.exists();
      this.check(p, [{ path: "", write: false }]);
      const c = this.sql.exec<{ files: number; bytes: number }>(
        "SELECT count(*) AS files, coalesce(sum(size), 0) AS bytes FROM nodes WHERE type = 'file'",
      ).one();
      return {
        name: this.wsName, owner: this.owner, version: this.meta("version"), created: this.meta("created"),
        files: c.files, bytes: c.bytes, forkedFrom: this.meta("forked_from"),
      };
    });
  }

  // ---------------------------------------------------------------- versions, history, audit

  private nextVersion(): number {
    const v = (this.meta("version") as number) + 1;
    this.setMeta("version", v);
    return v;
  }

  private record(v: number, actor: string, action: string, path: string, detail?: unknown): void {
    this.sql.exec("INSERT INTO versions VALUES(?, ?, ?, ?, ?, ?)", v, nowNs(), actor, action, path,
      detail === undefined ? null : JSON.stringify(detail));
    this.audit(actor, action, { path, version: v, ...(detail && typeof detail === "object" ? detail : {}) });
  }

  private historyOf(path: string, v: number, n: NodeRow | null): void {
    this.sql.exec(
      "INSERT INTO history VALUES(?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path, version) DO UPDATE SET type = excluded.type, ino = excluded.ino, size = excluded.size, extents = excluded.extents, mtime = excluded.mtime",
      path, v, parentOf(path), n?.type ?? null, n?.ino ?? null, n?.size ?? null, n?.extents ?? null, n?.mtime ?? null,
    );
  }

  /** Appends one entry to the hash chain (same transaction as the change it records). */
  private audit(actor: string, action: string, detail: unknown): void {
    const seq = ((this.meta("audit_seq") as number | null) ?? 0) + 1;
    const prev = (this.meta("audit_head") as string | null) ?? "0".repeat(64);
    const time = Date.now();
    const d = JSON.stringify(detail ?? {});
    const hash = auditHash(prev, seq, this.wsName, time, actor, action, d);
    this.sql.exec("INSERT INTO audit_outbox VALUES(?, ?, ?, ?, ?, ?, ?)", seq, time, actor, action, d, prev, hash);
    this.setMeta("audit_seq", seq);
    this.setMeta("audit_head", hash);
    void this.ctx.storage.setAlarm(Date.now() + 250);
  }

  /** Moves the audit outbox to D1. Idempotent (INSERT OR IGNORE on (workspace, seq)). */
  async flushAudit(): Promise<{ seq: number; head: string }> {
    await ensureSchema(this.env.DB);
    for (;;) {
      const rows = this.sql.exec("SELECT * FROM audit_outbox ORDER BY seq LIMIT 200").toArray();
      if (!rows.length) break;
      const ws = this.wsName;
      await this.env.DB.batch(rows.map((r) => this.env.DB.prepare(
        "INSERT OR IGNORE INTO audit(workspace, seq, time, actor, action, detail, prev, hash) VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
      ).bind(ws, r.seq, r.time, r.actor, r.action, r.detail, r.prev, r.hash)));
      const last = rows[rows.length - 1]!.seq as number;
      this.sql.exec("DELETE FROM audit_outbox WHERE seq <= ?", last);
    }
    return { seq: (this.meta("audit_seq") as number | null) ?? 0, head: (this.meta("audit_head") as string | null) ?? "" };
  }

  async auditHead(cred: Cred): Promise<Reply<{ seq: number; head: string; name: string }>> {
    const r = replyOf(() => {
      const p = this.principal(cred);
      this.exists();
      this.check(p, [{ path: "", write: false }]);
    });
    if (!r.ok) return r;
    const h = await this.flushAudit();
    return { ok: true, value: { ...h, name: this.wsName } };
  }

  override async alarm(): Promise<void> {
    await this.flushAudit();
    await this.flushLogs();
  }

  // ---------------------------------------------------------------- tree helpers

  private node(path: string): NodeRow | null {
    return (this.sql.exec<NodeRow>("SELECT * FROM nodes WHERE path = ?", path).toArray()[0] ?? null);
  }

  /** The node at `path`, or ENOENT / ENOTDIR (when an ancestor is a file). */
  private need(path: string): NodeRow {
    const n = this.node(path);
    if (n) return n;
    this.ancestorsAreDirs(path);
    return fail("ENOENT", `/${path}`);
  }

  private ancestorsAreDirs(path: string): void {
    let p = path;
    while (p !== "") {
      p = parentOf(p);
      const a = this.node(p);
      if (a) {
        if (a.type !== "dir") fail("ENOTDIR", `/${p} is not a directory`);
        return;
      }
    }
  }

  /** The parent directory of a path about to be created. */
  private needParentDir(path: string): NodeRow {
    if (path === "") fail("EEXIST", "/ exists");
    const par = this.node(parentOf(path));
    if (!par) {
      this.ancestorsAreDirs(parentOf(path));
      return fail("ENOENT", `/${parentOf(path)}`);
    }
    if (par.type !== "dir") fail("ENOTDIR", `/${parentOf(path)} is not a directory`);
    return par;
  }

  private statOf(n: NodeRow | { type: string; ino: number; size: number; mtime: string; atime?: string; ctime?: string; version?: number }): WireStat {
    return {
      type: n.type as "file" | "dir", size: n.size, ino: n.ino, nlink: n.type === "dir" ? 2 : 1,
      atime: n.atime ?? n.mtime, mtime: n.mtime, ctime: n.ctime ?? n.mtime,
      ...(n.version !== undefined ? { version: n.version } : {}),
    };
  }

  private touchDir(path: string): void {
    const t = nowNs();
    this.sql.exec("UPDATE nodes SET mtime = ?, ctime = ? WHERE path = ?", t, t, path);
  }

  private newIno(): number {
    const i = (this.meta("ino") as number) + 1;
    this.setMeta("ino", i);
    return i;
  }

  private putNode(n: NodeRow): void {
    this.sql.exec(
      "INSERT INTO nodes VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET type = excluded.type, ino = excluded.ino, size = excluded.size, extents = excluded.extents, atime = excluded.atime, mtime = excluded.mtime, ctime = excluded.ctime, version = excluded.version",
      n.path, n.parent, n.name, n.type, n.ino, n.size, n.extents, n.atime, n.mtime, n.ctime, n.version,
    );
  }

  private mkfile(path: string, actor: string, ext: Extent[] = [], size = 0): NodeRow {
    this.needParentDir(path);
    const t = nowNs();
    const v = this.nextVersion();
    const n: NodeRow = {
      path, parent: parentOf(path), name: nameOf(path), type: "file", ino: this.newIno(), size,
      extents: JSON.stringify(ext), atime: t, mtime: t, ctime: t, version: v,
    };
    this.putNode(n);
    this.touchDir(n.parent);
    this.historyOf(path, v, n);
    this.record(v, actor, "create", path, { size });
    return n;
  }

  /** Commits new content for a file (one version). */
  private setContent(n: NodeRow, ext: Extent[], size: number, actor: string, action: string, detail?: object): NodeRow {
    if (size > MAX_FILE_BYTES) fail("EFBIG", `file would exceed ${MAX_FILE_BYTES} bytes`);
    ext = this.fold(ext);
    const t = nowNs();
    const v = this.nextVersion();
    const m: NodeRow = { ...n, size, extents: JSON.stringify(ext), mtime: t, ctime: t, version: v };
    this.putNode(m);
    this.historyOf(n.path, v, m);
    this.record(v, actor, action, n.path, { size, ...detail });
    return m;
  }

  private inlinePiece(bytes: Uint8Array): string {
    const h = hex(sha256(bytes));
    this.sql.exec("INSERT OR IGNORE INTO pieces(hash, data) VALUES(?, ?)", h, buf(bytes));
    return "i:" + h;
  }

  private pieceOf(part: Part): Extent {
    if (part instanceof Uint8Array) {
      if (part.length > INLINE_MAX) fail("EIO", "large piece was not staged to R2");
      return part.length === 0 ? ["z", 0, 0] : [this.inlinePiece(part), 0, part.length];
    }
    return ["r:" + part.r2, 0, part.size];
  }

  /** Folds runs of small inline pieces once a file has many extents. */
  private fold(ext: Extent[]): Extent[] {
    const runs = foldRuns(ext, MAX_EXTENTS, INLINE_MAX);
    if (!runs.length) return ext;
    const out: Extent[] = [];
    let i = 0;
    for (const [a, b] of runs) {
      out.push(...ext.slice(i, a));
      const bytes = this.bytesOf(ext.slice(a, b));
      out.push([this.inlinePiece(bytes), 0, bytes.length]);
      i = b;
    }
    out.push(...ext.slice(i));
    return tidy(out);
  }

  /** Bytes of inline-only extents (used for folding). */
  private bytesOf(ext: Extent[]): Uint8Array {
    const out = new Uint8Array(sizeOf(ext));
    let at = 0;
    for (const s of this.segsOf(ext)) {
      if (s instanceof Uint8Array) out.set(s, at), (at += s.length);
      else if (typeof s === "number") at += s;
      else fail("EIO", "cannot fold an R2 piece");
    }
    return out;
  }

  /** Resolves extents to segments: inline pieces become bytes, R2 pieces stay references. */
  private segsOf(ext: Extent[]): Seg[] {
    const out: Seg[] = [];
    for (const [ref, off, len] of ext) {
      if (ref === "z") out.push(len);
      else if (ref.startsWith("i:")) {
        const r = this.sql.exec<{ d: ArrayBuffer }>("SELECT substr(data, ?, ?) AS d FROM pieces WHERE hash = ?", off + 1, len, ref.slice(2)).toArray()[0];
        if (!r) fail("EIO", `missing piece ${ref}`);
        out.push(new Uint8Array(r!.d));
      } else out.push({ r2: ref.slice(2), off, len });
    }
    return out;
  }

  /** The state of a path as of version `v` (from history). */
  private nodeAt(path: string, v: number): { type: string; ino: number; size: number; extents: string; mtime: string } | null {
    const r = this.sql.exec(
      "SELECT type, ino, size, extents, mtime FROM history WHERE path = ? AND version <= ? ORDER BY version DESC LIMIT 1", path, v,
    ).toArray()[0];
    if (!r || r.type === null) return null;
    return r as unknown as { type: string; ino: number; size: number; extents: string; mtime: string };
  }

  private checkVersion(v: number): void {
    if (v > (this.meta("version") as number)) fail("EINVAL", `version ${v} is in the future`);
  }

  // ---------------------------------------------------------------- operations

  private op(p: Principal, actor: string, o: WireOp, parts: Part[]): DoResult {
    const W = (path: string) => this.check(p, [{ path, write: true }]);
    const R = (path: string) => this.check(p, [{ path, write: false }]);
    switch (o.op) {
      case "stat": {
        const path = wirePath(o.path);
        R(path);
        if (o.version !== undefined) {
          this.checkVersion(o.version);
          const h = path === "" ? this.node("") : this.nodeAt(path, o.version);
          if (!h) fail("ENOENT", `/${path} at version ${o.version}`);
          return { ok: true, stat: this.statOf(h!) };
        }
        return { ok: true, stat: this.statOf(this.need(path)) };
      }
      case "readdir": {
        const path = wirePath(o.path);
        R(path);
        if (o.version !== undefined) {
          this.checkVersion(o.version);
          if (path !== "") {
            const d = this.nodeAt(path, o.version);
            if (!d) fail("ENOENT", `/${path} at version ${o.version}`);
            if (d!.type !== "dir") fail("ENOTDIR", `/${path}`);
          }
          const rows = this.sql.exec(
            `SELECT h.path, h.type, h.ino, h.size, h.mtime FROM history h
             WHERE h.parent = ? AND h.path != '' AND h.version = (SELECT max(version) FROM history WHERE path = h.path AND version <= ?)
             AND h.type IS NOT NULL ORDER BY h.path`, path, o.version,
          ).toArray();
          return {
            ok: true,
            entries: rows.map((r) => ({
              name: nameOf(r.path as string), type: r.type as "file" | "dir", ino: r.ino as number,
              stat: this.statOf(r as unknown as { type: string; ino: number; size: number; mtime: string }),
            })),
          };
        }
        const d = this.need(path);
        if (d.type !== "dir") fail("ENOTDIR", `/${path}`);
        const rows = this.sql.exec<NodeRow>("SELECT * FROM nodes WHERE parent = ? AND path != '' ORDER BY name", path).toArray();
        return { ok: true, entries: rows.map((r) => ({ name: r.name, type: r.type, ino: r.ino, stat: this.statOf(r) })) };
      }
      case "mkdir": {
        const path = wirePath(o.path);
        W(path);
        const make = (q: string) => {
          this.needParentDir(q);
          const t = nowNs();
          const v = this.nextVersion();
          const n: NodeRow = { path: q, parent: parentOf(q), name: nameOf(q), type: "dir", ino: this.newIno(), size: 0, extents: "[]", atime: t, mtime: t, ctime: t, version: v };
          this.putNode(n);
          this.touchDir(n.parent);
          this.historyOf(q, v, n);
          this.record(v, actor, "mkdir", q);
        };
        if (o.parents) {
          const segs = path.split("/");
          for (let i = 1; i <= segs.length; i++) {
            const q = segs.slice(0, i).join("/");
            const e = this.node(q);
            if (e && e.type !== "dir") fail("ENOTDIR", `/${q}`);
            if (!e) make(q);
          }
          return { ok: true };
        }
        if (this.node(path)) fail("EEXIST", `/${path}`);
        make(path);
        return { ok: true };
      }
      case "remove": {
        const path = wirePath(o.path);
        W(path);
        if (path === "") fail("EBUSY", "cannot remove the workspace root");
        const n = this.need(path);
        if (n.type === "dir" && this.sql.exec("SELECT 1 FROM nodes WHERE parent = ? LIMIT 1", path).toArray().length) {
          fail("ENOTEMPTY", `/${path}`);
        }
        const v = this.nextVersion();
        this.sql.exec("DELETE FROM nodes WHERE path = ?", path);
        this.touchDir(n.parent);
        this.historyOf(path, v, null);
        this.record(v, actor, "remove", path);
        return { ok: true };
      }
      case "rename": {
        const from = wirePath(o.from), to = wirePath(o.to);
        W(from);
        W(to);
        if (from === "" || to === "") fail("EBUSY", "cannot rename the workspace root");
        const src = this.need(from);
        if (from === to) return { ok: true };
        this.needParentDir(to);
        if (src.type === "dir" && (to + "/").startsWith(from + "/")) fail("EINVAL", "cannot move a directory into itself");
        const dst = this.node(to);
        if (dst) {
          if (src.type === "dir" && dst.type !== "dir") fail("ENOTDIR", `/${to}`);
          if (src.type !== "dir" && dst.type === "dir") fail("EISDIR", `/${to}`);
          if (dst.type === "dir" && this.sql.exec("SELECT 1 FROM nodes WHERE parent = ? LIMIT 1", to).toArray().length) {
            fail("ENOTEMPTY", `/${to}`);
          }
        }
        const v = this.nextVersion();
        const moved = src.type === "dir"
          ? this.sql.exec<NodeRow>("SELECT * FROM nodes WHERE path = ? OR substr(path, 1, ?) = ?", from, from.length + 1, from + "/").toArray()
          : [src];
        if (dst) {
          this.sql.exec("DELETE FROM nodes WHERE path = ?", to);
        }
        for (const m of moved) {
          const np = to + m.path.slice(from.length);
          this.sql.exec("DELETE FROM nodes WHERE path = ?", m.path);
          this.historyOf(m.path, v, null);
          const nn: NodeRow = { ...m, path: np, parent: parentOf(np), name: nameOf(np), version: v, ctime: nowNs() };
          this.putNode(nn);
          this.historyOf(np, v, nn);
        }
        this.touchDir(src.parent);
        this.touchDir(parentOf(to));
        this.record(v, actor, "rename", from, { to });
        return { ok: true };
      }
      case "open": {
        const path = wirePath(o.path);
        const f: OpenFlags = o.flags;
        const writes = !!(f.write || f.truncate || f.append);
        if (writes || f.create) W(path);
        else R(path);
        let n = this.node(path);
        if (n && f.create && f.exclusive) fail("EEXIST", `/${path}`);
        if (!n) {
          if (!f.create) this.need(path);
          if (f.directory) fail("ENOENT", `/${path}`);
          n = this.mkfile(path, actor);
        }
        if (f.directory && n.type !== "dir") fail("ENOTDIR", `/${path}`);
        if (n.type === "dir" && writes) fail("EISDIR", `/${path}`);
        if (f.truncate && n.type === "file" && n.size > 0) n = this.setContent(n, [], 0, actor, "truncate");
        const res: DoResult = { ok: true, stat: this.statOf(n) };
        if (o.readahead && n.type === "file") {
          const len = Math.min(o.readahead, n.size, MAX_READ);
          res.segs = this.segsOf(slice(JSON.parse(n.extents) as Extent[], 0, len));
          res.eof = len >= n.size;
        }
        return res;
      }
      case "read": {
        const path = wirePath(o.path);
        R(path);
        if (o.length > MAX_READ) fail("EINVAL", `read longer than ${MAX_READ}`);
        let n: { type: string; size: number; extents: string } | null;
        if (o.version !== undefined) {
          this.checkVersion(o.version);
          n = this.nodeAt(path, o.version);
          if (!n) fail("ENOENT", `/${path} at version ${o.version}`);
        } else n = this.need(path);
        if (n!.type === "dir") fail("EISDIR", `/${path}`);
        const end = Math.min(n!.size, o.offset + o.length);
        const segs = o.offset >= end ? [] : this.segsOf(slice(JSON.parse(n!.extents) as Extent[], o.offset, end));
        return { ok: true, segs, eof: end >= n!.size };
      }
      case "write": {
        const path = wirePath(o.path);
        W(path);
        const n = this.need(path);
        if (n.type === "dir") fail("EISDIR", `/${path}`);
        const part = parts[o.data];
        if (part === undefined) fail("EINVAL", "write data refers to no part");
        const piece = this.pieceOf(part!);
        const off = o.append ? n.size : o.offset;
        const r = writeAt(JSON.parse(n.extents) as Extent[], n.size, off, piece);
        const m = this.setContent(n, r.ext, r.size, actor, "write", { offset: off, length: piece[2] });
        return { ok: true, stat: this.statOf(m), written: piece[2] };
      }
      case "truncate": {
        const path = wirePath(o.path);
        W(path);
        const n = this.need(path);
        if (n.type === "dir") fail("EISDIR", `/${path}`);
        if (o.size === n.size) return { ok: true, stat: this.statOf(n) };
        const m = this.setContent(n, truncateTo(JSON.parse(n.extents) as Extent[], n.size, o.size), o.size, actor, "truncate");
        return { ok: true, stat: this.statOf(m) };
      }
      case "setTimes": {
        const path = wirePath(o.path);
        W(path);
        const n = this.need(path);
        this.sql.exec("UPDATE nodes SET atime = coalesce(?, atime), mtime = coalesce(?, mtime), ctime = ? WHERE path = ?",
          o.atime ?? null, o.mtime ?? null, nowNs(), path);
        return { ok: true, stat: this.statOf(this.need(n.path)) };
      }
    }
  }

  /**
   * Runs a batch: operations in order, each atomic on its own (or all-or-nothing with `atomic`).
   * The whole batch runs in one turn of this object, so no other request interleaves with it.
   */
  batch(cred: Cred, ops: WireOp[], parts: Part[], atomic = false): Reply<{ results: DoResult[] }> {
    return replyOf(() => {
      const p = this.principal(cred);
      this.exists();
      const actor = actorOf(p);
      // Authorise every operation before running any, so a forbidden batch changes nothing.
      for (const o of ops) {
        for (const a of accessOf(o)) if (!allowed(p, a.path, a.write)) {
          throw new AuthError(403, `${a.write ? "write" : "read"} access to /${a.path} not granted`);
        }
      }
      const results: DoResult[] = [];
      const one = (o: WireOp): DoResult => this.op(p, actor, o, parts);
      const caught = (e: unknown): DoResult => {
        if (e instanceof AuthError) throw e;
        const w = toWireError(e);
        if (!(e instanceof FsError)) console.error("workspace op failed", e);
        return { ok: false, error: w };
      };
      if (atomic) {
        let failed = -1;
        try {
          this.ctx.storage.transactionSync(() => {
            for (const o of ops) {
              const r = (() => { try { return one(o); } catch (e) { return caught(e); } })();
              results.push(r);
              if (!r.ok) { failed = results.length - 1; throw new FsError("ECANCELED", "batch rolled back"); }
            }
          });
        } catch (e) {
          if (failed < 0) throw e;
          return {
            results: ops.map((_, i) => i === failed ? results[i]! : { ok: false as const, error: { code: "ECANCELED", message: "ECANCELED: atomic batch rolled back" } }),
          };
        }
        return { results };
      }
      for (const o of ops) {
        try {
          results.push(this.ctx.storage.transactionSync(() => one(o)));
        } catch (e) {
          results.push(caught(e));
        }
      }
      return { results };
    });
  }

  /** Replaces a file's whole content with one staged piece (PUT): atomic, one version. */
  putFile(cred: Cred, rawPath: string, part: Part, parents: boolean): Reply<WireStat> {
    return replyOf(() => {
      const p = this.principal(cred);
      this.exists();
      const path = wirePath(rawPath);
      this.check(p, [{ path, write: true }]);
      const actor = actorOf(p);
      return this.ctx.storage.transactionSync(() => {
        if (parents && parentOf(path) !== "") this.op(p, actor, { op: "mkdir", path: parentOf(path), parents: true }, []);
        const piece = this.pieceOf(part);
        let n = this.node(path);
        if (n?.type === "dir") fail("EISDIR", `/${path}`);
        if (!n) n = this.mkfile(path, actor);
        return this.statOf(this.setContent(n, tidy([piece]), piece[2], actor, "put"));
      });
    });
  }

  /** Segments of a file for a streamed GET (a window at a time, so no RPC carries a huge body). */
  readSegs(cred: Cred, rawPath: string, offset: number, length: number, version?: number): Reply<{ stat: WireStat; segs: Seg[] }> {
    return replyOf(() => {
      const p = this.principal(cred);
      this.exists();
      const path = wirePath(rawPath);
      this.check(p, [{ path, write: false }]);
      let n: { type: string; ino: number; size: number; extents: string; mtime: string; version?: number } | null;
      if (version !== undefined) {
        this.checkVersion(version);
        n = path === "" ? this.node("") : this.nodeAt(path, version);
        if (!n) fail("ENOENT", `/${path} at version ${version}`);
      } else n = this.need(path);
      const stat = this.statOf(n!);
      if (n!.type === "dir") return { stat, segs: [] };
      const end = Math.min(n!.size, offset + Math.min(length, MAX_READ));
      return { stat, segs: offset >= end ? [] : this.segsOf(slice(JSON.parse(n!.extents) as Extent[], offset, end)) };
    });
  }

  // ---------------------------------------------------------------- versions, snapshots, fork

  versions(cred: Cred, rawPath: string | undefined, limit = 100): Reply<{ version: number; entries: unknown[] }> {
    return replyOf(() => {
      const p = this.principal(cred);
      this.exists();
      const path = rawPath === undefined ? undefined : wirePath(rawPath);
      this.check(p, [{ path: path ?? "", write: false }]);
      const lim = Math.max(1, Math.min(1000, limit));
      const rows = path === undefined
        ? this.sql.exec("SELECT * FROM versions ORDER BY version DESC LIMIT ?", lim).toArray()
        : this.sql.exec(
          `SELECT v.version, v.time, v.actor, v.action, v.path, v.detail, h.size, h.type FROM history h JOIN versions v ON v.version = h.version
           WHERE h.path = ? ORDER BY h.version DESC LIMIT ?`, path, lim).toArray();
      return {
        version: this.meta("version") as number,
        entries: rows.map((r) => ({ ...r, detail: r.detail ? JSON.parse(r.detail as string) : undefined, deleted: path !== undefined && r.type === null })),
      };
    });
  }

  snapshot(cred: Cred, name: string): Reply<{ name: string; version: number }> {
    return replyOf(() => {
      const p = this.principal(cred);
      this.exists();
      this.check(p, [{ path: "", write: true }]);
      if (!NAME_RE.test(name)) fail("EINVAL", "bad snapshot name");
      if (this.sql.exec("SELECT 1 FROM snapshots WHERE name = ?", name).toArray().length) fail("EEXIST", `snapshot ${name}`);
      const v = this.meta("version") as number;
      this.ctx.storage.transactionSync(() => {
        this.sql.exec("INSERT INTO snapshots VALUES(?, ?, ?)", name, v, nowNs());
        this.audit(actorOf(p), "snapshot", { name, version: v });
      });
      return { name, version: v };
    });
  }

  snapshots(cred: Cred): Reply<Array<{ name: string; version: number; time: string }>> {
    return replyOf(() => {
      const p = this.principal(cred);
      this.exists();
      this.check(p, [{ path: "", write: false }]);
      return this.sql.exec("SELECT * FROM snapshots ORDER BY version").toArray() as unknown as Array<{ name: string; version: number; time: string }>;
    });
  }

  /** Resolves `?v=` / `?snapshot=` to a version number (auth is checked by the read itself). */
  snapshotVersion(name: string): number | null {
    const r = this.sql.exec<{ version: number }>("SELECT version FROM snapshots WHERE name = ?", name).toArray()[0];
    return r ? r.version : null;
  }

  /** The tree as of a version, with its inline pieces, for a fork. R2 pieces are shared by key. */
  exportTree(cred: Cred, version?: number): Reply<{ nodes: Array<Record<string, SqlStorageValue>>; pieces: Array<[string, ArrayBuffer]>; version: number; name: string }> {
    return replyOf(() => {
      const p = this.principal(cred);
      this.exists();
      this.check(p, [{ path: "", write: false }]);
      const v = version ?? (this.meta("version") as number);
      this.checkVersion(v);
      const nodes = this.sql.exec(
        `SELECT h.path, h.type, h.ino, h.size, h.extents, h.mtime FROM history h
         WHERE h.version = (SELECT max(version) FROM history WHERE path = h.path AND version <= ?) AND h.type IS NOT NULL AND h.path != ''
         ORDER BY h.path`, v).toArray();
      const want = new Set<string>();
      for (const n of nodes) for (const [ref] of JSON.parse(n.extents as string) as Extent[]) if (ref.startsWith("i:")) want.add(ref.slice(2));
      const pieces: Array<[string, ArrayBuffer]> = [];
      for (const h of want) {
        const r = this.sql.exec<{ data: ArrayBuffer }>("SELECT data FROM pieces WHERE hash = ?", h).toArray()[0];
        if (r) pieces.push([h, r.data]);
      }
      return { nodes, pieces, version: v, name: this.wsName };
    });
  }

  /** Creates this workspace as a fork: owner is the forking key; one version holds the whole tree. */
  importTree(cred: Cred, name: string, from: string, tree: { nodes: Array<Record<string, SqlStorageValue>>; pieces: Array<[string, ArrayBuffer]> }): Reply<{ version: number }> {
    return replyOf(() => {
      if (cred.type !== "internal" || cred.principal.kind === "token") throw new AuthError(403, "forks are made by keys");
      if (this.owner) fail("EEXIST", `workspace ${name} exists`);
      const owner = cred.principal.pubkey;
      return this.ctx.storage.transactionSync(() => {
        this.init(name, owner);
        this.setMeta("forked_from", from);
        for (const [h, d] of tree.pieces) this.sql.exec("INSERT OR IGNORE INTO pieces VALUES(?, ?)", h, d);
        const v = this.nextVersion();
        const t = nowNs();
        for (const n of tree.nodes) {
          const path = n.path as string;
          const row: NodeRow = {
            path, parent: parentOf(path), name: nameOf(path), type: n.type as "file" | "dir", ino: n.ino as number,
            size: n.size as number, extents: n.extents as string, atime: n.mtime as string, mtime: n.mtime as string, ctime: t, version: v,
          };
          this.putNode(row);
          this.historyOf(path, v, row);
        }
        const maxIno = tree.nodes.reduce((m, n) => Math.max(m, n.ino as number), 1);
        this.setMeta("ino", maxIno);
        this.record(v, `key:${owner}`, "fork", "", { from, files: tree.nodes.length });
        return { version: v };
      });
    });
  }

  // ---------------------------------------------------------------- grants

  grant(cred: Cred, g: { prefix: string; write: boolean; expires: number; pubkey?: string }): Reply<Grant & { token?: string }> {
    return replyOf(() => {
      const p = this.principal(cred);
      this.exists();
      if (p.kind !== "owner") throw new AuthError(403, "only the owner grants capabilities");
      const prefix = wirePath(g.prefix);
      if (!(g.expires > Date.now())) fail("EINVAL", "expiry must be in the future");
      if (g.pubkey !== undefined && !/^[0-9a-f]{64}$/.test(g.pubkey)) fail("EINVAL", "pubkey must be 64 hex digits");
      const id = crypto.randomUUID();
      const token = g.pubkey ? undefined : newToken();
      this.ctx.storage.transactionSync(() => {
        this.sql.exec("INSERT INTO grants VALUES(?, ?, ?, ?, ?, ?, 0, ?)", id,
          token ? hex(sha256(new TextEncoder().encode(token))) : null, g.pubkey ?? null, prefix, g.write ? 1 : 0, g.expires, Date.now());
        this.audit(actorOf(p), "grant", { id, prefix, write: g.write, expires: g.expires, ...(g.pubkey ? { pubkey: g.pubkey } : {}) });
      });
      return { id, prefix, write: g.write, expires: g.expires, ...(g.pubkey ? { pubkey: g.pubkey } : {}), ...(token ? { token } : {}) };
    });
  }

  grants(cred: Cred): Reply<Array<Grant & { revoked: boolean }>> {
    return replyOf(() => {
      const p = this.principal(cred);
      this.exists();
      if (p.kind !== "owner") throw new AuthError(403, "only the owner lists grants");
      return this.sql.exec("SELECT * FROM grants ORDER BY created").toArray().map((r) => ({ ...this.grantOf(r), revoked: r.revoked === 1 }));
    });
  }

  revoke(cred: Cred, id: string): Reply<{ revoked: string }> {
    return replyOf(() => {
      const p = this.principal(cred);
      this.exists();
      if (p.kind !== "owner") throw new AuthError(403, "only the owner revokes capabilities");
      if (!this.sql.exec("SELECT 1 FROM grants WHERE id = ?", id).toArray().length) fail("ENOENT", `grant ${id}`);
      this.ctx.storage.transactionSync(() => {
        this.sql.exec("UPDATE grants SET revoked = 1 WHERE id = ?", id);
        this.audit(actorOf(p), "revoke", { id });
      });
      return { revoked: id };
    });
  }

  /** Records a NIP-98 nonce only (routes that belong to a key, not a workspace: `GET /w`). */
  touch(cred: Cred): Reply<string> {
    return replyOf(() => {
      const p = this.principal(cred);
      if (p.kind === "token") throw new AuthError(403, "a key is needed");
      return p.pubkey;
    });
  }

  /** Namespace registry entry (this object is `@agent:<id>`): the first key to register owns it. */
  async registryPut(cred: Cred, agent: string, json: string): Promise<Reply<{ agent: string; owner: string }>> {
    const r = replyOf(() => {
      const p = this.principal(cred);
      if (p.kind === "token") throw new AuthError(403, "a key is needed");
      const owner = this.owner;
      if (owner && owner !== p.pubkey) throw new AuthError(403, "agent id is registered by another key");
      this.ctx.storage.transactionSync(() => {
        if (!owner) this.init("@agent:" + agent, p.pubkey);
        this.setMeta("registry", json);
        this.audit(actorOf(p), "register", { agent });
      });
      return { agent, owner: p.pubkey };
    });
    if (r.ok) await this.env.KV.put(`reg:${agent}`, json);
    return r;
  }

  // ---------------------------------------------------------------- tasks (authoritative here, KV for fast reads)

  async taskPut(cred: Cred, id: string, file: string, data: Uint8Array): Promise<Reply<{ version: number }>> {
    const r = replyOf(() => {
      const p = this.principal(cred);
      this.exists();
      this.check(p, [{ path: "", write: true }]);
      if (!NAME_RE.test(id) || !NAME_RE.test(file)) fail("EINVAL", "bad task id or file name");
      if (data.length > INLINE_MAX) fail("EFBIG", `task files are at most ${INLINE_MAX} bytes`);
      return this.ctx.storage.transactionSync(() => {
        const v = this.nextVersion();
        this.sql.exec("INSERT INTO tasks VALUES(?, ?, ?, ?) ON CONFLICT(id, file) DO UPDATE SET data = excluded.data, version = excluded.version",
          id, file, buf(data), v);
        this.record(v, actorOf(p), "task", `.task/${id}/${file}`, { size: data.length });
        return { version: v };
      });
    });
    if (!r.ok) return r;
    // Write through: the KV copy is for fast reads; this object stays the authority.
    await this.env.KV.put(taskKey(this.wsName, id, file), data);
    return r;
  }

  taskGet(cred: Cred, id: string, file: string): Reply<Uint8Array | null> {
    return replyOf(() => {
      const p = this.principal(cred);
      this.exists();
      this.check(p, [{ path: "", write: false }]);
      const r = this.sql.exec<{ data: ArrayBuffer }>("SELECT data FROM tasks WHERE id = ? AND file = ?", id, file).toArray()[0];
      return r ? new Uint8Array(r.data) : null;
    });
  }

  // ---------------------------------------------------------------- logs (buffered here, segments in R2, live tail)

  async logAppend(cred: Cred, stream: string, data: Uint8Array): Promise<Reply<{ length: number }>> {
    const r = replyOf(() => {
      const p = this.principal(cred);
      this.exists();
      this.check(p, [{ path: "", write: true }]);
      if (!NAME_RE.test(stream)) fail("EINVAL", "bad log stream name");
      if (data.length > INLINE_MAX) fail("EFBIG", `append at most ${INLINE_MAX} bytes at a time`);
      return this.ctx.storage.transactionSync(() => {
        const start = this.sql.exec<{ length: number }>("SELECT length FROM log_streams WHERE stream = ?", stream).toArray()[0]?.length ?? 0;
        if (data.length) this.sql.exec("INSERT INTO log_chunks VALUES(?, ?, ?)", stream, start, buf(data));
        this.sql.exec("INSERT INTO log_streams VALUES(?, ?) ON CONFLICT(stream) DO UPDATE SET length = excluded.length", stream, start + data.length);
        void this.ctx.storage.setAlarm(Date.now() + 1000);
        return { length: start + data.length };
      });
    });
    if (!r.ok) return r;
    for (const t of this.tails.get(stream) ?? []) this.feed(t, stream, data.slice());
    const buffered = this.sql.exec<{ n: number }>("SELECT coalesce(sum(length(data)), 0) AS n FROM log_chunks WHERE stream = ?", stream).one().n;
    if (buffered >= LOG_FLUSH_BYTES) await this.flushLogs();
    return r;
  }

  /** Moves buffered log chunks to R2 segments (one object per flush per stream). */
  async flushLogs(): Promise<void> {
    while (this.logFlush) await this.logFlush;
    this.logFlush = (async () => {
      const streams = this.sql.exec<{ stream: string }>("SELECT DISTINCT stream FROM log_chunks").toArray();
      for (const { stream } of streams) {
        const rows = this.sql.exec<{ start: number; data: ArrayBuffer }>("SELECT start, data FROM log_chunks WHERE stream = ? ORDER BY start", stream).toArray();
        if (!rows.length) continue;
        const start = rows[0]!.start;
        const total = rows.reduce((n, r) => n + r.data.byteLength, 0);
        const body = new Uint8Array(total);
        let at = 0;
        for (const r of rows) body.set(new Uint8Array(r.data), at), (at += r.data.byteLength);
        const key = `logs/${this.wsName}/${stream}/${String(start).padStart(16, "0")}`;
        await this.env.BLOBS.put(key, body);
        this.ctx.storage.transactionSync(() => {
          this.sql.exec("INSERT OR REPLACE INTO log_segments VALUES(?, ?, ?, ?)", stream, start, total, key);
          this.sql.exec("DELETE FROM log_chunks WHERE stream = ? AND start <= ?", stream, rows[rows.length - 1]!.start);
        });
      }
    })();
    try {
      await this.logFlush;
    } finally {
      this.logFlush = undefined;
    }
  }

  /** Log bytes from `from` (up to `max`) as segments; the Worker resolves R2 ranges. */
  logRead(cred: Cred, stream: string, from: number, max: number): Reply<{ length: number; segs: Seg[] }> {
    return replyOf(() => {
      const p = this.principal(cred);
      this.exists();
      this.check(p, [{ path: "", write: false }]);
      return this.logSegs(stream, from, max);
    });
  }

  private logSegs(stream: string, from: number, max: number): { length: number; segs: Seg[] } {
    const length = this.sql.exec<{ length: number }>("SELECT length FROM log_streams WHERE stream = ?", stream).toArray()[0]?.length;
    if (length === undefined) fail("ENOENT", `log ${stream}`);
    const end = Math.min(length!, from + max);
    const segs: Seg[] = [];
    if (from >= end) return { length: length!, segs };
    for (const s of this.sql.exec<{ start: number; len: number; key: string }>(
      "SELECT start, len, key FROM log_segments WHERE stream = ? AND start + len > ? AND start < ? ORDER BY start", stream, from, end)) {
      const a = Math.max(from, s.start), b = Math.min(end, s.start + s.len);
      segs.push({ r2: s.key, off: a - s.start, len: b - a });
    }
    for (const c of this.sql.exec<{ start: number; data: ArrayBuffer }>(
      "SELECT start, data FROM log_chunks WHERE stream = ? AND start + length(data) > ? AND start < ? ORDER BY start", stream, from, end)) {
      const a = Math.max(from, c.start), b = Math.min(end, c.start + c.data.byteLength);
      segs.push(new Uint8Array(c.data, a - c.start, b - a).slice());
    }
    return { length: length!, segs };
  }

  /** A live tail: the backlog from `from`, then every append as it happens, in order. */
  async follow(cred: Cred, stream: string, from: number): Promise<Reply<ReadableStream<Uint8Array>>> {
    const r = replyOf(() => {
      const p = this.principal(cred);
      this.exists();
      this.check(p, [{ path: "", write: false }]);
      if (!NAME_RE.test(stream)) fail("EINVAL", "bad log stream name");
      const length = this.sql.exec<{ length: number }>("SELECT length FROM log_streams WHERE stream = ?", stream).toArray()[0]?.length ?? 0;
      return { length, backlog: from < length ? this.logSegs(stream, from, length - from).segs : [] };
    });
    if (!r.ok) return r;
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
    const t: Tail = { writer: writable.getWriter(), live: false, queue: [] };
    let set = this.tails.get(stream);
    if (!set) this.tails.set(stream, (set = new Set()));
    set.add(t);
    void (async () => {
      try {
        for (const s of r.value.backlog) {
          if (s instanceof Uint8Array) await t.writer.write(s);
          else if (typeof s !== "number") {
            const o = await this.env.BLOBS.get(s.r2, { range: { offset: s.off, length: s.len } });
            if (o) await t.writer.write(new Uint8Array(await o.arrayBuffer()));
          }
        }
        for (const q of t.queue) await t.writer.write(q);
        t.queue = [];
        t.live = true;
      } catch {
        set.delete(t);
      }
    })();
    return { ok: true, value: readable };
  }

  private feed(t: Tail, stream: string, data: Uint8Array): void {
    if (!t.live) {
      t.queue.push(data);
      return;
    }
    t.writer.write(data).catch(() => this.tails.get(stream)?.delete(t));
  }
}

/** What an operation needs (paths that do not parse are left to the operation to refuse). */
function accessOf(o: WireOp): Access[] {
  const safe = (p: string): string | null => {
    try { return wirePath(p); } catch { return null; }
  };
  const out: Access[] = [];
  const add = (p: string, write: boolean) => {
    const q = safe(p);
    if (q !== null) out.push({ path: q, write });
  };
  switch (o.op) {
    case "rename": add(o.from, true); add(o.to, true); break;
    case "stat": case "readdir": case "read": add(o.path, false); break;
    case "open": add(o.path, !!(o.flags.write || o.flags.truncate || o.flags.append || o.flags.create)); break;
    default: add(o.path, true);
  }
  return out;
}

export const taskKey = (ws: string, id: string, file: string): string => `task:${ws}:${id}:${file}`;
