// CowService: a copy-on-write overlay. Reads come from the lower service until a path is changed;
// changes go to the upper service (a MemService by default); the lower is never touched until
// `commit()`.
//
//   const ws = new CowService(new DirService("repo", { readOnly: true }));
//   ... the agent works in ws ...
//   await ws.diff();   // [{ path: "src/a.ts", change: "modified", type: "file" }, ...]
//   ws.reset();        // or: ws.commit() onto a writable lower
//
// Decisions:
// - Any lower: sync or async. Every operation is written once as a generator that yields only
//   when a layer answers with a Promise, so the cow answers synchronously when both layers do, and
//   with a Promise as soon as one does.
// - Paths are resolved by the cow itself, segment by segment over the merged view, so a symlink
//   (in either layer) leads to what the overlay shows at its target, not to a stale lower copy.
//   Targets are relative to the link's directory; an absolute target starts at the cow's root;
//   `..` never climbs above the root. The layers only ever see symlink-free paths. (So a host
//   symlink with an absolute target, which DirService follows inside its root, means "from the
//   cow's root" here.) Which lower paths are directories is cached, so a warm open+stat costs about
//   twice a bare MemService's.
// - Tombstones (in memory) hide the lower's entry at a path *and everything under it*. remove of a
//   lower entry adds one; a later create at that path lives in the upper, so a directory removed
//   and made again starts empty (opaque), as in overlayfs.
// - Opening for write (write, append, truncate) copies the file up first with its parent
//   directories (times kept; truncate skips copying the content). setTimes and link copy up too.
// - rename copies the whole source up (directories recursively), renames inside the upper, then
//   tombstones the source: rename keeps inos, and no other change is visible in between.
// - Handles see each other's writes: a handle opened on a lower file moves to the upper copy the
//   first time it is used after a copy-up (same position). After commit() or reset() a handle on an
//   upper file reopens its path in the merged view on next use (after a reset that is the lower's
//   original, or EBADF if the file only existed in the upper).
// - inos are the cow's own: each (layer, ino) gets a number the first time it is seen, and a copy
//   keeps the number of its original (copy-up, rename, commit), so an ino is stable per file.
// - diff() compares the merged view with the lower: added, deleted (each path under a removed
//   directory too), modified (type changed, file bytes differ, symlink target differs). A file
//   copied up but left unchanged is not reported; directories are never "modified".
// - commit() applies the diff to the lower: removals deepest first, then creates/overwrites
//   shallowest first (files are rewritten in place, so the lower keeps its inos), then resets. If the
//   lower refuses (EROFS, ENOSPC, …) the error is thrown and the cow keeps every change: nothing is
//   lost, and commit can be retried (each step is idempotent). Hard links are committed as copies.
// - The upper belongs to the cow, and the lower must not change underneath it except by commit
//   (the cow caches which lower paths are directories). Tombstones live in memory only.
// - Operations on one cow should not race each other while an async lower is answering; the one
//   race that could lose data — two copy-ups of one file — is serialised.
import { FsError, fsError } from "../runtime/errors.ts";
import { concat } from "../runtime/bytes.ts";
import { Fid } from "../runtime/handle.ts";
import { segments } from "../runtime/path.ts";
import { isPromise, lstatOf, type DirEntry, type FileHandle, type FileService, type FileType, type MaybePromise, type OpenFlags, type Stat } from "../runtime/types.ts";
import { MemService } from "./mem.ts";

export type CowChange = "added" | "modified" | "deleted";

export interface CowDiffEntry {
  path: string;
  change: CowChange;
  /** The type in the overlay (added, modified) or in the lower (deleted). */
  type: FileType;
}

type Layer = "upper" | "lower";

/** What a handle may use of its cow. */
interface CowLink {
  handles: Set<CowHandle>;
  generation(): number;
  refresh(h: CowHandle): Op<void>;
  copyUpFor(h: CowHandle): Op<void>;
  mapStat(layer: Layer, st: Stat): Stat;
}
interface Found {
  layer: Layer;
  type: FileType;
}
interface Resolved {
  /** The symlink-free path the name leads to. */
  path: string;
  /** What is there, or null when nothing is (its parent exists). */
  found: Found | null;
}

// ---- sync-or-async generators ----

type Op<T> = Generator<Promise<unknown>, T, unknown>;

/** Waits for a value only if it is a Promise: `const st = yield* w(svc.stat(p))`. */
function* w<T>(v: MaybePromise<T>): Op<T> {
  if (isPromise(v)) return (yield v) as T;
  return v;
}

/** Runs an operation: synchronously to the end while every step is sync, else as a Promise. */
function run<T>(g: Op<T>): MaybePromise<T> {
  const r = g.next();
  return r.done ? r.value : drive(g, r.value);
}

async function drive<T>(g: Op<T>, first: Promise<unknown>): Promise<T> {
  let step = first;
  for (;;) {
    let value: unknown;
    let failed = false;
    try {
      value = await step;
    } catch (e) {
      value = e;
      failed = true;
    }
    const r = failed ? g.throw(value) : g.next(value);
    if (r.done) return r.value;
    step = r.value;
  }
}

const MAX_HOPS = 40;
const CHUNK = 1 << 20;
const ROOT: Found = { layer: "upper", type: "dir" };
const UPPER_DIR: Found = ROOT;
const LOWER_DIR: Found = { layer: "lower", type: "dir" };
const LOWER_FILE: Found = { layer: "lower", type: "file" };

const join = (dir: string, name: string): string => (dir === "" ? name : `${dir}/${name}`);
const parentOf = (p: string): string => {
  const i = p.lastIndexOf("/");
  return i < 0 ? "" : p.slice(0, i);
};
const under = (p: string, dir: string): boolean => p.startsWith(dir + "/");
const show = (p: string): string => (p === "" ? "/" : p);
const missing = (e: unknown): boolean => e instanceof FsError && (e.code === "ENOENT" || e.code === "ENOTDIR");


function* readAll(svc: FileService, p: string): Op<Uint8Array> {
  const h = yield* w(svc.open(p, { read: true, nofollow: true }));
  try {
    const parts: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const b = yield* w(h.read(CHUNK, total));
      if (b.length === 0) break;
      parts.push(b);
      total += b.length;
    }
    return concat(parts, total);
  } finally {
    yield* w(h.close());
  }
}

function* writeAll(svc: FileService, p: string, data: Uint8Array): Op<void> {
  const h = yield* w(svc.open(p, { write: true, create: true, truncate: true, nofollow: true }));
  try {
    let done = 0;
    while (done < data.length) {
      const n = yield* w(h.write(done === 0 ? data : data.subarray(done), done));
      if (n <= 0) throw fsError("EIO", `write ${p}: no progress`);
      done += n;
    }
  } finally {
    yield* w(h.close());
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class CowService implements FileService {
  readonly lower: FileService;
  readonly upper: FileService;
  /** Lower paths hidden, with everything under them. */
  readonly #tomb = new Set<string>();
  /** What the upper holds: path → type ("" is the root). Filled on first use. */
  #index = new Map<string, FileType>();
  #indexed = false;
  /** Types of lower paths seen so far (positive answers only). */
  readonly #lowerTypes = new Map<string, FileType>();
  readonly #inoUpper = new Map<number, number>();
  readonly #inoLower = new Map<number, number>();
  #nextIno = 1;
  readonly #copying = new Map<string, Promise<unknown>>();
  /** Open handles, to move them when their file is copied up, renamed, committed or reset. */
  readonly #handles = new Set<CowHandle>();
  /** Bumped by commit and reset: upper handles of an older generation reopen. */
  #generation = 0;
  /** What handles may use of the cow. */
  readonly #forHandles: CowLink = {
    handles: this.#handles,
    generation: () => this.#generation,
    refresh: (h) => this.#refresh(h),
    copyUpFor: (h) => this.#copyUpFor(h),
    mapStat: (layer, st) => this.#mapStat(layer, st),
  };

  constructor(lower: FileService, upper: FileService = new MemService()) {
    this.lower = lower;
    this.upper = upper;
  }

  #svc(layer: Layer): FileService {
    return layer === "upper" ? this.upper : this.lower;
  }

  #ino(layer: Layer, ino: number): number {
    const m = layer === "upper" ? this.#inoUpper : this.#inoLower;
    let c = m.get(ino);
    if (c === undefined) {
      c = this.#nextIno++;
      m.set(ino, c);
    }
    return c;
  }

  #mapStat(layer: Layer, st: Stat): Stat {
    return { ...st, ino: this.#ino(layer, st.ino) };
  }

  // ---- lookups ----

  *#ready(): Op<void> {
    if (this.#indexed) return;
    const index = new Map<string, FileType>([["", "dir"]]);
    const walk = function* (this: CowService, dir: string): Op<void> {
      for (const e of yield* w(this.upper.readdir(dir))) {
        const p = join(dir, e.name);
        index.set(p, e.type);
        if (e.type === "dir") yield* walk.call(this, p);
      }
    };
    yield* walk.call(this, "");
    if (!this.#indexed) {
      this.#index = index;
      this.#indexed = true;
    }
  }

  #hidden(p: string): boolean {
    if (this.#tomb.size === 0) return false;
    if (this.#tomb.has(p)) return true;
    for (let i = p.indexOf("/"); i >= 0; i = p.indexOf("/", i + 1)) if (this.#tomb.has(p.slice(0, i))) return true;
    return false;
  }

  *#lowerType(p: string): Op<FileType | null> {
    const known = this.#lowerTypes.get(p);
    if (known !== undefined) return known;
    try {
      const st = yield* w(lstatOf(this.lower, p));
      this.#lowerTypes.set(p, st.type);
      return st.type;
    } catch (e) {
      if (missing(e)) return null;
      throw e;
    }
  }

  /** The lower's entry at p, only if every parent in the lower is a real directory. */
  *#lowerReal(p: string): Op<FileType | null> {
    for (let i = p.indexOf("/"); i >= 0; i = p.indexOf("/", i + 1)) {
      if ((yield* this.#lowerType(p.slice(0, i))) !== "dir") return null;
    }
    return p === "" ? "dir" : yield* this.#lowerType(p);
  }

  /** What the overlay has at a symlink-free path whose parents are directories. */
  *#lookup(p: string): Op<Found | null> {
    const known = this.#lookupKnown(p);
    if (known !== undefined) return known;
    const lt = yield* this.#lowerType(p);
    return lt === null ? null : { layer: "lower", type: lt };
  }

  /** #lookup without asking the lower: undefined when only the lower can tell. */
  #lookupKnown(p: string): Found | null | undefined {
    const t = this.#index.get(p);
    if (t !== undefined) return t === "dir" ? UPPER_DIR : { layer: "upper", type: t };
    if (this.#hidden(p)) return null;
    const lt = this.#lowerTypes.get(p);
    if (lt === undefined) return undefined;
    return lt === "dir" ? LOWER_DIR : lt === "file" ? LOWER_FILE : { layer: "lower", type: lt };
  }

  *#readlinkLayer(layer: Layer, p: string): Op<string> {
    const svc = this.#svc(layer);
    if (!svc.readlink) throw fsError("ENOSYS", `readlink ${p}: the ${layer} service has no symlinks`);
    return yield* w(svc.readlink(p));
  }

  /** Resolves a path over the merged view, following symlinks (the last one only if asked). */
  *#resolve(op: string, rel: string, segs: string[], followLast: boolean): Op<Resolved> {
    const cur: string[] = [];
    let curPath = "";
    const queue = segs.slice();
    let hops = 0;
    while (queue.length > 0) {
      const name = queue.shift()!;
      if (name === "..") {
        cur.pop();
        curPath = cur.join("/");
        continue;
      }
      const p = curPath === "" ? name : `${curPath}/${name}`;
      let hit = this.#lookupKnown(p);
      if (hit === undefined) hit = yield* this.#lookup(p);
      const last = queue.length === 0;
      if (hit === null) {
        if (last) return { path: p, found: null };
        throw fsError("ENOENT", `${op} ${show(rel)}: no such file or directory`);
      }
      if (hit.type === "symlink" && (!last || followLast)) {
        if (++hops > MAX_HOPS) throw fsError("ELOOP", `${op} ${show(rel)}: too many levels of symbolic links`);
        const target = yield* this.#readlinkLayer(hit.layer, p);
        if (target === "") throw fsError("ENOENT", `${op} ${show(rel)}: empty symbolic link`);
        if (target.startsWith("/")) {
          cur.length = 0;
          curPath = "";
        }
        queue.unshift(...target.split("/").filter((s) => s !== "" && s !== "."));
        continue;
      }
      if (!last && hit.type !== "dir") throw fsError("ENOTDIR", `${op} ${show(rel)}: ${name} is not a directory`);
      cur.push(name);
      curPath = p;
      if (last) return { path: p, found: hit };
    }
    // Ended on a directory reached through "..": the root or a directory on the way.
    const p = curPath;
    return { path: p, found: p === "" ? ROOT : yield* this.#lookup(p) };
  }

  *#resolvePath(op: string, path: string, followLast: boolean): Op<Resolved> {
    if (!this.#indexed) yield* this.#ready();
    const segs = segments(path);
    if (segs.length === 0) return { path: "", found: ROOT };
    return yield* this.#resolve(op, segs.join("/"), segs, followLast);
  }

  /** The merged entries of a directory (a symlink-free path). */
  *#listing(p: string): Op<Map<string, DirEntry>> {
    const out = new Map<string, DirEntry>();
    if (this.#index.get(p) === "dir") {
      for (const e of yield* w(this.upper.readdir(p))) {
        const entry: DirEntry = { name: e.name, type: e.type };
        if (e.ino !== undefined) entry.ino = this.#ino("upper", e.ino);
        out.set(e.name, entry);
      }
    }
    if (!this.#hidden(p) && (yield* this.#lowerType(p)) === "dir") {
      for (const e of yield* w(this.lower.readdir(p))) {
        if (out.has(e.name)) continue;
        const child = join(p, e.name);
        if (this.#tomb.has(child)) continue;
        this.#lowerTypes.set(child, e.type);
        const entry: DirEntry = { name: e.name, type: e.type };
        if (e.ino !== undefined) entry.ino = this.#ino("lower", e.ino);
        out.set(e.name, entry);
      }
    }
    return out;
  }

  // ---- copy-up ----

  /** Makes sure a directory (symlink-free, existing in the overlay) and its parents are in the upper. */
  *#ensureUpperDir(dir: string): Op<void> {
    if (this.#index.has(dir)) return;
    let at = 0;
    for (;;) {
      const i = dir.indexOf("/", at);
      const q = i < 0 ? dir : dir.slice(0, i);
      if (!this.#index.has(q)) yield* this.#copyUp(q, true);
      if (i < 0) return;
      at = i + 1;
    }
  }

  /** Copies a lower entry (symlink-free path, visible in the overlay) into the upper. */
  *#copyUp(p: string, withData: boolean): Op<void> {
    for (;;) {
      if (this.#index.has(p)) return;
      const pending = this.#copying.get(p);
      if (pending === undefined) break;
      yield pending;
    }
    const r = run(this.#copyUpNow(p, withData));
    if (isPromise(r)) {
      this.#copying.set(p, r);
      try {
        yield r;
      } finally {
        this.#copying.delete(p);
      }
    }
  }

  *#copyUpNow(p: string, withData: boolean): Op<void> {
    yield* this.#ensureUpperDir(parentOf(p));
    if (this.#index.has(p)) return;
    const st = yield* w(lstatOf(this.lower, p));
    const ino = this.#ino("lower", st.ino);
    if (st.type === "dir") {
      yield* w(this.upper.mkdir(p));
    } else if (st.type === "symlink") {
      const target = yield* this.#readlinkLayer("lower", p);
      if (!this.upper.symlink) throw fsError("ENOSYS", `copy ${p}: the upper service has no symlinks`);
      yield* w(this.upper.symlink(target, p));
    } else {
      yield* writeAll(this.upper, p, withData ? yield* readAll(this.lower, p) : new Uint8Array(0));
    }
    if (this.upper.setTimes) {
      try {
        yield* w(this.upper.setTimes(p, st.atimeNs, st.mtimeNs, { nofollow: true }));
      } catch {
        // Times are kept on a best-effort basis.
      }
    }
    const ust = yield* w(lstatOf(this.upper, p));
    this.#inoUpper.set(ust.ino, ino);
    this.#index.set(p, st.type);
    if (st.type === "file") for (const h of this.#handles) if (h.layer === "lower" && h.path === p) h.moved = p;
  }

  /** Copies everything under p (symlink-free, visible) into the upper. */
  *#copyUpTree(p: string, type: FileType): Op<void> {
    yield* this.#copyUp(p, true);
    if (type !== "dir") return;
    for (const e of (yield* this.#listing(p)).values()) yield* this.#copyUpTree(join(p, e.name), e.type);
  }

  #bury(p: string): void {
    for (const t of this.#tomb) if (under(t, p)) this.#tomb.delete(t);
    this.#tomb.add(p);
  }

  // ---- FileService ----

  /** Opens a file; a Fid checks the handle's mode, so a read-only handle never writes a layer. */
  open(path: string, flags: OpenFlags): MaybePromise<FileHandle> {
    const h = run(this.#open(path, flags));
    return isPromise(h) ? h.then((x) => new Fid(x, flags, path)) : new Fid(h, flags, path);
  }

  *#open(path: string, flags: OpenFlags): Op<FileHandle> {
    const writes = !!(flags.write || flags.append || flags.truncate);
    const exclusive = !!(flags.create && flags.exclusive);
    const r = yield* this.#resolvePath("open", path, !flags.nofollow && !exclusive);
    const f = r.found;
    let layer: Layer;
    const inner: OpenFlags = { ...flags, write: !!(flags.write || flags.append), nofollow: true };
    if (f !== null) {
      if (exclusive) throw fsError("EEXIST", `open ${show(r.path)}: file exists`);
      if (f.type === "symlink") throw fsError("ELOOP", `open ${show(r.path)}: is a symbolic link`);
      if (f.type === "dir") {
        if (writes) throw fsError("EISDIR", `open ${show(r.path)}: is a directory`);
      } else if (flags.directory) {
        throw fsError("ENOTDIR", `open ${show(r.path)}: not a directory`);
      }
      layer = f.layer;
      if (writes && layer === "lower") {
        yield* this.#copyUp(r.path, !flags.truncate);
        layer = "upper";
      }
      inner.create = false;
      inner.exclusive = false;
    } else {
      if (!flags.create) throw fsError("ENOENT", `open ${show(r.path)}: no such file or directory`);
      if (flags.directory) throw fsError("EINVAL", `open ${show(r.path)}: cannot create a directory with open`);
      yield* this.#ensureUpperDir(parentOf(r.path));
      layer = "upper";
    }
    let h = this.#svc(layer).open(r.path, inner);
    if (isPromise(h)) h = (yield h) as FileHandle;
    if (f === null) this.#index.set(r.path, "file");
    const handle = new CowHandle(this.#forHandles, h, layer, r.path, flags);
    if (f === null || f.type !== "dir") this.#handles.add(handle);
    return handle;
  }

  /** Used by handles: moves one to the upper copy, or reopens it after commit/reset. */
  *#refresh(h: CowHandle): Op<void> {
    const reopen: OpenFlags = { read: h.flags.read, write: !!(h.flags.write || h.flags.append), append: h.flags.append };
    const position = h.inner.position;
    let next: FileHandle;
    let layer: Layer;
    if (h.moved !== null) {
      next = yield* w(this.upper.open(h.moved, { ...reopen, nofollow: true }));
      layer = "upper";
      h.path = h.moved;
    } else {
      let opened: FileHandle;
      try {
        opened = yield* this.#open(h.path, reopen);
      } catch (e) {
        if (missing(e)) throw fsError("EBADF", `${show(h.path)}: the file was discarded by reset`);
        throw e;
      }
      const c = opened as CowHandle;
      this.#handles.delete(c);
      next = c.inner;
      layer = c.layer;
      h.path = c.path;
    }
    const old = h.inner;
    h.inner = next;
    h.layer = layer;
    h.moved = null;
    h.generation = this.#generation;
    next.position = position;
    try {
      const closing = old.close();
      if (isPromise(closing)) closing.catch(() => {});
    } catch {
      // The old handle is done with either way.
    }
  }

  /** Used by handles: copies a lower file up so its times can change. */
  *#copyUpFor(h: CowHandle): Op<void> {
    const f = yield* this.#lookup(h.path);
    if (f === null || f.layer !== "lower") throw fsError("ENOENT", `setTimes ${show(h.path)}: the file was removed`);
    yield* this.#copyUp(h.path, true);
  }

  stat(path: string): MaybePromise<Stat> {
    return run(this.#stat("stat", path, true));
  }

  lstat(path: string): MaybePromise<Stat> {
    return run(this.#stat("lstat", path, false));
  }

  *#stat(op: string, path: string, follow: boolean): Op<Stat> {
    const r = yield* this.#resolvePath(op, path, follow);
    if (r.found === null) throw fsError("ENOENT", `${op} ${show(r.path)}: no such file or directory`);
    let st = lstatOf(this.#svc(r.found.layer), r.path);
    if (isPromise(st)) st = (yield st) as Stat;
    return this.#mapStat(r.found.layer, st);
  }

  readdir(path: string): MaybePromise<DirEntry[]> {
    return run(this.#readdir(path));
  }

  *#readdir(path: string): Op<DirEntry[]> {
    const r = yield* this.#resolvePath("readdir", path, true);
    if (r.found === null) throw fsError("ENOENT", `readdir ${show(r.path)}: no such file or directory`);
    if (r.found.type !== "dir") throw fsError("ENOTDIR", `readdir ${show(r.path)}: not a directory`);
    return [...(yield* this.#listing(r.path)).values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  mkdir(path: string): MaybePromise<void> {
    return run(this.#mkdir(path));
  }

  *#mkdir(path: string): Op<void> {
    const r = yield* this.#resolvePath("mkdir", path, false);
    if (r.found !== null) throw fsError("EEXIST", `mkdir ${show(r.path)}: file exists`);
    yield* this.#ensureUpperDir(parentOf(r.path));
    yield* w(this.upper.mkdir(r.path));
    this.#index.set(r.path, "dir");
  }

  remove(path: string): MaybePromise<void> {
    return run(this.#remove(path));
  }

  *#remove(path: string): Op<void> {
    const r = yield* this.#resolvePath("remove", path, false);
    const p = r.path;
    if (p === "") throw fsError("EBUSY", "remove /: the root cannot be removed");
    if (r.found === null) throw fsError("ENOENT", `remove ${p}: no such file or directory`);
    if (r.found.type === "dir" && (yield* this.#listing(p)).size > 0) {
      throw fsError("ENOTEMPTY", `remove ${p}: directory not empty`);
    }
    const inLower = !this.#hidden(p) && (yield* this.#lowerType(p)) !== null;
    if (this.#index.has(p)) {
      yield* w(this.upper.remove(p));
      this.#index.delete(p);
    }
    if (inLower) this.#bury(p);
  }

  rename(from: string, to: string): MaybePromise<void> {
    return run(this.#rename(from, to));
  }

  *#rename(from: string, to: string): Op<void> {
    const r1 = yield* this.#resolvePath("rename", from, false);
    const r2 = yield* this.#resolvePath("rename", to, false);
    const p1 = r1.path;
    const p2 = r2.path;
    if (p1 === "" || p2 === "") throw fsError("EBUSY", `rename ${show(p1)} to ${show(p2)}: the root cannot be moved or replaced`);
    const f1 = r1.found;
    if (f1 === null) throw fsError("ENOENT", `rename ${p1}: no such file or directory`);
    if (p1 === p2) return;
    if (f1.type === "dir" && under(p2, p1)) throw fsError("EINVAL", `rename ${p1} to ${p2}: a directory cannot move inside itself`);
    const f2 = r2.found;
    if (f2 !== null) {
      if (f1.type === "dir" && f2.type !== "dir") throw fsError("ENOTDIR", `rename ${p1} to ${p2}: not a directory`);
      if (f1.type !== "dir" && f2.type === "dir") throw fsError("EISDIR", `rename ${p1} to ${p2}: is a directory`);
      if (f2.type === "dir" && (yield* this.#listing(p2)).size > 0) throw fsError("ENOTEMPTY", `rename ${p1} to ${p2}: directory not empty`);
    }
    const lower1 = !this.#hidden(p1) && (yield* this.#lowerType(p1)) !== null;
    const lower2 = f2 !== null && !this.#hidden(p2) && (yield* this.#lowerType(p2)) !== null;
    yield* this.#copyUpTree(p1, f1.type);
    yield* this.#ensureUpperDir(parentOf(p2));
    yield* w(this.upper.rename(p1, p2));
    const moved: [string, FileType][] = [];
    for (const [p, t] of this.#index) {
      if (p === p2 || under(p, p2)) this.#index.delete(p);
      if (p === p1 || under(p, p1)) moved.push([p, t]);
    }
    for (const [p] of moved) this.#index.delete(p);
    for (const [p, t] of moved) this.#index.set(p2 + p.slice(p1.length), t);
    if (lower2) this.#bury(p2);
    if (lower1) this.#bury(p1);
    for (const h of this.#handles) {
      if (h.path === p1 || under(h.path, p1)) h.path = p2 + h.path.slice(p1.length);
      if (h.moved !== null && (h.moved === p1 || under(h.moved, p1))) h.moved = p2 + h.moved.slice(p1.length);
    }
  }

  symlink(target: string, path: string): MaybePromise<void> {
    return run(this.#symlink(target, path));
  }

  *#symlink(target: string, path: string): Op<void> {
    if (target === "" || target.includes("\0")) throw fsError("EINVAL", `symlink ${path}: bad target ${JSON.stringify(target)}`);
    const r = yield* this.#resolvePath("symlink", path, false);
    if (r.found !== null) throw fsError("EEXIST", `symlink ${show(r.path)}: file exists`);
    if (!this.upper.symlink) throw fsError("ENOSYS", `symlink ${r.path}: the upper service has no symlinks`);
    yield* this.#ensureUpperDir(parentOf(r.path));
    yield* w(this.upper.symlink(target, r.path));
    this.#index.set(r.path, "symlink");
  }

  readlink(path: string): MaybePromise<string> {
    return run(this.#readlink(path));
  }

  *#readlink(path: string): Op<string> {
    const r = yield* this.#resolvePath("readlink", path, false);
    if (r.found === null) throw fsError("ENOENT", `readlink ${show(r.path)}: no such file or directory`);
    if (r.found.type !== "symlink") throw fsError("EINVAL", `readlink ${show(r.path)}: not a symbolic link`);
    return yield* this.#readlinkLayer(r.found.layer, r.path);
  }

  link(existing: string, path: string): MaybePromise<void> {
    return run(this.#link(existing, path));
  }

  *#link(existing: string, path: string): Op<void> {
    const r1 = yield* this.#resolvePath("link", existing, false);
    if (r1.found === null) throw fsError("ENOENT", `link ${show(r1.path)}: no such file or directory`);
    if (r1.found.type === "dir") throw fsError("EPERM", `link ${show(r1.path)}: cannot hard-link a directory`);
    const r2 = yield* this.#resolvePath("link", path, false);
    if (r2.found !== null) throw fsError("EEXIST", `link ${show(r2.path)}: file exists`);
    if (!this.upper.link) throw fsError("ENOSYS", `link ${r2.path}: the upper service has no hard links`);
    yield* this.#copyUp(r1.path, true);
    yield* this.#ensureUpperDir(parentOf(r2.path));
    yield* w(this.upper.link(r1.path, r2.path));
    this.#index.set(r2.path, r1.found.type);
  }

  setTimes(path: string, atimeNs: bigint | undefined, mtimeNs: bigint | undefined, opts: { nofollow?: boolean } = {}): MaybePromise<void> {
    return run(this.#setTimes(path, atimeNs, mtimeNs, opts));
  }

  *#setTimes(path: string, atimeNs: bigint | undefined, mtimeNs: bigint | undefined, opts: { nofollow?: boolean }): Op<void> {
    const r = yield* this.#resolvePath("setTimes", path, !opts.nofollow);
    if (r.found === null) throw fsError("ENOENT", `setTimes ${show(r.path)}: no such file or directory`);
    if (!this.upper.setTimes) throw fsError("ENOSYS", `setTimes ${r.path}: the upper service cannot set times`);
    if (r.path !== "") yield* this.#copyUp(r.path, true);
    yield* w(this.upper.setTimes(r.path, atimeNs, mtimeNs, { nofollow: true }));
  }

  // ---- changes ----

  /** What the overlay changed, compared with the lower, sorted by path. */
  diff(): MaybePromise<CowDiffEntry[]> {
    return run(this.#diff());
  }

  *#diff(): Op<CowDiffEntry[]> {
    yield* this.#ready();
    const candidates = new Set<string>();
    for (const p of this.#index.keys()) if (p !== "") candidates.add(p);
    const collect = function* (this: CowService, p: string): Op<void> {
      const t = yield* this.#lowerReal(p);
      if (t === null) return;
      candidates.add(p);
      if (t !== "dir") return;
      for (const e of yield* w(this.lower.readdir(p))) {
        const child = join(p, e.name);
        this.#lowerTypes.set(child, e.type);
        yield* collect.call(this, child);
      }
    };
    for (const t of this.#tomb) yield* collect.call(this, t);
    const out: CowDiffEntry[] = [];
    for (const p of [...candidates].sort()) {
      const upper = this.#index.get(p);
      const lower = yield* this.#lowerReal(p);
      const merged: FileType | null = upper ?? (this.#hidden(p) ? null : lower);
      if (merged !== null && lower === null) out.push({ path: p, change: "added", type: merged });
      else if (merged === null && lower !== null) out.push({ path: p, change: "deleted", type: lower });
      else if (merged !== null && upper !== undefined && !(yield* this.#same(p, upper, lower!))) {
        out.push({ path: p, change: "modified", type: merged });
      }
    }
    return out;
  }

  /** Whether the upper's entry at p is the same as the lower's. */
  *#same(p: string, upperType: FileType, lowerType: FileType): Op<boolean> {
    if (upperType !== lowerType) return false;
    if (upperType === "dir") return true;
    if (upperType === "symlink") {
      return (yield* this.#readlinkLayer("upper", p)) === (yield* this.#readlinkLayer("lower", p));
    }
    const [us, ls] = [yield* w(lstatOf(this.upper, p)), yield* w(lstatOf(this.lower, p))];
    if (us.size !== ls.size) return false;
    return sameBytes(yield* readAll(this.upper, p), yield* readAll(this.lower, p));
  }

  /** Applies every change to the lower, then resets. On failure, nothing in the cow is lost. */
  commit(): MaybePromise<void> {
    return run(this.#commit());
  }

  *#commit(): Op<void> {
    const changes = yield* this.#diff();
    const lower = this.lower;
    // 1. Take away what goes or changes type, deepest first.
    for (let i = changes.length - 1; i >= 0; i--) {
      const c = changes[i]!;
      if (c.change === "added") continue;
      if (c.change === "modified") {
        const was = yield* this.#lowerReal(c.path);
        if (was === c.type && was !== "symlink") continue;
      }
      try {
        yield* w(lower.remove(c.path));
      } catch (e) {
        if (!missing(e)) throw e;
      }
    }
    // 2. Create and overwrite, shallowest first.
    for (const c of changes) {
      if (c.change === "deleted") continue;
      const p = c.path;
      if (c.type === "dir") {
        try {
          yield* w(lower.mkdir(p));
        } catch (e) {
          if (!(e instanceof FsError && e.code === "EEXIST" && (yield* w(lstatOf(lower, p))).type === "dir")) throw e;
        }
      } else if (c.type === "symlink") {
        if (!lower.symlink) throw fsError("ENOSYS", `commit ${p}: the lower service has no symlinks`);
        yield* w(lower.symlink(yield* this.#readlinkLayer("upper", p), p));
      } else {
        yield* writeAll(lower, p, yield* readAll(this.upper, p));
      }
      const ust = yield* w(lstatOf(this.upper, p));
      if (lower.setTimes) {
        try {
          yield* w(lower.setTimes(p, ust.atimeNs, ust.mtimeNs, { nofollow: true }));
        } catch {
          // Times are kept on a best-effort basis.
        }
      }
      const lst = yield* w(lstatOf(lower, p));
      this.#inoLower.set(lst.ino, this.#ino("upper", ust.ino));
    }
    yield* this.#reset();
  }

  /** Discards every change: the overlay shows the lower again. */
  reset(): MaybePromise<void> {
    return run(this.#reset());
  }

  *#reset(): Op<void> {
    yield* this.#ready();
    const paths = [...this.#index.keys()].filter((p) => p !== "").sort().reverse();
    for (const p of paths) {
      try {
        yield* w(this.upper.remove(p));
      } catch (e) {
        if (!missing(e)) throw e;
      }
      this.#index.delete(p);
    }
    this.#tomb.clear();
    this.#lowerTypes.clear();
    this.#inoUpper.clear();
    this.#generation++;
    for (const h of this.#handles) h.moved = null;
  }
}

class CowHandle implements FileHandle {
  inner: FileHandle;
  layer: Layer;
  path: string;
  readonly flags: OpenFlags;
  /** Set when the lower file was copied up: the upper path to move to on next use. */
  moved: string | null = null;
  generation: number;
  #cow: CowLink;
  #closed = false;

  constructor(cow: CowLink, inner: FileHandle, layer: Layer, path: string, flags: OpenFlags) {
    this.#cow = cow;
    this.inner = inner;
    this.layer = layer;
    this.path = path;
    this.flags = flags;
    this.generation = cow.generation();
  }

  get position(): number {
    return this.inner.position;
  }

  set position(v: number) {
    this.inner.position = v;
  }

  /** The inner handle, after moving it if its file moved; sync unless a layer is async. */
  #current(op: string): MaybePromise<FileHandle> {
    if (this.#closed) throw fsError("EBADF", `${op} ${show(this.path)}: handle is closed`);
    if (this.moved === null && (this.layer === "lower" || this.generation === this.#cow.generation())) return this.inner;
    return run(this.#refreshed());
  }

  *#refreshed(): Op<FileHandle> {
    yield* this.#cow.refresh(this);
    return this.inner;
  }

  #with<T>(op: string, fn: (h: FileHandle) => MaybePromise<T>): MaybePromise<T> {
    const h = this.#current(op);
    return isPromise(h) ? h.then(fn) : fn(h);
  }

  read(length: number, offset?: number): MaybePromise<Uint8Array> {
    return this.#with("read", (h) => h.read(length, offset));
  }

  write(data: Uint8Array, offset?: number): MaybePromise<number> {
    return this.#with("write", (h) => h.write(data, offset));
  }

  truncate(size: number): MaybePromise<void> {
    return this.#with("truncate", (h) => h.truncate(size));
  }

  stat(): MaybePromise<Stat> {
    return this.#with("stat", (h) => {
      const st = h.stat();
      return isPromise(st) ? st.then((s) => this.#cow.mapStat(this.layer, s)) : this.#cow.mapStat(this.layer, st);
    });
  }

  setTimes(atimeNs: bigint | undefined, mtimeNs: bigint | undefined): MaybePromise<void> {
    if (this.#closed) throw fsError("EBADF", `setTimes ${show(this.path)}: handle is closed`);
    const cow = this.#cow;
    const self = this;
    return run(
      (function* (): Op<void> {
        if (self.layer === "lower" && self.moved === null) yield* cow.copyUpFor(self);
        const h = yield* w(self.#current("setTimes"));
        if (!h.setTimes) throw fsError("ENOSYS", `setTimes ${show(self.path)}: not supported by the layer`);
        yield* w(h.setTimes(atimeNs, mtimeNs));
      })(),
    );
  }

  sync(): MaybePromise<void> {
    return this.#with("sync", (h) => h.sync());
  }

  close(): MaybePromise<void> {
    if (this.#closed) throw fsError("EBADF", `close ${show(this.path)}: handle is closed`);
    this.#closed = true;
    this.#cow.handles.delete(this);
    return this.inner.close();
  }
}
