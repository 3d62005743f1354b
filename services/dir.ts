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
// - No way out, and no race. Paths are normalised (runtime/path: `..` stops at the root), then
//   resolved by walking file descriptors, never by checking a path string and opening it again:
//   from a directory fd held for the root, each segment is opened with O_DIRECTORY|O_NOFOLLOW
//   through `/proc/self/fd/<dir>/<name>` (Node has no openat; on Linux that path *is* openat: the
//   kernel starts from the fd's directory whatever has been renamed since). A symlink met on the
//   way is read and its target resolved lexically from the link's real place; a target that
//   leaves the root is EACCES, and one that stays inside is walked again from the root fd, one
//   segment at a time. The final open uses O_NOFOLLOW, so another process swapping a directory
//   for a symlink at any moment can only make a call fail (ELOOP, ENOENT), never lead outside.
//   Linux only (it needs /proc/self/fd); elsewhere the constructor answers ENOTSUP.
// - Nothing but regular files and directories is opened: opens use O_NONBLOCK (a FIFO cannot
//   block the event loop) and fstat the result; a FIFO, socket or device is EACCES.
// - symlink() refuses absolute targets and targets that climb above the root from where the link
//   really is (EACCES); rename re-checks a link it moves (and the links inside a directory moved
//   up), so a link allowed deep in the tree cannot be moved to where it points outside. An empty
//   target or a NUL is EINVAL.
// - lstat describes a symlink itself, even one pointing outside (the link lives inside). readlink
//   refuses (EACCES) a target that leads outside, so the host's layout is not revealed; an absolute
//   target that stays inside is answered in relative form, which means the same thing to the guest.
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

/** Where a walk ended: held directory fds from the root down (the first is the root's, kept),
 * the real names of those directories below the root, and the last name ("" for the directory itself). */
interface At {
  fds: number[];
  names: string[];
  name: string;
}

const FD_DIR = "/proc/self/fd";
/** The path through which the kernel looks `name` up in the directory held by `fd` (openat). */
const under = (fd: number, name?: string): string => (name ? `${FD_DIR}/${fd}/${name}` : `${FD_DIR}/${fd}`);

export class DirService implements FileService {
  /** The real (symlink-free) host path of the root. */
  readonly root: string;
  readonly readOnly: boolean;
  readonly #rootSep: string;
  /** The root, held open: every walk starts here, whatever is renamed on the host. */
  readonly #rootFd: number;

  constructor(hostRoot: string, options: DirServiceOptions = {}) {
    if (!fs.existsSync(FD_DIR)) throw fsError("ENOTSUP", `mount ${hostRoot}: host directories need Linux's ${FD_DIR} to resolve paths without races`);
    const root = wrap("mount", hostRoot, () => fs.realpathSync.native(nodePath.resolve(hostRoot)));
    if (!wrap("mount", hostRoot, () => fs.statSync(root)).isDirectory()) {
      throw fsError("ENOTDIR", `mount ${hostRoot}: not a directory`);
    }
    this.root = root;
    this.#rootSep = root.endsWith(nodePath.sep) ? root : root + nodePath.sep;
    this.readOnly = !!options.readOnly;
    this.#rootFd = wrap("mount", hostRoot, () => fs.openSync(root, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY));
    fdCloser.register(this, this.#rootFd);
  }

  // ---- path resolution ----

  #inside(real: string): boolean {
    return real === this.root || real.startsWith(this.#rootSep);
  }

  /**
   * Where a link found in the directory `names` points, as segments from the root; EACCES when it
   * leads outside. The names are real (no symlinks), so resolving `..` lexically is exact.
   */
  #linkTarget(op: string, rel: string, names: string[], target: string): string[] {
    const abs = nodePath.resolve(this.root, ...names, target);
    if (!this.#inside(abs)) throw fsError("EACCES", `${op} ${show(rel)}: a symbolic link leads outside the directory`, { op, path: rel });
    return abs === this.root ? [] : abs.slice(this.#rootSep.length).split(nodePath.sep);
  }

  /**
   * Walks `segs` from the root fd, one directory fd per segment (O_NOFOLLOW), following the
   * symlinks met on the way (and the last one when `followLast`). Answers the held fds, which the
   * caller gives back with #release.
   */
  #walk(op: string, rel: string, segs: string[], followLast: boolean): At {
    const fds = [this.#rootFd];
    const names: string[] = [];
    const todo = [...segs];
    let hops = 0;
    try {
      for (;;) {
        const seg = todo.shift();
        if (seg === undefined) return { fds, names, name: "" };
        const last = todo.length === 0;
        if (last && !followLast) return { fds, names, name: seg };
        const here = fds[fds.length - 1]!;
        let st: fs.Stats;
        try {
          st = fs.lstatSync(under(here, seg));
        } catch (e) {
          if (last && nodeCode(e) === "ENOENT") return { fds, names, name: seg };
          throw e;
        }
        if (st.isSymbolicLink()) {
          if (++hops > MAX_HOPS) throw fsError("ELOOP", `${op} ${show(rel)}: too many levels of symbolic links`, { op, path: rel });
          const target = this.#linkTarget(op, rel, names, fs.readlinkSync(under(here, seg)));
          // Start again from the root fd along the target's real names.
          for (const fd of fds.splice(1)) fs.closeSync(fd);
          names.length = 0;
          todo.unshift(...target);
          continue;
        }
        if (last) return { fds, names, name: seg };
        if (!st.isDirectory()) throw fsError("ENOTDIR", `${op} ${show(rel)}: not a directory`, { op, path: rel });
        const C = fs.constants;
        fds.push(fs.openSync(under(here, seg), C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW));
        names.push(seg);
      }
    } catch (e) {
      this.#release({ fds, names, name: "" });
      throw fromNode(e, op, rel);
    }
  }

  #release(at: At): void {
    for (const fd of at.fds.splice(1)) fs.closeSync(fd);
  }

  /** Runs `fn` on a walk's end, then gives its fds back. */
  #at<T>(op: string, path: string, follow: boolean, fn: (at: At, rel: string, segs: string[]) => T): T {
    const segs = segments(path);
    const rel = segs.join("/");
    const at = this.#walk(op, rel, segs, follow);
    try {
      return wrap(op, rel, () => fn(at, rel, segs));
    } finally {
      this.#release(at);
    }
  }

  /** The walk's end as a path for one syscall: `name` in the last held directory, or that directory. */
  #host(at: At): string {
    return under(at.fds[at.fds.length - 1]!, at.name || undefined);
  }

  #rofs(op: string, path: string): void {
    if (this.readOnly) throw fsError("EROFS", `${op} ${show(normalize(path))}: read-only file system`, { op, path });
  }

  // ---- FileService ----

  open(path: string, flags: OpenFlags): HostHandle {
    const writes = !!(flags.write || flags.append || flags.truncate || flags.create);
    if (writes) this.#rofs("open", path);
    // An exclusive create never follows a final symlink (POSIX): it fails with EEXIST.
    const follow = !flags.nofollow && !(flags.create && flags.exclusive);
    return this.#at("open", path, follow, (at, rel) => {
      const C = fs.constants;
      let f = flags.write || flags.append ? (flags.read ? C.O_RDWR : C.O_WRONLY) : C.O_RDONLY;
      if (flags.create) f |= C.O_CREAT;
      if (flags.exclusive) f |= C.O_EXCL;
      if (flags.truncate) f |= C.O_TRUNC;
      if (flags.append) f |= C.O_APPEND;
      if (flags.directory) f |= C.O_DIRECTORY;
      // O_NOFOLLOW on the last name (the directory itself is reached through its fd's magic link).
      f |= C.O_NONBLOCK | (at.name ? C.O_NOFOLLOW : 0);
      const fd = fs.openSync(this.#host(at), f, 0o666);
      const st = fs.fstatSync(fd);
      if (!st.isFile() && !st.isDirectory()) {
        fs.closeSync(fd);
        throw fsError("EACCES", `open ${show(rel)}: not a regular file or directory`, { op: "open", path: rel });
      }
      return new HostHandle(fd, rel, flags, this.readOnly);
    });
  }

  #statAt(at: At): fs.BigIntStats {
    return at.name ? fs.lstatSync(this.#host(at), { bigint: true }) : fs.fstatSync(at.fds[at.fds.length - 1]!, { bigint: true });
  }

  stat(path: string): Stat {
    return this.#at("stat", path, true, (at) => toStat(this.#statAt(at)));
  }

  lstat(path: string): Stat {
    return this.#at("lstat", path, false, (at) => toStat(this.#statAt(at)));
  }

  readdir(path: string): DirEntry[] {
    return this.#at("readdir", path, true, (at) => {
      const C = fs.constants;
      const fd = at.name ? fs.openSync(this.#host(at), C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW) : -1;
      try {
        const entries = fs.readdirSync(under(fd >= 0 ? fd : at.fds[at.fds.length - 1]!), { withFileTypes: true });
        const out: DirEntry[] = entries.map((d) => {
          const type: FileType = d.isDirectory() ? "dir" : d.isSymbolicLink() ? "symlink" : "file";
          return { name: d.name, type };
        });
        return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      } finally {
        if (fd >= 0) fs.closeSync(fd);
      }
    });
  }

  mkdir(path: string): void {
    this.#rofs("mkdir", path);
    this.#at("mkdir", path, false, (at) => {
      if (!at.name) throw fsError("EEXIST", "mkdir /: file exists", { op: "mkdir", path: "" });
      fs.mkdirSync(this.#host(at), 0o777);
    });
  }

  remove(path: string): void {
    this.#rofs("remove", path);
    this.#at("remove", path, false, (at) => {
      if (!at.name) throw fsError("EBUSY", "remove /: the root cannot be removed", { op: "remove", path: "" });
      const host = this.#host(at);
      if (fs.lstatSync(host).isDirectory()) fs.rmdirSync(host);
      else fs.unlinkSync(host);
    });
  }

  rename(from: string, to: string): void {
    this.#rofs("rename", from);
    this.#at("rename", from, false, (src, r1) => this.#at("rename", to, false, (dst, r2) => {
      if (!src.name || !dst.name) throw fsError("EBUSY", `rename ${show(r1)} to ${show(r2)}: the root cannot be moved or replaced`, { op: "rename", path: r1 });
      const h1 = this.#host(src);
      const st = fs.lstatSync(h1);
      // A link allowed where it was may point outside where it goes: check it (and those inside a
      // directory moved up) from the new place.
      if (st.isSymbolicLink()) this.#linkTarget("rename", r2, dst.names, fs.readlinkSync(h1));
      else if (st.isDirectory() && dst.names.length < src.names.length) this.#linksStayInside(h1, [...dst.names, dst.name], r2);
      fs.renameSync(h1, this.#host(dst));
    }));
  }

  /** EACCES when a symlink below the directory at `host` would lead outside from `names`. */
  #linksStayInside(host: string, names: string[], rel: string): void {
    const C = fs.constants;
    const fd = fs.openSync(host, C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW);
    try {
      for (const e of fs.readdirSync(under(fd), { withFileTypes: true })) {
        if (e.isSymbolicLink()) this.#linkTarget("rename", `${rel}/${e.name}`, names, fs.readlinkSync(under(fd, e.name)));
        else if (e.isDirectory()) this.#linksStayInside(under(fd, e.name), [...names, e.name], `${rel}/${e.name}`);
      }
    } finally {
      fs.closeSync(fd);
    }
  }

  symlink(target: string, path: string): void {
    this.#rofs("symlink", path);
    const rel = normalize(path);
    if (target === "" || target.includes("\0")) throw fsError("EINVAL", `symlink ${show(rel)}: bad target ${JSON.stringify(target)}`, { op: "symlink", path: rel });
    if (nodePath.isAbsolute(target)) {
      throw fsError("EACCES", `symlink ${show(rel)}: absolute target ${target} is not allowed (it would lead outside)`, { op: "symlink", path: rel });
    }
    this.#at("symlink", path, false, (at) => {
      if (!at.name) throw fsError("EEXIST", "symlink /: file exists", { op: "symlink", path: "" });
      // Checked from where the link really is (its directory's real names), not the path it was named by.
      if (climbs(at.names, target)) throw fsError("EACCES", `symlink ${show(rel)}: target ${target} leads outside the directory`, { op: "symlink", path: rel });
      fs.symlinkSync(target, this.#host(at));
    });
  }

  readlink(path: string): string {
    return this.#at("readlink", path, false, (at, rel) => {
      const target = fs.readlinkSync(this.#host(at));
      const segs = this.#linkTarget("readlink", rel, at.names, target);
      if (nodePath.isAbsolute(target) || climbs(at.names, target)) {
        return nodePath.posix.relative(at.names.join("/") || ".", segs.join("/") || ".") || ".";
      }
      return target;
    });
  }

  link(existing: string, path: string): void {
    this.#rofs("link", path);
    this.#at("link", existing, false, (src) => this.#at("link", path, false, (dst) => fs.linkSync(this.#host(src), this.#host(dst))));
  }

  setTimes(path: string, atimeNs: bigint | undefined, mtimeNs: bigint | undefined, opts: { nofollow?: boolean } = {}): void {
    this.#rofs("setTimes", path);
    this.#at("setTimes", path, !opts.nofollow, (at) => {
      const st = atimeNs === undefined || mtimeNs === undefined ? this.#statAt(at) : undefined;
      const a = seconds(atimeNs ?? st!.atimeNs);
      const m = seconds(mtimeNs ?? st!.mtimeNs);
      if (opts.nofollow) return fs.lutimesSync(this.#host(at), a, m);
      // Through an fd, so a name swapped for a symlink meanwhile is not followed.
      const C = fs.constants;
      const fd = fs.openSync(this.#host(at), C.O_RDONLY | C.O_NONBLOCK | (at.name ? C.O_NOFOLLOW : 0));
      try {
        fs.futimesSync(fd, a, m);
      } finally {
        fs.closeSync(fd);
      }
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
