// A NIP-90 job request read into the spec an agent finds at /task/spec.json, with the checks that
// turn a malformed request into one clear `error` feedback instead of a confused agent.
//
//   {"id","kind","customer","created_at","input":[{"data","type","relay"?,"marker"?}],
//    "params":{name: value},"output"?,"bid"?,"request": <the event>}
//
// Inputs the provider resolved before the run (url, event, job) carry the fetched text in `data`
// and what the customer named (URL, event id, job id) in `ref`.
import { cipherOf, decrypt, type Cipher } from "./cipher.ts";
import type { Event } from "nostr-tools/pure";

export const INPUT_TYPES = ["text", "url", "event", "job"] as const;
export type InputType = (typeof INPUT_TYPES)[number];

export interface JobInput {
  data: string;
  type: InputType;
  relay?: string;
  marker?: string;
  /** For resolved url/event/job inputs: what the request named. */
  ref?: string;
}

export interface JobSpec {
  id: string;
  kind: number;
  customer: string;
  created_at: number;
  input: JobInput[];
  params: Record<string, string>;
  output?: string;
  bid?: number;
  request: Event;
}

/** A request the provider refuses, with the reason sent back as `error` feedback. */
export class BadRequest extends Error {}

/** The customer cancelled the job (a kind-5 deletion): nothing more is published for it. */
export class Cancelled extends Error {}

/** Waits `ms`, or throws Cancelled as soon as `signal` aborts. */
export function sleepUnlessCancelled(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new Cancelled());
    const t = setTimeout(() => (signal.removeEventListener("abort", stop), resolve()), ms);
    const stop = () => (clearTimeout(t), reject(new Cancelled()));
    signal.addEventListener("abort", stop, { once: true });
  });
}

export const DEFAULT_MAX_REQUEST_BYTES = 64 * 1024;
const HEX64 = /^[0-9a-f]{64}$/;

/**
 * The request's plain tags: its own, or for an encrypted request (`encrypted` tag) the tags
 * decrypted from its content with the provider's key, plus its clear tags (bid, expiration,
 * relays; not `encrypted` or `p`), and the cipher the answer must use. `null` for an encrypted
 * request that names another provider (only the named one can read it). Throws BadRequest when it
 * does not decrypt to a tag list.
 */
export function requestTags(e: Event, secretKey: Uint8Array, pubkey: string): { tags: string[][]; cipher: Cipher | null } | null {
  if (!e.tags.some((t) => t[0] === "encrypted")) return { tags: e.tags, cipher: null };
  if (!e.tags.some((t) => t[0] === "p" && t[1] === pubkey)) return null;
  const cipher = cipherOf(e.content);
  try {
    const inner = JSON.parse(decrypt(secretKey, e.pubkey, e.content, cipher)) as string[][];
    if (!Array.isArray(inner)) throw new Error("not a tag list");
    return { tags: [...inner, ...e.tags.filter((t) => t[0] !== "encrypted" && t[0] !== "p")], cipher };
  } catch (err) {
    throw new BadRequest(`cannot decrypt the request (${(err as Error).message})`);
  }
}

/**
 * `tags` are the request's own tags, or for an encrypted request the tags decrypted from its
 * content. Throws BadRequest.
 */
export function readRequest(e: Event, tags: string[][], maxBytes = DEFAULT_MAX_REQUEST_BYTES): JobSpec {
  const size = new TextEncoder().encode(JSON.stringify(e)).length;
  if (size > maxBytes) throw new BadRequest(`request is ${size} bytes, over this provider's limit of ${maxBytes}`);
  const input: JobInput[] = [];
  const params: Record<string, string> = {};
  let output: string | undefined;
  let bid: number | undefined;
  for (const t of tags) {
    if (!Array.isArray(t) || t.some((v) => typeof v !== "string")) throw new BadRequest("tags must be arrays of strings");
    if (t[0] === "i") {
      const [, data, type, relay, marker] = t;
      const n = input.length + 1;
      if (!data) throw new BadRequest(`input ${n} has no data`);
      if (!(INPUT_TYPES as readonly string[]).includes(type ?? "")) throw new BadRequest(`input ${n} has type ${JSON.stringify(type ?? null)}; one of ${INPUT_TYPES.join(", ")}`);
      if ((type === "event" || type === "job") && !HEX64.test(data)) throw new BadRequest(`input ${n} (${type}) must be an event id (64 lowercase hex)`);
      if (type === "url" && !/^https?:\/\//.test(data)) throw new BadRequest(`input ${n} (url) must be an http(s) URL`);
      input.push({ data, type: type as InputType, ...(relay ? { relay } : {}), ...(marker ? { marker } : {}) });
    } else if (t[0] === "param") {
      const [, name, value] = t;
      if (!name || value === undefined) throw new BadRequest(`param tags are ["param", NAME, VALUE] (got ${JSON.stringify(t)})`);
      if (name in params) throw new BadRequest(`param ${JSON.stringify(name)} given twice`);
      params[name] = value;
    } else if (t[0] === "output" && t[1]) output = t[1];
    else if (t[0] === "bid") {
      const b = Number(t[1]);
      if (!Number.isSafeInteger(b) || b < 0) throw new BadRequest(`bid must be a whole number of msats (got ${JSON.stringify(t[1])})`);
      bid = b;
    }
  }
  if (!input.length) throw new BadRequest("no input: a job request needs at least one i tag");
  return {
    id: e.id, kind: e.kind, customer: e.pubkey, created_at: e.created_at, input, params,
    ...(output !== undefined ? { output } : {}), ...(bid !== undefined ? { bid } : {}), request: e,
  };
}

/** The NIP-40 expiration of an event (seconds), if it has one. */
export function expiration(e: Event): number | undefined {
  const v = e.tags.find((t) => t[0] === "expiration")?.[1];
  const n = Number(v);
  return v !== undefined && Number.isFinite(n) ? n : undefined;
}
