// The FileService contract (see DESIGN.md). Every method may answer with a value or a Promise:
// memory services answer synchronously so local calls pay no Promise; remote services answer with
// Promises and the WASI host suspends the guest through JSPI.

export type MaybePromise<T> = T | Promise<T>;

export type FileType = "file" | "dir" | "symlink";

export interface Stat {
  type: FileType;
  size: number;
  /** Identity within its service: two paths with the same ino are the same file (hard links). */
  ino: number;
  nlink: number;
  /** Nanoseconds since the epoch; bigint because WASI round-trips them exactly. */
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  /** Which mount answered (set by the Namespace), so (dev, ino) is unique across a namespace. */
  dev?: number;
}

export interface DirEntry {
  name: string;
  type: FileType;
  ino?: number;
}

export interface OpenFlags {
  read?: boolean;
  write?: boolean;
  /** Create the file if it does not exist. */
  create?: boolean;
  /** With create: fail with EEXIST if it exists. */
  exclusive?: boolean;
  truncate?: boolean;
  /** Every write goes to the end of the file (implies write). */
  append?: boolean;
  /** The path must name a directory (ENOTDIR otherwise). */
  directory?: boolean;
  /** Do not follow a symlink in the last segment (ELOOP if it is one). */
  nofollow?: boolean;
}

export interface FileHandle {
  /** Reads up to `length` bytes at `offset`, or at the handle's position (which then advances). */
  read(length: number, offset?: number): MaybePromise<Uint8Array>;
  /** Writes at `offset`, or at the handle's position (advancing it); append handles write at the end. */
  write(data: Uint8Array, offset?: number): MaybePromise<number>;
  /**
   * Optional atomic append (O_APPEND): writes at the end of the file as it is when the bytes land
   * (a remote file's end at the server, not the size seen at open) and moves the position there.
   * The WASI host uses it when present, else stat + write at the size.
   */
  append?(data: Uint8Array): MaybePromise<number>;
  /** Optional zero-copy read: fills `target` (up to its length) and answers the bytes read. */
  readInto?(target: Uint8Array, offset?: number): MaybePromise<number>;
  stat(): MaybePromise<Stat>;
  truncate(size: number): MaybePromise<void>;
  sync(): MaybePromise<void>;
  close(): MaybePromise<void>;
  /** "dir" for a handle on a directory (metadata only: reads answer EISDIR); "file" when absent. */
  readonly type?: FileType;
  /** Current position; `seek` moves it (the WASI host uses these for fd_seek/fd_tell). */
  position: number;
  /** Request/reply files (Plan 9 ctl pattern): reads answer what this handle wrote. */
  readonly transactional?: boolean;
  /** A public file in a sign-only mount (a capability's `pubkey`): it may be opened read-only. */
  readonly public?: boolean;
  /** Optional: set access/modification times (undefined leaves one unchanged). */
  setTimes?(atimeNs: bigint | undefined, mtimeNs: bigint | undefined): MaybePromise<void>;
}

export type WatchEvent = { type: "created" | "modified" | "deleted"; path: string };

export interface FileService {
  open(path: string, flags: OpenFlags): MaybePromise<FileHandle>;
  /** Follows a final symlink. */
  stat(path: string): MaybePromise<Stat>;
  readdir(path: string): MaybePromise<DirEntry[]>;
  mkdir(path: string): MaybePromise<void>;
  /** Removes a file, a symlink or an empty directory. */
  remove(path: string): MaybePromise<void>;
  rename(from: string, to: string): MaybePromise<void>;
  watch?(path: string): AsyncIterable<WatchEvent>;

  // Optional POSIX extras; a service without them answers ENOSYS through the namespace.
  /** Like stat, but a final symlink is described, not followed. */
  lstat?(path: string): MaybePromise<Stat>;
  symlink?(target: string, path: string): MaybePromise<void>;
  readlink?(path: string): MaybePromise<string>;
  link?(existing: string, path: string): MaybePromise<void>;
  setTimes?(path: string, atimeNs: bigint | undefined, mtimeNs: bigint | undefined, opts?: { nofollow?: boolean }): MaybePromise<void>;
}

/** True when a value is a thenable (what a service answers when it has to wait). */
export function isPromise<T>(v: MaybePromise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown })?.then === "function";
}

/**
 * Runs `fn` on a value now, or when its Promise settles; keeps sync paths free of Promises.
 * (Not named `then`: a module exporting `then` is itself a thenable to dynamic import.)
 */
export function andThen<T, U>(v: MaybePromise<T>, fn: (t: T) => MaybePromise<U>): MaybePromise<U> {
  return isPromise(v) ? v.then(fn) : fn(v);
}

/** lstat where the service has it, else stat (a service without symlinks has nothing to tell apart). */
export function lstatOf(s: FileService, path: string): MaybePromise<Stat> {
  return s.lstat ? s.lstat(path) : s.stat(path);
}

export const nowNs = (): bigint => BigInt(Date.now()) * 1_000_000n;

/** Sets access/modification times (undefined leaves one unchanged); the change time becomes now. */
export function applyTimes(t: { atimeNs: bigint; mtimeNs: bigint; ctimeNs: bigint }, atimeNs: bigint | undefined, mtimeNs: bigint | undefined): void {
  if (atimeNs !== undefined) t.atimeNs = atimeNs;
  if (mtimeNs !== undefined) t.mtimeNs = mtimeNs;
  t.ctimeNs = nowNs();
}
