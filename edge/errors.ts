// Errors at the edge are FsErrors (code, op, path as fields). Two carry their own HTTP status:
// AuthError (EACCES as 401 or 403, edge/auth.ts) and ReplyError, an error answered by the
// workspace object across RPC and passed on as it came. Everything else takes its status from
// the one table in services/remote-wire.ts.
import { FsError } from "../runtime/errors.ts";
import { STATUS_OF, isErrorCode } from "../services/remote-wire.ts";
import { AuthError } from "./auth.ts";
import type { Reply } from "./env.ts";

export class ReplyError extends FsError {
  readonly status: number;
  constructor(r: Extract<Reply<never>, { ok: false }>) {
    super(isErrorCode(r.error.code) ? r.error.code : "EIO");
    this.message = r.error.message;
    this.status = r.status;
  }
}

/** The value of a Reply, or its error thrown as a ReplyError. */
export function unwrap<T>(r: Reply<T>): T {
  if (r.ok) return r.value;
  throw new ReplyError(r);
}

export const statusOf = (e: FsError): number => (e instanceof AuthError || e instanceof ReplyError ? e.status : STATUS_OF[e.code]);

/** Too busy now: 429 with EAGAIN (the client may try again later). */
export const busy = (message: string): ReplyError =>
  new ReplyError({ ok: false, status: 429, error: { code: "EAGAIN", message: `EAGAIN: ${message}` } });

/** An operation's error inside a batch answer, raised with the status of its code. */
export function opError(e: { code: string; message: string }): ReplyError {
  const code = isErrorCode(e.code) ? e.code : "EIO";
  return new ReplyError({ ok: false, status: STATUS_OF[code], error: { code, message: e.message } });
}
