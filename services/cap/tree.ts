// CapFs: the FileService every capability is built on. A capability is a small tree of named
// files and directories; a file knows how to open itself (a request/reply handle, a text file, a
// stream), a directory may be dynamic (a clone directory's connections come and go). Nothing can
// be created, removed or renamed: the tree is the capability's contract, not storage.
import { fsError } from "../../runtime/errors.ts";
import { segments } from "../../runtime/path.ts";
import { nowNs, type DirEntry, type FileHandle, type FileService, type MaybePromise, type OpenFlags, type Stat } from "../../runtime/types.ts";

export interface CapFile {
  kind: "file";
  open(flags: OpenFlags): MaybePromise<FileHandle>;
}

export interface CapDir {
  kind: "dir";
  list(): string[];
  get(name: string): CapNode | undefined;
}

export type CapNode = CapFile | CapDir;

/** A directory of fixed entries. */
export function dir(entries: Record<string, CapNode>): CapDir {
  return {
    kind: "dir",
    list: () => Object.keys(entries),
    get: (name) => (Object.hasOwn(entries, name) ? entries[name] : undefined),
  };
}

export const file = (open: (flags: OpenFlags) => MaybePromise<FileHandle>): CapFile => ({ kind: "file", open });

const wants = (f: OpenFlags): boolean => !!(f.write || f.append || f.truncate || f.create);

/**
 * A read-only text file whose content is taken when it is opened (`pubkey`, `models`, `usage`).
 * `public` marks it readable inside a sign-only mount.
 */
export function textFile(content: () => MaybePromise<string>, opts: { public?: boolean } = {}): CapFile {
  return file((flags) => {
    if (wants(flags)) throw fsError("EACCES", "this file is read-only");
    const make = (text: string): FileHandle => new TextHandle(new TextEncoder().encode(text), opts.public ?? false);
    const v = content();
    return v instanceof Promise ? v.then(make) : make(v);
  });
}

class TextHandle implements FileHandle {
  position = 0;
  readonly public: boolean;
  readonly #data: Uint8Array;
  #closed = false;
  constructor(data: Uint8Array, pub: boolean) {
    this.#data = data;
    this.public = pub;
  }
  #live(op: string): void {
    if (this.#closed) throw fsError("EBADF", `${op}: handle is closed`);
  }
  read(length: number, offset?: number): Uint8Array {
    this.#live("read");
    const at = offset ?? this.position;
    const out = this.#data.slice(Math.min(at, this.#data.length), Math.min(at + length, this.#data.length));
    if (offset === undefined) this.position = at + out.length;
    return out;
  }
  write(): number {
    this.#live("write");
    throw fsError("EACCES", "this file is read-only");
  }
  stat(): Stat {
    const t = nowNs();
    return { type: "file", size: this.#data.length, ino: 0, nlink: 1, atimeNs: t, mtimeNs: t, ctimeNs: t };
  }
  truncate(): void {
    throw fsError("EACCES", "this file is read-only");
  }
  sync(): void {}
  close(): void {
    this.#live("close");
    this.#closed = true;
  }
}

export class CapFs implements FileService {
  readonly #root: CapDir;
  readonly #inos = new Map<string, number>();
  readonly #born = nowNs();

  constructor(root: CapDir) {
    this.#root = root;
  }

  #lookup(op: string, path: string): { node: CapNode; path: string } {
    const segs = segments(path);
    let node: CapNode = this.#root;
    for (const s of segs) {
      if (node.kind !== "dir") throw fsError("ENOTDIR", `${op} ${segs.join("/")}: not a directory`, { op, path });
      const next: CapNode | undefined = node.get(s);
      if (!next) throw fsError("ENOENT", `${op} ${segs.join("/")}: no such file or directory`, { op, path });
      node = next;
    }
    return { node, path: segs.join("/") };
  }

  #ino(path: string): number {
    let n = this.#inos.get(path);
    if (n === undefined) this.#inos.set(path, (n = this.#inos.size + 1));
    return n;
  }

  #stat(node: CapNode, path: string): Stat {
    const t = this.#born;
    const isDir = node.kind === "dir";
    return { type: isDir ? "dir" : "file", size: isDir ? node.list().length : 0, ino: this.#ino(path), nlink: isDir ? 2 : 1, atimeNs: t, mtimeNs: t, ctimeNs: t };
  }

  open(path: string, flags: OpenFlags): MaybePromise<FileHandle> {
    const { node, path: p } = this.#lookup("open", path);
    if (node.kind === "dir") {
      if (wants(flags)) throw fsError("EISDIR", `open ${p || "/"}: is a directory`, { op: "open", path });
      const st = this.#stat(node, p);
      return {
        type: "dir", position: 0,
        read: () => { throw fsError("EISDIR", "is a directory"); },
        write: () => { throw fsError("EISDIR", "is a directory"); },
        stat: () => st, truncate: () => { throw fsError("EISDIR", "is a directory"); },
        sync: () => {}, close: () => {},
      };
    }
    if (flags.directory) throw fsError("ENOTDIR", `open ${p}: not a directory`, { op: "open", path });
    if (flags.create && flags.exclusive) throw fsError("EEXIST", `open ${p}: exists`, { op: "open", path });
    return node.open(flags);
  }

  stat(path: string): Stat {
    const { node, path: p } = this.#lookup("stat", path);
    return this.#stat(node, p);
  }

  lstat(path: string): Stat {
    return this.stat(path);
  }

  readdir(path: string): DirEntry[] {
    const { node, path: p } = this.#lookup("readdir", path);
    if (node.kind !== "dir") throw fsError("ENOTDIR", `readdir ${p}: not a directory`, { op: "readdir", path });
    return node.list().map((name) => {
      const child = node.get(name);
      const cp = p ? `${p}/${name}` : name;
      return { name, type: child?.kind === "dir" ? "dir" as const : "file" as const, ino: this.#ino(cp) };
    });
  }

  mkdir(path: string): void {
    throw fsError("EACCES", `mkdir ${path}: a capability's files are fixed`, { op: "mkdir", path });
  }
  remove(path: string): void {
    this.#lookup("remove", path);
    throw fsError("EACCES", `remove ${path}: a capability's files are fixed`, { op: "remove", path });
  }
  rename(from: string): void {
    this.#lookup("rename", from);
    throw fsError("EACCES", `rename ${from}: a capability's files are fixed`, { op: "rename", path: from });
  }
}
