// The relay for code in the same Worker (the edge's /cap/nostr, edge agents), over Durable Object
// RPC instead of a socket:
// - publish's answer: {accepted, message} (and `ok`, the same, which edge agents' JobContext reads);
// - query: stored events with the same filter rules and limits as a REQ (validated with the
//   relay's config, at most maxFilters filters, each limit clamped), newest first, up to what is
//   stored now (a REQ's events before EOSE). Bad filters throw an Error whose message starts with
//   "invalid:", as a CLOSED would say.
import type { RelayConfig } from "./config.ts";
import type { NostrEvent } from "./event.ts";
import { parseFilter, type Filter } from "./filter.ts";
import type { PublishResult } from "./nip90.ts";

export type Published = PublishResult & { accepted: boolean };

export const published = (r: PublishResult): Published => ({ ok: r.ok, accepted: r.ok, message: r.message });

/** `read`: the relay's stored events for checked filters, raw, in a REQ's order (from its SQLite, or its storage shards). */
export function queryStored(read: (filters: Filter[]) => string[] | Promise<string[]>, cfg: RelayConfig, raw: unknown): NostrEvent[] | Promise<NostrEvent[]> {
  const list = Array.isArray(raw) ? raw : [raw];
  if (list.length === 0) throw new Error("invalid: query needs at least one filter");
  if (list.length > cfg.maxFilters) throw new Error(`invalid: more than ${cfg.maxFilters} filters`);
  const filters: Filter[] = [];
  for (const rf of list) {
    const f = parseFilter(rf, cfg);
    if (typeof f === "string") throw new Error(`invalid: ${f}`);
    filters.push(f);
  }
  const parse = (raws: string[]) => raws.map((e) => JSON.parse(e) as NostrEvent);
  const raws = read(filters);
  return raws instanceof Promise ? raws.then(parse) : parse(raws);
}
