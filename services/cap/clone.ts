// The clone pattern (Plan 9's /net): reading `clone` allocates connection N and answers "N\n"; the
// connection's files are under N/ and it lives while the clone handle or any handle on a file in N/
// is open. When the last one closes, the connection is closed (its socket, request, stream).
import { fsError } from "../../runtime/errors.ts";
import { nowNs, type FileHandle, type MaybePromise, type OpenFlags, type Stat } from "../../runtime/types.ts";
import type { CapDir, CapNode } from "./tree.ts";

export interface Conn {
  /** The files under N/, each opened per handle. */
  files: Record<string, (flags: OpenFlags) => MaybePromise<FileHandle>>;
  /** Called once, when the last handle on the connection closes. */
  close(): void;
}

export interface CloneOptions {
  /** Most connections open at once (EMFILE past it); 64 by default. */
  max?: number;
}

export function cloneDir(make: (id: number) => Conn, extra: Record<string, CapNode> = {}, o: CloneOptions = {}): CapDir {
  const conns = new Map<number, { conn: Conn; refs: number }>();
  let next = 0;
  const release = (id: number): void => {
    const c = conns.get(id);
    if (!c || --c.refs > 0) return;
    conns.delete(id);
    try {
      c.conn.close();
    } catch {
      // A failing close must not fail the guest's close.
    }
  };
  const track = (id: number, h: FileHandle): FileHandle => {
    let open = true;
    const close = h.close.bind(h);
    h.close = () => {
      if (!open) throw fsError("EBADF", "close: handle is closed");
      open = false;
      try {
        return close();
      } finally {
        release(id);
      }
    };
    return h;
  };
  const cloneFile: CapNode = {
    kind: "file",
    open: () => {
      if (conns.size >= (o.max ?? 64)) throw fsError("EMFILE", `at most ${o.max ?? 64} connections at once`);
      const id = next++;
      conns.set(id, { conn: make(id), refs: 1 });
      return track(id, new CloneHandle(id));
    },
  };
  const connDir = (id: number): CapDir => ({
    kind: "dir",
    list: () => Object.keys(conns.get(id)?.conn.files ?? {}),
    get: (name) => {
      const c = conns.get(id);
      const opener = c && Object.hasOwn(c.conn.files, name) ? c.conn.files[name] : undefined;
      if (!opener) return undefined;
      return {
        kind: "file",
        open: (flags) => {
          const live = conns.get(id);
          if (!live) throw fsError("ENOENT", `${id}/${name}: the connection is closed`);
          live.refs++;
          let h: MaybePromise<FileHandle>;
          try {
            h = opener(flags);
          } catch (e) {
            release(id);
            throw e;
          }
          return h instanceof Promise ? h.then((x) => track(id, x), (e) => { release(id); throw e; }) : track(id, h);
        },
      };
    },
  });
  return {
    kind: "dir",
    list: () => ["clone", ...Object.keys(extra), ...[...conns.keys()].map(String)],
    get: (name) => {
      if (name === "clone") return cloneFile;
      if (Object.hasOwn(extra, name)) return extra[name];
      if (!/^(0|[1-9][0-9]*)$/.test(name)) return undefined;
      return conns.has(Number(name)) ? connDir(Number(name)) : undefined;
    },
  };
}

class CloneHandle implements FileHandle {
  position = 0;
  readonly #text: Uint8Array;
  constructor(id: number) {
    this.#text = new TextEncoder().encode(`${id}\n`);
  }
  read(length: number, offset?: number): Uint8Array {
    const at = offset ?? this.position;
    const out = this.#text.slice(Math.min(at, this.#text.length), Math.min(at + length, this.#text.length));
    if (offset === undefined) this.position = at + out.length;
    return out;
  }
  write(): number {
    throw fsError("EINVAL", "clone: write to N/ctl, not to clone");
  }
  stat(): Stat {
    const t = nowNs();
    return { type: "file", size: this.#text.length, ino: 0, nlink: 1, atimeNs: t, mtimeNs: t, ctimeNs: t };
  }
  truncate(): void {}
  sync(): void {}
  close(): void {}
}

/** A handle made of functions, for the small per-connection files. */
export function handle(o: {
  read?: (length: number) => MaybePromise<Uint8Array>;
  write?: (data: Uint8Array) => MaybePromise<number>;
  close?: () => void;
  size?: () => number;
}): FileHandle {
  let closed = false;
  const live = (op: string): void => {
    if (closed) throw fsError("EBADF", `${op}: handle is closed`);
  };
  const h: FileHandle = {
    position: 0,
    read: (length) => {
      live("read");
      if (!o.read) throw fsError("EBADF", "read: this file is write-only");
      return o.read(length);
    },
    write: (data) => {
      live("write");
      if (!o.write) throw fsError("EBADF", "write: this file is read-only");
      return o.write(data);
    },
    stat: () => {
      const t = nowNs();
      return { type: "file", size: o.size?.() ?? 0, ino: 0, nlink: 1, atimeNs: t, mtimeNs: t, ctimeNs: t };
    },
    truncate: () => {},
    sync: () => {},
    close: () => {
      live("close");
      closed = true;
      o.close?.();
    },
  };
  return h;
}
