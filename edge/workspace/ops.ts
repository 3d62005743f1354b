// The FileService operations of a batch (services/remote-wire.ts WireOp), one function each, over
// the tree, its pieces and its history. Authorisation happens before any op runs (accessOf, and
// Workspace's one rule); an op only checks what the tree says: existence, types, emptiness.
import type { OpenFlags } from "../../runtime/types.ts";
import { parent } from "../../runtime/path.ts";
import { MAX_FILE_BYTES, MAX_READ, type WireOp, type WireStat, type WireDirEntry } from "../../services/remote-wire.ts";
import { pathOf } from "./names.ts";
import { writeAt, truncateTo, slice, tidy, type Extent } from "../extents.ts";
import { Change, type Step } from "./change.ts";
import type { History, PastNode } from "./history.ts";
import type { Meta } from "./meta.ts";
import type { Part, Pieces, Seg } from "./pieces.ts";
import { fail, nowNs } from "./reply.ts";
import { nodeRow, statOf, type NodeRow, type Tree } from "./tree.ts";

/** An operation's answer as the Worker gets it: read data as segments (bytes, R2 ranges, zeros). */
export type DoResult =
  | { ok: true; stat?: WireStat; entries?: WireDirEntry[]; segs?: Seg[]; eof?: boolean; written?: number }
  | { ok: false; error: { code: string; message: string } };

/**
 * An operation's answer as this object keeps it: read data as extents over immutable pieces, so
 * an answer remembered for a retry (answers.ts) is small and still reads the same bytes.
 */
export type OpResult =
  | { ok: true; stat?: WireStat; entries?: WireDirEntry[]; ext?: Extent[]; eof?: boolean; written?: number }
  | { ok: false; error: { code: string; message: string } };

/**
 * The most read data one batch answer carries (reads and readahead together): a small request
 * must not make the edge assemble gigabytes. A read past it answers EMSGSIZE; readahead shrinks.
 */
export const MAX_ANSWER_BYTES = 32 * 1024 * 1024;

/**
 * What one batch's operations share: who runs them, its parts, its answer budget and, in an
 * atomic batch, the content change being gathered (change.ts; `settle` commits it).
 */
export interface RunContext { actor: string; parts: Part[]; authorize: Authorize; budget: { left: number }; atomic: boolean; change?: Change }

/** One access an operation needs: read or write at a path ("" is the whole workspace). */
export interface Access { path: string; write: boolean }

/** Throws AuthError unless the caller has this access (the workspace's one rule). */
export type Authorize = (a: Access) => void;

/** What an operation needs (paths that do not parse are left to the operation to refuse). */
export function accessOf(o: WireOp): Access[] {
  const out: Access[] = [];
  const add = (p: string, write: boolean) => {
    try {
      out.push({ path: pathOf(p), write });
    } catch {
      // the op refuses the path itself
    }
  };
  switch (o.op) {
    case "rename": add(o.from, true); add(o.to, true); break;
    case "stat": case "readdir": case "read": add(o.path, false); break;
    case "open": add(o.path, !!(o.flags.write || o.flags.truncate || o.flags.append || o.flags.create)); break;
    default: add(o.path, true);
  }
  return out;
}

type Op<K extends WireOp["op"]> = Extract<WireOp, { op: K }>;

export class Ops {
  readonly #tree: Tree;
  readonly #pieces: Pieces;
  readonly #history: History;
  readonly #meta: Meta;

  constructor(tree: Tree, pieces: Pieces, history: History, meta: Meta) {
    this.#tree = tree;
    this.#pieces = pieces;
    this.#history = history;
    this.#meta = meta;
  }

  /**
   * Runs one operation as `actor`, already authorised for accessOf(o). `authorize` checks what
   * only the tree can tell: each directory `mkdir -p` is about to create.
   */
  run(o: WireOp, ctx: RunContext): OpResult {
    const { actor } = ctx;
    // A gathered change ends at the first op that is not a write or truncate of its file.
    if (ctx.change && !((o.op === "write" || o.op === "truncate") && samePath(o.path, ctx.change.path))) this.settle(ctx);
    switch (o.op) {
      case "stat": return this.#stat(o);
      case "readdir": return this.#readdir(o);
      case "mkdir": return this.#mkdirOp(actor, o, ctx.authorize);
      case "remove": return this.#remove(actor, o);
      case "rename": return this.#rename(actor, o);
      case "open": return this.#open(actor, o, ctx);
      case "read": return this.#read(o, ctx.budget);
      case "write": return this.#write(actor, o, ctx);
      case "truncate": return this.#truncate(actor, o, ctx);
      case "setTimes": return this.#setTimes(actor, o);
    }
  }

  /**
   * Commits the change gathered in `ctx` (if any) as one version: its pieces folded once, one
   * history row, one audit entry; the answers of its ops learn that version.
   */
  settle(ctx: RunContext): void {
    const c = ctx.change;
    if (!c) return;
    ctx.change = undefined;
    const n = this.#tree.need(c.path);
    const m = this.#commitContent(ctx.actor, n, c.ext, c.size, c.action, c.detail());
    c.committed(m.version, m.mtime, m.ctime);
  }

  /** Replaces a file's whole content with one staged piece (PUT): one version. */
  put(actor: string, path: string, part: Part, parents: boolean, authorize: Authorize): WireStat {
    if (parents && parent(path) !== "") this.#mkdirs(actor, parent(path), authorize);
    const piece = this.#pieces.ofPart(part);
    let n = this.#tree.node(path);
    if (n?.type === "dir") fail("EISDIR", `/${path}`, path);
    if (!n) n = this.#mkfile(actor, path);
    return statOf(this.#commitContent(actor, n, tidy([piece]), piece[2], "put", {}));
  }

  /** A file's stat and the segments of [offset, offset+length), live or as of a version. */
  segments(path: string, offset: number, length: number, version?: number): { stat: WireStat; segs: Seg[] } {
    const n = this.#lookup(path, version);
    const stat = statOf(n);
    if (n.type === "dir") return { stat, segs: [] };
    const end = Math.min(n.size, offset + Math.min(length, MAX_READ));
    return { stat, segs: offset >= end ? [] : this.#pieces.segs(slice(JSON.parse(n.extents) as Extent[], offset, end)) };
  }

  // ---------------------------------------------------------------- reading

  /** A live node, or a path's state as of `version`. */
  #lookup(path: string, version?: number): NodeRow | PastNode {
    if (version === undefined) return this.#tree.need(path);
    if (path === "") {
      this.#history.checkVersion(version);
      return this.#tree.need("");
    }
    return this.#history.nodeAt(path, version) ?? fail("ENOENT", `/${path} at version ${version}`, path);
  }

  #stat(o: Op<"stat">): OpResult {
    return { ok: true, stat: statOf(this.#lookup(pathOf(o.path), o.version)) };
  }

  #readdir(o: Op<"readdir">): OpResult {
    const path = pathOf(o.path);
    const d = this.#lookup(path, o.version);
    if (d.type !== "dir") fail("ENOTDIR", `/${path}`, path);
    const rows = o.version === undefined ? this.#tree.children(path) : this.#history.listingAt(path, o.version);
    return { ok: true, entries: rows.map((r) => ({ name: r.name, type: r.type as "file" | "dir", ino: r.ino, stat: statOf(r) })) };
  }

  #read(o: Op<"read">, budget: { left: number }): OpResult {
    const path = pathOf(o.path);
    if (o.length > MAX_READ) fail("EINVAL", `read longer than ${MAX_READ}`);
    const n = this.#lookup(path, o.version);
    if (n.type === "dir") fail("EISDIR", `/${path}`, path);
    const end = Math.min(n.size, o.offset + o.length);
    const len = Math.max(0, end - o.offset);
    if (len > budget.left) fail("EMSGSIZE", `a batch answer carries at most ${MAX_ANSWER_BYTES} bytes of reads; read the rest in another batch`, path);
    budget.left -= len;
    return { ok: true, ext: len ? slice(JSON.parse(n.extents) as Extent[], o.offset, end) : [], eof: end >= n.size };
  }

  #open(actor: string, o: Op<"open">, ctx: RunContext): OpResult {
    const budget = ctx.budget;
    const path = pathOf(o.path);
    const f: OpenFlags = o.flags;
    const writes = !!(f.write || f.truncate || f.append);
    let n = this.#tree.node(path);
    if (n && f.create && f.exclusive) fail("EEXIST", `/${path}`, path);
    if (!n) {
      if (!f.create) this.#tree.need(path);
      if (f.directory) fail("ENOENT", `/${path}`, path);
      n = this.#mkfile(actor, path);
    }
    if (f.directory && n.type !== "dir") fail("ENOTDIR", `/${path}`, path);
    if (n.type === "dir" && writes) fail("EISDIR", `/${path}`, path);
    let truncated = false;
    if (f.truncate && n.type === "file" && n.size > 0) {
      n = this.#setContent(actor, n, [], 0, { action: "truncate", detail: {}, written: 0 }, ctx);
      truncated = true;
    }
    const res: OpResult = { ok: true, stat: this.#answer(ctx, truncated, statOf(n)) };
    if (o.readahead && n.type === "file") {
      const len = Math.min(o.readahead, n.size, MAX_READ, budget.left);
      budget.left -= len;
      res.ext = len ? slice(JSON.parse(n.extents) as Extent[], 0, len) : [];
      res.eof = len >= n.size;
    }
    return res;
  }

  // ---------------------------------------------------------------- changing

  #mkdirOp(actor: string, o: Op<"mkdir">, authorize: Authorize): OpResult {
    const path = pathOf(o.path);
    if (o.parents) this.#mkdirs(actor, path, authorize);
    else {
      if (this.#tree.node(path)) fail("EEXIST", `/${path}`, path);
      this.#mkdir(actor, path);
    }
    return { ok: true };
  }

  #remove(actor: string, o: Op<"remove">): OpResult {
    const path = pathOf(o.path);
    if (path === "") fail("EBUSY", "cannot remove the workspace root", path);
    const n = this.#tree.need(path);
    if (n.type === "dir" && this.#tree.hasChildren(path)) fail("ENOTEMPTY", `/${path}`, path);
    const v = this.#meta.nextVersion();
    this.#tree.delete(path);
    this.#tree.touchDir(n.parent);
    this.#history.keep(path, v, null);
    this.#history.commit(v, actor, "remove", path);
    return { ok: true };
  }

  #rename(actor: string, o: Op<"rename">): OpResult {
    const from = pathOf(o.from), to = pathOf(o.to);
    if (from === "" || to === "") fail("EBUSY", "cannot rename the workspace root");
    const src = this.#tree.need(from);
    if (from === to) return { ok: true };
    this.#tree.needParentDir(to);
    if (src.type === "dir" && (to + "/").startsWith(from + "/")) fail("EINVAL", "cannot move a directory into itself", to);
    const dst = this.#tree.node(to);
    if (dst) {
      if (src.type === "dir" && dst.type !== "dir") fail("ENOTDIR", `/${to}`, to);
      if (src.type !== "dir" && dst.type === "dir") fail("EISDIR", `/${to}`, to);
      if (dst.type === "dir" && this.#tree.hasChildren(to)) fail("ENOTEMPTY", `/${to}`, to);
    }
    const v = this.#meta.nextVersion();
    const moved = src.type === "dir" ? this.#tree.subtree(from) : [src];
    if (dst) this.#tree.delete(to);
    for (const m of moved) {
      const np = to + m.path.slice(from.length);
      this.#tree.delete(m.path);
      this.#history.keep(m.path, v, null);
      const nn = nodeRow(np, { ...m, version: v, ctime: nowNs() });
      this.#tree.put(nn);
      this.#history.keep(np, v, nn);
    }
    this.#tree.touchDir(src.parent);
    this.#tree.touchDir(parent(to));
    this.#history.commit(v, actor, "rename", from, { to });
    return { ok: true };
  }

  #write(actor: string, o: Op<"write">, ctx: RunContext): OpResult {
    const path = pathOf(o.path);
    const n = this.#tree.need(path);
    if (n.type === "dir") fail("EISDIR", `/${path}`, path);
    const part = ctx.parts[o.data] ?? fail("EINVAL", "write data refers to no part");
    const piece = this.#pieces.ofPart(part);
    const cur = this.#content(n, ctx);
    // An append lands at the size this object sees now: appends from different clients never overlap.
    const off = o.append ? cur.size : o.offset;
    const r = writeAt(cur.ext, cur.size, off, piece);
    const m = this.#setContent(actor, n, r.ext, r.size, { action: "write", detail: { offset: off, length: piece[2] }, written: piece[2] }, ctx);
    return { ok: true, stat: this.#answer(ctx, true, statOf(m)), written: piece[2] };
  }

  #truncate(actor: string, o: Op<"truncate">, ctx: RunContext): OpResult {
    const path = pathOf(o.path);
    const n = this.#tree.need(path);
    if (n.type === "dir") fail("EISDIR", `/${path}`, path);
    const cur = this.#content(n, ctx);
    if (o.size === cur.size) return { ok: true, stat: this.#answer(ctx, !!ctx.change, statOf({ ...n, size: cur.size })) };
    const m = this.#setContent(actor, n, truncateTo(cur.ext, cur.size, o.size), o.size, { action: "truncate", detail: {}, written: 0 }, ctx);
    return { ok: true, stat: this.#answer(ctx, true, statOf(m)) };
  }

  /** Setting times is a change like any other: a version, kept in history, audited. */
  #setTimes(actor: string, o: Op<"setTimes">): OpResult {
    const path = pathOf(o.path);
    const n = this.#tree.need(path);
    const v = this.#meta.nextVersion();
    const m: NodeRow = { ...n, atime: o.atime ?? n.atime, mtime: o.mtime ?? n.mtime, ctime: nowNs(), version: v };
    this.#tree.put(m);
    this.#history.keep(path, v, m);
    this.#history.commit(v, actor, "setTimes", path, { ...(o.atime ? { atime: o.atime } : {}), ...(o.mtime ? { mtime: o.mtime } : {}) });
    return { ok: true, stat: statOf(m) };
  }

  // ---------------------------------------------------------------- shared steps

  #mkdir(actor: string, path: string): void {
    this.#tree.needParentDir(path);
    const t = nowNs();
    const v = this.#meta.nextVersion();
    const n = nodeRow(path, { type: "dir", ino: this.#meta.newIno(), size: 0, extents: "[]", atime: t, mtime: t, ctime: t, version: v });
    this.#tree.put(n);
    this.#tree.touchDir(n.parent);
    this.#history.keep(path, v, n);
    this.#history.commit(v, actor, "mkdir", path);
  }

  /** Creates `path` and its missing ancestors (`mkdir -p`), each one authorised. */
  #mkdirs(actor: string, path: string, authorize: Authorize): void {
    const segs = path.split("/");
    for (let i = 1; i <= segs.length; i++) {
      const q = segs.slice(0, i).join("/");
      const e = this.#tree.node(q);
      if (e && e.type !== "dir") fail("ENOTDIR", `/${q}`, q);
      if (!e) {
        authorize({ path: q, write: true });
        this.#mkdir(actor, q);
      }
    }
  }

  #mkfile(actor: string, path: string): NodeRow {
    this.#tree.needParentDir(path);
    const t = nowNs();
    const v = this.#meta.nextVersion();
    const n = nodeRow(path, { type: "file", ino: this.#meta.newIno(), size: 0, extents: "[]", atime: t, mtime: t, ctime: t, version: v });
    this.#tree.put(n);
    this.#tree.touchDir(n.parent);
    this.#history.keep(path, v, n);
    this.#history.commit(v, actor, "create", path, { size: 0 });
    return n;
  }

  /** A file's content as the batch has it: the gathered change's, or the stored one. */
  #content(n: NodeRow, ctx: RunContext): { ext: Extent[]; size: number } {
    const c = ctx.change;
    return c && c.path === n.path ? c : { ext: JSON.parse(n.extents) as Extent[], size: n.size };
  }

  /**
   * New content for a file: in an atomic batch it joins the change gathered there (committed by
   * `settle`; the row answered is what the file will be, its version still to come); elsewhere
   * it is committed now, as one version.
   */
  #setContent(actor: string, n: NodeRow, ext: Extent[], size: number, step: Step, ctx?: RunContext): NodeRow {
    if (size > MAX_FILE_BYTES) fail("EFBIG", `file would exceed ${MAX_FILE_BYTES} bytes`, n.path);
    if (!ctx?.atomic) return this.#commitContent(actor, n, ext, size, step.action, step.detail);
    if (ctx.change && ctx.change.path !== n.path) this.settle(ctx);
    ctx.change ??= new Change(n.path, ext, size);
    ctx.change.add(ext, size, step);
    const t = nowNs();
    return { ...n, size, mtime: t, ctime: t };
  }

  /** An op's stat; when it joined the gathered change, it gets the version the change commits. */
  #answer(ctx: RunContext, joined: boolean, stat: WireStat): WireStat {
    return joined && ctx.change ? ctx.change.answer(stat) : stat;
  }

  /** Commits new content for a file (one version), its pieces folded. */
  #commitContent(actor: string, n: NodeRow, ext: Extent[], size: number, action: string, detail: object): NodeRow {
    const t = nowNs();
    const v = this.#meta.nextVersion();
    const m: NodeRow = { ...n, size, extents: JSON.stringify(this.#pieces.fold(ext)), mtime: t, ctime: t, version: v };
    this.#tree.put(m);
    this.#history.keep(n.path, v, m);
    this.#history.commit(v, actor, action, n.path, { size, ...detail });
    return m;
  }
}

/** Whether a raw op path names `path` (a path that does not parse names nothing). */
function samePath(raw: string, path: string): boolean {
  try {
    return pathOf(raw) === path;
  } catch {
    return false;
  }
}
