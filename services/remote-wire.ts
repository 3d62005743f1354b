// The wire protocol between services/remote.ts (the client FileService) and edge/ (the Worker).
// Both sides import this file, so the error table, the batch framing and the stat encoding exist
// once. Platform-neutral: no Node, DOM or Workers APIs beyond TextEncoder/TextDecoder.
import { FsError, ERROR_CODES, type ErrorCode } from "../runtime/errors.ts";

export type { ErrorCode };
import type { Stat, FileType, OpenFlags, DirEntry } from "../runtime/types.ts";
import { below, MAX_PATH, utf8Length } from "../runtime/path.ts";

// ---------------------------------------------------------------------------------------------
// Errors: one table, both directions. An error response is always JSON `{error:{code,message}}`
// with the status below; the client trusts the code in the body and falls back to the status.

export const STATUS_OF: Record<ErrorCode, number> = {
  ENOENT: 404, EACCES: 403, EPERM: 403, EEXIST: 409, ENOTDIR: 409, EISDIR: 409, ENOTEMPTY: 409,
  EROFS: 403, EINVAL: 400, EXDEV: 400, ENOSPC: 507, EDQUOT: 507, EIO: 500, ETIMEDOUT: 504,
  EBADF: 400, ELOOP: 400, ENAMETOOLONG: 414, EFBIG: 413, ENOSYS: 501, ENOTSUP: 501, EBUSY: 423,
  EAGAIN: 503, EMFILE: 429, ESPIPE: 400, ECANCELED: 409, ECONNREFUSED: 502, ENOTCAPABLE: 403,
  EFAULT: 400, ECONNRESET: 502, ENOTCONN: 502, EPIPE: 502, EMSGSIZE: 413, EILSEQ: 400,
};

/** Status → code for answers without a usable body (401 is "who are you": EACCES too). */
export function codeOfStatus(status: number): ErrorCode {
  switch (status) {
    case 400: return "EINVAL";
    case 401: case 403: return "EACCES";
    case 404: return "ENOENT";
    case 409: return "EEXIST";
    case 413: return "EFBIG";
    case 414: return "ENAMETOOLONG";
    case 423: return "EBUSY";
    case 429: return "EMFILE";
    case 501: return "ENOSYS";
    case 503: return "EAGAIN";
    case 504: return "ETIMEDOUT";
    case 507: return "ENOSPC";
    default: return "EIO";
  }
}

export interface WireError { code: ErrorCode; message: string }

export function isErrorCode(c: unknown): c is ErrorCode {
  return typeof c === "string" && (ERROR_CODES as readonly string[]).includes(c);
}

export function toWireError(e: unknown): WireError {
  if (e instanceof FsError) return { code: e.code, message: e.message };
  return { code: "EIO", message: e instanceof Error ? e.message : String(e) };
}

export function fromWireError(w: unknown, status = 500): FsError {
  const o = (w ?? {}) as { code?: unknown; message?: unknown };
  const code = isErrorCode(o.code) ? o.code : codeOfStatus(status);
  const msg = typeof o.message === "string" ? o.message.replace(new RegExp(`^${code}: ?`), "") : undefined;
  return new FsError(code, msg || undefined);
}

// ---------------------------------------------------------------------------------------------
// Limits shared by both sides.

/** Largest request body the edge accepts for a batch (bigger files stream through PUT /f/). */
export const MAX_BATCH_BYTES = 32 * 1024 * 1024;
/** Most operations in one batch. */
export const MAX_BATCH_OPS = 1024;
/** Largest single read answered in a batch. */
export const MAX_READ = 16 * 1024 * 1024;
/** Most read data (reads and open readahead together) in one batch's answer (edge/workspace/ops.ts keeps the same bound). */
export const MAX_ANSWER_BYTES = 32 * 1024 * 1024;
/** Largest body of a streamed PUT (R2 allows far more; this is the edge's own cap). */
export const MAX_FILE_BYTES = 5 * 1024 * 1024 * 1024;
/** Pieces up to this size live in the Durable Object's SQLite; bigger ones in R2. */
export const INLINE_MAX = 128 * 1024;

// ---------------------------------------------------------------------------------------------
// Stat on the wire: times as decimal strings (bigint nanoseconds survive JSON exactly).

export interface WireStat {
  type: FileType; size: number; ino: number; nlink: number;
  atime: string; mtime: string; ctime: string; version?: number;
}

export const statToWire = (s: Stat & { version?: number }): WireStat => ({
  type: s.type, size: s.size, ino: s.ino, nlink: s.nlink,
  atime: s.atimeNs.toString(), mtime: s.mtimeNs.toString(), ctime: s.ctimeNs.toString(),
  ...(s.version !== undefined ? { version: s.version } : {}),
});

export const statFromWire = (w: WireStat): Stat => ({
  type: w.type, size: w.size, ino: w.ino, nlink: w.nlink,
  atimeNs: BigInt(w.atime), mtimeNs: BigInt(w.mtime), ctimeNs: BigInt(w.ctime),
});

// ---------------------------------------------------------------------------------------------
// Batch operations. `data` in a request and in a reply is an index into the frame's binary parts.

export type WireOp =
  | { op: "stat"; path: string; version?: number }
  | { op: "readdir"; path: string; version?: number }
  | { op: "mkdir"; path: string; parents?: boolean }
  | { op: "remove"; path: string }
  | { op: "rename"; from: string; to: string }
  | { op: "open"; path: string; flags: OpenFlags; readahead?: number }
  | { op: "read"; path: string; offset: number; length: number; version?: number }
  | { op: "write"; path: string; offset: number; data: number; append?: boolean }
  | { op: "truncate"; path: string; size: number }
  | { op: "setTimes"; path: string; atime?: string; mtime?: string };

export type WireDirEntry = DirEntry & { stat?: WireStat };

export type WireResult =
  | { ok: true; stat?: WireStat; entries?: WireDirEntry[]; data?: number; eof?: boolean; written?: number }
  | { ok: false; error: WireError };

const OPS = new Set(["stat", "readdir", "mkdir", "remove", "rename", "open", "read", "write", "truncate", "setTimes"]);
const FLAG_KEYS = new Set(["read", "write", "create", "exclusive", "truncate", "append", "directory", "nofollow"]);

const isNat = (n: unknown): n is number => typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
const isStr = (s: unknown): s is string => typeof s === "string";
const isTime = (s: unknown): boolean => s === undefined || (typeof s === "string" && /^\d{1,20}$/.test(s));

/** Checks one op's shape; returns a reason when it is malformed. */
export function checkOp(o: unknown, parts: number): string | undefined {
  if (typeof o !== "object" || o === null || Array.isArray(o)) return "op is not an object";
  const op = o as Record<string, unknown>;
  if (!isStr(op.op) || !OPS.has(op.op)) return `unknown op ${JSON.stringify(op.op)}`;
  if (op.op === "rename") return isStr(op.from) && isStr(op.to) ? undefined : "rename needs from and to";
  if (!isStr(op.path)) return `${op.op} needs a path`;
  if (op.version !== undefined && !isNat(op.version)) return "version must be a natural number";
  switch (op.op) {
    case "open": {
      if (typeof op.flags !== "object" || op.flags === null) return "open needs flags";
      for (const [k, v] of Object.entries(op.flags)) if (!FLAG_KEYS.has(k) || typeof v !== "boolean") return `bad flag ${k}`;
      if (op.readahead !== undefined && !isNat(op.readahead)) return "readahead must be a natural number";
      return undefined;
    }
    case "read": return isNat(op.offset) && isNat(op.length) ? undefined : "read needs offset and length";
    case "write":
      if (!isNat(op.offset)) return "write needs an offset";
      if (!isNat(op.data) || op.data >= parts) return "write data refers to no part";
      return undefined;
    case "truncate": return isNat(op.size) ? undefined : "truncate needs a size";
    case "setTimes": return isTime(op.atime) && isTime(op.mtime) ? undefined : "times are decimal nanoseconds";
    case "mkdir": return op.parents === undefined || typeof op.parents === "boolean" ? undefined : "parents is a boolean";
    default: return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Framing: "OANX" | u32 header length | header JSON | u32 part count | (u32 length, bytes)*.
// Binary parts travel as bytes (no base64); the header refers to them by index.

const MAGIC = 0x4f414e58; // "OANX"
export const FRAME_TYPE = "application/x-oanix-batch";

export function encodeFrame(header: unknown, parts: Uint8Array[]): Uint8Array {
  const h = new TextEncoder().encode(JSON.stringify(header));
  let total = 12 + h.length;
  for (const p of parts) total += 4 + p.length;
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, MAGIC);
  dv.setUint32(4, h.length);
  out.set(h, 8);
  let at = 8 + h.length;
  dv.setUint32(at, parts.length);
  at += 4;
  for (const p of parts) {
    dv.setUint32(at, p.length);
    out.set(p, at + 4);
    at += 4 + p.length;
  }
  return out;
}

/** Decodes a frame; throws FsError(EINVAL) on anything malformed. Parts are views, not copies. */
export function decodeFrame(buf: Uint8Array): { header: unknown; parts: Uint8Array[] } {
  const bad = (why: string) => new FsError("EINVAL", `malformed batch: ${why}`);
  if (buf.length < 12) throw bad("too short");
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (dv.getUint32(0) !== MAGIC) throw bad("bad magic");
  const hl = dv.getUint32(4);
  if (8 + hl + 4 > buf.length) throw bad("header overruns body");
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(buf.subarray(8, 8 + hl)));
  } catch {
    throw bad("header is not JSON");
  }
  let at = 8 + hl;
  const n = dv.getUint32(at);
  at += 4;
  if (n > MAX_BATCH_OPS * 2) throw bad("too many parts");
  const parts: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    if (at + 4 > buf.length) throw bad("part overruns body");
    const len = dv.getUint32(at);
    at += 4;
    if (at + len > buf.length) throw bad("part overruns body");
    parts.push(buf.subarray(at, at + len));
    at += len;
  }
  if (at !== buf.length) throw bad("trailing bytes");
  return { header, parts };
}

/**
 * `rid`: the client's id for this request. The workspace remembers recent answers by rid and
 * answers a resent batch (its first answer was lost) with the stored answer, without running it
 * again, so a retry never reports a false EEXIST/ENOENT for work that already landed.
 */
export interface BatchRequest { ops: WireOp[]; atomic?: boolean; rid?: string }

/** Longest request id a client may send. */
export const MAX_RID = 64;

/** Validates a decoded batch request header. */
export function checkBatch(header: unknown, parts: number): BatchRequest {
  const bad = (why: string) => new FsError("EINVAL", `malformed batch: ${why}`);
  if (typeof header !== "object" || header === null) throw bad("header is not an object");
  const h = header as { ops?: unknown; atomic?: unknown; rid?: unknown };
  if (!Array.isArray(h.ops)) throw bad("ops is not an array");
  if (h.ops.length > MAX_BATCH_OPS) throw bad(`more than ${MAX_BATCH_OPS} ops`);
  if (h.atomic !== undefined && typeof h.atomic !== "boolean") throw bad("atomic is a boolean");
  if (h.rid !== undefined && (typeof h.rid !== "string" || h.rid.length === 0 || h.rid.length > MAX_RID)) throw bad(`rid is a string of 1 to ${MAX_RID} characters`);
  h.ops.forEach((o, i) => {
    const why = checkOp(o, parts);
    if (why) throw bad(`op ${i}: ${why}`);
  });
  return { ops: h.ops as WireOp[], atomic: h.atomic === true, ...(h.rid !== undefined ? { rid: h.rid as string } : {}) };
}

// ---------------------------------------------------------------------------------------------
// Paths over HTTP: each URL segment is percent-decoded, then checked by the runtime's name rules
// (runtime/path.ts: well-formed Unicode, no NUL or control characters, 255 bytes a name, 4096 a
// path). Unlike a namespace (where `..` at the root stays at the root), the edge refuses a path
// that tries to climb out (EINVAL), so a mistaken client learns of it instead of writing
// somewhere else.

export function wirePath(raw: string): string {
  if (raw.length > MAX_PATH / 3 && utf8Length(raw) > MAX_PATH) throw new FsError("ENAMETOOLONG", `path longer than ${MAX_PATH} bytes`);
  return below([], raw, "EINVAL").join("/");
}

/** Workspace, stream and id names: what may appear as one URL segment and as an R2 key part. */
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
