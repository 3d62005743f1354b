// DirService (Node only): a host directory as a FileService.
//
//   new DirService("./workspace")                    read-write
//   new DirService("./inputs", { readOnly: true })   every change is EROFS
//
// Decisions:
// - Synchronous node:fs calls. A file call on a local disk takes microseconds, and answering
//   synchronously lets the WASI host skip the JSPI suspension a Promise would cost. The price is
//   that a slow disk blocks the event loop; the user is a Node CLI running one agent, where that is
//   the right trade.
// - No way out. Paths are normalised (runtime/path: `..` stops at the root). Every operation
//   resolves its path with realpath and refuses with EACCES anything that lands outside the root:
//   a symlink to an absolute or `../` target outside, in the last segment or any earlier one, for
//   open/stat/readdir/mkdir/remove/rename/link/setTimes and for creating through a dangling
//   symlink. Symlinks that stay inside the root work. Files are then opened with O_NOFOLLOW, so a
//   final segment swapped for a symlink after the check fails with ELOOP instead of escaping. (A
//   host process racing to swap an *intermediate* directory for a symlink between the check and
//   the call can still win; the guest itself cannot create such symlinks.)
// - lstat describes a symlink itself, even one pointing outside (the link lives inside). readlink
//   refuses (EACCES) a target that leads outside, so the host's layout is not revealed; an absolute
//   target that stays inside is answered in relative form, which means the same thing to the guest.
// - symlink() refuses absolute targets and targets that climb above the root from where the link
//   is (EACCES); an empty target or a NUL is EINVAL.
// - Node error codes map to FsError codes in one table (NODE_ERRORS); anything unknown is EIO.
//   Messages name the path relative to the root, never the host path.
// - Times are exact nanoseconds on read (bigint stat). setTimes goes through Node's utimes, which
//   takes seconds as a double: sub-microsecond precision is lost, and a time left `undefined` is
//   rewritten from its current value (Node has no UTIME_OMIT).
// - readdir is sorted by name and reports sockets, FIFOs and devices as "file" (no ino: Node's
//   Dirent has none, and an lstat per entry would cost too much).
// - A handle never closed by its user is closed when it is garbage-collected.
import * as fs from "node:fs";
import * as nodePath from "node:path";
import { fsError, FsError, type ErrorCode } from "../runtime/errors.ts";
import { normalize, segments } from "../runtime/path.ts";
import type { DirEntry, FileHandle, FileService, FileType, OpenFlags, Stat } from "../runtime/types.ts";

export interface DirServiceOptions {
  /** Refuse every change with EROFS. */
  readOnly?: boolean;
}

/** Node's error codes, mapped once to ours. Anything not here is EIO. */
export const NODE_ERRORS: Readonly<Record<string, ErrorCode>> = {
  ENOENT: "ENOENT",
  ENXIO: "ENOENT",
  EACCES: "EACCES",
  EPERM: "EPERM",
  EEXIST: "EEXIST",
  ENOTDIR: "ENOTDIR",
  EISDIR: "EISDIR",
  ENOTEMPTY: "ENOTEMPTY",
  EROFS: "EROFS",
  EINVAL: "EINVAL",
  EXDEV: "EXDEV",
  ENOSPC: "ENOSPC",
  EDQUOT: "EDQUOT",
  EIO: "EIO",
  ETIMEDOUT: "ETIMEDOUT",
  EBADF: "EBADF",
  ELOOP: "ELOOP",
  ENAMETOOLONG: "ENAMETOOLONG",
  EFBIG: "EFBIG",
  EOVERFLOW: "EFBIG",
  ENOSYS: "ENOSYS",
  ENOTSUP: "ENOTSUP",
  EOPNOTSUPP: "ENOTSUP",
  EBUSY: "EBUSY",
  ETXTBSY: "EBUSY",
  EAGAIN: "EAGAIN",
  EWOULDBLOCK: "EAGAIN",
  EINTR: "EAGAIN",
  EMFILE: "EMFILE",
  ENFILE: "EMFILE",
  ESPIPE: "ESPIPE",
  ECANCELED: "ECANCELED",
  ECONNREFUSED: "ECONNREFUSED",
  EMLINK: "ENOSPC",
};

const DESCRIPTIONS: Partial<Record<ErrorCode, string>> = {
  ENOENT: "no such file or directory",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EEXIST: "file exists",
  ENOTDIR: "not a directory",
  EISDIR: "is a directory",
  ENOTEMPTY: "directory not empty",
  EROFS: "read-only file system",
  EINVAL: "invalid argument",
  EXDEV: "cross-device link",
  ENOSPC: "no space left on device",
  ELOOP: "too many levels of symbolic links",
  EBADF: "bad file descriptor",
  ENAMETOOLONG: "name too long",
  EBUSY: "resource busy",
};

const show = (rel: string): string => (rel === "" ? "/" : rel);

function fromNode(e: unknown, op: string, rel: string): Error {
  if (e instanceof FsError) return e;
  const nodeCode = (e as { code?: unknown })?.code;
  if (typeof nodeCode !== "string") return e instanceof Error ? e : new Error(String(e));
  const code = NODE_ERRORS[nodeCode] ?? "EIO";
  const what = DESCRIPTIONS[code] ?? nodeCode;
  return fsError(code, `${op} ${show(rel)}: ${what}`);
}

function wrap<T>(op: string, rel: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw fromNode(e, op, rel);
  }
}

const nodeCode = (e: unknown): string | undefined => (e as { code?: string })?.code;

function toStat(st: fs.BigIntStats): Stat {
  return {
    type: st.isDirectory() ? "dir" : st.isSymbolicLink() ? "symlink" : "file",
    size: Number(st.size),
    ino: Number(st.ino),
    nlink: Number(st.nlink),
    atimeNs: st.atimeNs,
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
  };
}

const seconds = (ns: bigint): number => Number(ns) / 1e9;

const MAX_HOPS = 40;
const MAX_READ = 64 * 1024 * 1024;

const fdCloser = new FinalizationRegistry<number>((fd) => {
  try {
    fs.closeSync(fd);
  } catch {
    // already gone
  }
});

export class DirService implements FileService {
  /** The real (symlink-free) host path of the root. */
  readonly root: string;
  readonly readOnly: boolean;
  readonly #rootSep: string;

  constructor(hostRoot: string, options: DirServiceOptions = {}) {
    const root = wrap("mount", hostRoot, () => fs.realpathSync.native(nodePath.resolve(hostRoot)));
    if (!wrap("mount", hostRoot, () => fs.statSync(root)).isDirectory()) {
      throw fsError("ENOTDIR", `mount ${hostRoot}: not a directory`);
    }
    this.root = root;
    this.#rootSep = root.endsWith(nodePath.sep) ? root : root + nodePath.sep;
    this.readOnly = !!options.readOnly;
  }

  // ---- path resolution ----

  #inside(real: string): boolean {
    return real === this.root || real.startsWith(this.#rootSep);
  }

  #segs(path: string): string[] {
    const segs = segments(path);
    if (nodePath.sep === "\\") {
      for (const s of segs) if (/[\\:]/.test(s)) throw fsError("EINVAL", `${segs.join("/")}: "\\" and ":" are not allowed in names here`);
    }
    return segs;
  }

  /** Realpath of a host path that must stay inside the root. */
  #real(op: string, rel: string, host: string): string {
    const real = wrap(op, rel, () => fs.realpathSync.native(host));
    if (!this.#inside(real)) throw fsError("EACCES", `${op} ${show(rel)}: a symbolic link leads outside the directory`);
    return real;
  }

  /** The host path of the parent of `segs` (resolved, inside the root) joined with the last name. */
  #noFollow(op: string, rel: string, segs: string[]): string {
    if (segs.length === 0) return this.root;
    const name = segs[segs.length - 1]!;
    const parent = segs.length === 1 ? this.root : this.#real(op, rel, nodePath.join(this.root, ...segs.slice(0, -1)));
    return nodePath.join(parent, name);
  }

  /** The host path `segs` leads to, following every symlink (a missing last segment is allowed). */
  #follow(op: string, rel: string, segs: string[]): string {
    if (segs.length === 0) return this.root;
    try {
      const real = fs.realpathSync.native(nodePath.join(this.root, ...segs));
      if (!this.#inside(real)) throw fsError("EACCES", `${op} ${show(rel)}: a symbolic link leads outside the directory`);
      return real;
    } catch (e) {
      if (nodeCode(e) !== "ENOENT") throw fromNode(e, op, rel);
    }
    // Missing, or a dangling symlink: find out where a create would land.
    let p = this.#noFollow(op, rel, segs);
    for (let hops = 0; hops < MAX_HOPS; hops++) {
      let st: fs.Stats;
      try {
        st = fs.lstatSync(p);
      } catch (e) {
        if (nodeCode(e) === "ENOENT") return p;
        throw fromNode(e, op, rel);
      }
      if (!st.isSymbolicLink()) return p;
      const target = wrap(op, rel, () => fs.readlinkSync(p));
      const abs = nodePath.resolve(nodePath.dirname(p), target);
      const parent = this.#real(op, rel, nodePath.dirname(abs));
      p = nodePath.join(parent, nodePath.basename(abs));
      if (!this.#inside(p)) throw fsError("EACCES", `${op} ${show(rel)}: a symbolic link leads outside the directory`);
    }
    throw fsError("ELOOP", `${op} ${show(rel)}: too many levels of symbolic links`);
  }

  #rofs(op: string, path: string): void {
    if (this.readOnly) throw fsError("EROFS", `${op} ${show(normalize(path))}: read-only file system`);
  }

  // ---- FileService ----

  open(path: string, flags: OpenFlags): HostHandle {
    const writes = !!(flags.write || flags.append || flags.truncate || flags.create);
    if (writes) this.#rofs("open", path);
    const segs = this.#segs(path);
    const rel = segs.join("/");
    const C = fs.constants;
    // An exclusive create never follows a final symlink (POSIX): it fails with EEXIST.
    const follow = !flags.nofollow && !(flags.create && flags.exclusive);
    const host = follow ? this.#follow("open", rel, segs) : this.#noFollow("open", rel, segs);
    let f = flags.write || flags.append ? (flags.read ? C.O_RDWR : C.O_WRONLY) : C.O_RDONLY;
    if (flags.create) f |= C.O_CREAT;
    if (flags.exclusive) f |= C.O_EXCL;
    if (flags.truncate) f |= C.O_TRUNC;
    if (flags.append) f |= C.O_APPEND;
    if (flags.directory) f |= C.O_DIRECTORY;
    f |= C.O_NOFOLLOW;
    const fd = wrap("open", rel, () => fs.openSync(host, f, 0o666));
    return new HostHandle(fd, rel, flags, this.readOnly);
  }

  stat(path: string): Stat {
    const segs = this.#segs(path);
    const rel = segs.join("/");
    const host = this.#follow("stat", rel, segs);
    return toStat(wrap("stat", rel, () => fs.lstatSync(host, { bigint: true })));
  }

  lstat(path: string): Stat {
    const segs = this.#segs(path);
    const rel = segs.join("/");
    const host = this.#noFollow("lstat", rel, segs);
    return toStat(wrap("lstat", rel, () => fs.lstatSync(host, { bigint: true })));
  }

  readdir(path: string): DirEntry[] {
    const segs = this.#segs(path);
    const rel = segs.join("/");
    const host = this.#follow("readdir", rel, segs);
    const entries = wrap("readdir", rel, () => fs.readdirSync(host, { withFileTypes: true }));
    const out: DirEntry[] = entries.map((d) => {
      const type: FileType = d.isDirectory() ? "dir" : d.isSymbolicLink() ? "symlink" : "file";
      return { name: d.name, type };
    });
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  mkdir(path: string): void {
    this.#rofs("mkdir", path);
    const segs = this.#segs(path);
    const rel = segs.join("/");
    if (segs.length === 0) throw fsError("EEXIST", "mkdir /: file exists");
    const host = this.#noFollow("mkdir", rel, segs);
    wrap("mkdir", rel, () => fs.mkdirSync(host, 0o777));
  }

  remove(path: string): void {
    this.#rofs("remove", path);
    const segs = this.#segs(path);
    const rel = segs.join("/");
    if (segs.length === 0) throw fsError("EBUSY", "remove /: the root cannot be removed");
    const host = this.#noFollow("remove", rel, segs);
    wrap("remove", rel, () => {
      if (fs.lstatSync(host).isDirectory()) fs.rmdirSync(host);
      else fs.unlinkSync(host);
    });
  }

  rename(from: string, to: string): void {
    this.#rofs("rename", from);
    const fs1 = this.#segs(from);
    const fs2 = this.#segs(to);
    const r1 = fs1.join("/");
    const r2 = fs2.join("/");
    if (fs1.length === 0 || fs2.length === 0) throw fsError("EBUSY", `rename ${show(r1)} to ${show(r2)}: the root cannot be moved or replaced`);
    const h1 = this.#noFollow("rename", r1, fs1);
    const h2 = this.#noFollow("rename", r2, fs2);
    wrap("rename", r1, () => fs.renameSync(h1, h2));
  }

  symlink(target: string, path: string): void {
    this.#rofs("symlink", path);
    const segs = this.#segs(path);
    const rel = segs.join("/");
    if (target === "" || target.includes("\0")) throw fsError("EINVAL", `symlink ${show(rel)}: bad target ${JSON.stringify(target)}`);
    if (target.startsWith("/") || nodePath.isAbsolute(target)) {
      throw fsError("EACCES", `symlink ${show(rel)}: absolute target ${target} is not allowed (it would lead outside)`);
    }
    if (climbs(segs.slice(0, -1), target)) {
      throw fsError("EACCES", `symlink ${show(rel)}: target ${target} leads outside the directory`);
    }
    if (segs.length === 0) throw fsError("EEXIST", "symlink /: file exists");
    const host = this.#noFollow("symlink", rel, segs);
    wrap("symlink", rel, () => fs.symlinkSync(target, host));
  }

  readlink(path: string): string {
    const segs = this.#segs(path);
    const rel = segs.join("/");
    const host = this.#noFollow("readlink", rel, segs);
    const target = wrap("readlink", rel, () => fs.readlinkSync(host));
    const abs = nodePath.resolve(nodePath.dirname(host), target);
    if (!this.#inside(abs)) throw fsError("EACCES", `readlink ${show(rel)}: the link leads outside the directory`);
    if (nodePath.isAbsolute(target) || climbs(segs.slice(0, -1), target)) {
      return nodePath.relative(nodePath.dirname(host), abs).split(nodePath.sep).join("/") || ".";
    }
    return target;
  }

  link(existing: string, path: string): void {
    this.#rofs("link", path);
    const s1 = this.#segs(existing);
    const s2 = this.#segs(path);
    const r1 = s1.join("/");
    const r2 = s2.join("/");
    const h1 = this.#noFollow("link", r1, s1);
    const h2 = this.#noFollow("link", r2, s2);
    wrap("link", r2, () => fs.linkSync(h1, h2));
  }

  setTimes(path: string, atimeNs: bigint | undefined, mtimeNs: bigint | undefined, opts: { nofollow?: boolean } = {}): void {
    this.#rofs("setTimes", path);
    const segs = this.#segs(path);
    const rel = segs.join("/");
    const host = opts.nofollow ? this.#noFollow("setTimes", rel, segs) : this.#follow("setTimes", rel, segs);
    wrap("setTimes", rel, () => {
      const st = atimeNs === undefined || mtimeNs === undefined ? fs.lstatSync(host, { bigint: true }) : undefined;
      const a = seconds(atimeNs ?? st!.atimeNs);
      const m = seconds(mtimeNs ?? st!.mtimeNs);
      if (opts.nofollow) fs.lutimesSync(host, a, m);
      else fs.utimesSync(host, a, m);
    });
  }
}

/** True when `target`, read from inside `dirSegs`, climbs above the root. */
function climbs(dirSegs: string[], target: string): boolean {
  let depth = dirSegs.length;
  for (const part of target.split(/[\\/]/)) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (--depth < 0) return true;
    } else depth++;
  }
  return false;
}

export class HostHandle implements FileHandle {
  position = 0;
  #fd: number | null;
  readonly #rel: string;
  readonly #flags: OpenFlags;
  readonly #readOnly: boolean;

  constructor(fd: number, rel: string, flags: OpenFlags, readOnly: boolean) {
    this.#fd = fd;
    this.#rel = rel;
    this.#flags = flags;
    this.#readOnly = readOnly;
    fdCloser.register(this, fd, this);
  }

  #live(op: string): number {
    if (this.#fd === null) throw fsError("EBADF", `${op} ${show(this.#rel)}: handle is closed`);
    return this.#fd;
  }

  #changing(op: string): number {
    const fd = this.#live(op);
    if (this.#readOnly) throw fsError("EROFS", `${op} ${show(this.#rel)}: read-only file system`);
    return fd;
  }

  read(length: number, offset?: number): Uint8Array {
    const fd = this.#live("read");
    if (!Number.isSafeInteger(length) || length < 0) throw fsError("EINVAL", `read ${show(this.#rel)}: bad length ${length}`);
    const at = offset ?? this.position;
    if (!Number.isSafeInteger(at) || at < 0) throw fsError("EINVAL", `read ${show(this.#rel)}: bad offset ${at}`);
    const buf = new Uint8Array(Math.min(length, MAX_READ));
    const n = buf.length === 0 ? 0 : wrap("read", this.#rel, () => fs.readSync(fd, buf, 0, buf.length, at));
    if (offset === undefined) this.position = at + n;
    return n === buf.length ? buf : buf.subarray(0, n);
  }

  write(data: Uint8Array, offset?: number): number {
    const fd = this.#changing("write");
    if (this.#flags.append) {
      wrap("write", this.#rel, () => {
        let done = 0;
        while (done < data.length) done += fs.writeSync(fd, data, done, data.length - done, null);
        this.position = Number(fs.fstatSync(fd, { bigint: true }).size);
      });
      return data.length;
    }
    const at = offset ?? this.position;
    if (!Number.isSafeInteger(at) || at < 0) throw fsError("EINVAL", `write ${show(this.#rel)}: bad offset ${at}`);
    wrap("write", this.#rel, () => {
      let done = 0;
      while (done < data.length) done += fs.writeSync(fd, data, done, data.length - done, at + done);
    });
    if (offset === undefined) this.position = at + data.length;
    return data.length;
  }

  stat(): Stat {
    const fd = this.#live("stat");
    return toStat(wrap("stat", this.#rel, () => fs.fstatSync(fd, { bigint: true })));
  }

  truncate(size: number): void {
    const fd = this.#changing("truncate");
    if (!Number.isSafeInteger(size) || size < 0) throw fsError("EINVAL", `truncate ${show(this.#rel)}: bad size ${size}`);
    wrap("truncate", this.#rel, () => fs.ftruncateSync(fd, size));
  }

  setTimes(atimeNs: bigint | undefined, mtimeNs: bigint | undefined): void {
    const fd = this.#changing("setTimes");
    wrap("setTimes", this.#rel, () => {
      const st = atimeNs === undefined || mtimeNs === undefined ? fs.fstatSync(fd, { bigint: true }) : undefined;
      fs.futimesSync(fd, seconds(atimeNs ?? st!.atimeNs), seconds(mtimeNs ?? st!.mtimeNs));
    });
  }

  sync(): void {
    const fd = this.#live("sync");
    wrap("sync", this.#rel, () => fs.fsyncSync(fd));
  }

  close(): void {
    const fd = this.#live("close");
    this.#fd = null;
    fdCloser.unregister(this);
    wrap("close", this.#rel, () => fs.closeSync(fd));
  }
}
