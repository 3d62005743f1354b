// The Namespace: Plan 9 mount and bind over FileServices. A mount table maps normalised mount
// points to union members; a lookup takes the longest mount point that is a segment-wise prefix,
// then the first member that has the name; creates go to the member marked `create`. Access is
// checked here, once, whatever the service would allow. The namespace is itself a FileService, so
// a namespace can be mounted into another.
import { fsError, isFsError } from "./errors.ts";
import { segments } from "./path.ts";
import type { DirEntry, FileHandle, FileService, MaybePromise, OpenFlags, Stat, WatchEvent } from "./types.ts";
import { andThen, isPromise } from "./types.ts";

/**
 * Per-mount access: read-only, read-write, sign-only (only request/reply files, so a guest can ask
 * for a signature but never read a stored key), or a Budget (read-write until it is spent).
 */
export type Access = "ro" | "rw" | "sign" | Budget;

export interface MountOptions {
  access?: Access;
  /** Where the new member goes in an existing union at that path (Plan 9 MBEFORE/MAFTER/MREPL). */
  mode?: "before" | "after" | "replace";
  /** Creates in the union go to this member. */
  create?: boolean;
}

interface Member {
  readonly service: FileService;
  /** Path inside the service that this member shows (non-empty for binds of subtrees). */
  readonly root: string;
  readonly access: Access;
  readonly create: boolean;
  readonly dev: number;
}

export interface BudgetLimits { bytes?: number; calls?: number; tokens?: number }
type BudgetKind = keyof BudgetLimits;

/** A spendable allowance shared by every mount it is given to; spending past it is EDQUOT. */
export class Budget {
  readonly limits: Readonly<BudgetLimits>;
  readonly used = { bytes: 0, calls: 0, tokens: 0 };
  constructor(limits: BudgetLimits) {
    this.limits = { ...limits };
  }
  remaining(kind: BudgetKind): number {
    const limit = this.limits[kind];
    return limit === undefined ? Infinity : Math.max(0, limit - this.used[kind]);
  }
  /** Spends `n`, or throws EDQUOT and spends nothing. */
  charge(kind: BudgetKind, n: number): void {
    if (n > this.remaining(kind)) throw fsError("EDQUOT", `${kind} budget exhausted (${this.used[kind]} of ${this.limits[kind]} used)`);
    this.used[kind] += n;
  }
}

const devs = new WeakMap<FileService, number>();
let nextDev = 1;
function devOf(s: FileService): number {
  let d = devs.get(s);
  if (d === undefined) devs.set(s, (d = nextDev++));
  return d;
}

const SYNTHETIC_DIR: Stat = { type: "dir", size: 0, ino: 0, nlink: 2, atimeNs: 0n, mtimeNs: 0n, ctimeNs: 0n, dev: 0 };

interface Resolved {
  /** Absolute normalised path. */
  abs: string;
  members: readonly Member[];
  /** Path below the mount point, relative. */
  rest: string;
}

const inside = (m: Member, rest: string): string => (m.root === "" ? rest : rest === "" ? m.root : `${m.root}/${rest}`);

export class Namespace implements FileService {
  #mounts: Map<string, readonly Member[]>;
  /** False after fork() until the first change: the table is shared and copied on write. */
  #owned = true;
  /** Mount points' ancestors → the names below them, so intermediate directories exist. */
  #children: Map<string, Set<string>> | null = null;
  #cache = new Map<string, Resolved>();

  constructor() {
    this.#mounts = new Map();
  }

  /** A child namespace in O(1): it shares the mount table until either side changes it. */
  fork(): Namespace {
    const child = new Namespace();
    child.#mounts = this.#mounts;
    child.#children = this.#children;
    child.#owned = false;
    this.#owned = false;
    return child;
  }

  mount(path: string, service: FileService, opts: MountOptions = {}): this {
    const member: Member = { service, root: "", access: opts.access ?? "rw", create: opts.create ?? false, dev: devOf(service) };
    return this.#add(path, [member], opts.mode ?? "replace");
  }

  /** Makes what is at `existing` also visible at `path`. Access can be narrowed, never widened. */
  bind(existing: string, path: string, opts: MountOptions = {}): this {
    const r = this.#resolve(existing);
    if (!r.members.length) throw fsError("ENOENT", `bind: ${r.abs}: nothing mounted there`);
    const members = r.members.map((m): Member => ({
      ...m,
      root: inside(m, r.rest),
      access: m.access === "rw" && opts.access ? opts.access : m.access,
      create: opts.create ?? m.create,
    }));
    return this.#add(path, members, opts.mode ?? "replace");
  }

  /** Removes everything mounted at `path`, or only `service` from its union. */
  unmount(path: string, service?: FileService): this {
    const at = "/" + segments(path).join("/");
    const members = this.#mounts.get(at);
    if (!members) throw fsError("EINVAL", `unmount: ${at}: not a mount point`);
    const left = service ? members.filter((m) => m.service !== service) : [];
    if (left.length === members.length) throw fsError("EINVAL", `unmount: ${at}: service not mounted there`);
    this.#table().set(at, left);
    if (!left.length) this.#mounts.delete(at);
    return this;
  }

  /** The mount points, for display. */
  mounts(): Array<{ path: string; members: number; access: string[] }> {
    return [...this.#mounts].map(([path, ms]) => ({
      path, members: ms.length, access: ms.map((m) => (typeof m.access === "string" ? m.access : "budget")),
    }));
  }

  #table(): Map<string, readonly Member[]> {
    if (!this.#owned) {
      this.#mounts = new Map(this.#mounts);
      this.#owned = true;
    }
    this.#children = null;
    this.#cache = new Map();
    return this.#mounts;
  }

  #add(path: string, members: Member[], mode: "before" | "after" | "replace"): this {
    const at = "/" + segments(path).join("/");
    const old = this.#mounts.get(at) ?? [];
    const next = mode === "replace" ? members : mode === "before" ? [...members, ...old] : [...old, ...members];
    this.#table().set(at, next);
    return this;
  }

  #childIndex(): Map<string, Set<string>> {
    if (this.#children) return this.#children;
    const index = new Map<string, Set<string>>();
    for (const at of this.#mounts.keys()) {
      const segs = at.split("/").filter(Boolean);
      for (let i = 0; i < segs.length; i++) {
        const dir = "/" + segs.slice(0, i).join("/");
        let names = index.get(dir);
        if (!names) index.set(dir, (names = new Set()));
        names.add(segs[i]!);
      }
    }
    return (this.#children = index);
  }

  #resolve(path: string): Resolved {
    // Agents touch the same paths again and again; resolutions are cached until the table changes.
    let r = this.#cache.get(path);
    if (!r) {
      if (this.#cache.size >= 4096) this.#cache.clear();
      this.#cache.set(path, (r = this.#lookup(path)));
    }
    return r;
  }

  #lookup(path: string): Resolved {
    const segs = segments(path);
    const abs = "/" + segs.join("/");
    let at = abs;
    for (let i = segs.length; ; i--) {
      const members = this.#mounts.get(at);
      if (members) return { abs, members, rest: segs.slice(i).join("/") };
      if (i === 0) return { abs, members: [], rest: segs.join("/") };
      at = i === 1 ? "/" : at.slice(0, at.lastIndexOf("/"));
    }
  }

  /**
   * Runs `op` on the first member that has the path (ENOENT falls through to the next). Where no
   * member has it but mount points lie below it, `synthetic` answers for the intermediate directory.
   */
  #first<T>(r: Resolved, op: (m: Member, path: string) => MaybePromise<T>, synthetic?: () => T): MaybePromise<T> {
    const fallback = (e: unknown): T => {
      if (synthetic && isFsError(e, "ENOENT") && this.#childIndex().has(r.abs)) return synthetic();
      throw e;
    };
    const tryFrom = (i: number): MaybePromise<T> => {
      const m = r.members[i];
      if (!m) return fallback(fsError("ENOENT", `${r.abs}: no such file or directory`));
      const next = (e: unknown): MaybePromise<T> => (isFsError(e, "ENOENT") ? tryFrom(i + 1) : fallback(e));
      let v: MaybePromise<T>;
      try {
        v = op(m, inside(m, r.rest));
      } catch (e) {
        return next(e);
      }
      return isPromise(v) ? v.catch(next) : v;
    };
    return tryFrom(0);
  }

  /** The member that receives creates at a path, with write access checked. */
  #creator(r: Resolved, op: string): Member {
    if (!r.members.length) throw fsError("EACCES", `${op} ${r.abs}: no service mounted there`);
    if (r.rest === "") throw fsError("EEXIST", `${op} ${r.abs}: is a mount point`);
    const m = r.members.length === 1 ? r.members[0]! : r.members.find((x) => x.create);
    if (!m) throw fsError("EACCES", `${op} ${r.abs}: no member of this union accepts creates`);
    writable(m, r.abs, op);
    return m;
  }

  /** A path that names a mount point or an intermediate directory cannot be removed or renamed. */
  #movable(r: Resolved, op: string): Resolved {
    if (r.rest === "" || this.#childIndex().has(r.abs)) throw fsError("EBUSY", `${op} ${r.abs}: is a mount point`);
    return r;
  }

  open(path: string, flags: OpenFlags): MaybePromise<FileHandle> {
    const r = this.#resolve(path);
    const mutating = !!(flags.write || flags.create || flags.truncate || flags.append);
    const openIn = (m: Member, p: string, f: OpenFlags): MaybePromise<FileHandle> => {
      if (m.access === "sign") {
        if (!f.read || !f.write || f.truncate || f.create) throw fsError("EACCES", `${r.abs}: sign-only mount: open request/reply files read-write`);
        return andThen(m.service.open(p, f), (h) => signOnly(h, r.abs));
      }
      if (mutating) writable(m, r.abs, "open");
      else charge(m);
      const h = m.service.open(p, f);
      return m.access instanceof Budget ? andThen(h, (x) => budgeted(x, m.access as Budget)) : h;
    };
    const synthetic = (): FileHandle => {
      if (mutating) throw fsError("EISDIR", `${r.abs}: is a directory`);
      return dirHandle(SYNTHETIC_DIR);
    };
    if (r.members.length <= 1 || !flags.create) return this.#first(r, (m, p) => openIn(m, p, flags), synthetic);
    // A union create: open an existing name where it is, else create in the create member.
    const create = (e: unknown): MaybePromise<FileHandle> => {
      if (!isFsError(e, "ENOENT")) throw e;
      const m = this.#creator(r, "open");
      return openIn(m, inside(m, r.rest), flags);
    };
    if (flags.exclusive) {
      return andThen(this.#exists(r), (yes) => {
        if (yes) throw fsError("EEXIST", `${r.abs}: exists`);
        return create(fsError("ENOENT"));
      });
    }
    try {
      const existing = this.#first(r, (m, p) => openIn(m, p, { ...flags, create: false }));
      return isPromise(existing) ? existing.catch(create) : existing;
    } catch (e) {
      return create(e);
    }
  }

  #exists(r: Resolved): MaybePromise<boolean> {
    try {
      const v = this.#first(r, (m, p) => (m.service.lstat ?? m.service.stat).call(m.service, p));
      return isPromise(v) ? v.then(() => true, () => false) : true;
    } catch {
      return false;
    }
  }

  stat(path: string): MaybePromise<Stat> {
    const r = this.#resolve(path);
    return this.#first(r, (m, p) => { charge(m); return andThen(m.service.stat(p), (s) => ({ ...s, dev: m.dev })); }, () => SYNTHETIC_DIR);
  }

  lstat(path: string): MaybePromise<Stat> {
    const r = this.#resolve(path);
    return this.#first(r, (m, p) => {
      charge(m);
      const s = m.service.lstat ? m.service.lstat(p) : m.service.stat(p);
      return andThen(s, (st) => ({ ...st, dev: m.dev }));
    }, () => SYNTHETIC_DIR);
  }

  readdir(path: string): MaybePromise<DirEntry[]> {
    const r = this.#resolve(path);
    const abs = r.abs;
    const below = this.#childIndex().get(abs);
    const lists: MaybePromise<DirEntry[] | null>[] = r.members.map((m) => {
      try {
        charge(m);
        const v = m.service.readdir(inside(m, r.rest));
        return isPromise(v) ? v.catch((e: unknown) => missing(e)) : v;
      } catch (e) {
        return missing(e);
      }
    });
    const merge = (all: (DirEntry[] | null)[]): DirEntry[] => {
      if (all.every((l) => l === null) && !below) throw fsError("ENOENT", `${abs}: no such directory`);
      if (all.length === 1 && all[0] && !below) return all[0];
      const seen = new Map<string, DirEntry>();
      for (const name of below ?? []) seen.set(name, { name, type: "dir" });
      for (const list of all) for (const e of list ?? []) if (!seen.has(e.name)) seen.set(e.name, e);
      return [...seen.values()];
    };
    return lists.some(isPromise) ? Promise.all(lists).then(merge) : merge(lists as (DirEntry[] | null)[]);
  }

  mkdir(path: string): MaybePromise<void> {
    const r = this.#resolve(path);
    if (this.#childIndex().has(r.abs)) throw fsError("EEXIST", `mkdir ${r.abs}: exists`);
    const m = this.#creator(r, "mkdir");
    return m.service.mkdir(inside(m, r.rest));
  }

  remove(path: string): MaybePromise<void> {
    const r = this.#movable(this.#resolve(path), "remove");
    return this.#first(r, (m, p) => {
      writable(m, r.abs, "remove");
      return m.service.remove(p);
    });
  }

  rename(from: string, to: string): MaybePromise<void> {
    const src = this.#movable(this.#resolve(from), "rename");
    const dst = this.#movable(this.#resolve(to), "rename");
    return this.#first(src, (m, p) => {
      writable(m, src.abs, "rename");
      const target = dst.members.find((x) => x.service === m.service);
      if (!target) throw fsError("EXDEV", `rename ${src.abs} → ${dst.abs}: not on the same service`);
      writable(target, dst.abs, "rename");
      return m.service.rename(p, inside(target, dst.rest));
    });
  }

  symlink(target: string, path: string): MaybePromise<void> {
    const r = this.#resolve(path);
    const m = this.#creator(r, "symlink");
    if (!m.service.symlink) throw fsError("ENOSYS", `${r.abs}: this service has no symlinks`);
    return m.service.symlink(target, inside(m, r.rest));
  }

  readlink(path: string): MaybePromise<string> {
    return this.#first(this.#resolve(path), (m, p) => {
      charge(m);
      if (!m.service.readlink) throw fsError("EINVAL", `${path}: not a symbolic link`);
      return m.service.readlink(p);
    });
  }

  link(existing: string, path: string): MaybePromise<void> {
    const src = this.#resolve(existing);
    const dst = this.#resolve(path);
    return this.#first(src, (m, p) => {
      const target = dst.members.find((x) => x.service === m.service);
      if (!target) throw fsError("EXDEV", `link ${src.abs} → ${dst.abs}: not on the same service`);
      if (dst.rest === "") throw fsError("EEXIST", `${dst.abs}: is a mount point`);
      writable(target, dst.abs, "link");
      if (!m.service.link) throw fsError("ENOSYS", `${dst.abs}: this service has no hard links`);
      return m.service.link(p, inside(target, dst.rest));
    });
  }

  setTimes(path: string, atimeNs: bigint | undefined, mtimeNs: bigint | undefined, opts?: { nofollow?: boolean }): MaybePromise<void> {
    return this.#first(this.#resolve(path), (m, p) => {
      writable(m, path, "setTimes");
      if (!m.service.setTimes) throw fsError("ENOSYS", `${path}: this service keeps no times`);
      return m.service.setTimes(p, atimeNs, mtimeNs, opts);
    });
  }

  watch(path: string): AsyncIterable<WatchEvent> {
    const r = this.#resolve(path);
    const m = r.members[0];
    if (!m?.service.watch) throw fsError("ENOSYS", `${path}: this service cannot be watched`);
    return m.service.watch(inside(m, r.rest));
  }
}

function missing(e: unknown): null {
  if (isFsError(e, "ENOENT")) return null;
  throw e;
}

function charge(m: Member): void {
  if (m.access instanceof Budget) m.access.charge("calls", 1);
}

function writable(m: Member, path: string, op: string): void {
  if (m.access === "ro") throw fsError("EROFS", `${op} ${path}: read-only mount`);
  if (m.access === "sign") throw fsError("EACCES", `${op} ${path}: sign-only mount`);
  charge(m);
}

/** A handle on a directory that holds no service handle (intermediate directories). */
function dirHandle(st: Stat): FileHandle {
  return {
    type: "dir", position: 0,
    read: () => { throw fsError("EISDIR", "is a directory"); },
    write: () => { throw fsError("EISDIR", "is a directory"); },
    stat: () => st,
    truncate: () => { throw fsError("EISDIR", "is a directory"); },
    sync: () => {}, close: () => {},
  };
}

/** Wraps a handle so that it can only answer what it was asked: no read before a write. */
function signOnly(h: FileHandle, path: string): FileHandle {
  if (!h.transactional) {
    void h.close();
    throw fsError("EACCES", `${path}: sign-only mount: only request/reply files can be opened`);
  }
  let asked = false;
  return {
    transactional: true,
    get position() { return h.position; },
    set position(p: number) { h.position = p; },
    read: (n, off) => {
      if (!asked) throw fsError("EACCES", `${path}: sign-only: write a request before reading`);
      return h.read(n, off);
    },
    write: (d, off) => { asked = true; return h.write(d, off); },
    stat: () => h.stat(),
    truncate: () => { throw fsError("EACCES", `${path}: sign-only mount`); },
    sync: () => h.sync(),
    close: () => h.close(),
  };
}

/** Wraps a handle so every byte read or written is charged to a budget (a write never half-lands). */
function budgeted(h: FileHandle, b: Budget): FileHandle {
  return {
    type: h.type, transactional: h.transactional,
    get position() { return h.position; },
    set position(p: number) { h.position = p; },
    read: (n, off) => {
      const allowed = Math.min(n, b.remaining("bytes"));
      if (allowed === 0 && n > 0) b.charge("bytes", n);
      return andThen(h.read(allowed, off), (d) => { b.charge("bytes", d.length); return d; });
    },
    write: (d, off) => { b.charge("bytes", d.length); return h.write(d, off); },
    stat: () => h.stat(),
    truncate: (s) => h.truncate(s),
    sync: () => h.sync(),
    close: () => h.close(),
    setTimes: h.setTimes ? (a, m) => h.setTimes!(a, m) : undefined,
  };
}
