// The raw layer: preopen discovery, path resolution and thin wrappers over WASI preview1 calls.
//
// Nothing here allocates except `resolve()` (which encodes the path once); the wrappers take
// raw pointers and return errno codes (or negative errnos where a count/fd is the result), so a
// hot loop can pre-resolve its paths and run allocation-free. `fs.ts` builds the friendly API
// on top of this.

import {
  fd_close,
  fd_fdstat_get,
  fd_filestat_get,
  fd_prestat_dir_name,
  fd_prestat_get,
  fd_read,
  fd_readdir,
  fd_write,
  path_create_directory,
  path_filestat_get,
  path_open,
  path_remove_directory,
  path_rename,
  path_unlink_file,
  fdstat,
  filestat,
  prestat,
  rights,
} from "bindings/wasi_snapshot_preview1";
import { EBADF, ENOTCAPABLE, fail } from "./errno";
import { normalize } from "./path";
import { decodeUtf8Z } from "./utf8";

// ---- constants --------------------------------------------------------------------------

/** File types as WASI reports them (dirent.d_type, filestat.filetype). */
export const TYPE_UNKNOWN: u8 = 0;
export const TYPE_DIR: u8 = 3;
export const TYPE_FILE: u8 = 4;
export const TYPE_SYMLINK: u8 = 7;

/** path_open oflags. */
export const O_CREAT: u16 = 1;
export const O_DIRECTORY: u16 = 2;
export const O_EXCL: u16 = 4;
export const O_TRUNC: u16 = 8;

/** fdflags. */
export const FD_APPEND: u16 = 1;

/** Rights asked for when opening, masked by what the preopen may hand out. */
export const RIGHTS_READ: u64 =
  rights.FD_READ | rights.FD_SEEK | rights.FD_TELL | rights.FD_FILESTAT_GET | rights.FD_ADVISE |
  rights.FD_FDSTAT_SET_FLAGS | rights.POLL_FD_READWRITE;
export const RIGHTS_WRITE: u64 =
  RIGHTS_READ | rights.FD_WRITE | rights.FD_DATASYNC | rights.FD_SYNC | rights.FD_ALLOCATE |
  rights.FD_FILESTAT_SET_SIZE | rights.FD_FILESTAT_SET_TIMES;
export const RIGHTS_DIR: u64 =
  rights.FD_READDIR | rights.FD_FILESTAT_GET | rights.FD_FDSTAT_SET_FLAGS | rights.PATH_OPEN |
  rights.PATH_FILESTAT_GET | rights.PATH_CREATE_FILE | rights.PATH_CREATE_DIRECTORY;

/** Byte size of a WASI filestat, and the offsets of the fields the SDK reads. */
export const FILESTAT_SIZE: usize = 64;
export const FILESTAT_TYPE: usize = 16;
export const FILESTAT_SIZE_FIELD: usize = 32;
export const FILESTAT_MTIM: usize = 48;

/** Byte size of a dirent header (the name follows it). */
export const DIRENT_SIZE: usize = 24;

// Out-parameter scratch for single calls (no threads, no reentrancy).
const OUT = memory.data(32, 8);

// ---- preopens -------------------------------------------------------------------------------

class Preopen {
  /** Normalised namespace prefix without the leading "/" ("" for the root preopen). */
  prefix: string;
  fd: u32;
  /** Rights a file opened beneath it may carry (all ones when the host does not say). */
  inheriting: u64;

  constructor(prefix: string, fd: u32, inheriting: u64) {
    this.prefix = prefix;
    this.fd = fd;
    this.inheriting = inheriting;
  }
}

let preopens: Preopen[] | null = null;

function scanPreopens(): Preopen[] {
  const found = new Array<Preopen>();
  for (let fd: u32 = 3; fd < 1024; fd++) {
    const err = fd_prestat_get(fd, changetype<prestat>(OUT));
    if (err == EBADF) break; // first unused descriptor: no more preopens
    if (err != 0 || load<u8>(OUT) != 0) continue; // not a directory preopen
    const len = <usize>load<u32>(OUT, 4);
    const name = new ArrayBuffer(<i32>len);
    if (fd_prestat_dir_name(fd, changetype<usize>(name), len) != 0) continue;
    let prefix = decodeUtf8Z(changetype<usize>(name), changetype<usize>(name) + len);
    if (prefix == "." || prefix == "./") prefix = "/";
    prefix = normalize(prefix).substring(1);
    let inheriting: u64 = u64.MAX_VALUE;
    if (fd_fdstat_get(fd, changetype<fdstat>(OUT)) == 0) {
      const granted = load<u64>(OUT, 16);
      if (granted != 0) inheriting = granted;
    }
    found.push(new Preopen(prefix, fd, inheriting));
  }
  return found;
}

function allPreopens(): Preopen[] {
  let list = preopens;
  if (list == null) {
    list = scanPreopens();
    preopens = list;
  }
  return list;
}

/** The fd of the preopen named "/", or -1 when the host gave none. */
export function rootFd(): i32 {
  const list = allPreopens();
  for (let i = 0; i < list.length; i++) if (list[i].prefix.length == 0) return <i32>list[i].fd;
  return -1;
}

// ---- resolved paths ---------------------------------------------------------------------------

/** A namespace path resolved once: the preopen fd and the UTF-8 path relative to it. */
export class PathRef {
  /** The absolute namespace path, for error messages. */
  path: string;
  /** The directory fd it is relative to. */
  fd: u32;
  /** Rights the preopen lets us ask for. */
  inheriting: u64;
  /** UTF-8 bytes of the relative path ("." for the preopen itself). */
  bytes: ArrayBuffer;

  constructor(path: string, fd: u32, inheriting: u64, rel: string) {
    this.path = path;
    this.fd = fd;
    this.inheriting = inheriting;
    this.bytes = String.UTF8.encode(rel.length > 0 ? rel : ".");
  }

  @inline get ptr(): usize {
    return changetype<usize>(this.bytes);
  }

  @inline get len(): usize {
    return <usize>this.bytes.byteLength;
  }
}

/**
 * Resolves an absolute namespace path against the preopens (longest matching prefix, by whole
 * segments). Returns null, with lastError() = ENOTCAPABLE, when no preopen covers it.
 */
export function resolve(path: string): PathRef | null {
  const rel = normalize(path).substring(1);
  const list = allPreopens();
  let best: Preopen | null = null;
  for (let i = 0; i < list.length; i++) {
    const p = list[i];
    const n = p.prefix.length;
    const covers = n == 0 || rel == p.prefix || (rel.startsWith(p.prefix) && rel.charCodeAt(n) == 0x2f);
    if (covers && (best == null || n > best.prefix.length)) best = p;
  }
  if (best == null) {
    fail(ENOTCAPABLE, "resolve", path);
    return null;
  }
  const n = best.prefix.length;
  const rest = n == 0 ? rel : rel.length > n ? rel.substring(n + 1) : "";
  return new PathRef(path, best.fd, best.inheriting, rest);
}

// ---- path calls (errno results; fd-returning calls give -errno) ------------------------------

/** path_open; returns the new fd, or -errno. Rights are masked by the preopen's grant. */
export function open(p: PathRef, oflags: u16, fdflags: u16, want: u64): i32 {
  const err = path_open(p.fd, 1 /* follow symlinks */, p.ptr, p.len, oflags, want & p.inheriting,
    oflags & O_DIRECTORY ? p.inheriting : 0, fdflags, changetype<usize>(OUT));
  return err != 0 ? -<i32>err : <i32>load<u32>(OUT);
}

/** path_filestat_get into a FILESTAT_SIZE-byte buffer at `st`. */
export function stat(p: PathRef, st: usize): u16 {
  return path_filestat_get(p.fd, 1, p.ptr, p.len, changetype<filestat>(st));
}

export function mkdir(p: PathRef): u16 {
  return path_create_directory(p.fd, p.ptr, p.len);
}

export function rmdir(p: PathRef): u16 {
  return path_remove_directory(p.fd, p.ptr, p.len);
}

export function unlink(p: PathRef): u16 {
  return path_unlink_file(p.fd, p.ptr, p.len);
}

export function rename(from: PathRef, to: PathRef): u16 {
  return path_rename(from.fd, from.ptr, from.len, to.fd, to.ptr, to.len);
}

// ---- fd calls ---------------------------------------------------------------------------------

/** One fd_read into [ptr, ptr+len); returns bytes read (0 at end of file) or -errno. */
export function read(fd: u32, ptr: usize, len: usize): isize {
  store<usize>(OUT, ptr);
  store<usize>(OUT, len, sizeof<usize>());
  const err = fd_read(fd, changetype<usize>(OUT), 1, changetype<usize>(OUT) + 2 * sizeof<usize>());
  return err != 0 ? -<isize>err : <isize>load<usize>(OUT, 2 * sizeof<usize>());
}

/** One fd_write from [ptr, ptr+len); returns bytes written or -errno. */
export function write(fd: u32, ptr: usize, len: usize): isize {
  store<usize>(OUT, ptr);
  store<usize>(OUT, len, sizeof<usize>());
  const err = fd_write(fd, changetype<usize>(OUT), 1, changetype<usize>(OUT) + 2 * sizeof<usize>());
  return err != 0 ? -<isize>err : <isize>load<usize>(OUT, 2 * sizeof<usize>());
}

/** Writes all of [ptr, ptr+len), retrying short writes; returns errno (EIO if no progress). */
export function writeAll(fd: u32, ptr: usize, len: usize): u16 {
  while (len > 0) {
    const n = write(fd, ptr, len);
    if (n < 0) return <u16>-n;
    if (n == 0) return 29; // EIO: the host accepted nothing
    ptr += <usize>n;
    len -= <usize>n;
  }
  return 0;
}

export function close(fd: u32): u16 {
  return fd_close(fd);
}

/** fd_filestat_get into a FILESTAT_SIZE-byte buffer at `st`. */
export function fstat(fd: u32, st: usize): u16 {
  return fd_filestat_get(fd, changetype<filestat>(st));
}

/** One fd_readdir from `cookie`; returns bytes used (< len means end of directory) or -errno. */
export function readdir(fd: u32, buf: usize, len: usize, cookie: u64): isize {
  const err = fd_readdir(fd, buf, len, cookie, changetype<usize>(OUT));
  return err != 0 ? -<isize>err : <isize>load<usize>(OUT);
}
