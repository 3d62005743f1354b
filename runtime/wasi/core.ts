// The WASI guest's state and shared helpers; the syscalls live in one module per concern.
import { FsError, fsError, isFsError } from "../errors.ts";
import type { FileHandle, FileService, MaybePromise, Stat } from "../types.ts";
import { andThen, isPromise, lstatOf, nowNs } from "../types.ts";
import { concat } from "../bytes.ts";
import { below, MAX_NAME, tooLong } from "../path.ts";
import { ERRNO, ERRNO_OF, FDFLAGS, FILESTAT, FILETYPE, FSTFLAGS, IOVEC, RIGHTS_ALL, RIGHTS_DIR, RIGHTS_STDIO } from "./defs.ts";

/** A syscall as the guest calls it: numbers (and bigints) in, an errno out, now or later. */
export type Syscall = (...a: never[]) => MaybePromise<number>;

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
  /** Without JSPI: clock waits (poll_oneoff) block the thread through this instead of answering a Promise. */
  blockingSleep?: (ms: number) => void;
}

export interface Fd {
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

export const enc = new TextEncoder();
export const DOT = enc.encode(".");
export const DOTDOT = enc.encode("..");
const dec = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
export const FILETYPE_OF = { file: FILETYPE.REGULAR_FILE, dir: FILETYPE.DIRECTORY, symlink: FILETYPE.SYMBOLIC_LINK } as const;
export const I64_MAX = (1n << 63n) - 1n;

/**
 * Maps anything a syscall threw to an errno; process-ending signals pass through. A service that
 * fails with something other than an FsError (a network error, say) is an I/O error to the guest.
 */
export function errnoOf(e: unknown): number {
  if (e instanceof FsError) return ERRNO_OF[e.code] ?? ERRNO.IO;
  if (e instanceof ProcExit || e instanceof LimitExceeded) throw e;
  // Out-of-bounds guest pointers surface as RangeErrors from DataView and typed-array access.
  if (e instanceof RangeError) return ERRNO.FAULT;
  return ERRNO.IO;
}

/**
 * A WASI guest's state and the helpers every syscall group uses (runtime/wasi/{fd,path,clock,
 * proc,poll}.ts): guest memory access (every pointer checked), the fd table and rights, path
 * resolution against a directory fd. Members are public for those modules; the host's users see
 * WasiHost.
 */
export class WasiCore {
  memory: WebAssembly.Memory | null = null;
  readonly fds: (Fd | undefined)[] = [];
  readonly fs: FileService;
  args: Uint8Array[];
  env: Uint8Array[];
  stdin: StdinReader;
  stdinLeft: () => number;
  stdout: (b: Uint8Array) => void;
  stderr: (b: Uint8Array) => void;
  guard: <T>(p: Promise<T>) => Promise<T>;
  blockingSleep?: (ms: number) => void;
  buf: ArrayBuffer | null = null;
  u8 = new Uint8Array(0);
  dv = new DataView(new ArrayBuffer(0));

  constructor(o: WasiOptions) {
    this.fs = o.fs;
    this.args = (o.args ?? []).map((a) => enc.encode(a + "\0"));
    this.env = Object.entries(o.env ?? {}).map(([k, v]) => enc.encode(`${k}=${v}\0`));
    const input = o.stdin ?? new Uint8Array(0);
    if (input instanceof Uint8Array) {
      let pos = 0;
      this.stdin = (max) => input.subarray(pos, (pos += Math.min(max, input.length - pos)));
      this.stdinLeft = () => input.length - pos;
    } else {
      this.stdin = input;
      this.stdinLeft = () => 0;
    }
    this.stdout = o.stdout ?? (() => {});
    this.stderr = o.stderr ?? (() => {});
    this.guard = o.guard ?? ((p) => p);
    this.blockingSleep = o.blockingSleep;
    const stdio = (n: 0 | 1 | 2): Fd => ({ type: FILETYPE.CHARACTER_DEVICE, path: "", stdio: n, base: RIGHTS_STDIO, inheriting: 0n, flags: n ? FDFLAGS.APPEND : 0 });
    this.fds.push(stdio(0), stdio(1), stdio(2));
    if (o.preopen !== null) this.fds.push({ type: FILETYPE.DIRECTORY, path: o.preopen ?? "/", base: RIGHTS_DIR, inheriting: RIGHTS_ALL, flags: 0, preopen: "/" });
  }

  // Guest memory views, renewed when memory grows.
  mem(): Uint8Array {
    const b = this.memory!.buffer;
    if (b !== this.buf) {
      this.buf = b;
      this.u8 = new Uint8Array(b);
      this.dv = new DataView(b);
    }
    return this.u8;
  }
  view(): DataView {
    this.mem();
    return this.dv;
  }
  /**
   * The guest's bytes [ptr, ptr+len), which must lie inside its memory (EFAULT otherwise). A view,
   * not a copy. Pointers arrive as signed i32s and are read as unsigned.
   */
  bytes(ptr: number, len: number): Uint8Array {
    const mem = this.mem();
    const p = ptr >>> 0;
    if (p + len > mem.length) throw fsError("EFAULT", `${len} bytes at ${p} lie outside guest memory (${mem.length} bytes)`);
    return mem.subarray(p, p + len);
  }
  str(ptr: number, len: number): string {
    const b = this.bytes(ptr, len);
    try {
      return dec.decode(b);
    } catch {
      throw new FsError("EILSEQ", "path is not valid UTF-8");
    }
  }
  setU32(ptr: number, v: number): number {
    this.view().setUint32(ptr, v, true);
    return ERRNO.SUCCESS;
  }
  setU64(ptr: number, v: bigint): number {
    this.view().setBigUint64(ptr, v, true);
    return ERRNO.SUCCESS;
  }

  /** The open fd, which must hold `right` (ENOTCAPABLE otherwise). */
  fd(fd: number, right = 0n): Fd {
    const e = this.fds[fd];
    if (!e) throw fsError("EBADF", `fd ${fd} is not open`);
    if ((e.base & right) !== right) throw fsError("ENOTCAPABLE", `fd ${fd} lacks the right for this call`);
    return e;
  }
  file(fd: number, right = 0n): Fd & { handle: FileHandle } {
    const e = this.fd(fd);
    if (e.type === FILETYPE.DIRECTORY) throw fsError("EISDIR", `fd ${fd} is a directory`);
    if (!e.handle) throw fsError("ESPIPE", `fd ${fd} is not a file`);
    this.fd(fd, right);
    return e as Fd & { handle: FileHandle };
  }
  dir(fd: number, right = 0n): Fd {
    const e = this.fd(fd);
    if (e.type !== FILETYPE.DIRECTORY) throw fsError("ENOTDIR", `fd ${fd} is not a directory`);
    return this.fd(fd, right);
  }

  /**
   * Resolves a guest path against a directory fd. Absolute paths and `..` above the directory are
   * refused (EPERM, WASI's capability rule). `dir` is true when the path ends in a slash.
   */
  path(fd: number, ptr: number, len: number, right: bigint): { path: string; dir: boolean } {
    const base = this.dir(fd, right);
    const s = this.str(ptr, len);
    if (s.includes("\0")) throw fsError("EINVAL", "path contains NUL");
    if (s.startsWith("/")) throw fsError("EPERM", `${s}: absolute paths are not capabilities`);
    if (s === "") throw fsError("ENOENT", "empty path");
    // Fast path: a plain relative path ("a/b.txt") needs no folding.
    if (!s.includes("//") && !s.startsWith(".") && !s.includes("/.") && !s.endsWith("/")) {
      // (The Namespace checks every name of a path it has not seen before: only the length here.)
      if (s.length > MAX_NAME / 3) for (const seg of s.split("/")) if (tooLong(seg)) throw fsError("ENAMETOOLONG", `${seg.slice(0, 32)}…: name too long`);
      return { path: base.path === "/" ? "/" + s : `${base.path}/${s}`, dir: false };
    }
    const stack = below(base.path === "/" ? [] : base.path.slice(1).split("/"), s);
    return { path: "/" + stack.join("/"), dir: s.endsWith("/") || /(^|\/)\.\.?$/.test(s) };
  }

  /**
   * The guest's iovec array: each buffer checked to lie inside guest memory (EFAULT), and the total
   * cut at the size of guest memory, so no host buffer is ever larger than the guest (a short
   * transfer, which POSIX allows). Declared lengths are never trusted.
   */
  iovecs(iovs: number, n: number): { ptr: number; len: number }[] {
    const mem = this.mem();
    const table = this.bytes(iovs, n * IOVEC.SIZE);
    const dv = new DataView(table.buffer, table.byteOffset, table.byteLength);
    const out: { ptr: number; len: number }[] = [];
    let room = mem.length;
    for (let i = 0; i < n; i++) {
      const ptr = dv.getUint32(i * IOVEC.SIZE + IOVEC.buf, true);
      const len = dv.getUint32(i * IOVEC.SIZE + IOVEC.len, true);
      if (ptr + len > mem.length) throw fsError("EFAULT", `iovec ${i}: ${len} bytes at ${ptr} lie outside guest memory (${mem.length} bytes)`);
      if (room === 0) continue;
      out.push({ ptr, len: Math.min(len, room) });
      room -= Math.min(len, room);
    }
    return out;
  }

  /** The one buffer of a single iovec, checked as iovecs() checks them (the common case, no allocation). */
  iovec1(iovs: number): Uint8Array {
    const table = this.bytes(iovs, IOVEC.SIZE);
    const dv = this.dv;
    const ptr = dv.getUint32(table.byteOffset + IOVEC.buf, true);
    const len = dv.getUint32(table.byteOffset + IOVEC.len, true);
    if (ptr + len > this.u8.length) throw fsError("EFAULT", `iovec 0: ${len} bytes at ${ptr} lie outside guest memory (${this.u8.length} bytes)`);
    return this.u8.subarray(ptr, ptr + len);
  }

  gather(iovs: number, n: number): Uint8Array {
    if (n === 1) return this.iovec1(iovs).slice();
    const list = this.iovecs(iovs, n);
    const mem = this.u8;
    return concat(list.map((v) => mem.subarray(v.ptr, v.ptr + v.len)));
  }

  iovTotal(list: { ptr: number; len: number }[]): number {
    let total = 0;
    for (const v of list) total += v.len;
    return total;
  }

  scatter(data: Uint8Array, list: { ptr: number; len: number }[]): number {
    const mem = this.mem();
    let o = 0;
    for (let i = 0; i < list.length && o < data.length; i++) {
      const l = Math.min(list[i]!.len, data.length - o);
      mem.set(data.subarray(o, o + l), list[i]!.ptr);
      o += l;
    }
    return o;
  }

  /** Reads into the guest's buffers: straight into its memory when the handle can (one iovec). */
  readv(h: FileHandle, iovs: number, n: number, nread: number, offset?: number): MaybePromise<number> {
    if (n === 1 && h.readInto) return andThen(h.readInto(this.iovec1(iovs), offset), (got) => this.setU32(nread, got));
    const list = this.iovecs(iovs, n);
    return andThen(h.read(this.iovTotal(list), offset), (d) => this.setU32(nread, this.scatter(d, list)));
  }

  writeFilestat(ptr: number, st: Stat): number {
    const dv = this.view();
    dv.setBigUint64(ptr + FILESTAT.dev, BigInt(st.dev ?? 0), true);
    dv.setBigUint64(ptr + FILESTAT.ino, BigInt(st.ino), true);
    dv.setUint8(ptr + FILESTAT.filetype, FILETYPE_OF[st.type]);
    dv.setBigUint64(ptr + FILESTAT.nlink, BigInt(st.nlink), true);
    dv.setBigUint64(ptr + FILESTAT.size, BigInt(st.size), true);
    dv.setBigUint64(ptr + FILESTAT.atim, st.atimeNs, true);
    dv.setBigUint64(ptr + FILESTAT.mtim, st.mtimeNs, true);
    dv.setBigUint64(ptr + FILESTAT.ctim, st.ctimeNs, true);
    return ERRNO.SUCCESS;
  }

  /** Times for fd/path_filestat_set_times, validated as WASI requires. */
  times(atim: bigint, mtim: bigint, fst: number): [bigint | undefined, bigint | undefined] {
    if ((fst & FSTFLAGS.ATIM && fst & FSTFLAGS.ATIM_NOW) || (fst & FSTFLAGS.MTIM && fst & FSTFLAGS.MTIM_NOW) || fst & ~15)
      throw fsError("EINVAL", "conflicting time flags");
    const now = nowNs();
    const a = fst & FSTFLAGS.ATIM_NOW ? now : fst & FSTFLAGS.ATIM ? atim : undefined;
    const m = fst & FSTFLAGS.MTIM_NOW ? now : fst & FSTFLAGS.MTIM ? mtim : undefined;
    return [a, m];
  }

  lstat(path: string): MaybePromise<Stat> {
    return lstatOf(this.fs, path);
  }

  exists(path: string): MaybePromise<boolean> {
    try {
      const st = this.lstat(path);
      return isPromise(st) ? st.then(() => true, (e: unknown) => (isFsError(e, "ENOENT") ? false : Promise.reject(e))) : true;
    } catch (e) {
      if (isFsError(e, "ENOENT")) return false;
      throw e;
    }
  }
}
