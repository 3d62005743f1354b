// Every RPC method of the workspace object answers a Reply and never throws across RPC: an error
// is data (its FsError code and the HTTP status from the one table in services/remote-wire.ts).
import { FsError, type ErrorCode } from "../../runtime/errors.ts";
import { toWireError } from "../../services/remote-wire.ts";
import { statusOf } from "../errors.ts";
import type { Reply } from "../env.ts";

export type ErrorReply = Extract<Reply<never>, { ok: false }>;

export const fail = (code: ErrorCode, msg: string, path?: string): never => {
  throw new FsError(code, msg, path === undefined ? {} : { path });
};

export function errorReply(e: unknown): ErrorReply {
  const w = toWireError(e);
  if (!(e instanceof FsError)) console.error("workspace: unexpected error", e);
  return { ok: false, status: e instanceof FsError ? statusOf(e) : 500, error: w };
}

export function replyOf<T>(fn: () => T): Reply<T> {
  try {
    return { ok: true, value: fn() };
  } catch (e) {
    return errorReply(e);
  }
}

/** An ArrayBuffer holding exactly these bytes (SQLite BLOB parameters). */
export const buf = (u: Uint8Array): ArrayBuffer =>
  u.byteOffset === 0 && u.byteLength === u.buffer.byteLength && u.buffer instanceof ArrayBuffer
    ? u.buffer
    : (u.slice().buffer as ArrayBuffer);

export const nowNs = (): string => (BigInt(Date.now()) * 1_000_000n).toString();
