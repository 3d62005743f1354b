// wasi_snapshot_preview1 over a live FileService (usually a Namespace), preopened as "/". No
// copy-in/copy-out: every syscall reaches the services. Syscalls answer a number when the services
// answer synchronously and a Promise when they wait; the imports are wrapped in
// WebAssembly.Suspending so a waiting service suspends the guest (JSPI) instead of blocking.
import { FsError, fsError, isFsError } from "../errors.ts";
import type { DirEntry, FileHandle, FileService, MaybePromise, OpenFlags, Stat } from "../types.ts";
import { andThen, isPromise, nowNs } from "../types.ts";
import {
  CLOCK, ERRNO, ERRNO_OF, EVENTTYPE, FDFLAGS, FILETYPE, FSTFLAGS, LOOKUP_SYMLINK_FOLLOW, OFLAGS,
  PREOPENTYPE_DIR, RIGHTS, RIGHTS_ALL, RIGHTS_DIR, RIGHTS_FILE, RIGHTS_STDIO, SUBCLOCKFLAGS_ABSTIME, WHENCE,
} from "./defs.ts";

/** Thrown by proc_exit to unwind the guest. */
export class ProcExit {
  readonly code: number;
  constructor(code: number) {
    this.code = code;
  }
}

/** Thrown when a process limit is hit; unwinds the guest like ProcExit. */
export class LimitExceeded extends Error {
  readonly kind: "timeout" | "memory" | "output";
  constructor(kind: "timeout" | "memory" | "output", message: string) {
    super(message);
    this.kind = kind;
  }
}

export type StdinReader = (max: number) => MaybePromise<Uint8Array>;

export interface WasiOptions {
  fs: FileService;
  args?: string[];
  env?: Record<string, string>;
  /** Bytes, or a reader asked for at most `max` bytes (an empty answer is end of file). */
  stdin?: Uint8Array | StdinReader;
  stdout?: (bytes: Uint8Array) => void;
  stderr?: (bytes: Uint8Array) => void;
  /** Applied to every Promise a syscall waits on (the process races it against its deadline). */
  guard?: <T>(p: Promise<T>) => Promise<T>;
  /** The directory preopened as fd 3 under the name "/" (default "/"); null for none. */
  preopen?: string | null;
}

interface Fd {
  type: number; // FILETYPE
  /** Absolute path in the namespace (directories resolve paths against it). */
  path: string;
  handle?: FileHandle;
  stdio?: 0 | 1 | 2;
  base: bigint;
  inheriting: bigint;
  /** FDFLAGS; APPEND is carried out here (not by the service) so it can change after open. */
  flags: number;
  preopen?: string;
  /** fd_readdir's listing, taken at cookie 0 and kept for the cookies that follow. */
  dirents?: { name: Uint8Array; type: number; ino: number }[];
}

const enc = new TextEncoder();
const DOT = enc.encode(".");
const DOTDOT = enc.encode("..");
const dec = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
const FILETYPE_OF = { file: FILETYPE.REGULAR_FILE, dir: FILETYPE.DIRECTORY, symlink: FILETYPE.SYMBOLIC_LINK } as const;
const I64_MAX = (1n << 63n) - 1n;

/**
 * Maps anything a syscall threw to an errno; process-ending signals pass through. A service that
 * fails with something other than an FsError (a network error, say) is an I/O error to the guest.
 */
function errnoOf(e: unknown): number {
  if (e instanceof FsError) return ERRNO_OF[e.code] ?? ERRNO.IO;
  if (e instanceof ProcExit || e instanceof LimitExceeded) throw e;
  if (e instanceof RangeError) return ERRNO.INVAL;
  return ERRNO.IO;
}

export class WasiHost {
  memory: WebAssembly.Memory | null = null;
  readonly fds: (Fd | undefined)[] = [];
  #fs: FileService;
  #args: Uint8Array[];
  #env: Uint8Array[];
  #stdin: StdinReader;
  #stdinLeft: () => number;
  #stdout: (b: Uint8Array) => void;
  #stderr: (b: Uint8Array) => void;
  #guard: <T>(p: Promise<T>) => Promise<T>;
  #buf: ArrayBuffer | null = null;
  #u8 = new Uint8Array(0);
  #dv = new DataView(new ArrayBuffer(0));

  constructor(o: WasiOptions) {
    this.#fs = o.fs;
    this.#args = (o.args ?? []).map((a) => enc.encode(a + "\0"));
    this.#env = Object.entries(o.env ?? {}).map(([k, v]) => enc.encode(`${k}=${v}\0`));
    const input = o.stdin ?? new Uint8Array(0);
    if (input instanceof Uint8Array) {
      let pos = 0;
      this.#stdin = (max) => input.subarray(pos, (pos += Math.min(max, input.length - pos)));
      this.#stdinLeft = () => input.length - pos;
    } else {
      this.#stdin = input;
      this.#stdinLeft = () => 0;
    }
    this.#stdout = o.stdout ?? (() => {});
    this.#stderr = o.stderr ?? (() => {});
    this.#guard = o.guard ?? ((p) => p);
    const stdio = (n: 0 | 1 | 2): Fd => ({ type: FILETYPE.CHARACTER_DEVICE, path: "", stdio: n, base: RIGHTS_STDIO, inheriting: 0n, flags: n ? FDFLAGS.APPEND : 0 });
    this.fds.push(stdio(0), stdio(1), stdio(2));
    if (o.preopen !== null) this.fds.push({ type: FILETYPE.DIRECTORY, path: o.preopen ?? "/", base: RIGHTS_DIR, inheriting: RIGHTS_ALL, flags: 0, preopen: "/" });
  }

  /** The import object for `wasi_snapshot_preview1`. */
  imports(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [name, fn] of Object.entries(this.#syscalls())) {
      const call = (...a: never[]): MaybePromise<number> => {
        try {
          const r = fn(...a);
          return isPromise(r) ? this.#guard(r).catch(errnoOf) : r;
        } catch (e) {
          return errnoOf(e);
        }
      };
      out[name] = ASYNC.has(name) ? new WebAssembly.Suspending(call) : call;
    }
    return out;
  }

  /** Closes every open handle (flushing write-behind services); errors are collected, not thrown. */
  async closeAll(): Promise<unknown[]> {
    const errors: unknown[] = [];
    for (let i = 0; i < this.fds.length; i++) {
      const h = this.fds[i]?.handle;
      this.fds[i] = undefined;
      if (h) {
        try {
          await h.close();
        } catch (e) {
          errors.push(e);
        }
      }
    }
    return errors;
  }

  // Guest memory views, renewed when memory grows.
  #mem(): Uint8Array {
    const b = this.memory!.buffer;
    if (b !== this.#buf) {
      this.#buf = b;
      this.#u8 = new Uint8Array(b);
      this.#dv = new DataView(b);
    }
    return this.#u8;
  }
  #view(): DataView {
    this.#mem();
    return this.#dv;
  }
  #str(ptr: number, len: number): string {
    try {
      return dec.decode(this.#mem().subarray(ptr, ptr + len));
    } catch {
      throw new FsError("EINVAL", "path is not valid UTF-8");
    }
  }
  #setU32(ptr: number, v: number): number {
    this.#view().setUint32(ptr, v, true);
    return ERRNO.SUCCESS;
  }
  #setU64(ptr: number, v: bigint): number {
    this.#view().setBigUint64(ptr, v, true);
    return ERRNO.SUCCESS;
  }

  /** The open fd, which must hold `right` (ENOTCAPABLE otherwise). */
  #fd(fd: number, right = 0n): Fd {
    const e = this.fds[fd];
    if (!e) throw fsError("EBADF", `fd ${fd} is not open`);
    if ((e.base & right) !== right) throw fsError("ENOTCAPABLE", `fd ${fd} lacks the right for this call`);
    return e;
  }
  #file(fd: number, right = 0n): Fd & { handle: FileHandle } {
    const e = this.#fd(fd);
    if (e.type === FILETYPE.DIRECTORY) throw fsError("EISDIR", `fd ${fd} is a directory`);
    if (!e.handle) throw fsError("ESPIPE", `fd ${fd} is not a file`);
    this.#fd(fd, right);
    return e as Fd & { handle: FileHandle };
  }
  #dir(fd: number, right = 0n): Fd {
    const e = this.#fd(fd);
    if (e.type !== FILETYPE.DIRECTORY) throw fsError("ENOTDIR", `fd ${fd} is not a directory`);
    return this.#fd(fd, right);
  }

  /**
   * Resolves a guest path against a directory fd. Absolute paths and `..` above the directory are
   * refused (EPERM, WASI's capability rule). `dir` is true when the path ends in a slash.
   */
  #path(fd: number, ptr: number, len: number, right: bigint): { path: string; dir: boolean } {
    const base = this.#dir(fd, right);
    const s = this.#str(ptr, len);
    if (s.includes("\0")) throw fsError("EINVAL", "path contains NUL");
    if (s.startsWith("/")) throw fsError("EPERM", `${s}: absolute paths are not capabilities`);
    if (s === "") throw fsError("ENOENT", "empty path");
    // Fast path: a plain relative path ("a/b.txt") needs no folding.
    if (!s.includes("//") && !s.startsWith(".") && !s.includes("/.") && !s.endsWith("/")) {
      for (const seg of s.split("/")) if (seg.length > 255) throw fsError("ENAMETOOLONG", `${seg.slice(0, 32)}…: name too long`);
      return { path: base.path === "/" ? "/" + s : `${base.path}/${s}`, dir: false };
    }
    const stack = base.path === "/" ? [] : base.path.slice(1).split("/");
    const floor = stack.length;
    for (const seg of s.split("/")) {
      if (seg === "" || seg === ".") continue;
      if (seg === "..") {
        if (stack.length === floor) throw fsError("EPERM", `${s}: climbs above its directory`);
        stack.pop();
      } else {
        if (seg.length > 255) throw fsError("ENAMETOOLONG", `${seg.slice(0, 32)}…: name too long`);
        stack.push(seg);
      }
    }
    return { path: "/" + stack.join("/"), dir: s.endsWith("/") || /(^|\/)\.\.?$/.test(s) };
  }

  #gather(iovs: number, n: number): Uint8Array {
    const dv = this.#view();
    const mem = this.#u8;
    if (n === 1) {
      const p = dv.getUint32(iovs, true);
      return mem.slice(p, p + dv.getUint32(iovs + 4, true));
    }
    let total = 0;
    for (let i = 0; i < n; i++) total += dv.getUint32(iovs + i * 8 + 4, true);
    const out = new Uint8Array(total);
    for (let i = 0, o = 0; i < n; i++) {
      const p = dv.getUint32(iovs + i * 8, true);
      const l = dv.getUint32(iovs + i * 8 + 4, true);
      out.set(mem.subarray(p, p + l), o);
      o += l;
    }
    return out;
  }

  #iovTotal(iovs: number, n: number): number {
    const dv = this.#view();
    let total = 0;
    for (let i = 0; i < n; i++) total += dv.getUint32(iovs + i * 8 + 4, true);
    return total;
  }

  #scatter(data: Uint8Array, iovs: number, n: number): number {
    const dv = this.#view();
    const mem = this.#u8;
    let o = 0;
    for (let i = 0; i < n && o < data.length; i++) {
      const p = dv.getUint32(iovs + i * 8, true);
      const l = Math.min(dv.getUint32(iovs + i * 8 + 4, true), data.length - o);
      mem.set(data.subarray(o, o + l), p);
      o += l;
    }
    return o;
  }

  /** Reads into the guest's buffers: straight into its memory when the handle can (one iovec). */
  #readv(h: FileHandle, iovs: number, n: number, nread: number, offset?: number): MaybePromise<number> {
    if (n === 1 && h.readInto) {
      const dv = this.#view();
      const p = dv.getUint32(iovs, true);
      const target = this.#u8.subarray(p, p + dv.getUint32(iovs + 4, true));
      return andThen(h.readInto(target, offset), (got) => this.#setU32(nread, got));
    }
    return andThen(h.read(this.#iovTotal(iovs, n), offset), (d) => this.#setU32(nread, this.#scatter(d, iovs, n)));
  }

  #writeFilestat(ptr: number, st: Stat): number {
    const dv = this.#view();
    dv.setBigUint64(ptr, BigInt(st.dev ?? 0), true);
    dv.setBigUint64(ptr + 8, BigInt(st.ino), true);
    dv.setUint8(ptr + 16, FILETYPE_OF[st.type]);
    dv.setBigUint64(ptr + 24, BigInt(st.nlink), true);
    dv.setBigUint64(ptr + 32, BigInt(st.size), true);
    dv.setBigUint64(ptr + 40, st.atimeNs, true);
    dv.setBigUint64(ptr + 48, st.mtimeNs, true);
    dv.setBigUint64(ptr + 56, st.ctimeNs, true);
    return ERRNO.SUCCESS;
  }

  /** Times for fd/path_filestat_set_times, validated as WASI requires. */
  #times(atim: bigint, mtim: bigint, fst: number): [bigint | undefined, bigint | undefined] {
    if ((fst & FSTFLAGS.ATIM && fst & FSTFLAGS.ATIM_NOW) || (fst & FSTFLAGS.MTIM && fst & FSTFLAGS.MTIM_NOW) || fst & ~15)
      throw fsError("EINVAL", "conflicting time flags");
    const now = nowNs();
    const a = fst & FSTFLAGS.ATIM_NOW ? now : fst & FSTFLAGS.ATIM ? atim : undefined;
    const m = fst & FSTFLAGS.MTIM_NOW ? now : fst & FSTFLAGS.MTIM ? mtim : undefined;
    return [a, m];
  }

  #lstat(path: string): MaybePromise<Stat> {
    return this.#fs.lstat ? this.#fs.lstat(path) : this.#fs.stat(path);
  }

  #syscalls(): Record<string, (...a: never[]) => MaybePromise<number>> {
    const fs = this.#fs;
    const S = ERRNO.SUCCESS;
    const sizes = (list: Uint8Array[], countPtr: number, sizePtr: number): number => {
      this.#setU32(countPtr, list.length);
      return this.#setU32(sizePtr, list.reduce((n, b) => n + b.length, 0));
    };
    const strings = (list: Uint8Array[], ptrs: number, buf: number): number => {
      const dv = this.#view();
      for (const b of list) {
        dv.setUint32(ptrs, buf, true);
        this.#u8.set(b, buf);
        ptrs += 4;
        buf += b.length;
      }
      return S;
    };

    return {
      args_sizes_get: (c: number, s: number) => sizes(this.#args, c, s),
      args_get: (p: number, b: number) => strings(this.#args, p, b),
      environ_sizes_get: (c: number, s: number) => sizes(this.#env, c, s),
      environ_get: (p: number, b: number) => strings(this.#env, p, b),

      clock_res_get: (id: number, ptr: number) => {
        if (id > CLOCK.THREAD_CPUTIME) return ERRNO.INVAL;
        return this.#setU64(ptr, id === CLOCK.REALTIME ? 1_000_000n : 1_000n);
      },
      clock_time_get: (id: number, _precision: bigint, ptr: number) => {
        if (id === CLOCK.REALTIME) return this.#setU64(ptr, nowNs() + BigInt(Math.floor((performance.now() % 1) * 1e6)));
        if (id > CLOCK.THREAD_CPUTIME) return ERRNO.INVAL;
        return this.#setU64(ptr, BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6)));
      },

      fd_advise: (fd: number, _off: bigint, _len: bigint, advice: number) => {
        this.#file(fd, RIGHTS.FD_ADVISE);
        return advice > 5 ? ERRNO.INVAL : S;
      },
      fd_allocate: (fd: number, off: bigint, len: bigint) => {
        const e = this.#file(fd, RIGHTS.FD_ALLOCATE);
        const end = Number(off + len);
        return andThen(e.handle.stat(), (st) => (end > st.size ? andThen(e.handle.truncate(end), () => S) : S));
      },
      fd_close: (fd: number) => {
        const e = this.#fd(fd);
        this.fds[fd] = undefined;
        return e.handle ? andThen(e.handle.close(), () => S) : S;
      },
      fd_datasync: (fd: number) => andThen(this.#file(fd, RIGHTS.FD_DATASYNC).handle.sync(), () => S),
      fd_sync: (fd: number) => {
        const e = this.#fd(fd, RIGHTS.FD_SYNC);
        return e.handle ? andThen(e.handle.sync(), () => S) : S;
      },
      fd_fdstat_get: (fd: number, ptr: number) => {
        const e = this.#fd(fd);
        const dv = this.#view();
        dv.setUint8(ptr, e.type);
        dv.setUint16(ptr + 2, e.flags, true);
        dv.setBigUint64(ptr + 8, e.base, true);
        dv.setBigUint64(ptr + 16, e.inheriting, true);
        return S;
      },
      fd_fdstat_set_flags: (fd: number, flags: number) => {
        const e = this.#fd(fd, RIGHTS.FD_FDSTAT_SET_FLAGS);
        if (flags & ~31) return ERRNO.INVAL;
        e.flags = flags;
        return S;
      },
      fd_fdstat_set_rights: (fd: number, base: bigint, inheriting: bigint) => {
        const e = this.#fd(fd);
        if ((base & ~e.base) !== 0n || (inheriting & ~e.inheriting) !== 0n) return ERRNO.NOTCAPABLE;
        e.base = base;
        e.inheriting = inheriting;
        return S;
      },
      fd_filestat_get: (fd: number, ptr: number) => {
        const e = this.#fd(fd, RIGHTS.FD_FILESTAT_GET);
        if (e.stdio !== undefined) {
          this.#mem().fill(0, ptr, ptr + 64);
          this.#view().setUint8(ptr + 16, FILETYPE.CHARACTER_DEVICE);
          return S;
        }
        return andThen(e.handle ? e.handle.stat() : fs.stat(e.path), (st) => this.#writeFilestat(ptr, st));
      },
      fd_filestat_set_size: (fd: number, size: bigint) => {
        const e = this.#file(fd, RIGHTS.FD_FILESTAT_SET_SIZE);
        if (size > BigInt(Number.MAX_SAFE_INTEGER)) return ERRNO.FBIG;
        return andThen(e.handle.truncate(Number(size)), () => S);
      },
      fd_filestat_set_times: (fd: number, atim: bigint, mtim: bigint, fst: number) => {
        const e = this.#fd(fd, RIGHTS.FD_FILESTAT_SET_TIMES);
        const [a, m] = this.#times(atim, mtim, fst);
        if (e.handle?.setTimes) return andThen(e.handle.setTimes(a, m), () => S);
        if (!fs.setTimes) return ERRNO.NOSYS;
        return andThen(fs.setTimes(e.path, a, m), () => S);
      },
      fd_pread: (fd: number, iovs: number, n: number, off: bigint, nread: number) => {
        const e = this.#file(fd, RIGHTS.FD_READ | RIGHTS.FD_SEEK);
        if (off > I64_MAX) return ERRNO.INVAL;
        return this.#readv(e.handle, iovs, n, nread, Number(off));
      },
      fd_pwrite: (fd: number, iovs: number, n: number, off: bigint, nwritten: number) => {
        const e = this.#file(fd, RIGHTS.FD_WRITE | RIGHTS.FD_SEEK);
        if (off > I64_MAX) return ERRNO.INVAL;
        return andThen(e.handle.write(this.#gather(iovs, n), Number(off)), (w) => this.#setU32(nwritten, w));
      },
      fd_prestat_get: (fd: number, ptr: number) => {
        const e = this.#fd(fd);
        if (e.preopen === undefined) return ERRNO.BADF;
        this.#view().setUint8(ptr, PREOPENTYPE_DIR);
        return this.#setU32(ptr + 4, enc.encode(e.preopen).length);
      },
      fd_prestat_dir_name: (fd: number, ptr: number, len: number) => {
        const e = this.#fd(fd);
        if (e.preopen === undefined) return ERRNO.BADF;
        const name = enc.encode(e.preopen);
        if (len < name.length) return ERRNO.NAMETOOLONG;
        this.#mem().set(name, ptr);
        return S;
      },
      fd_read: (fd: number, iovs: number, n: number, nread: number) => {
        const e = this.#fd(fd);
        if (e.stdio === 0) return andThen(this.#stdin(this.#iovTotal(iovs, n)), (d) => this.#setU32(nread, this.#scatter(d, iovs, n)));
        if (e.stdio !== undefined) return ERRNO.BADF;
        return this.#readv(this.#file(fd, RIGHTS.FD_READ).handle, iovs, n, nread);
      },
      fd_write: (fd: number, iovs: number, n: number, nwritten: number) => {
        const e = this.#fd(fd);
        if (e.stdio !== undefined) {
          if (e.stdio === 0) return ERRNO.BADF;
          const data = this.#gather(iovs, n);
          (e.stdio === 1 ? this.#stdout : this.#stderr)(data);
          return this.#setU32(nwritten, data.length);
        }
        const f = this.#file(fd, RIGHTS.FD_WRITE);
        const data = this.#gather(iovs, n);
        if (f.flags & FDFLAGS.APPEND) {
          if (f.handle.append) return andThen(f.handle.append(data), (w) => this.#setU32(nwritten, w));
          return andThen(f.handle.stat(), (st) => andThen(f.handle.write(data, st.size), (w) => {
            f.handle.position = st.size + w;
            return this.#setU32(nwritten, w);
          }));
        }
        return andThen(f.handle.write(data), (w) => this.#setU32(nwritten, w));
      },
      fd_readdir: (fd: number, buf: number, len: number, cookie: bigint, used: number) => {
        const e = this.#dir(fd, RIGHTS.FD_READDIR);
        const fill = (): number => {
          const list = e.dirents!;
          const dv = this.#view();
          const mem = this.#u8;
          let o = 0;
          for (let i = Number(cookie); i < list.length && o < len; i++) {
            const d = list[i]!;
            const size = 24 + d.name.length;
            if (o + size <= len) {
              dv.setBigUint64(buf + o, BigInt(i + 1), true);
              dv.setBigUint64(buf + o + 8, BigInt(d.ino), true);
              dv.setUint32(buf + o + 16, d.name.length, true);
              dv.setUint32(buf + o + 20, d.type, true);
              mem.set(d.name, buf + o + 24);
            } else {
              // The last entry is cut at the buffer's end, as WASI specifies; the guest asks again.
              const entry = new Uint8Array(size);
              const ev = new DataView(entry.buffer);
              ev.setBigUint64(0, BigInt(i + 1), true);
              ev.setBigUint64(8, BigInt(d.ino), true);
              ev.setUint32(16, d.name.length, true);
              ev.setUint8(20, d.type);
              entry.set(d.name, 24);
              mem.set(entry.subarray(0, len - o), buf + o);
            }
            o = Math.min(len, o + size);
          }
          dv.setUint32(used, o, true);
          return S;
        };
        if (cookie !== 0n && e.dirents) return fill();
        return andThen(fs.readdir(e.path), (list: DirEntry[]) => andThen(fs.stat(e.path), (st) => {
          e.dirents = [
            { name: DOT, type: FILETYPE.DIRECTORY, ino: st.ino },
            { name: DOTDOT, type: FILETYPE.DIRECTORY, ino: 0 },
            ...list.map((d) => ({ name: enc.encode(d.name), type: FILETYPE_OF[d.type], ino: d.ino ?? 0 })),
          ];
          return fill();
        }));
      },
      fd_renumber: (from: number, to: number) => {
        const e = this.#fd(from);
        const old = this.#fd(to);
        this.fds[to] = e;
        this.fds[from] = undefined;
        return old.handle && old !== e ? andThen(old.handle.close(), () => S) : S;
      },
      fd_seek: (fd: number, off: bigint, whence: number, ptr: number) => {
        const e = this.#fd(fd);
        if (e.stdio !== undefined) return ERRNO.SPIPE;
        const f = this.#file(fd, off === 0n && whence === WHENCE.CUR ? RIGHTS.FD_TELL : RIGHTS.FD_SEEK);
        const h = f.handle;
        const set = (base: number): number => {
          const pos = BigInt(base) + off;
          if (pos < 0n || pos > I64_MAX) return ERRNO.INVAL;
          h.position = Number(pos);
          return this.#setU64(ptr, pos);
        };
        if (whence === WHENCE.SET) return set(0);
        if (whence === WHENCE.CUR) return set(h.position);
        if (whence === WHENCE.END) return andThen(h.stat(), (st) => set(st.size));
        return ERRNO.INVAL;
      },
      fd_tell: (fd: number, ptr: number) => {
        const e = this.#fd(fd);
        if (e.stdio !== undefined) return ERRNO.SPIPE;
        return this.#setU64(ptr, BigInt(this.#file(fd, RIGHTS.FD_TELL).handle.position));
      },

      path_create_directory: (fd: number, p: number, l: number) => {
        const { path } = this.#path(fd, p, l, RIGHTS.PATH_CREATE_DIRECTORY);
        return andThen(fs.mkdir(path), () => S);
      },
      path_filestat_get: (fd: number, flags: number, p: number, l: number, ptr: number) => {
        const { path, dir } = this.#path(fd, p, l, RIGHTS.PATH_FILESTAT_GET);
        const st = flags & LOOKUP_SYMLINK_FOLLOW || dir ? fs.stat(path) : this.#lstat(path);
        return andThen(st, (s) => {
          if (dir && s.type !== "dir") throw fsError("ENOTDIR", `${path}: not a directory`);
          return this.#writeFilestat(ptr, s);
        });
      },
      path_filestat_set_times: (fd: number, flags: number, p: number, l: number, atim: bigint, mtim: bigint, fst: number) => {
        const { path } = this.#path(fd, p, l, RIGHTS.PATH_FILESTAT_SET_TIMES);
        const [a, m] = this.#times(atim, mtim, fst);
        if (!fs.setTimes) return ERRNO.NOSYS;
        return andThen(fs.setTimes(path, a, m, { nofollow: !(flags & LOOKUP_SYMLINK_FOLLOW) }), () => S);
      },
      path_link: (ofd: number, oflags: number, op: number, ol: number, nfd: number, np: number, nl: number) => {
        // Linking through a symlink would let a guest name files by where links point: refused.
        if (oflags & LOOKUP_SYMLINK_FOLLOW) return ERRNO.INVAL;
        const from = this.#path(ofd, op, ol, RIGHTS.PATH_LINK_SOURCE);
        const to = this.#path(nfd, np, nl, RIGHTS.PATH_LINK_TARGET);
        if (!fs.link) return ERRNO.NOSYS;
        return andThen(this.#lstat(from.path), (st) => {
          if (from.dir) throw fsError(st.type === "dir" ? "EPERM" : "ENOTDIR", `${from.path}: not a directory`);
          if (to.dir) return andThen(this.#exists(to.path), (yes) => (yes ? ERRNO.EXIST : ERRNO.NOENT));
          return andThen(fs.link!(from.path, to.path), () => S);
        });
      },
      path_open: (fd: number, dirflags: number, p: number, l: number, oflags: number, base: bigint, inheriting: bigint, fdflags: number, out: number) => {
        const need = RIGHTS.PATH_OPEN | (oflags & OFLAGS.CREAT ? RIGHTS.PATH_CREATE_FILE : 0n) | (oflags & OFLAGS.TRUNC ? RIGHTS.PATH_FILESTAT_SET_SIZE : 0n);
        const parent = this.#dir(fd, need);
        const { path, dir } = this.#path(fd, p, l, need);
        const wantDir = !!(oflags & OFLAGS.DIRECTORY) || dir;
        const flags: OpenFlags = {
          read: (base & (RIGHTS.FD_READ | RIGHTS.FD_READDIR)) !== 0n,
          write: (base & RIGHTS.FD_WRITE) !== 0n,
          create: !!(oflags & OFLAGS.CREAT),
          exclusive: !!(oflags & OFLAGS.EXCL),
          truncate: !!(oflags & OFLAGS.TRUNC),
          directory: wantDir,
          nofollow: !(dirflags & LOOKUP_SYMLINK_FOLLOW),
        };
        if (wantDir && (flags.create || flags.truncate)) throw fsError(flags.create ? "EISDIR" : "EINVAL", `${path}: cannot create or truncate a directory`);
        if (flags.truncate && !flags.write) flags.write = true;
        // A handle that does not say what it is (type is optional in the contract) is asked once.
        const typed = (h: FileHandle): MaybePromise<[FileHandle, boolean]> =>
          h.type ? [h, h.type === "dir"] : andThen(h.stat(), (st) => [h, st.type === "dir"]);
        return andThen(andThen(fs.open(path, flags), typed), ([h, isDir]) => {
          if (wantDir && !isDir) {
            void h.close();
            throw fsError("ENOTDIR", `${path}: not a directory`);
          }
          const e: Fd = isDir
            ? { type: FILETYPE.DIRECTORY, path, base: base & RIGHTS_DIR & parent.inheriting, inheriting: inheriting & parent.inheriting, flags: fdflags }
            : { type: FILETYPE.REGULAR_FILE, path, handle: h, base: base & RIGHTS_FILE & parent.inheriting, inheriting: 0n, flags: fdflags };
          if (isDir) void h.close();
          let n = this.fds.indexOf(undefined, 3);
          if (n < 0) n = this.fds.length;
          this.fds[n] = e;
          return this.#setU32(out, n);
        });
      },
      path_readlink: (fd: number, p: number, l: number, buf: number, len: number, used: number) => {
        const { path } = this.#path(fd, p, l, RIGHTS.PATH_READLINK);
        if (!fs.readlink) return ERRNO.INVAL;
        return andThen(fs.readlink(path), (target) => {
          const b = enc.encode(target).subarray(0, len);
          this.#mem().set(b, buf);
          return this.#setU32(used, b.length);
        });
      },
      path_remove_directory: (fd: number, p: number, l: number) => {
        const { path } = this.#path(fd, p, l, RIGHTS.PATH_REMOVE_DIRECTORY);
        return andThen(this.#lstat(path), (st) => {
          if (st.type !== "dir") throw fsError("ENOTDIR", `${path}: not a directory`);
          return andThen(fs.remove(path), () => S);
        });
      },
      path_rename: (ofd: number, op: number, ol: number, nfd: number, np: number, nl: number) => {
        const from = this.#path(ofd, op, ol, RIGHTS.PATH_RENAME_SOURCE);
        const to = this.#path(nfd, np, nl, RIGHTS.PATH_RENAME_TARGET);
        return andThen(this.#lstat(from.path), (st) => {
          if ((from.dir || to.dir) && st.type !== "dir") throw fsError("ENOTDIR", `${from.path}: not a directory`);
          return andThen(fs.rename(from.path, to.path), () => S);
        });
      },
      path_symlink: (op: number, ol: number, fd: number, np: number, nl: number) => {
        const target = this.#str(op, ol);
        if (target.startsWith("/")) return ERRNO.PERM; // a link out of the sandbox is not a capability
        const { path, dir } = this.#path(fd, np, nl, RIGHTS.PATH_SYMLINK);
        if (!fs.symlink) return ERRNO.NOSYS;
        if (dir) {
          // A trailing slash names a directory that must exist: EEXIST if it does, ENOENT if not.
          return andThen(this.#exists(path), (yes) => (yes ? ERRNO.EXIST : ERRNO.NOENT));
        }
        return andThen(fs.symlink(target, path), () => S);
      },
      path_unlink_file: (fd: number, p: number, l: number) => {
        const { path, dir } = this.#path(fd, p, l, RIGHTS.PATH_UNLINK_FILE);
        return andThen(this.#lstat(path), (st) => {
          if (st.type === "dir") throw fsError("EISDIR", `${path}: is a directory`);
          if (dir) throw fsError("ENOTDIR", `${path}: not a directory`);
          return andThen(fs.remove(path), () => S);
        });
      },

      poll_oneoff: (inPtr: number, outPtr: number, nsubs: number, neventsPtr: number) => this.#poll(inPtr, outPtr, nsubs, neventsPtr),
      proc_exit: (code: number) => {
        throw new ProcExit(code);
      },
      proc_raise: () => ERRNO.NOSYS,
      sched_yield: () => S,
      random_get: (buf: number, len: number) => {
        const mem = this.#mem();
        for (let o = 0; o < len; o += 65536) crypto.getRandomValues(mem.subarray(buf + o, buf + Math.min(len, o + 65536)));
        return S;
      },
      sock_accept: (fd: number) => (this.#fd(fd), ERRNO.NOTSOCK),
      sock_recv: (fd: number) => (this.#fd(fd), ERRNO.NOTSOCK),
      sock_send: (fd: number) => (this.#fd(fd), ERRNO.NOTSOCK),
      sock_shutdown: (fd: number) => (this.#fd(fd), ERRNO.NOTSOCK),
    };
  }

  #exists(path: string): MaybePromise<boolean> {
    try {
      const st = this.#lstat(path);
      return isPromise(st) ? st.then(() => true, (e: unknown) => (isFsError(e, "ENOENT") ? false : Promise.reject(e))) : true;
    } catch (e) {
      if (isFsError(e, "ENOENT")) return false;
      throw e;
    }
  }

  /** poll_oneoff: stdio and files are always ready; clocks sleep (suspending the guest). */
  #poll(inPtr: number, outPtr: number, nsubs: number, neventsPtr: number): MaybePromise<number> {
    if (nsubs === 0) return ERRNO.INVAL;
    const dv = this.#view();
    const ready: { userdata: bigint; error: number; type: number; nbytes: bigint }[] = [];
    const clocks: { userdata: bigint; wakeNs: bigint }[] = [];
    const now = (id: number): bigint =>
      id === CLOCK.REALTIME ? nowNs() : BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
    for (let i = 0; i < nsubs; i++) {
      const s = inPtr + i * 48;
      const userdata = dv.getBigUint64(s, true);
      const tag = dv.getUint8(s + 8);
      if (tag === EVENTTYPE.CLOCK) {
        const id = dv.getUint32(s + 16, true);
        const timeout = dv.getBigUint64(s + 24, true);
        const abs = dv.getUint16(s + 40, true) & SUBCLOCKFLAGS_ABSTIME;
        if (id > CLOCK.THREAD_CPUTIME) ready.push({ userdata, error: ERRNO.INVAL, type: tag, nbytes: 0n });
        else clocks.push({ userdata, wakeNs: abs ? timeout : now(id) + timeout });
      } else if (tag === EVENTTYPE.FD_READ || tag === EVENTTYPE.FD_WRITE) {
        const e = this.fds[dv.getUint32(s + 16, true)];
        const nbytes = e?.stdio === 0 && tag === EVENTTYPE.FD_READ ? BigInt(this.#stdinLeft()) : 0n;
        ready.push({ userdata, error: e ? ERRNO.SUCCESS : ERRNO.BADF, type: tag, nbytes });
      } else {
        ready.push({ userdata, error: ERRNO.INVAL, type: tag, nbytes: 0n });
      }
    }
    const finish = (): number => {
      const v = this.#view();
      ready.forEach((ev, i) => {
        const o = outPtr + i * 32;
        this.#mem().fill(0, o, o + 32);
        v.setBigUint64(o, ev.userdata, true);
        v.setUint16(o + 8, ev.error, true);
        v.setUint8(o + 10, ev.type);
        v.setBigUint64(o + 16, ev.nbytes, true);
      });
      return this.#setU32(neventsPtr, ready.length);
    };
    if (ready.length || !clocks.length) return finish();
    const first = clocks.reduce((a, b) => (b.wakeNs < a.wakeNs ? b : a));
    const waitMs = Number(first.wakeNs - now(CLOCK.MONOTONIC)) / 1e6;
    const wake = (): number => {
      for (const c of clocks) if (c.wakeNs <= first.wakeNs) ready.push({ userdata: c.userdata, error: 0, type: EVENTTYPE.CLOCK, nbytes: 0n });
      return finish();
    };
    if (waitMs <= 0) return wake();
    return new Promise<number>((resolve) => setTimeout(() => resolve(wake()), Math.min(waitMs, 2 ** 31 - 1)));
  }
}

/** Syscalls that may wait on a service (or a clock) and so may suspend the guest. */
const ASYNC = new Set([
  "fd_allocate", "fd_close", "fd_datasync", "fd_sync", "fd_filestat_get", "fd_filestat_set_size",
  "fd_filestat_set_times", "fd_pread", "fd_pwrite", "fd_read", "fd_write", "fd_readdir", "fd_renumber",
  "fd_seek", "path_create_directory", "path_filestat_get", "path_filestat_set_times", "path_link",
  "path_open", "path_readlink", "path_remove_directory", "path_rename", "path_symlink",
  "path_unlink_file", "poll_oneoff",
]);

