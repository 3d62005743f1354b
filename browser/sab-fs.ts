// A FileService across threads, for running a guest without JSPI: `SabFileService` (the guest's
// thread) answers every call synchronously by blocking on a channel (browser/sab-channel.ts) while
// `serveFileService` (the services' thread) does the work, Promises and all.
//
// A message is a length-prefixed JSON header and a binary tail: [u32 header bytes][JSON][bytes].
// Requests: {o: op, a: args, h?: handle, p?: position}, the tail the bytes written. Replies:
// {v: value, p?: position} or {e: {c: code, m: message, op, path}}, the tail the bytes read.
// Bigints (times in Stat) and undefined (an unchanged time) survive the JSON. Errors come back as
// FsError with their code, so the guest sees the same errno as with the service in its own thread.
// A handle's position lives on the services' side; each handle call carries the guest's position
// and the reply the new one, so seek and tell stay local and cost nothing.
import { FsError, ERROR_CODES, fsError, type ErrorCode } from "../runtime/errors.ts";
import type { DirEntry, FileHandle, FileService, FileType, OpenFlags, Stat } from "../runtime/types.ts";
import { BlockingClient, ChannelDown, ChannelServer } from "./sab-channel.ts";

interface Request { o: string; a: unknown[]; h?: number; p?: number }
interface WireError { c?: string; m?: string; op?: string; path?: string; n?: string }
interface Reply { v?: unknown; p?: number; e?: WireError }
/** What `open` answers: the handle's id and the shape the guest's proxy takes. */
interface HandleInfo { id: number; type?: FileType; position: number; transactional?: boolean; public?: boolean; append?: boolean; setTimes?: boolean }

const enc = new TextEncoder();
const dec = new TextDecoder();
const EMPTY = new Uint8Array(0);

const replacer = (_: string, v: unknown): unknown => (typeof v === "bigint" ? { $b: v.toString() } : v === undefined ? { $u: 1 } : v);
const reviver = (_: string, v: unknown): unknown => {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return v;
  if ("$b" in v) return BigInt((v as { $b: string }).$b);
  if ("$u" in v) return undefined;
  return v;
};

export function encodeMessage(head: object, tail: Uint8Array = EMPTY): Uint8Array {
  const json = enc.encode(JSON.stringify(head, replacer));
  const out = new Uint8Array(4 + json.length + tail.length);
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(json, 4);
  out.set(tail, 4 + json.length);
  return out;
}

export function decodeMessage<T>(bytes: Uint8Array): { head: T; tail: Uint8Array } {
  const n = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true);
  return { head: JSON.parse(dec.decode(bytes.subarray(4, 4 + n)), reviver) as T, tail: bytes.subarray(4 + n) };
}

// ---------------------------------------------------------------------------------------------
// The guest's side

export interface SabFileServiceOptions {
  /** What a call that hit the client's deadline throws (by default ETIMEDOUT): a process passes its wall-time limit. */
  onTimeout?: () => Error;
}

/** A FileService that answers synchronously from a service in another thread. */
export class SabFileService implements FileService {
  readonly #client: BlockingClient;
  readonly #onTimeout?: () => Error;

  constructor(client: BlockingClient, o: SabFileServiceOptions = {}) {
    this.#client = client;
    this.#onTimeout = o.onTimeout;
  }

  /** One call: blocks until the reply, throws what the service threw (an FsError keeps its code). */
  call(req: Request, tail?: Uint8Array): { v: unknown; p?: number; tail: Uint8Array } {
    let bytes: Uint8Array;
    try {
      bytes = this.#client.call(encodeMessage(req, tail));
    } catch (e) {
      if (!(e instanceof ChannelDown)) throw e;
      if (e.timedOut && this.#onTimeout) throw this.#onTimeout();
      throw fsError(e.timedOut ? "ETIMEDOUT" : "EIO", e.message, { op: req.o });
    }
    const { head, tail: out } = decodeMessage<Reply>(bytes);
    if (head.e) throw errorOf(head.e);
    return { v: head.v, p: head.p, tail: out };
  }

  #op<T>(o: string, ...a: unknown[]): T {
    return this.call({ o, a }).v as T;
  }

  open(path: string, flags: OpenFlags): SabHandle {
    return new SabHandle(this, this.#op<HandleInfo>("open", path, flags));
  }
  stat(path: string): Stat {
    return this.#op("stat", path);
  }
  lstat(path: string): Stat {
    return this.#op("lstat", path);
  }
  readdir(path: string): DirEntry[] {
    return this.#op("readdir", path);
  }
  mkdir(path: string): void {
    this.#op("mkdir", path);
  }
  remove(path: string): void {
    this.#op("remove", path);
  }
  rename(from: string, to: string): void {
    this.#op("rename", from, to);
  }
  symlink(target: string, path: string): void {
    this.#op("symlink", target, path);
  }
  readlink(path: string): string {
    return this.#op("readlink", path);
  }
  link(existing: string, path: string): void {
    this.#op("link", existing, path);
  }
  setTimes(path: string, atimeNs: bigint | undefined, mtimeNs: bigint | undefined, opts?: { nofollow?: boolean }): void {
    this.#op("setTimes", path, atimeNs, mtimeNs, opts);
  }
}

function errorOf(e: WireError): Error {
  if (e.c && (ERROR_CODES as readonly string[]).includes(e.c)) {
    const place = { ...(e.op !== undefined ? { op: e.op } : {}), ...(e.path !== undefined ? { path: e.path } : {}) };
    return new FsError(e.c as ErrorCode, e.m, place);
  }
  const err = new Error(e.m ?? "the service failed");
  if (e.n) err.name = e.n;
  return err;
}

/** A handle across threads: every method answers synchronously. */
export class SabHandle implements FileHandle {
  readonly #fs: SabFileService;
  readonly #id: number;
  readonly type?: FileType;
  readonly transactional?: boolean;
  readonly public?: boolean;
  position: number;
  append?: (data: Uint8Array) => number;
  setTimes?: (atimeNs: bigint | undefined, mtimeNs: bigint | undefined) => void;

  constructor(fs: SabFileService, info: HandleInfo) {
    this.#fs = fs;
    this.#id = info.id;
    this.position = info.position;
    if (info.type) this.type = info.type;
    if (info.transactional) this.transactional = true;
    if (info.public) this.public = true;
    // Only what the real handle has: the WASI host picks its path by what is present.
    if (info.append) this.append = (data) => this.#call<number>("append", [], data);
    if (info.setTimes) this.setTimes = (a, m) => void this.#call("setTimes", [a, m]);
  }

  #call<T>(o: string, a: unknown[], tail?: Uint8Array): T {
    const r = this.#fs.call({ o, a, h: this.#id, p: this.position }, tail);
    if (r.p !== undefined) this.position = r.p;
    return (o === "read" ? r.tail : r.v) as T;
  }

  read(length: number, offset?: number): Uint8Array {
    return this.#call("read", [length, offset]);
  }
  readInto(target: Uint8Array, offset?: number): number {
    const got = this.#call<Uint8Array>("read", [target.length, offset]);
    target.set(got);
    return got.length;
  }
  write(data: Uint8Array, offset?: number): number {
    return this.#call("write", [offset], data);
  }
  stat(): Stat {
    return this.#call("stat", []);
  }
  truncate(size: number): void {
    this.#call("truncate", [size]);
  }
  sync(): void {
    this.#call("sync", []);
  }
  close(): void {
    this.#call("close", []);
  }
}

// ---------------------------------------------------------------------------------------------
// The services' side

const SERVICE_OPS = new Set(["open", "stat", "lstat", "readdir", "mkdir", "remove", "rename", "symlink", "readlink", "link", "setTimes"]);
const HANDLE_OPS = new Set(["read", "write", "append", "stat", "truncate", "sync", "close", "setTimes"]);

export interface Served {
  /** Settles when the channel is closed. */
  done: Promise<void>;
  /** Stops serving and closes the handles the guest left open (errors are collected, not thrown). */
  close(): Promise<unknown[]>;
}

/** Answers a SabFileService's calls from `fs`, until close(). */
export function serveFileService(sab: SharedArrayBuffer, fs: FileService): Served {
  const server = new ChannelServer(sab);
  const handles = new Map<number, FileHandle>();
  let next = 1;

  const answer = async (bytes: Uint8Array): Promise<Uint8Array> => {
    try {
      const { head: req, tail } = decodeMessage<Request>(bytes);
      if (req.h === undefined) {
        if (!SERVICE_OPS.has(req.o)) throw fsError("ENOSYS", `${req.o}: not a file service operation`);
        const fn = (fs as unknown as Record<string, (...a: unknown[]) => unknown>)[req.o];
        if (typeof fn !== "function") throw fsError("ENOSYS", `${req.o}: not supported by this service`, { op: req.o });
        const v = await fn.apply(fs, req.a);
        if (req.o !== "open") return encodeMessage({ v });
        const h = v as FileHandle;
        const id = next++;
        handles.set(id, h);
        const info: HandleInfo = { id, position: h.position, ...(h.type ? { type: h.type } : {}) };
        if (h.transactional) info.transactional = true;
        if (h.public) info.public = true;
        if (h.append) info.append = true;
        if (h.setTimes) info.setTimes = true;
        return encodeMessage({ v: info });
      }
      const h = handles.get(req.h);
      if (!h) throw fsError("EBADF", `handle ${req.h} is not open`, { op: req.o });
      if (!HANDLE_OPS.has(req.o)) throw fsError("ENOSYS", `${req.o}: not a file handle operation`);
      if (req.p !== undefined && h.position !== req.p) h.position = req.p;
      const a = req.a;
      switch (req.o) {
        case "read": {
          const got = await h.read(a[0] as number, a[1] as number | undefined);
          return encodeMessage({ p: h.position }, got);
        }
        case "write":
          return encodeMessage({ v: await h.write(tail, a[0] as number | undefined), p: h.position });
        case "append":
          if (!h.append) throw fsError("ENOSYS", "append: not supported by this handle");
          return encodeMessage({ v: await h.append(tail), p: h.position });
        case "close":
          handles.delete(req.h);
          await h.close();
          return encodeMessage({});
        default: {
          const fn = (h as unknown as Record<string, (...a: unknown[]) => unknown>)[req.o];
          if (typeof fn !== "function") throw fsError("ENOSYS", `${req.o}: not supported by this handle`);
          return encodeMessage({ v: await fn.apply(h, a), p: h.position });
        }
      }
    } catch (e) {
      return encodeMessage({ e: wireError(e) });
    }
  };

  const done = server.serve(answer);
  return {
    done,
    async close() {
      server.close();
      await done.catch(() => {});
      const left = [...handles.values()];
      handles.clear();
      const r = await Promise.allSettled(left.map(async (h) => h.close()));
      return r.flatMap((x) => (x.status === "rejected" ? [x.reason] : []));
    },
  };
}

function wireError(e: unknown): WireError {
  if (e instanceof FsError) {
    const prefix = `${e.code}: `;
    const m = e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message === e.code ? undefined : e.message;
    return { c: e.code, ...(m !== undefined ? { m } : {}), ...(e.op !== undefined ? { op: e.op } : {}), ...(e.path !== undefined ? { path: e.path } : {}) };
  }
  return { m: e instanceof Error ? e.message : String(e), n: e instanceof Error ? e.name : "Error" };
}
