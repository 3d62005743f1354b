// How a capability reports a failure: the errno goes to the guest's read, and one line goes to
// /logs/events.jsonl for a person: {"event":"cap.error","cap":"http","file":"fetch","errno":"EACCES","reason":"…"}.
// Every reason passes through `scrub` first, so a secret can never reach a log or an error message.
import { FsError, fsError, type ErrorCode } from "../../runtime/errors.ts";

export type EventSink = (event: Record<string, unknown>) => void;

export interface CapContext {
  /** Where cap.error lines go (grantCaps writes them to the namespace's /logs/events.jsonl). */
  events: EventSink;
  /** Replaces every secret value in a string (identity when there are no secrets). */
  scrub: (s: string) => string;
}

export const quietContext: CapContext = { events: () => {}, scrub: (s) => s };

/** A capability failure: an FsError whose message is the reason a person reads. */
export const capError = (code: ErrorCode, reason: string): FsError => fsError(code, reason);

/**
 * Turns anything thrown into the FsError the guest sees (non-FsErrors become `fallback`), logs
 * it once, and returns it scrubbed.
 */
export function report(ctx: CapContext, cap: string, fileName: string, e: unknown, fallback: ErrorCode = "EIO"): FsError {
  if (e instanceof FsError && (e as { reported?: boolean }).reported) return e;
  const code = e instanceof FsError ? e.code : fallback;
  const raw = e instanceof FsError ? reasonOf(e) : e instanceof Error ? e.message : String(e);
  const reason = ctx.scrub(raw);
  const out = fsError(code, reason, { path: `/cap/${cap}/${fileName}` });
  (out as { reported?: boolean }).reported = true;
  try {
    ctx.events({ ts: Date.now(), event: "cap.error", cap, file: fileName, errno: code, reason });
  } catch {
    // Logging must never change what the guest sees.
  }
  return out;
}

/** The message without its "CODE: " prefix. */
export const reasonOf = (e: FsError): string => (e.message.startsWith(`${e.code}: `) ? e.message.slice(e.code.length + 2) : e.message);
