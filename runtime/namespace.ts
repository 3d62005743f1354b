// The Namespace: Plan 9 mount and bind over FileServices. A mount table maps normalised mount
// points to union members; a lookup takes the longest mount point that is a segment-wise prefix,
// then the first member that has the name; creates go to the member marked `create`. Access is
// checked here, once, whatever the service would allow. The namespace is itself a FileService, so
// a namespace can be mounted into another.
import { fsError, isFsError } from "./errors.ts";
import { Fid, closeQuietly, writable as writes } from "./handle.ts";
import { segments } from "./path.ts";
import type { DirEntry, FileHandle, FileService, MaybePromise, OpenFlags, Stat, WatchEvent } from "./types.ts";
import { andThen, isPromise, lstatOf } from "./types.ts";

/**
 * Per-mount access: read-only, read-write, sign-only (only request/reply files and files the service
 * marks public, so a guest can ask for a signature but never read a stored key), or a Budget
 * (read-write until it is spent).
 */
export type Access = "ro" | "rw" | "sign" | Budget;

type Mode = "rw" | "ro" | "sign";
/** Strictness, weakest first: a bind's access is the stricter of the two, always. */
const RANK: Record<Mode, number> = { rw: 0, ro: 1, sign: 2 };

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
  /**
   * What the member allows. Sign-only is stricter than read-only: it reads only public files, and
   * its request/reply writes store nothing, so a read-only bind over it stays sign-only.
   */
  readonly mode: Mode;
  /** Every budget this member spends (a budgeted bind over a budgeted mount spends both). */
  readonly budgets: readonly Budget[];
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
    const member: Member = { service, root: "", ...narrow({ mode: "rw", budgets: [] }, opts.access), create: opts.create ?? false, dev: devOf(service) };
    return this.#add(path, [member], opts.mode ?? "replace");
  }

  /** Makes what is at `existing` also visible at `path`. Access can be narrowed, never widened. */
  bind(existing: string, path: string, opts: MountOptions = {}): this {
    const r = this.#resolve(existing);
    if (!r.members.length) throw fsError("ENOENT", `bind: ${r.abs}: nothing mounted there`);
    const members = r.members.map((m): Member => ({
      ...m,
      root: inside(m, r.rest),
      ...narrow(m, opts.access),
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
      path, members: ms.length, access: ms.map((m) => (m.budgets.length ? (m.mode === "rw" ? "budget" : `${m.mode}+budget`) : m.mode)),
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

  /** Opens a file; the handle's mode (read, write) is then checked once, by a Fid, for every service. */
  open(path: string, flags: OpenFlags): MaybePromise<FileHandle> {
    const r = this.#resolve(path);
    return andThen(this.#open(r, flags), (h) => new Fid(h, flags, r.abs));
  }

  #open(r: Resolved, flags: OpenFlags): MaybePromise<FileHandle> {
    const mutating = !!(flags.write || flags.create || flags.truncate || flags.append);
    const openIn = (m: Member, p: string, f: OpenFlags): MaybePromise<FileHandle> => {
      if (m.mode === "sign") return openSigned(m, p, f, r.abs);
      if (mutating) writable(m, r.abs, "open");
      else charge(m);
      const h = m.service.open(p, f);
      return m.budgets.length ? andThen(h, (x) => budgeted(x, m.budgets)) : h;
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
      const v = this.#first(r, (m, p) => lstatOf(m.service, p));
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
      return andThen(lstatOf(m.service, p), (st) => ({ ...st, dev: m.dev }));
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
    if (this.#childIndex().has(r.abs)) throw fsError("EEXIST", `mkdir ${r.abs}: exists`, { op: "mkdir", path: r.abs });
    const m = this.#creator(r, "mkdir");
    return this.#fresh(r, "mkdir", () => m.service.mkdir(inside(m, r.rest)));
  }

  /**
   * Runs a create in a union only when no member has the name yet: a new name that shadows
   * another member's (or is shadowed by it) is EEXIST, as it would be in one directory.
   */
  #fresh(r: Resolved, op: string, create: () => MaybePromise<void>): MaybePromise<void> {
    if (r.members.length <= 1) return create();
    return andThen(this.#exists(r), (yes) => {
      if (yes) throw fsError("EEXIST", `${op} ${r.abs}: exists`, { op, path: r.abs });
      return create();
    });
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
    return this.#fresh(r, "symlink", () => m.service.symlink!(target, inside(m, r.rest)));
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
    // A link stays within one mount member (as Linux refuses links across mount points, binds
    // included): a member's access covers both names, so no link can reach around it.
    const holder = this.#first(src, (m, p) => andThen(lstatOf(m.service, p), () => m));
    return andThen(holder, (m) => {
      const target = dst.members.length === 1 ? dst.members[0] : dst.members.find((x) => x.create);
      if (target !== m) throw fsError("EXDEV", `link ${src.abs} → ${dst.abs}: not on the same mount`, { op: "link", path: dst.abs });
      if (dst.rest === "") throw fsError("EEXIST", `${dst.abs}: is a mount point`, { op: "link", path: dst.abs });
      writable(m, dst.abs, "link");
      if (!m.service.link) throw fsError("ENOSYS", `${dst.abs}: this service has no hard links`);
      return this.#fresh(dst, "link", () => m.service.link!(inside(m, src.rest), inside(m, dst.rest)));
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

/** A member's access narrowed by `access`: the stricter mode of the two, and both budgets. */
function narrow(m: { mode: Mode; budgets: readonly Budget[] }, access: Access | undefined): { mode: Mode; budgets: readonly Budget[] } {
  if (access === undefined) return { mode: m.mode, budgets: m.budgets };
  if (access instanceof Budget) return { mode: m.mode, budgets: m.budgets.includes(access) ? m.budgets : [...m.budgets, access] };
  return { mode: RANK[access] > RANK[m.mode] ? access : m.mode, budgets: m.budgets };
}

/** Spends `n` of `kind` from every budget, or from none (EDQUOT) when one of them is short. */
function spend(budgets: readonly Budget[], kind: BudgetKind, n: number): void {
  for (const b of budgets) if (n > b.remaining(kind)) b.charge(kind, n);
  for (const b of budgets) b.charge(kind, n);
}

const remaining = (budgets: readonly Budget[], kind: BudgetKind): number => Math.min(...budgets.map((b) => b.remaining(kind)));

function charge(m: Member): void {
  if (m.budgets.length) spend(m.budgets, "calls", 1);
}

function writable(m: Member, path: string, op: string): void {
  if (m.mode === "ro") throw fsError("EROFS", `${op} ${path}: read-only mount`, { op, path });
  if (m.mode === "sign") throw fsError("EACCES", `${op} ${path}: sign-only mount`, { op, path });
  charge(m);
}

/**
 * Opens in a sign-only mount: request/reply files read-write (each handle one request), and files
 * the service marks public (or directories) read-only; nothing else.
 */
function openSigned(m: Member, p: string, f: OpenFlags, abs: string): MaybePromise<FileHandle> {
  const asks = !!(f.read && f.write) && !f.truncate && !f.create;
  const looks = !writes(f) && !f.truncate && !f.create;
  if (!asks && !looks) throw fsError("EACCES", `${abs}: sign-only mount: open request/reply files read-write, public files read-only`, { op: "open", path: abs });
  charge(m);
  return andThen(m.service.open(p, f), (h) => {
    if (asks) return signOnly(h, abs);
    if (h.public || h.type === "dir") return h;
    closeQuietly(h);
    throw fsError("EACCES", `${abs}: sign-only mount: only public files can be read`, { op: "open", path: abs });
  });
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
    closeQuietly(h);
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
function budgeted(h: FileHandle, b: readonly Budget[]): FileHandle {
  return {
    type: h.type, transactional: h.transactional, public: h.public,
    get position() { return h.position; },
    set position(p: number) { h.position = p; },
    read: (n, off) => {
      const allowed = Math.min(n, remaining(b, "bytes"));
      if (allowed === 0 && n > 0) spend(b, "bytes", n);
      return andThen(h.read(allowed, off), (d) => { spend(b, "bytes", d.length); return d; });
    },
    write: (d, off) => { spend(b, "bytes", d.length); return h.write(d, off); },
    stat: () => h.stat(),
    truncate: (s) => h.truncate(s),
    sync: () => h.sync(),
    close: () => h.close(),
    setTimes: h.setTimes ? (a, m) => h.setTimes!(a, m) : undefined,
  };
}
