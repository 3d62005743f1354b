// Files by absolute namespace path: read, write, append, list, stat, mkdir, remove, rename.
//
// Every call returns null/false on failure and records why in lastError() (errno, "ENOENT",
// the operation and the path), so an agent can report `path + ": " + name` and pick an exit code.

import { EEXIST, EIO, EISDIR, ENOENT, EPERM, fail } from "./errno";
import { File } from "./file";
import * as sys from "./sys";
import { dirname } from "./path";
import { decodeUtf8 } from "./utf8";

export { TYPE_DIR, TYPE_FILE, TYPE_SYMLINK, TYPE_UNKNOWN } from "./sys";

/** "file", "dir", "symlink" or "other". */
export function typeName(type: u8): string {
  if (type == sys.TYPE_FILE) return "file";
  if (type == sys.TYPE_DIR) return "dir";
  if (type == sys.TYPE_SYMLINK) return "symlink";
  return "other";
}

/** What stat() reports. */
export class Stat {
  type: u8;
  size: u64;
  /** Modification time, nanoseconds since the epoch (0 if the host does not keep it). */
  mtimeNs: u64;

  constructor(type: u8, size: u64, mtimeNs: u64) {
    this.type = type;
    this.size = size;
    this.mtimeNs = mtimeNs;
  }

  get isFile(): bool { return this.type == sys.TYPE_FILE; }
  get isDir(): bool { return this.type == sys.TYPE_DIR; }
  get kind(): string { return typeName(this.type); }
}

/** One listDir() entry. `type` may be TYPE_UNKNOWN if the host does not say; stat() then. */
export class DirEntry {
  name: string;
  type: u8;

  constructor(name: string, type: u8) {
    this.name = name;
    this.type = type;
  }

  get isFile(): bool { return this.type == sys.TYPE_FILE; }
  get isDir(): bool { return this.type == sys.TYPE_DIR; }
  get kind(): string { return typeName(this.type); }
}

// ---- reading ------------------------------------------------------------------------------

/** Whole file as bytes, or null (see lastError()). Reads to end of file, whatever stat says. */
export function readFile(path: string): Uint8Array | null {
  const f = File.open(path, "r");
  if (f == null) return null;
  const data = f.readAll();
  f.close();
  return data;
}

/** Whole file decoded as UTF-8 (each invalid sequence becomes U+FFFD), or null. */
export function readText(path: string): string | null {
  const bytes = readFile(path);
  if (bytes == null) return null;
  return decodeUtf8(bytes.dataStart, <usize>bytes.length);
}

// ---- writing ------------------------------------------------------------------------------

function put(path: string, ptr: usize, len: usize, append: bool): bool {
  const ref = sys.resolve(path);
  if (ref == null) return false;
  const fd = append
    ? sys.open(ref, sys.O_CREAT, sys.FD_APPEND, sys.RIGHTS_WRITE)
    : sys.open(ref, sys.O_CREAT | sys.O_TRUNC, 0, sys.RIGHTS_WRITE);
  if (fd < 0) {
    fail(<u16>-fd, "open", path);
    return false;
  }
  const err = sys.writeAll(<u32>fd, ptr, len);
  const closeErr = sys.close(<u32>fd);
  if (err != 0) {
    fail(err, "write", path);
    return false;
  }
  if (closeErr != 0) {
    fail(closeErr, "close", path);
    return false;
  }
  return true;
}

/** Creates or truncates `path` and writes `data`. */
export function writeFile(path: string, data: Uint8Array): bool {
  return put(path, data.dataStart, <usize>data.length, false);
}

/** Creates or truncates `path` and writes `text` as UTF-8. */
export function writeText(path: string, text: string): bool {
  const bytes = String.UTF8.encode(text);
  return put(path, changetype<usize>(bytes), <usize>bytes.byteLength, false);
}

/** Appends `data` (creating the file if needed) with one write. */
export function appendFile(path: string, data: Uint8Array): bool {
  return put(path, data.dataStart, <usize>data.length, true);
}

/** Appends `text` as UTF-8 (creating the file if needed) with one write. */
export function appendText(path: string, text: string): bool {
  const bytes = String.UTF8.encode(text);
  return put(path, changetype<usize>(bytes), <usize>bytes.byteLength, true);
}

// ---- directories and metadata --------------------------------------------------------------

/** Entries of a directory ("." and ".." left out), in the host's order; or null. */
export function listDir(path: string): DirEntry[] | null {
  const ref = sys.resolve(path);
  if (ref == null) return null;
  const fd = sys.open(ref, sys.O_DIRECTORY, 0, sys.RIGHTS_DIR);
  if (fd < 0) {
    fail(<u16>-fd, "open", path);
    return null;
  }
  const out = new Array<DirEntry>();
  let cap: i32 = 4096;
  let buf = new ArrayBuffer(cap);
  let cookie: u64 = 0;
  while (true) {
    const base = changetype<usize>(buf);
    const used = sys.readdir(<u32>fd, base, <usize>cap, cookie);
    if (used < 0) {
      sys.close(<u32>fd);
      fail(<u16>-used, "readdir", path);
      return null;
    }
    let off: usize = 0;
    let parsed = false;
    while (off + sys.DIRENT_SIZE <= <usize>used) {
      const next = load<u64>(base + off);
      const namlen = <usize>load<u32>(base + off, 16);
      const type = load<u8>(base + off, 20);
      if (off + sys.DIRENT_SIZE + namlen > <usize>used) break; // cut off: fetch again from cookie
      const name = decodeUtf8(base + off + sys.DIRENT_SIZE, namlen);
      if (name != "." && name != "..") out.push(new DirEntry(name, type));
      cookie = next;
      off += sys.DIRENT_SIZE + namlen;
      parsed = true;
    }
    if (<usize>used < <usize>cap) break; // a short buffer means the end of the directory
    if (!parsed) {
      // One entry larger than the buffer: grow, within reason.
      if (cap >= 1 << 20) {
        sys.close(<u32>fd);
        fail(EIO, "readdir", path);
        return null;
      }
      cap *= 2;
      buf = new ArrayBuffer(cap);
    }
  }
  sys.close(<u32>fd);
  return out;
}

/** Type, size and mtime of `path` (symlinks followed), or null. */
export function stat(path: string): Stat | null {
  const ref = sys.resolve(path);
  if (ref == null) return null;
  const st = memory.data(<i32>sys.FILESTAT_SIZE, 8);
  const err = sys.stat(ref, st);
  if (err != 0) {
    fail(err, "stat", path);
    return null;
  }
  return new Stat(
    load<u8>(st, sys.FILESTAT_TYPE),
    load<u64>(st, sys.FILESTAT_SIZE_FIELD),
    load<u64>(st, sys.FILESTAT_MTIM),
  );
}

/** True when `path` names anything (false for any failure; lastError() says which). */
export function exists(path: string): bool {
  return stat(path) != null;
}

/** Creates a directory; with `recursive`, also its missing parents, and an existing dir is fine. */
export function mkdir(path: string, recursive: bool = false): bool {
  const ref = sys.resolve(path);
  if (ref == null) return false;
  const err = sys.mkdir(ref);
  if (err == 0) return true;
  if (recursive) {
    if (err == EEXIST) {
      const st = stat(path);
      if (st != null && st.isDir) return true;
      fail(EEXIST, "mkdir", path);
      return false;
    }
    const parent = dirname(path);
    if (err == ENOENT && parent != "/" && mkdir(parent, true)) {
      const again = sys.mkdir(ref);
      if (again == 0 || again == EEXIST) return true;
      fail(again, "mkdir", path);
      return false;
    }
  }
  fail(err, "mkdir", path);
  return false;
}

/** Removes a file, or an empty directory. */
export function remove(path: string): bool {
  const ref = sys.resolve(path);
  if (ref == null) return false;
  const err = sys.unlink(ref);
  if (err == 0) return true;
  if (err == EISDIR || err == EPERM) {
    // unlink refuses directories (EISDIR on Linux, EPERM on POSIX): try rmdir.
    const err2 = sys.rmdir(ref);
    if (err2 == 0) return true;
    fail(err2, "remove", path);
    return false;
  }
  fail(err, "remove", path);
  return false;
}

/** Renames (moves) `from` to `to`, replacing a file at `to`. */
export function rename(from: string, to: string): bool {
  const a = sys.resolve(from);
  if (a == null) return false;
  const b = sys.resolve(to);
  if (b == null) return false;
  const err = sys.rename(a, b);
  if (err == 0) return true;
  fail(err, "rename", from + " -> " + to);
  return false;
}
