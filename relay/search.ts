// NIP-50 search: which text of an event is searchable, how a query string becomes FTS5 terms, and
// the same matching in memory for live subscriptions. The index itself is an FTS5 table in
// store.ts; both sides split words the way its `unicode61 remove_diacritics 2` tokenizer does
// (letters and digits, case and accents folded), so a live event matches when a stored one would.
import type { NostrEvent } from "./event.ts";

/** Kinds whose content is ciphertext (NIP-04, NIP-17 seals and gift wraps): never indexed. */
const ENCRYPTED_KINDS = new Set([4, 13, 1059]);

/** The searchable text of an event: its content, or for kind 0 the profile's name, about and nip05. */
export function searchableText(e: NostrEvent): string {
  if (ENCRYPTED_KINDS.has(e.kind)) return "";
  if (e.kind !== 0) return e.content;
  try {
    const p = JSON.parse(e.content) as Record<string, unknown>;
    if (typeof p !== "object" || p === null) return "";
    return ["name", "display_name", "about", "nip05"]
      .map((k) => p[k])
      .filter((v): v is string => typeof v === "string")
      .join("\n");
  } catch {
    return "";
  }
}

/** Words as the FTS5 unicode61 tokenizer sees them: runs of letters and digits, lowercased, accents removed. */
export function words(text: string): string[] {
  return text
    .normalize("NFKD")
    .replace(/\p{M}+/gu, "")
    .toLowerCase()
    .split(/[^\p{L}\p{N}]+/u)
    .filter((w) => w.length > 0);
}

/** NIP-50 extensions look like `key:value` (include:spam, language:en, domain:…); unsupported ones are ignored. */
const EXTENSION = /^[a-z][a-z0-9_-]*:\S*$/i;
/** A query with more terms than this is refused (each is an FTS5 term). */
export const MAX_SEARCH_TERMS = 32;

/** The words a query asks for (all of them must appear), or an error text. */
export function parseSearch(query: unknown): string[] | string {
  if (typeof query !== "string") return "search must be a string";
  if (query.length > 1000) return "search is longer than 1000 characters";
  const terms = new Set<string>();
  for (const token of query.split(/\s+/)) {
    if (token === "" || EXTENSION.test(token)) continue;
    for (const w of words(token)) terms.add(w);
  }
  if (terms.size === 0) return "search needs at least one word";
  if (terms.size > MAX_SEARCH_TERMS) return `search has more than ${MAX_SEARCH_TERMS} words`;
  return [...terms];
}

/** The FTS5 MATCH expression for parsed terms: each a quoted string, all required. */
export function ftsQuery(terms: string[]): string {
  return terms.map((t) => `"${t.replaceAll('"', '""')}"`).join(" ");
}

/** Whether an event's searchable text holds every term (live subscriptions). */
export function matchSearch(terms: string[], e: NostrEvent): boolean {
  const text = searchableText(e);
  if (text === "") return false;
  const have = new Set(words(text));
  return terms.every((t) => have.has(t));
}
