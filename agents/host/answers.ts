// What a NIP-90 provider publishes, in the one shape both providers use (`oanix serve` in Node and
// the edge provider in the Worker): the NIP-89 announcement, feedback, the result event, and the
// two texts taken from an agent's run (the result content, the reason a run failed). Pure: event
// templates, signed by the caller with its own key.
import type { ExitStatus } from "../../runtime/process.ts";
import type { Event } from "nostr-tools/pure";

export const HANDLER_INFO = 31990;
export const FEEDBACK = 7000;
export const DELETION = 5;
/** A result event carries at most this much content. */
export const MAX_RESULT_CHARS = 256 * 1024;
/** The end of the agent's stderr an `error` feedback quotes. */
export const STDERR_TAIL = 400;

export interface Template {
  kind: number;
  tags: string[][];
  content: string;
}

/** NIP-89: kind 31990, `d` = `oanix-<name>`, a `k` per kind, content {name, about, encryptionSupported}. */
export function announcement(o: { name: string; about: string; kinds: number[]; encryptionSupported: boolean }): Template {
  return {
    kind: HANDLER_INFO,
    tags: [["d", `oanix-${o.name}`], ...o.kinds.map((k) => ["k", String(k)])],
    content: JSON.stringify({ name: o.name, about: o.about, encryptionSupported: o.encryptionSupported }),
  };
}

/** The `e` tag naming a request, with the relay it was seen on when known. */
const eTag = (req: Event, relay?: string): string[] => (relay ? ["e", req.id, relay] : ["e", req.id]);

/** Feedback (7000): `status` with its extra text (also the content), `e`, `p`, and any `more` tags. */
export function feedback(req: Event, status: string, extra: string, o: { relay?: string; more?: string[][] } = {}): Template {
  return {
    kind: FEEDBACK,
    tags: [["status", status, ...(extra ? [extra] : [])], eTag(req, o.relay), ["p", req.pubkey], ...(o.more ?? [])],
    content: extra,
  };
}

/**
 * The result (request kind + 1000): tags `request` (the request JSON), `e`, `p` (the customer),
 * `amount` when priced, and the `i` tags of the plain request; an encrypted request's result has
 * `body` already encrypted, is tagged `encrypted` and carries no `i` tags.
 */
export function result(req: Event, body: string, o: { plainTags: string[][]; encrypted: boolean; price?: number; relay?: string; more?: string[][] }): Template {
  const t: string[][] = [["request", JSON.stringify(req)], eTag(req, o.relay), ["p", req.pubkey]];
  if (o.price) t.push(["amount", String(o.price)]);
  if (o.more) t.push(...o.more);
  if (o.encrypted) t.push(["encrypted"]);
  else t.push(...o.plainTags.filter((x) => x[0] === "i"));
  return { kind: req.kind + 1000, tags: t, content: body };
}

/** The `content` string of result.json when it has one, else the whole text. */
export function resultContent(text: string): string {
  try {
    const v = JSON.parse(text) as unknown;
    if (v && typeof v === "object" && typeof (v as { content?: unknown }).content === "string") return (v as { content: string }).content;
  } catch {
    // not JSON: the text itself is the answer
  }
  return text;
}

/** Why a run that did not exit 0 has no result: `agent exited with status N (why): <stderr tail>`. */
export function exitReason(status: Pick<ExitStatus, "code" | "message">, stderr: string): string {
  const tail = stderr.slice(-STDERR_TAIL).trim();
  return `agent exited with status ${status.code}${status.message ? ` (${status.message})` : ""}${tail ? `: ${tail}` : ""}`;
}

/** Why a run that exited 0 has no result. */
export const NO_RESULT = "agent exited 0 without writing /task/result.json";
