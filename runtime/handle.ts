// An open file's mode, checked once for every service (as lib9p checks a fid's mode before any
// server sees the request). The Namespace wraps every handle it opens in a Fid: services then
// implement reads and writes without asking whether this handle may do them.
//
//   read, readInto        EBADF unless opened for reading (no write or append: read-only, as O_RDONLY)
//   write, truncate       EBADF unless opened for writing (write or append)
//   everything            EBADF once closed; a second close is EBADF too
import { fsError } from "./errors.ts";
import type { FileHandle, FileType, MaybePromise, OpenFlags, Stat } from "./types.ts";
import { andThen, isPromise } from "./types.ts";

/**
 * Closes a handle nobody will use again, where nobody waits for the answer: a close that fails
 * (throws or rejects) is dropped here, never left as an unhandled rejection.
 */
export function closeQuietly(h: FileHandle): void {
  try {
    const r = h.close();
    if (isPromise(r)) r.catch(() => {});
  } catch {
    // nobody to tell: the handle was being thrown away
  }
}

/** True when flags open a file for reading: asked for, or nothing else asked (O_RDONLY is 0). */
export const readable = (f: OpenFlags): boolean => !!f.read || !(f.write || f.append);
export const writable = (f: OpenFlags): boolean => !!(f.write || f.append);

export class Fid implements FileHandle {
  readonly type?: FileType;
  readonly transactional?: boolean;
  readonly public?: boolean;
  /** Present only when the service can set times on a handle (the WASI host falls back to the path). */
  readonly setTimes?: (atimeNs: bigint | undefined, mtimeNs: bigint | undefined) => MaybePromise<void>;
  readonly #h: FileHandle;
  readonly #path: string;
  readonly #read: boolean;
  readonly #write: boolean;
  #closed = false;

  constructor(h: FileHandle, flags: OpenFlags, path: string) {
    this.#h = h;
    this.#path = path;
    this.#read = readable(flags);
    this.#write = writable(flags);
    this.type = h.type;
    this.transactional = h.transactional;
    this.public = h.public;
    this.setTimes = h.setTimes ? Fid.#setTimes : undefined;
  }

  static #setTimes = function (this: Fid, a: bigint | undefined, m: bigint | undefined): MaybePromise<void> {
    return this.#live("setTimes").setTimes!(a, m);
  };

  get position(): number {
    return this.#h.position;
  }
  set position(p: number) {
    this.#h.position = p;
  }

  #live(op: string): FileHandle {
    if (this.#closed) throw fsError("EBADF", `${op} ${this.#path}: handle is closed`, { op, path: this.#path });
    return this.#h;
  }
  #reader(op: string): FileHandle {
    const h = this.#live(op);
    if (!this.#read) throw fsError("EBADF", `${op} ${this.#path}: not open for reading`, { op, path: this.#path });
    return h;
  }
  #writer(op: string): FileHandle {
    const h = this.#live(op);
    if (!this.#write) throw fsError("EBADF", `${op} ${this.#path}: not open for writing`, { op, path: this.#path });
    return h;
  }

  read(length: number, offset?: number): MaybePromise<Uint8Array> {
    return this.#reader("read").read(length, offset);
  }
  readInto(target: Uint8Array, offset?: number): MaybePromise<number> {
    const h = this.#reader("read");
    if (h.readInto) return h.readInto(target, offset);
    return andThen(h.read(target.length, offset), (d) => {
      target.set(d);
      return d.length;
    });
  }
  write(data: Uint8Array, offset?: number): MaybePromise<number> {
    return this.#writer("write").write(data, offset);
  }
  append(data: Uint8Array): MaybePromise<number> {
    return appendTo(this.#writer("write"), data);
  }
  truncate(size: number): MaybePromise<void> {
    return this.#writer("truncate").truncate(size);
  }
  stat(): MaybePromise<Stat> {
    return this.#live("stat").stat();
  }
  sync(): MaybePromise<void> {
    return this.#live("sync").sync();
  }
  close(): MaybePromise<void> {
    const h = this.#live("close");
    this.#closed = true;
    return h.close();
  }
}

/**
 * O_APPEND: the handle's own atomic append where it has one (a remote file's end is the server's),
 * else a write at the size it sees now. The position ends after the bytes either way.
 */
export function appendTo(h: FileHandle, data: Uint8Array): MaybePromise<number> {
  if (h.append) return h.append(data);
  return andThen(h.stat(), (st) => andThen(h.write(data, st.size), (n) => {
    h.position = st.size + n;
    return n;
  }));
}
