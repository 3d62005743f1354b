// A FileService over the Origin Private File System (`opfs:NAME`): persistent across reloads, no
// cross-origin isolation needed. The tree is walked with the async directory API; file contents go
// through sync access handles (dedicated workers only, where the runtime lives), which read and
// write in place: a handle reads its own writes, another handle on the same file sees them at once,
// and nothing is copied in on open or out on close. OPFS lets one access handle per file exist at a
// time, so handles on the same path share it (counted), and it is closed with the last of them.
import { fsError, isFsError } from "../runtime/errors.ts";
import { segments } from "../runtime/path.ts";
import type { DirEntry, FileHandle, FileService, OpenFlags, Stat } from "../runtime/types.ts";

type Dir = FileSystemDirectoryHandle;

/** The sync access handle API (lib.dom lacks part of it in some TypeScript versions). */
interface Access {
  read(buf: Uint8Array, o?: { at?: number }): number;
  write(buf: Uint8Array, o?: { at?: number }): number;
  truncate(size: number): void;
  getSize(): number;
  flush(): void;
  close(): void;
}

interface Shared { access: Access; users: number; mtimeMs: number }

const ms2ns = (ms: number): bigint => BigInt(Math.round(ms)) * 1_000_000n;

/** Opens (creating it) the OPFS directory NAME at the origin's root: what `opfs:NAME` mounts. */
export async function opfsService(name: string): Promise<OpfsService> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(name)) throw fsError("EINVAL", `opfs:${name}: a name is 1-63 of [A-Za-z0-9._-]`);
  if (!globalThis.navigator?.storage?.getDirectory) throw fsError("ENOTSUP", "this browser has no Origin Private File System");
  const root = await navigator.storage.getDirectory();
  return new OpfsService(await root.getDirectoryHandle(name, { create: true }));
}

/** Maps a DOMException from OPFS to the FileService error it means. */
function mapped(e: unknown, op: string, path: string): unknown {
  if (isFsError(e) || !(e instanceof DOMException)) return e;
  const code = ({
    NotFoundError: "ENOENT", TypeMismatchError: "ENOTDIR", InvalidModificationError: "ENOTEMPTY",
    NoModificationAllowedError: "EBUSY", NotAllowedError: "EACCES", QuotaExceededError: "ENOSPC",
    InvalidStateError: "EBADF",
  } as const)[e.name] ?? "EIO";
  return fsError(code, `${op} ${path}: ${e.message}`, { op, path });
}

export class OpfsService implements FileService {
  readonly #root: Dir;
  readonly #shared = new Map<string, Promise<Shared>>();
  readonly #inos = new Map<string, number>();

  constructor(root: Dir) {
    this.#root = root;
  }

  #ino(key: string): number {
    let n = this.#inos.get(key);
    if (n === undefined) this.#inos.set(key, (n = this.#inos.size + 1));
    return n;
  }

  async #dir(segs: string[], path: string, create = false): Promise<Dir> {
    let d = this.#root;
    for (const s of segs) {
      try {
        d = await d.getDirectoryHandle(s, { create });
      } catch (e) {
        throw mapped(e, "walk", path);
      }
    }
    return d;
  }

  /** The handle a path names (the root is a directory), or ENOENT. */
  async #lookup(path: string): Promise<{ parent: Dir | null; name: string; handle: FileSystemHandle; segs: string[] }> {
    const segs = segments(path);
    if (!segs.length) return { parent: null, name: "", handle: this.#root, segs };
    const parent = await this.#dir(segs.slice(0, -1), path);
    const name = segs[segs.length - 1]!;
    try {
      return { parent, name, handle: await parent.getFileHandle(name), segs };
    } catch (e) {
      if (!(e instanceof DOMException) || e.name !== "TypeMismatchError") throw mapped(e, "lookup", path);
    }
    return { parent, name, handle: await parent.getDirectoryHandle(name), segs };
  }

  async stat(path: string): Promise<Stat> {
    try {
      const { handle, segs } = await this.#lookup(path);
      const key = segs.join("/");
      if (handle.kind === "directory") return this.#statOf("dir", 0, 0, key);
      const shared = this.#shared.get(key);
      if (shared) {
        const s = await shared;
        return this.#statOf("file", s.access.getSize(), s.mtimeMs, key);
      }
      const f = await (handle as FileSystemFileHandle).getFile();
      return this.#statOf("file", f.size, f.lastModified, key);
    } catch (e) {
      throw mapped(e, "stat", path);
    }
  }

  #statOf(type: "file" | "dir", size: number, mtimeMs: number, key: string): Stat {
    const t = ms2ns(mtimeMs);
    return { type, size, ino: this.#ino(key), nlink: type === "dir" ? 2 : 1, atimeNs: t, mtimeNs: t, ctimeNs: t };
  }

  async readdir(path: string): Promise<DirEntry[]> {
    const { handle } = await this.#lookup(path).catch((e) => { throw mapped(e, "readdir", path); });
    if (handle.kind !== "directory") throw fsError("ENOTDIR", `${path}: not a directory`, { op: "readdir", path });
    const out: DirEntry[] = [];
    for await (const [name, h] of (handle as Dir & { entries(): AsyncIterable<[string, FileSystemHandle]> }).entries())
      out.push({ name, type: h.kind === "directory" ? "dir" : "file" });
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async mkdir(path: string): Promise<void> {
    const segs = segments(path);
    if (!segs.length) throw fsError("EEXIST", "/: exists", { op: "mkdir", path });
    const parent = await this.#dir(segs.slice(0, -1), path);
    const name = segs[segs.length - 1]!;
    if (await exists(parent, name)) throw fsError("EEXIST", `${path}: exists`, { op: "mkdir", path });
    await parent.getDirectoryHandle(name, { create: true }).catch((e) => { throw mapped(e, "mkdir", path); });
  }

  async remove(path: string): Promise<void> {
    const { parent, name, segs } = await this.#lookup(path).catch((e) => { throw mapped(e, "remove", path); });
    if (!parent) throw fsError("EBUSY", "/: the root cannot be removed", { op: "remove", path });
    if (this.#shared.has(segs.join("/"))) throw fsError("EBUSY", `${path}: open`, { op: "remove", path });
    await parent.removeEntry(name).catch((e) => { throw mapped(e, "remove", path); });
  }

  async rename(from: string, to: string): Promise<void> {
    const src = await this.#lookup(from).catch((e) => { throw mapped(e, "rename", from); });
    if (!src.parent) throw fsError("EBUSY", "/: the root cannot be renamed", { op: "rename", path: from });
    if (this.#shared.has(src.segs.join("/"))) throw fsError("EBUSY", `${from}: open`, { op: "rename", path: from });
    const dsegs = segments(to);
    if (!dsegs.length) throw fsError("EBUSY", "/: exists", { op: "rename", path: to });
    const dparent = await this.#dir(dsegs.slice(0, -1), to);
    const dname = dsegs[dsegs.length - 1]!;
    const move = (src.handle as FileSystemHandle & { move?(d: Dir, n: string): Promise<void> }).move;
    if (!move) throw fsError("ENOSYS", "this browser cannot move OPFS entries", { op: "rename", path: from });
    // POSIX rename replaces a file at the destination; OPFS move would fail on a directory there.
    const there = await kindOf(dparent, dname);
    if (there === "directory" && src.handle.kind === "file") throw fsError("EISDIR", `${to}: is a directory`, { op: "rename", path: to });
    if (there === "file" && src.handle.kind === "directory") throw fsError("ENOTDIR", `${to}: not a directory`, { op: "rename", path: to });
    if (there === "directory") await dparent.removeEntry(dname).catch((e) => { throw mapped(e, "rename", to); });
    await move.call(src.handle, dparent, dname).catch((e: unknown) => { throw mapped(e, "rename", from); });
    this.#inos.delete(dsegs.join("/"));
  }

  async open(path: string, flags: OpenFlags): Promise<FileHandle> {
    const segs = segments(path);
    const key = segs.join("/");
    const write = !!(flags.write || flags.append || flags.truncate);
    if (!segs.length) return dirHandle(this.#statOf("dir", 0, 0, ""), path);
    const parent = await this.#dir(segs.slice(0, -1), path);
    const name = segs[segs.length - 1]!;
    const kind = await kindOf(parent, name);
    if (kind === "directory") {
      if (write) throw fsError("EISDIR", `${path}: is a directory`, { op: "open", path });
      return dirHandle(this.#statOf("dir", 0, 0, key), path);
    }
    if (flags.directory) throw fsError(kind ? "ENOTDIR" : "ENOENT", `${path}: not a directory`, { op: "open", path });
    if (kind && flags.create && flags.exclusive) throw fsError("EEXIST", `${path}: exists`, { op: "open", path });
    if (!kind && !flags.create) throw fsError("ENOENT", `${path}: no such file`, { op: "open", path });
    const shared = await this.#acquire(key, parent, name, path);
    if (flags.truncate) shared.access.truncate(0), (shared.mtimeMs = Date.now());
    return this.#fileHandle(shared, key, path, write, !!flags.append);
  }

  #acquire(key: string, parent: Dir, name: string, path: string): Promise<Shared> {
    let p = this.#shared.get(key);
    if (!p) {
      p = (async () => {
        const fh = await parent.getFileHandle(name, { create: true });
        const file = await fh.getFile();
        const access = await (fh as FileSystemFileHandle & { createSyncAccessHandle(): Promise<Access> }).createSyncAccessHandle();
        return { access, users: 0, mtimeMs: file.lastModified };
      })();
      this.#shared.set(key, p);
      p.catch(() => this.#shared.delete(key));
    }
    return p.then((s) => (s.users++, s), (e) => { throw mapped(e, "open", path); });
  }

  #fileHandle(s: Shared, key: string, path: string, writable: boolean, append: boolean): FileHandle {
    let closed = false;
    const live = (op: string): void => {
      if (closed) throw fsError("EBADF", `${path}: closed`, { op, path });
    };
    const canWrite = (op: string): void => {
      live(op);
      if (!writable) throw fsError("EBADF", `${path}: not open for writing`, { op, path });
    };
    const self = this;
    const h: FileHandle = {
      position: 0,
      read(length, offset) {
        live("read");
        const at = offset ?? h.position;
        const size = s.access.getSize();
        const buf = new Uint8Array(Math.max(0, Math.min(length, size - at)));
        const n = buf.length ? s.access.read(buf, { at }) : 0;
        if (offset === undefined) h.position += n;
        return n === buf.length ? buf : buf.subarray(0, n);
      },
      readInto(target, offset) {
        live("read");
        const at = offset ?? h.position;
        const n = at >= s.access.getSize() ? 0 : s.access.read(target, { at });
        if (offset === undefined) h.position += n;
        return n;
      },
      write(data, offset) {
        canWrite("write");
        const at = append ? s.access.getSize() : (offset ?? h.position);
        const n = s.access.write(data, { at });
        if (offset === undefined || append) h.position = at + n;
        s.mtimeMs = Date.now();
        return n;
      },
      stat: () => (live("stat"), self.#statOf("file", s.access.getSize(), s.mtimeMs, key)),
      truncate(size) {
        canWrite("truncate");
        s.access.truncate(size);
        s.mtimeMs = Date.now();
      },
      sync: () => (live("sync"), s.access.flush()),
      close() {
        if (closed) return;
        closed = true;
        if (--s.users === 0) {
          s.access.flush();
          s.access.close();
          self.#shared.delete(key);
        }
      },
    };
    return h;
  }
}

function dirHandle(st: Stat, path: string): FileHandle {
  const isDir = (): never => { throw fsError("EISDIR", `${path}: is a directory`, { path }); };
  return { type: "dir", position: 0, read: isDir, write: isDir, truncate: isDir, stat: () => st, sync: () => {}, close: () => {} };
}

async function kindOf(d: Dir, name: string): Promise<"file" | "directory" | null> {
  try {
    await d.getFileHandle(name);
    return "file";
  } catch (e) {
    if (!(e instanceof DOMException)) throw e;
    if (e.name === "TypeMismatchError") return "directory";
    if (e.name === "NotFoundError") return null;
    throw mapped(e, "lookup", name);
  }
}

const exists = async (d: Dir, name: string): Promise<boolean> => (await kindOf(d, name)) !== null;
