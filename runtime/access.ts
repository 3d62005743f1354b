// Access per mount member: its mode (read-write, read-only, sign-only) and the budgets it spends,
// how a bind narrows them, and the handle wrappers that hold them once a file is open. Used by the
// Namespace (runtime/namespace.ts), which decides which member answers.
import { fsError, isFsError } from "./errors.ts";
import { closeQuietly, writable as writes } from "./handle.ts";
import type { FileHandle, FileService, MaybePromise, OpenFlags } from "./types.ts";
import { andThen, isPromise } from "./types.ts";

/**
 * Per-mount access: read-only, read-write, sign-only (only request/reply files and files the service
 * marks public, so a guest can ask for a signature but never read a stored key), or a Budget
 * (read-write until it is spent).
 */
export type Access = "ro" | "rw" | "sign" | Budget;

export type Mode = "rw" | "ro" | "sign";
/** Strictness, weakest first: a bind's access is the stricter of the two, always. */
const RANK: Record<Mode, number> = { rw: 0, ro: 1, sign: 2 };

/** What a mount member may do; every member of a Namespace carries one. */
export interface Grant {
  readonly service: FileService;
  /**
   * What the member allows. Sign-only is stricter than read-only: it reads only public files, and
   * its request/reply writes store nothing, so a read-only bind over it stays sign-only.
   */
  readonly mode: Mode;
  /** Every budget this member spends (a budgeted bind over a budgeted mount spends both). */
  readonly budgets: readonly Budget[];
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


/** A member's access narrowed by `access`: the stricter mode of the two, and both budgets. */
export function narrow(m: { mode: Mode; budgets: readonly Budget[] }, access: Access | undefined): { mode: Mode; budgets: readonly Budget[] } {
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

export function charge(m: Grant): void {
  if (m.budgets.length) spend(m.budgets, "calls", 1);
}

export function writable(m: Grant, path: string, op: string): void {
  if (m.mode === "ro") throw fsError("EROFS", `${op} ${path}: read-only mount`, { op, path });
  if (m.mode === "sign") throw fsError("EACCES", `${op} ${path}: sign-only mount`, { op, path });
  charge(m);
}

/**
 * Opens in a sign-only mount: request/reply files read-write (each handle one request), and files
 * the service marks public (or directories) read-only; nothing else.
 */
function openSigned(m: Grant, p: string, f: OpenFlags, abs: string): MaybePromise<FileHandle> {
  const asks = !!(f.read && f.write) && !f.truncate && !f.create;
  const looks = !writes(f) && !f.truncate && !f.create;
  if (!asks && !looks) throw fsError("EACCES", `${abs}: sign-only mount: open request/reply files read-write, public files read-only`, { op: "open", path: abs });
  charge(m);
  const privateFile = () => fsError("EACCES", `${abs}: sign-only mount: only public files can be read`, { op: "open", path: abs });
  // A read-only open the service itself refuses (a request/reply file wants read-write) is still
  // a private file of a sign-only mount: the guest learns EACCES, whatever the service's reason.
  const refused = (e: unknown): never => {
    throw looks && !asks && isFsError(e) && e.code !== "ENOENT" && e.code !== "ENOTDIR" ? privateFile() : e;
  };
  let opened: MaybePromise<FileHandle>;
  try {
    opened = m.service.open(p, f);
  } catch (e) {
    return refused(e);
  }
  if (isPromise(opened)) opened = opened.catch(refused);
  return andThen(opened, (h) => {
    if (asks) return signOnly(h, abs);
    if (h.public || h.type === "dir") return h;
    closeQuietly(h);
    throw privateFile();
  });
}


/** Opens `p` in the member `m` with its access held: writes refused, bytes and calls charged. */
export function openWith(m: Grant, p: string, f: OpenFlags, abs: string): MaybePromise<FileHandle> {
  if (m.mode === "sign") return openSigned(m, p, f, abs);
  if (f.write || f.create || f.truncate || f.append) writable(m, abs, "open");
  else charge(m);
  const h = m.service.open(p, f);
  return m.budgets.length ? andThen(h, (x) => budgeted(x, m.budgets)) : h;
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

