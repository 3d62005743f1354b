// mem: a shared in-memory tree. Every call answers synchronously (no Promise), handles point at the
// file node itself, so all handles of one service see each other's writes, and an unlinked file stays
// readable through handles already open (POSIX). Symlinks are followed inside the service only: a
// target that is absolute or climbs above the service root is refused (EPERM), so no link leads out.
// New names follow runtime/path's rules (well-formed Unicode, no control characters, 255 UTF-8
// bytes). Open handles are capped (EMFILE past `maxOpen`, 65,536 by default): a guest that opens
// without closing runs out of handles, not the host out of memory. Whether a handle may read or
// write is checked by the Namespace (runtime/handle.ts), once for every service.
import { fsError } from "../runtime/errors.ts";
import { checkName, segments } from "../runtime/path.ts";
import type { DirEntry, FileHandle, FileService, FileType, OpenFlags, Stat } from "../runtime/types.ts";
import { applyTimes, nowNs } from "../runtime/types.ts";

const MAX_SYMLINK_HOPS = 40;
const MAX_FILE_SIZE = 2 ** 32; // 4 GiB: past this a write answers EFBIG, not an allocation failure

interface Meta { ino: number; nlink: number; atimeNs: bigint; mtimeNs: bigint; ctimeNs: bigint }
interface FileNode extends Meta { type: "file"; data: Uint8Array; size: number }
interface DirNode extends Meta { type: "dir"; entries: Map<string, Node>; parent: DirNode | null }
interface LinkNode extends Meta { type: "symlink"; target: string }
type Node = FileNode | DirNode | LinkNode;

const EMPTY = new Uint8Array(0);

function split(path: string): string[] {
  if (path === "") return [];
  const parts = path.split("/");
  // Paths from a Namespace are already normal: take them as they are.
  if (!parts.some((p) => p === "" || p === "." || p === "..")) return parts;
  return segments(path);
}

export interface MemOptions {
  /** Open handles at most (EMFILE past it); default 65,536. */
  maxOpen?: number;
}

export const DEFAULT_MAX_OPEN = 65_536;

export class MemService implements FileService {
  #nextIno = 1;
  readonly root: DirNode;
  readonly maxOpen: number;
  /** Handles open now (shared with the handles, which give theirs back on close). */
  readonly #open = { n: 0 };

  constructor(files?: Record<string, string | Uint8Array>, options: MemOptions = {}) {
    this.maxOpen = options.maxOpen ?? DEFAULT_MAX_OPEN;
    this.root = this.#dir(null);
    for (const [path, content] of Object.entries(files ?? {})) this.writeFile(path, content, { parents: true });
  }

  #meta(): Meta {
    const t = nowNs();
    return { ino: this.#nextIno++, nlink: 1, atimeNs: t, mtimeNs: t, ctimeNs: t };
  }
  #dir(parent: DirNode | null): DirNode {
    return { ...this.#meta(), type: "dir", entries: new Map(), parent, nlink: 2 };
  }

  /**
   * Walks to the parent directory of the last segment, following symlinks on the way.
   * Returns the directory and the final name ("" for the root itself).
   */
  #walk(path: string, hops = { n: 0 }): { dir: DirNode; name: string } {
    const segs = split(path);
    let dir = this.root;
    const last = segs.length - 1;
    for (let i = 0; i < last; i++) {
      const name = segs[i]!;
      const node = dir.entries.get(name);
      if (!node) throw fsError("ENOENT", `${path}: no such file or directory`);
      if (node.type === "dir") dir = node;
      else if (node.type === "symlink") dir = this.#followDir(dir, node, path, hops);
      else throw fsError("ENOTDIR", `${path}: ${name} is not a directory`);
    }
    return { dir, name: last < 0 ? "" : segs[last]! };
  }

  /** Resolves a symlink found in `dir` that must lead to a directory. */
  #followDir(dir: DirNode, link: LinkNode, path: string, hops: { n: number }): DirNode {
    const node = this.#follow(dir, link, path, hops);
    if (!node) throw fsError("ENOENT", `${path}: dangling symlink`);
    if (node.type !== "dir") throw fsError("ENOTDIR", `${path}: not a directory`);
    return node;
  }

  /** Follows a symlink to its final node (undefined when dangling). */
  #follow(dir: DirNode, link: LinkNode, path: string, hops: { n: number }): Node | undefined {
    const r = this.#resolveLink(dir, link, path, hops);
    return r.name === "" ? r.dir : r.dir.entries.get(r.name);
  }

  /** Where a symlink points: the directory holding its target and the target's name. */
  #resolveLink(dir: DirNode, link: LinkNode, path: string, hops: { n: number }): { dir: DirNode; name: string } {
    let d = dir;
    let l: LinkNode = link;
    for (;;) {
      if (++hops.n > MAX_SYMLINK_HOPS) throw fsError("ELOOP", `${path}: too many levels of symbolic links`);
      if (l.target.startsWith("/")) throw fsError("EPERM", `${path}: symlink to an absolute path leaves the mount`);
      const segs = l.target.split("/").filter((s) => s !== "" && s !== ".");
      const trailingDir = l.target.endsWith("/");
      let name = "";
      for (let i = 0; i < segs.length; i++) {
        const s = segs[i]!;
        const last = i === segs.length - 1;
        if (s === "..") {
          if (!d.parent) throw fsError("EPERM", `${path}: symlink climbs above the mount`);
          d = d.parent;
          continue;
        }
        if (last && !trailingDir) { name = s; break; }
        const node = d.entries.get(s);
        if (!node) throw fsError("ENOENT", `${path}: dangling symlink`);
        if (node.type === "dir") d = node;
        else if (node.type === "symlink") d = this.#followDir(d, node, path, hops);
        else throw fsError("ENOTDIR", `${path}: not a directory`);
      }
      if (name === "") return { dir: d, name: "" };
      const next = d.entries.get(name);
      if (next?.type !== "symlink") return { dir: d, name };
      l = next;
    }
  }

  /** The node at a path; a final symlink is followed unless `nofollow`. */
  #lookup(path: string, nofollow = false): Node {
    const hops = { n: 0 };
    const { dir, name } = this.#walk(path, hops);
    if (name === "") return dir;
    const node = dir.entries.get(name);
    if (!node) throw fsError("ENOENT", `${path}: no such file or directory`);
    if (node.type !== "symlink" || nofollow) return node;
    const target = this.#follow(dir, node, path, hops);
    if (!target) throw fsError("ENOENT", `${path}: dangling symlink`);
    return target;
  }

  #stat(n: Node): Stat {
    const size = n.type === "file" ? n.size : n.type === "symlink" ? n.target.length : n.entries.size;
    return { type: n.type, size, ino: n.ino, nlink: n.nlink, atimeNs: n.atimeNs, mtimeNs: n.mtimeNs, ctimeNs: n.ctimeNs };
  }

  #touch(n: Meta): void {
    const t = nowNs();
    n.mtimeNs = t;
    n.ctimeNs = t;
  }

  #newName(dir: DirNode, name: string, path: string): void {
    if (name === "") throw fsError("EEXIST", `${path || "/"}: exists`);
    if (dir.entries.has(name)) throw fsError("EEXIST", `${path}: exists`);
    checkName(name, path);
  }

  #handle(node: FileNode | DirNode, flags: OpenFlags): MemHandle {
    this.#open.n++;
    return new MemHandle(node, !!flags.append, this.#open);
  }

  open(path: string, flags: OpenFlags): FileHandle {
    if (this.#open.n >= this.maxOpen) throw fsError("EMFILE", `open ${path}: too many open files (${this.maxOpen})`, { op: "open", path });
    const hops = { n: 0 };
    let { dir, name } = this.#walk(path, hops);
    let node: Node | undefined = name === "" ? dir : dir.entries.get(name);
    if (node?.type === "symlink") {
      if (flags.create && flags.exclusive) throw fsError("EEXIST", `${path}: exists`);
      if (flags.nofollow) throw fsError("ELOOP", `${path}: is a symbolic link`);
      const r = this.#resolveLink(dir, node, path, hops);
      dir = r.dir;
      name = r.name;
      node = name === "" ? dir : dir.entries.get(name);
    }
    if (node) {
      if (flags.create && flags.exclusive) throw fsError("EEXIST", `${path}: exists`);
      if (node.type === "dir") {
        if (flags.write || flags.truncate || flags.append) throw fsError("EISDIR", `${path}: is a directory`);
        return this.#handle(node, flags);
      }
      if (flags.directory) throw fsError("ENOTDIR", `${path}: not a directory`);
      const file = node as FileNode;
      if (flags.truncate && file.size > 0) {
        file.size = 0;
        this.#touch(file);
      }
      return this.#handle(file, flags);
    }
    if (!flags.create) throw fsError("ENOENT", `${path}: no such file or directory`);
    if (flags.directory) throw fsError("EINVAL", `${path}: cannot create a directory with open`);
    checkName(name, path);
    const file: FileNode = { ...this.#meta(), type: "file", data: EMPTY, size: 0 };
    dir.entries.set(name, file);
    this.#touch(dir);
    return this.#handle(file, flags);
  }

  stat(path: string): Stat {
    return this.#stat(this.#lookup(path));
  }

  lstat(path: string): Stat {
    return this.#stat(this.#lookup(path, true));
  }

  readdir(path: string): DirEntry[] {
    const node = this.#lookup(path);
    if (node.type !== "dir") throw fsError("ENOTDIR", `${path}: not a directory`);
    const out: DirEntry[] = [];
    for (const [name, n] of node.entries) out.push({ name, type: n.type, ino: n.ino });
    return out;
  }

  mkdir(path: string): void {
    const { dir, name } = this.#walk(path);
    this.#newName(dir, name, path);
    dir.entries.set(name, this.#dir(dir));
    dir.nlink++;
    this.#touch(dir);
  }

  remove(path: string): void {
    const { dir, name } = this.#walk(path);
    if (name === "") throw fsError("EBUSY", "cannot remove the root of a mount");
    const node = dir.entries.get(name);
    if (!node) throw fsError("ENOENT", `${path}: no such file or directory`);
    if (node.type === "dir") {
      if (node.entries.size) throw fsError("ENOTEMPTY", `${path}: directory not empty`);
      dir.nlink--;
      node.parent = null;
    }
    node.nlink--;
    dir.entries.delete(name);
    node.ctimeNs = nowNs();
    this.#touch(dir);
  }

  rename(from: string, to: string): void {
    const src = this.#walk(from);
    const dst = this.#walk(to);
    if (src.name === "" || dst.name === "") throw fsError("EBUSY", "cannot rename the root of a mount");
    const node = src.dir.entries.get(src.name);
    if (!node) throw fsError("ENOENT", `${from}: no such file or directory`);
    const existing = dst.dir.entries.get(dst.name);
    if (existing === node) return;
    if (!existing) checkName(dst.name, to);
    if (node.type === "dir") {
      for (let d: DirNode | null = dst.dir; d; d = d.parent)
        if (d === node) throw fsError("EINVAL", `${to}: cannot move a directory inside itself`);
    }
    if (existing) {
      if (node.type === "dir" && existing.type !== "dir") throw fsError("ENOTDIR", `${to}: not a directory`);
      if (node.type !== "dir" && existing.type === "dir") throw fsError("EISDIR", `${to}: is a directory`);
      if (existing.type === "dir") {
        if (existing.entries.size) throw fsError("ENOTEMPTY", `${to}: directory not empty`);
        dst.dir.nlink--;
        existing.parent = null;
      }
      existing.nlink--;
    }
    src.dir.entries.delete(src.name);
    dst.dir.entries.set(dst.name, node);
    if (node.type === "dir") {
      src.dir.nlink--;
      dst.dir.nlink++;
      node.parent = dst.dir;
    }
    node.ctimeNs = nowNs();
    this.#touch(src.dir);
    this.#touch(dst.dir);
  }

  symlink(target: string, path: string): void {
    if (target.includes("\0")) throw fsError("EINVAL", "symlink target contains NUL");
    const { dir, name } = this.#walk(path);
    this.#newName(dir, name, path);
    dir.entries.set(name, { ...this.#meta(), type: "symlink", target });
    this.#touch(dir);
  }

  readlink(path: string): string {
    const node = this.#lookup(path, true);
    if (node.type !== "symlink") throw fsError("EINVAL", `${path}: not a symbolic link`);
    return node.target;
  }

  link(existing: string, path: string): void {
    const node = this.#lookup(existing, true);
    if (node.type === "dir") throw fsError("EPERM", `${existing}: cannot hard-link a directory`);
    const { dir, name } = this.#walk(path);
    this.#newName(dir, name, path);
    dir.entries.set(name, node);
    node.nlink++;
    node.ctimeNs = nowNs();
    this.#touch(dir);
  }

  setTimes(path: string, atimeNs: bigint | undefined, mtimeNs: bigint | undefined, opts?: { nofollow?: boolean }): void {
    applyTimes(this.#lookup(path, opts?.nofollow), atimeNs, mtimeNs);
  }

  // Host conveniences (not part of the FileService contract).

  writeFile(path: string, content: string | Uint8Array, opts?: { parents?: boolean }): void {
    if (opts?.parents) this.mkdirp(split(path).slice(0, -1).join("/"));
    const h = this.open(path, { write: true, create: true, truncate: true });
    h.write(typeof content === "string" ? new TextEncoder().encode(content) : content);
    h.close();
  }

  readFile(path: string): Uint8Array {
    const node = this.#lookup(path);
    if (node.type !== "file") throw fsError("EISDIR", `${path}: is a directory`);
    return node.data.slice(0, node.size);
  }

  mkdirp(path: string): void {
    let p = "";
    for (const s of split(path)) {
      p = p ? `${p}/${s}` : s;
      const { dir, name } = this.#walk(p);
      const node = dir.entries.get(name);
      if (!node) this.mkdir(p);
      else if (node.type !== "dir") throw fsError("ENOTDIR", `${p}: not a directory`);
    }
  }
}


/** A handle on a node; mode checks live in the Namespace's Fid (runtime/handle.ts). */
class MemHandle implements FileHandle {
  position = 0;
  readonly type: FileType;
  readonly node: FileNode | DirNode;
  readonly #append: boolean;
  readonly #open: { n: number };
  #closed = false;

  constructor(node: FileNode | DirNode, append: boolean, open: { n: number }) {
    this.node = node;
    this.#append = append;
    this.#open = open;
    this.type = node.type;
  }

  #file(op: string): FileNode {
    if (this.#closed) throw fsError("EBADF", "handle is closed");
    if (this.node.type === "dir") throw fsError("EISDIR", `${op}: is a directory`);
    return this.node;
  }

  read(length: number, offset?: number): Uint8Array {
    const f = this.#file("read");
    const start = offset ?? this.position;
    const end = Math.min(f.size, start + length);
    const out = start < end ? f.data.slice(start, end) : EMPTY;
    if (offset === undefined) this.position = start + out.length;
    return out;
  }

  readInto(target: Uint8Array, offset?: number): number {
    const f = this.#file("read");
    const start = offset ?? this.position;
    const n = Math.max(0, Math.min(f.size - start, target.length));
    if (n > 0) target.set(f.data.subarray(start, start + n));
    if (offset === undefined) this.position = start + n;
    return n;
  }

  write(data: Uint8Array, offset?: number): number {
    const f = this.#file("write");
    const start = this.#append ? f.size : (offset ?? this.position);
    const end = start + data.length;
    if (end > MAX_FILE_SIZE) throw fsError("EFBIG", "file too large");
    if (end > f.data.length) grow(f, end);
    else if (start > f.size) f.data.fill(0, f.size, start);
    f.data.set(data, start);
    if (end > f.size) f.size = end;
    if (offset === undefined || this.#append) this.position = end;
    const t = nowNs();
    f.mtimeNs = t;
    f.ctimeNs = t;
    return data.length;
  }

  stat(): Stat {
    if (this.#closed) throw fsError("EBADF", "handle is closed");
    const n = this.node;
    return {
      type: n.type, size: n.type === "file" ? n.size : n.entries.size, ino: n.ino, nlink: n.nlink,
      atimeNs: n.atimeNs, mtimeNs: n.mtimeNs, ctimeNs: n.ctimeNs,
    };
  }

  truncate(size: number): void {
    const f = this.#file("truncate");
    if (size < 0 || size > MAX_FILE_SIZE) throw fsError("EINVAL", "bad size");
    if (size > f.data.length) grow(f, size);
    else if (size > f.size) f.data.fill(0, f.size, size);
    f.size = size;
    const t = nowNs();
    f.mtimeNs = t;
    f.ctimeNs = t;
  }

  setTimes(atimeNs: bigint | undefined, mtimeNs: bigint | undefined): void {
    if (this.#closed) throw fsError("EBADF", "handle is closed");
    applyTimes(this.node, atimeNs, mtimeNs);
  }

  sync(): void {}

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#open.n--;
  }
}

/** Grows a file's buffer to hold `size` bytes (doubling, so appends are amortised O(1)); new bytes are zero. */
function grow(f: FileNode, size: number): void {
  const data = new Uint8Array(Math.max(size, Math.min(f.data.length * 2, MAX_FILE_SIZE), 64));
  data.set(f.data.subarray(0, f.size));
  f.data = data;
}
