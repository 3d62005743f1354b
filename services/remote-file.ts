// An open file of a RemoteService (services/remote.ts) and the handles on it.
//
// One RemoteFile per open path and service holds what is cached of the file (a window of bytes,
// the whole file when it is small) and the changes not yet sent; every handle on that path in
// that service shares it, so a handle sees the writes of the others at once (DESIGN.md: handles
// of one service see each other's writes). A handle has its own position and mode.
//
// The file is addressed by identity, not by its name: when it is removed or renamed while open,
// the service renames it on the edge to a hidden name (NFS's "silly rename") and the file follows;
// the last close removes it. A create that can wait (O_CREAT|O_TRUNC, not exclusive, in a
// directory known to exist) is sent with the first sync, so open-write-close is one request.
import { FsError } from "../runtime/errors.ts";
import type { FileHandle, MaybePromise, OpenFlags, Stat } from "../runtime/types.ts";
import { andThen } from "../runtime/types.ts";
import { concat } from "../runtime/bytes.ts";
import { MAX_READ, fromWireError, type WireOp, type WireResult, type WireStat } from "./remote-wire.ts";
import { batches, coalesce, type PendingOp } from "./remote-flush.ts";

/** What a RemoteFile needs from its service. */
export interface FileHost {
  readonly readAhead: number;
  readonly writeBehind: number;
  one(op: WireOp): Promise<WireResult & { ok: true; bytes?: Uint8Array }>;
  batch(ops: WireOp[], parts: Uint8Array[], atomic: boolean): Promise<Array<WireResult & { bytes?: Uint8Array }>>;
  remember(path: string, s: WireStat): Stat;
  forget(path: string): void;
  /** The last handle on `file` closed. */
  release(file: RemoteFile): Promise<void>;
}

/** Files up to this size are mirrored whole. */
const FULL_CACHE_MAX = 64 << 20;

export class RemoteFile {
  path: string;
  /** Renamed to a hidden name because it was removed while open: gone at the last close. */
  unlinked = false;
  /** The open to send first (a create that waited); undefined once the file exists on the edge. */
  deferred: OpenFlags | undefined;
  handles = 0;
  private host: FileHost;
  private stat_: Stat;
  /** Cached bytes [winOff, winOff + winLen); `full` when they are the whole file. */
  private win: Uint8Array;
  private winLen: number;
  private winOff = 0;
  private full: boolean;
  size: number;
  private pending: PendingOp[] = [];
  private pendingBytes = 0;
  private flushing: Promise<void> | undefined;

  constructor(host: FileHost, path: string, stat: Stat, data: Uint8Array | undefined, eof: boolean, deferred?: OpenFlags) {
    this.host = host;
    this.path = path;
    this.stat_ = stat;
    this.size = stat.size;
    this.win = data ? data.slice() : new Uint8Array(0);
    this.winLen = this.win.length;
    this.full = stat.type === "file" && (eof || stat.size === 0) && this.winLen === stat.size;
    this.deferred = deferred;
  }

  get type() {
    return this.stat_.type;
  }

  /** Changes not yet acknowledged by the edge (a waiting create counts). */
  get dirty(): boolean {
    return this.pending.length > 0 || this.deferred !== undefined;
  }

  /** A fresh answer from the edge (another open): take it, unless changes are waiting. */
  refresh(stat: Stat, data: Uint8Array | undefined, eof: boolean): void {
    if (this.dirty || this.flushing) return;
    this.stat_ = stat;
    this.size = stat.size;
    this.win = data ? data.slice() : new Uint8Array(0);
    this.winLen = this.win.length;
    this.winOff = 0;
    this.full = stat.type === "file" && (eof || stat.size === 0) && this.winLen === stat.size;
  }

  /**
   * Bytes [at, at + length) of the file. From the cache it answers at once, not a Promise: a
   * program reading a file it holds (SQLite reading its pages) never waits a turn per read.
   */
  read(at: number, length: number): MaybePromise<Uint8Array> {
    const end = Math.min(this.size, at + length);
    if (at >= end) return new Uint8Array(0);
    if (this.cached(at, end)) return this.win.slice(at - this.winOff, end - this.winOff);
    return this.fetch(at, end);
  }

  /** Like read, into `target` (the guest's memory): one copy, not two. */
  readInto(target: Uint8Array, at: number): MaybePromise<number> {
    const end = Math.min(this.size, at + target.length);
    if (at >= end) return 0;
    if (this.cached(at, end)) {
      target.set(this.win.subarray(at - this.winOff, end - this.winOff));
      return end - at;
    }
    return this.fetch(at, end).then((b) => (target.set(b), b.length));
  }

  private cached(at: number, end: number): boolean {
    return this.full || (at >= this.winOff && end <= this.winOff + this.winLen);
  }

  /** A read the cache cannot answer: a new window from the edge. */
  private async fetch(at: number, end: number): Promise<Uint8Array> {
    // Pending writes go first so the edge's answer includes them.
    await this.sync(true);
    if (this.host.readAhead > 0 && this.size <= FULL_CACHE_MAX && (await this.mirror()) && this.cached(at, end)) {
      return this.win.slice(at, Math.min(end, this.size));
    }
    const want = Math.min(MAX_READ, Math.max(end - at, this.host.readAhead));
    const r = await this.host.one({ op: "read", path: this.path, offset: at, length: want });
    this.win = r.bytes ?? new Uint8Array(0);
    this.winLen = this.win.length;
    this.winOff = at;
    if (r.eof) this.size = at + this.winLen;
    return this.win.slice(0, Math.max(0, Math.min(end, this.size) - at));
  }

  /**
   * Reads the whole file into the cache, in one request (reads of up to MAX_READ, joined): a
   * program that reads all over a file it holds open (SQLite reading its pages) then costs one
   * request, not one window per page it jumps to. Answers whether the file is now mirrored whole
   * (not when it grew on the edge meanwhile; the caller then reads a window).
   */
  private async mirror(): Promise<boolean> {
    const reads: Promise<WireResult & { ok: true; bytes?: Uint8Array }>[] = [];
    for (let off = 0; off < this.size; off += MAX_READ) {
      reads.push(this.host.one({ op: "read", path: this.path, offset: off, length: Math.min(MAX_READ, this.size - off) }));
    }
    const rs = await Promise.all(reads);
    if (!rs.at(-1)?.eof) return false;
    this.win = concat(rs.map((r) => r.bytes ?? new Uint8Array(0)));
    this.winLen = this.win.length;
    this.winOff = 0;
    this.size = this.winLen;
    this.full = true;
    return true;
  }

  /**
   * Queues a write at `at` (or at the end as the edge sees it, for `append`); answers where it
   * landed locally, at once unless `writeBehind` bytes are pending and must be sent first.
   */
  write(data: Uint8Array, at: number | "end"): MaybePromise<number> {
    const off = at === "end" ? this.size : at;
    if (!data.length) return off; // an empty write changes nothing, not even the size
    const bytes = data.slice();
    this.pending.push(at === "end" ? { kind: "append", data: bytes } : { kind: "write", offset: off, data: bytes });
    this.pendingBytes += bytes.length;
    this.applyLocal(off, bytes);
    // An unlinked file mirrored whole is nobody else's business: it stays here until it grows.
    if (this.pendingBytes >= this.host.writeBehind && !(this.unlinked && this.full)) return this.sync().then(() => off + bytes.length);
    return off + bytes.length;
  }

  /** Keeps the cached window equal to what the edge will hold once pending ops are applied. */
  private applyLocal(at: number, bytes: Uint8Array): void {
    const end = at + bytes.length;
    if (this.full && end > FULL_CACHE_MAX) this.dropWindow();
    if (this.full) {
      if (end > this.win.length) {
        const grown = new Uint8Array(Math.max(end, this.win.length * 2, 4096));
        grown.set(this.win.subarray(0, this.winLen));
        this.win = grown;
      }
      this.win.set(bytes, at);
      this.winLen = Math.max(this.winLen, end);
    } else if (at < this.winOff + this.winLen && end > this.winOff) {
      const a = Math.max(at, this.winOff), b = Math.min(end, this.winOff + this.winLen);
      this.win.set(bytes.subarray(a - at, b - at), a - this.winOff);
    }
    this.size = Math.max(this.size, end);
  }

  private dropWindow(): void {
    this.full = false;
    this.win = new Uint8Array(0);
    this.winLen = 0;
    this.winOff = 0;
  }

  truncate(size: number): void {
    this.pending.push({ kind: "truncate", size });
    if (this.full) {
      if (size > this.win.length) {
        const w = new Uint8Array(size);
        w.set(this.win.subarray(0, this.winLen));
        this.win = w;
      } else this.win.fill(0, Math.min(size, this.winLen), this.winLen);
      this.winLen = size;
    } else if (size < this.winOff + this.winLen) {
      this.winLen = Math.max(0, size - this.winOff);
    }
    this.size = size;
  }

  /** The file as this service sees it: the last stat from the edge, with the local changes. */
  stat(): MaybePromise<Stat> {
    if (this.deferred) return this.sync(true).then(() => this.stat()); // the edge gives it an inode
    return { ...this.stat_, size: this.size };
  }

  /**
   * Sends pending changes, in as few atomic batches as the edge's limits allow, and resolves once
   * the edge acknowledged them all. A failure before anything landed is the edge's error; a
   * failure after part of it landed is EIO (the rest stays pending; a later sync sends it).
   * An unlinked file mirrored whole skips this (nobody can see it) unless `force`.
   */
  async sync(force = false): Promise<void> {
    // Another sync in flight: wait for it (its failure is its caller's; this one tries again).
    while (this.flushing) await this.flushing.catch(() => undefined);
    if (!this.dirty || (this.unlinked && this.full && !force)) return;
    const ops = coalesce(this.pending.splice(0), this.full ? (at, len) => (at + len <= this.winLen ? this.win.slice(at, at + len) : undefined) : undefined);
    this.pendingBytes = 0;
    const open = this.deferred;
    const first: WireOp[] = open ? [{ op: "open", path: this.path, flags: open }] : [];
    const plan = batches(ops, this.path, first);
    if (!plan.length) plan.push({ ops: first, parts: [], pending: [] });
    const appended = ops.some((o) => o.kind === "append");
    this.flushing = (async () => {
      let done = 0;
      try {
        for (const b of plan) {
          const rs = await this.host.batch(b.ops, b.parts, true);
          const bad = rs.find((r) => !r.ok && r.error.code !== "ECANCELED") ?? rs.find((r) => !r.ok);
          if (bad && !bad.ok) throw fromWireError(bad.error, 500);
          if (done === 0) this.deferred = undefined;
          done++;
          const last = [...rs].reverse().find((r) => r.ok && r.stat);
          if (last?.ok && last.stat) {
            this.host.forget(this.path);
            this.stat_ = this.host.remember(this.path, last.stat);
          }
        }
        // Appends landed at the edge's end, which may not be where this client thought it was.
        if (appended && this.stat_.size !== this.size && !this.pending.length) {
          this.dropWindow();
          this.size = this.stat_.size;
        }
      } catch (e) {
        // Not acknowledged: keep what did not land so a later sync/close can try again.
        const rest = plan.slice(done).flatMap((b) => b.pending);
        this.pending.unshift(...rest);
        this.pendingBytes += rest.reduce((n, p) => n + (p.kind === "truncate" ? 0 : p.data.length), 0);
        if (done === 0) throw e;
        const why = e instanceof FsError ? `${e.code}: ${e.message}` : String(e);
        throw new FsError("EIO", `${this.path}: sync landed ${done} of ${plan.length} batches (${why}); the rest is kept for the next sync`);
      }
    })();
    try {
      await this.flushing;
    } finally {
      this.flushing = undefined;
    }
  }

  /** A stat the edge answered for this file (setTimes). */
  adopt(s: WireStat): void {
    this.host.forget(this.path);
    this.stat_ = { ...this.host.remember(this.path, s), size: this.size };
  }

  /** Forgets unsent changes (the last close of an unlinked file: nobody can read them). */
  discard(): void {
    this.pending = [];
    this.pendingBytes = 0;
  }
}

/**
 * A handle on a RemoteFile: its own position. Its mode (EBADF for a read on a write-only handle,
 * anything after close) is checked by the Namespace's Fid (runtime/handle.ts), as for every
 * service; a directory's handle reads nothing (EISDIR).
 */
export class RemoteHandle implements FileHandle {
  position = 0;
  readonly file: RemoteFile;
  private flags: OpenFlags;
  private closed = false;
  private host: FileHost;

  constructor(host: FileHost, file: RemoteFile, flags: OpenFlags) {
    this.host = host;
    this.file = file;
    this.flags = flags;
    file.handles++;
  }

  get type() {
    return this.file.type;
  }

  private notDir(): void {
    if (this.file.type === "dir") throw new FsError("EISDIR", this.file.path);
  }

  read(length: number, offset?: number): MaybePromise<Uint8Array> {
    this.notDir();
    const at = offset ?? this.position;
    return andThen(this.file.read(at, length), (out) => {
      if (offset === undefined) this.position = at + out.length;
      return out;
    });
  }

  readInto(target: Uint8Array, offset?: number): MaybePromise<number> {
    this.notDir();
    const at = offset ?? this.position;
    return andThen(this.file.readInto(target, at), (n) => {
      if (offset === undefined) this.position = at + n;
      return n;
    });
  }

  write(data: Uint8Array, offset?: number): MaybePromise<number> {
    if (this.flags.append) return this.append(data);
    const at = offset ?? this.position;
    return andThen(this.file.write(data, at), (end) => {
      if (offset === undefined) this.position = end;
      return data.length;
    });
  }

  /** Writes at the end of the file as the edge has it when the write lands (atomic append). */
  append(data: Uint8Array): MaybePromise<number> {
    return andThen(this.file.write(data, "end"), (end) => {
      this.position = end;
      return data.length;
    });
  }

  truncate(size: number): void {
    this.file.truncate(size);
  }

  stat(): MaybePromise<Stat> {
    return this.file.stat();
  }

  async sync(): Promise<void> {
    await this.file.sync();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (!(this.file.unlinked && this.file.handles === 1)) await this.file.sync();
    this.closed = true;
    this.file.handles--;
    if (this.file.handles === 0) await this.host.release(this.file);
  }

  async setTimes(atimeNs: bigint | undefined, mtimeNs: bigint | undefined): Promise<void> {
    await this.file.sync(true);
    const r = await this.host.one({
      op: "setTimes", path: this.file.path,
      ...(atimeNs !== undefined ? { atime: atimeNs.toString() } : {}), ...(mtimeNs !== undefined ? { mtime: mtimeNs.toString() } : {}),
    });
    if (r.stat) this.file.adopt(r.stat);
  }
}
