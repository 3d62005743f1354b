// What the relay answers to a message it will not process: pure functions over the raw text, so
// the Durable Object only sends. NIP-01 wants the answer to fit the message: OK false for an
// EVENT, CLOSED for a REQ or COUNT, NOTICE otherwise.
import { isAddressable, isHex64, isReplaceable } from "./event.ts";

export type Refusal = { verb: "OK"; id: string } | { verb: "CLOSED"; sub: string } | { verb: "NOTICE" };

/** An object whose `id` is an event id (64 lowercase hex): only such an EVENT gets an OK. */
export const isObjectWithId = (v: unknown): v is { id: string } =>
  typeof v === "object" && v !== null && isHex64((v as { id?: unknown }).id);

/** How to refuse a message that was parsed far enough to know its verb (rate limits). */
export function refusalFor(message: string): Refusal {
  let msg: unknown;
  try {
    msg = JSON.parse(message);
  } catch {
    return { verb: "NOTICE" };
  }
  if (Array.isArray(msg) && msg[0] === "EVENT" && isObjectWithId(msg[1])) return { verb: "OK", id: msg[1].id };
  if (Array.isArray(msg) && (msg[0] === "REQ" || msg[0] === "COUNT") && typeof msg[1] === "string") return { verb: "CLOSED", sub: msg[1] };
  return { verb: "NOTICE" };
}

/**
 * How to refuse an oversized message, which is not parsed: an EVENT still gets its OK, because
 * inside JSON strings quotes are escaped, so the first `"id":"<hex>"` of an EVENT message is the
 * event's id key.
 */
export function refusalForOversized(message: string): Refusal {
  if (/^\s*\[\s*"EVENT"\s*,/.test(message)) {
    const m = /"id"\s*:\s*"([0-9a-f]{64})"/.exec(message);
    if (m) return { verb: "OK", id: m[1]! };
  }
  return { verb: "NOTICE" };
}

/** The OK of an event that storage did not take as new (store.ts's other outcomes). */
export function storageReply(kind: number, status: "duplicate" | "superseded" | "deleted"): { ok: boolean; message: string } {
  switch (status) {
    case "duplicate":
      return { ok: true, message: "duplicate: already have this event" };
    case "superseded":
      return { ok: false, message: `duplicate: a newer version of this ${isReplaceable(kind) ? "replaceable" : isAddressable(kind) ? "addressable" : ""} event is stored` };
    case "deleted":
      return { ok: false, message: "blocked: this event was deleted by its author" };
  }
}
