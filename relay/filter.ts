// NIP-01 filters: validation (with the relay's limits), matching an event in memory (live fan-out),
// and the SQL a filter compiles to (stored queries). Pure functions.
import { isHex64, type NostrEvent } from "./event.ts";
import { matchSearch, parseSearch } from "./search.ts";

/** A validated filter. Tag conditions are kept as [letter, values] pairs. */
export interface Filter {
  ids?: string[];
  authors?: string[];
  kinds?: number[];
  tags?: Array<[string, string[]]>;
  since?: number;
  until?: number;
  limit?: number;
  /** NIP-50: words that must all appear in the event's searchable text (see search.ts). */
  search?: string[];
}

export interface FilterLimits {
  /** Most values in one array (ids, authors, kinds, one #x). */
  maxFilterValues: number;
  /** Largest `limit` honoured; larger ones are clamped to it. */
  maxLimit: number;
  /** `limit` used when a filter has none. */
  defaultLimit: number;
}

const TAG_KEY = /^#[a-zA-Z]$/;

/** Validates one client filter. Returns the filter or an error text (without the `invalid:` prefix). */
export function parseFilter(raw: unknown, lim: FilterLimits): Filter | string {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return "filter must be a JSON object";
  const f: Filter = {};
  for (const [key, v] of Object.entries(raw as Record<string, unknown>)) {
    switch (key) {
      case "ids":
      case "authors": {
        if (!Array.isArray(v)) return `${key} must be an array`;
        if (v.length > lim.maxFilterValues) return `${key} has ${v.length} values, more than ${lim.maxFilterValues}`;
        for (const x of v) if (!isHex64(x)) return `${key} must hold 64-character lowercase hex strings`;
        f[key] = [...new Set(v as string[])];
        break;
      }
      case "kinds": {
        if (!Array.isArray(v)) return "kinds must be an array";
        if (v.length > lim.maxFilterValues) return `kinds has ${v.length} values, more than ${lim.maxFilterValues}`;
        for (const x of v)
          if (typeof x !== "number" || !Number.isInteger(x) || x < 0 || x > 65535) return "kinds must hold integers between 0 and 65535";
        f.kinds = [...new Set(v as number[])];
        break;
      }
      case "since":
      case "until": {
        if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) return `${key} must be a non-negative integer`;
        f[key] = v;
        break;
      }
      case "limit": {
        if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) return "limit must be a non-negative integer";
        f.limit = Math.min(v, lim.maxLimit);
        break;
      }
      case "search": {
        const terms = parseSearch(v);
        if (typeof terms === "string") return terms;
        f.search = terms;
        break;
      }
      default: {
        if (!TAG_KEY.test(key)) {
          if (key.startsWith("#")) return `tag filter ${JSON.stringify(key)} must be '#' and a single letter`;
          return `unsupported filter field ${JSON.stringify(key)}`;
        }
        if (!Array.isArray(v)) return `${key} must be an array`;
        if (v.length > lim.maxFilterValues) return `${key} has ${v.length} values, more than ${lim.maxFilterValues}`;
        for (const x of v) if (typeof x !== "string") return `${key} must hold strings`;
        (f.tags ??= []).push([key.slice(1), [...new Set(v as string[])]]);
      }
    }
  }
  return f;
}

/** Whether an event matches one filter (limit does not apply to live events). */
export function matchFilter(f: Filter, e: NostrEvent): boolean {
  if (f.ids !== undefined && !f.ids.includes(e.id)) return false;
  if (f.kinds !== undefined && !f.kinds.includes(e.kind)) return false;
  if (f.authors !== undefined && !f.authors.includes(e.pubkey)) return false;
  if (f.since !== undefined && e.created_at < f.since) return false;
  if (f.until !== undefined && e.created_at > f.until) return false;
  if (f.tags !== undefined) {
    for (const [name, values] of f.tags) {
      let hit = false;
      for (const t of e.tags) {
        if (t[0] === name && t.length > 1 && values.includes(t[1]!)) {
          hit = true;
          break;
        }
      }
      if (!hit) return false;
    }
  }
  if (f.search !== undefined && !matchSearch(f.search, e)) return false;
  return true;
}

export function matchAny(filters: Filter[], e: NostrEvent): boolean {
  for (const f of filters) if (matchFilter(f, e)) return true;
  return false;
}

/** A filter that can match nothing (an empty list, or since after until): no query needed. */
export function isEmptyFilter(f: Filter): boolean {
  if (f.ids?.length === 0 || f.authors?.length === 0 || f.kinds?.length === 0) return true;
  if (f.tags?.some(([, v]) => v.length === 0)) return true;
  return f.since !== undefined && f.until !== undefined && f.since > f.until;
}

export interface SqlQuery {
  sql: string;
  params: Array<string | number>;
}

/**
 * The WHERE clause of a filter over `events e` (joined to `tags` for #x conditions). Lists are
 * passed as one JSON parameter through json_each, so a 1,000-author filter is still one binding.
 * Expired events (NIP-40) are excluded with `now`. `search` is not part of it: the store joins the
 * full-text index itself (ranked for REQ, as a set for COUNT).
 */
export function filterWhere(f: Filter, now: number): SqlQuery {
  const where: string[] = ["(e.expires_at IS NULL OR e.expires_at > ?)"];
  const params: Array<string | number> = [now];
  const list = (col: string, values: Array<string | number>) => {
    if (values.length === 1) {
      where.push(`${col} = ?`);
      params.push(values[0]!);
    } else {
      where.push(`${col} IN (SELECT value FROM json_each(?))`);
      params.push(JSON.stringify(values));
    }
  };
  if (f.ids) list("e.id", f.ids);
  if (f.authors) list("e.pubkey", f.authors);
  if (f.kinds) list("e.kind", f.kinds);
  if (f.since !== undefined) {
    where.push("e.created_at >= ?");
    params.push(f.since);
  }
  if (f.until !== undefined) {
    where.push("e.created_at <= ?");
    params.push(f.until);
  }
  for (const [name, values] of f.tags ?? []) {
    if (values.length === 1) {
      where.push("e.seq IN (SELECT t.ev FROM tags t WHERE t.name = ? AND t.value = ?)");
      params.push(name, values[0]!);
    } else {
      where.push("e.seq IN (SELECT t.ev FROM tags t WHERE t.name = ? AND t.value IN (SELECT value FROM json_each(?)))");
      params.push(name, JSON.stringify(values));
    }
  }
  return { sql: where.join(" AND "), params };
}

export interface Subscription {
  sub: string;
  filters: Filter[];
}

/** The limits a REQ or COUNT is checked against (RelayConfig has them all). */
export interface SubscriptionLimits extends FilterLimits {
  maxSubidLength: number;
  maxFilters: number;
  authRead: boolean;
}

/**
 * Checks the subscription id and filters of a REQ or COUNT (`["REQ", sub, filter…]`). The answer
 * to a bad one: a NOTICE when there is no id to close, else CLOSED for that id.
 */
export function parseSubscription(msg: unknown[], verb: string, lim: SubscriptionLimits, authed: boolean): Subscription | { notice: string } | { closed: string; text: string } {
  const sub = msg[1];
  if (typeof sub !== "string") return { notice: `invalid: ${verb} needs a subscription id string` };
  const refuse = (text: string) => ({ closed: sub, text });
  if (sub.length === 0 || sub.length > lim.maxSubidLength) return refuse(`invalid: subscription id must be 1 to ${lim.maxSubidLength} characters`);
  if (lim.authRead && !authed) return refuse("auth-required: this relay only serves authenticated clients");
  const rawFilters = msg.slice(2);
  if (rawFilters.length === 0) return refuse(`invalid: ${verb} needs at least one filter`);
  if (rawFilters.length > lim.maxFilters) return refuse(`invalid: more than ${lim.maxFilters} filters`);
  const filters: Filter[] = [];
  for (const rf of rawFilters) {
    const f = parseFilter(rf, lim);
    if (typeof f === "string") return refuse(`invalid: ${f}`);
    filters.push(f);
  }
  return { sub, filters };
}
