// Nostr events: the shape NIP-01 fixes, the canonical serialisation the id is hashed over, and the
// kind classes (regular, replaceable, ephemeral, addressable). Pure functions, no I/O.
import { sha256 } from "@noble/hashes/sha2.js";

export interface NostrEvent {
  id: string;
  pubkey: string;
  created_at: number;
  kind: number;
  tags: string[][];
  content: string;
  sig: string;
}

const HEX64 = /^[0-9a-f]{64}$/;
const HEX128 = /^[0-9a-f]{128}$/;

export function isHex64(v: unknown): v is string {
  return typeof v === "string" && v.length === 64 && HEX64.test(v);
}

/**
 * Checks that `raw` has exactly the NIP-01 event shape. Returns an error text (without prefix) or
 * null. Extra fields are not an error; they are dropped by `canonicalEvent`.
 */
export function checkEventShape(raw: unknown): string | null {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return "event must be a JSON object";
  const e = raw as Record<string, unknown>;
  if (!isHex64(e.id)) return "id must be 64 lowercase hex characters";
  if (!isHex64(e.pubkey)) return "pubkey must be 64 lowercase hex characters";
  if (typeof e.sig !== "string" || !HEX128.test(e.sig)) return "sig must be 128 lowercase hex characters";
  if (typeof e.kind !== "number" || !Number.isInteger(e.kind) || e.kind < 0 || e.kind > 65535)
    return "kind must be an integer between 0 and 65535";
  if (typeof e.created_at !== "number" || !Number.isSafeInteger(e.created_at) || e.created_at < 0)
    return "created_at must be a non-negative integer (unix seconds)";
  if (typeof e.content !== "string") return "content must be a string";
  if (!Array.isArray(e.tags)) return "tags must be an array";
  for (const tag of e.tags) {
    if (!Array.isArray(tag)) return "each tag must be an array of strings";
    for (const item of tag) if (typeof item !== "string") return "each tag must be an array of strings";
  }
  return null;
}

/** The event with exactly the seven NIP-01 fields, in a stable order (what the relay stores and sends). */
export function canonicalEvent(e: NostrEvent): NostrEvent {
  return { id: e.id, pubkey: e.pubkey, created_at: e.created_at, kind: e.kind, tags: e.tags, content: e.content, sig: e.sig };
}

/** NIP-01 serialisation hashed into the id: `[0,pubkey,created_at,kind,tags,content]`. */
export function serializeForId(e: NostrEvent): string {
  return JSON.stringify([0, e.pubkey, e.created_at, e.kind, e.tags, e.content]);
}

const encoder = new TextEncoder();
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += HEX[bytes[i]!];
  return s;
}

export function fromHex(hex: string, out: Uint8Array = new Uint8Array(hex.length >> 1)): Uint8Array {
  for (let i = 0; i < out.length; i++) {
    const hi = hexNibble(hex.charCodeAt(2 * i));
    const lo = hexNibble(hex.charCodeAt(2 * i + 1));
    out[i] = (hi << 4) | lo;
  }
  return out;
}

function hexNibble(c: number): number {
  return c <= 57 ? c - 48 : c - 87; // '0'-'9' or 'a'-'f' (input already checked lowercase hex)
}

/** sha256 of the serialisation, as bytes. */
export function eventHash(e: NostrEvent): Uint8Array {
  return sha256(encoder.encode(serializeForId(e)));
}

export function isReplaceable(kind: number): boolean {
  return kind === 0 || kind === 3 || (kind >= 10000 && kind < 20000);
}
export function isEphemeral(kind: number): boolean {
  return kind >= 20000 && kind < 30000;
}
export function isAddressable(kind: number): boolean {
  return kind >= 30000 && kind < 40000;
}

/** First value of the first tag named `name`, if any. */
export function tagValue(e: NostrEvent, name: string): string | undefined {
  for (const t of e.tags) if (t[0] === name && t.length > 1) return t[1];
  return undefined;
}

/** The `d` identifier of an addressable event ("" when absent, as NIP-01 says). */
export function dTag(e: NostrEvent): string {
  return tagValue(e, "d") ?? "";
}

/** NIP-40: the expiration timestamp, or null when the event has none (or an unparsable one). */
export function expirationOf(e: NostrEvent): number | null {
  const v = tagValue(e, "expiration");
  if (v === undefined || !/^\d{1,15}$/.test(v)) return null;
  return Number(v);
}

/** Whether the tag is indexable for `#x` filters: a single-letter name with a value. */
export function isIndexedTag(t: string[]): boolean {
  const n = t[0];
  return n !== undefined && n.length === 1 && t.length > 1 && /^[a-zA-Z]$/.test(n);
}

/** NIP-70: an event with a `["-"]` tag may only be published by its author. */
export function isProtected(e: NostrEvent): boolean {
  return e.tags.some((t) => t.length === 1 && t[0] === "-");
}
