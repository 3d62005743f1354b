// MapService: a static, read-only tree built from a record of paths to contents.
//
//   new MapService({ "README.md": "hello\n", "data/blob.bin": new Uint8Array([1, 2]), "empty/": "" })
//
// Decisions:
// - Keys follow runtime/path rules ("./a//b" is "a/b"); directories are implied by the paths, and a
//   key ending in "/" declares a directory (its value must be empty). Two keys naming the same path,
//   a file that is also used as a directory, or a file at the root are EINVAL at construction.
// - Contents are copied once at construction (strings UTF-8 encoded) and every read returns a fresh
//   copy, so neither the caller's arrays nor a reader can change the tree afterwards.
// - Every change is EROFS: open with write/create/truncate/append, handle write/truncate/setTimes,
//   mkdir, remove, rename, symlink, link, setTimes. Like a read-only mount, the refusal comes before
//   any lookup, so it is EROFS even for a path that does not exist.
// - inos are assigned in sorted path order (root = 1): stable for the life of the service and the
//   same for the same input. Every time stamp is the construction time, or `mtimeNs` if given.
//   Directories have nlink 2 + subdirectories, files 1.
// - There are no symlinks: lstat is stat, readlink of an existing path is EINVAL.
// - Directories can be opened for reading (stat works, read is EISDIR); closed handles are EBADF.
import { fsError } from "../runtime/errors.ts";
import { normalize, segments } from "../runtime/path.ts";
import { nowNs, type DirEntry, type FileHandle, type FileService, type FileType, type OpenFlags, type Stat } from "../runtime/types.ts";

export type MapContent = string | Uint8Array;

export interface MapServiceOptions {
  /** Time stamp of every file (nanoseconds); the construction time by default. */
  mtimeNs?: bigint;
}

interface FileNode {
  type: "file";
  ino: number;
  data: Uint8Array;
}

interface DirNode {
  type: "dir";
  ino: number;
  children: Map<string, MapNode>;
  subdirs: number;
}

type MapNode = FileNode | DirNode;

const encoder = new TextEncoder();
const show = (p: string): string => (p === "" ? "/" : p);

export class MapService implements FileService {
  readonly #root: DirNode = { type: "dir", ino: 0, children: new Map(), subdirs: 0 };
  readonly #timeNs: bigint;

  constructor(files: Record<string, MapContent>, options: MapServiceOptions = {}) {
    this.#timeNs = options.mtimeNs ?? nowNs();
    const seen = new Set<string>();
    for (const [key, value] of Object.entries(files)) {
      const isDir = key.endsWith("/");
      const p = normalize(key);
      if (seen.has(p)) throw fsError("EINVAL", `map: two keys name ${show(p)}`);
      seen.add(p);
      if (typeof value !== "string" && !(value instanceof Uint8Array)) {
        throw fsError("EINVAL", `map: ${show(p)}: content must be a string or a Uint8Array`);
      }
      if (isDir) {
        if (value.length !== 0) throw fsError("EINVAL", `map: ${key}: a directory key (ending in "/") takes no content`);
        this.#dirAt(p, key);
        continue;
      }
      const segs = segments(p);
      const name = segs.pop();
      if (name === undefined) throw fsError("EINVAL", `map: ${JSON.stringify(key)} names the root, which is a directory`);
      const dir = this.#dirAt(segs.join("/"), key);
      if (dir.children.has(name)) throw fsError("EINVAL", `map: ${p} is both a file and a directory`);
      const data = typeof value === "string" ? encoder.encode(value) : value.slice();
      dir.children.set(name, { type: "file", ino: 0, data });
    }
    // Stable inos: sorted path order, root first.
    let next = 1;
    const number = (node: MapNode): void => {
      node.ino = next++;
      if (node.type === "dir") {
        for (const name of [...node.children.keys()].sort()) number(node.children.get(name)!);
      }
    };
    number(this.#root);
  }

  #dirAt(p: string, key: string): DirNode {
    let dir = this.#root;
    for (const s of segments(p)) {
      let child = dir.children.get(s);
      if (child === undefined) {
        child = { type: "dir", ino: 0, children: new Map(), subdirs: 0 };
        dir.children.set(s, child);
        dir.subdirs++;
      } else if (child.type !== "dir") {
        throw fsError("EINVAL", `map: ${key}: ${s} is a file and cannot hold other paths`);
      }
      dir = child;
    }
    return dir;
  }

  #lookup(op: string, path: string): { node: MapNode; path: string } {
    const p = normalize(path);
    let node: MapNode = this.#root;
    for (const s of segments(p)) {
      if (node.type !== "dir") throw fsError("ENOTDIR", `${op} ${p}: a parent is not a directory`);
      const child: MapNode | undefined = node.children.get(s);
      if (child === undefined) throw fsError("ENOENT", `${op} ${p}: no such file or directory`);
      node = child;
    }
    return { node, path: p };
  }

  #stat(node: MapNode): Stat {
    const t = this.#timeNs;
    return {
      type: node.type,
      size: node.type === "file" ? node.data.length : node.children.size,
      ino: node.ino,
      nlink: node.type === "file" ? 1 : 2 + node.subdirs,
      atimeNs: t,
      mtimeNs: t,
      ctimeNs: t,
    };
  }

  open(path: string, flags: OpenFlags): MapHandle {
    if (flags.write || flags.create || flags.truncate || flags.append) {
      throw fsError("EROFS", `open ${show(normalize(path))}: read-only file system`);
    }
    const { node, path: p } = this.#lookup("open", path);
    if (flags.directory && node.type !== "dir") throw fsError("ENOTDIR", `open ${p}: not a directory`);
    return new MapHandle(node, p, this.#stat(node));
  }

  stat(path: string): Stat {
    return this.#stat(this.#lookup("stat", path).node);
  }

  lstat(path: string): Stat {
    return this.#stat(this.#lookup("lstat", path).node);
  }

  readdir(path: string): DirEntry[] {
    const { node, path: p } = this.#lookup("readdir", path);
    if (node.type !== "dir") throw fsError("ENOTDIR", `readdir ${p}: not a directory`);
    return [...node.children.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, child]): DirEntry => ({ name, type: child.type as FileType, ino: child.ino }));
  }

  readlink(path: string): string {
    const { path: p } = this.#lookup("readlink", path);
    throw fsError("EINVAL", `readlink ${show(p)}: not a symbolic link`);
  }

  mkdir(path: string): void {
    throw rofs("mkdir", path);
  }
  remove(path: string): void {
    throw rofs("remove", path);
  }
  rename(from: string, _to: string): void {
    throw rofs("rename", from);
  }
  symlink(_target: string, path: string): void {
    throw rofs("symlink", path);
  }
  link(_existing: string, path: string): void {
    throw rofs("link", path);
  }
  setTimes(path: string): void {
    throw rofs("setTimes", path);
  }
}

const rofs = (op: string, path: string) => fsError("EROFS", `${op} ${show(normalize(path))}: read-only file system`);

export class MapHandle implements FileHandle {
  position = 0;
  #node: MapNode | null;
  readonly #path: string;
  readonly #stat: Stat;

  constructor(node: MapNode, path: string, stat: Stat) {
    this.#node = node;
    this.#path = path;
    this.#stat = stat;
  }

  #open(op: string): MapNode {
    if (this.#node === null) throw fsError("EBADF", `${op} ${show(this.#path)}: handle is closed`);
    return this.#node;
  }

  read(length: number, offset?: number): Uint8Array {
    const node = this.#open("read");
    if (node.type !== "file") throw fsError("EISDIR", `read ${show(this.#path)}: is a directory`);
    if (!Number.isSafeInteger(length) || length < 0) throw fsError("EINVAL", `read ${this.#path}: bad length ${length}`);
    const at = offset ?? this.position;
    if (!Number.isSafeInteger(at) || at < 0) throw fsError("EINVAL", `read ${this.#path}: bad offset ${at}`);
    const out = node.data.slice(Math.min(at, node.data.length), Math.min(at + length, node.data.length));
    if (offset === undefined) this.position = at + out.length;
    return out;
  }

  write(_data: Uint8Array, _offset?: number): number {
    this.#open("write");
    throw fsError("EROFS", `write ${show(this.#path)}: read-only file system`);
  }

  truncate(_size: number): void {
    this.#open("truncate");
    throw fsError("EROFS", `truncate ${show(this.#path)}: read-only file system`);
  }

  setTimes(): void {
    this.#open("setTimes");
    throw fsError("EROFS", `setTimes ${show(this.#path)}: read-only file system`);
  }

  stat(): Stat {
    this.#open("stat");
    return { ...this.#stat };
  }

  sync(): void {
    this.#open("sync");
  }

  close(): void {
    this.#open("close");
    this.#node = null;
  }
}
