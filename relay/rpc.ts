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
import type { EventStore } from "./store.ts";

export type Published = PublishResult & { accepted: boolean };

export const published = (r: PublishResult): Published => ({ ok: r.ok, accepted: r.ok, message: r.message });

export function queryStored(store: EventStore, cfg: RelayConfig, raw: unknown, now: number): NostrEvent[] {
  const list = Array.isArray(raw) ? raw : [raw];
  if (list.length === 0) throw new Error("invalid: query needs at least one filter");
  if (list.length > cfg.maxFilters) throw new Error(`invalid: more than ${cfg.maxFilters} filters`);
  const filters: Filter[] = [];
  for (const rf of list) {
    const f = parseFilter(rf, cfg);
    if (typeof f === "string") throw new Error(`invalid: ${f}`);
    filters.push(f);
  }
  return store.query(filters, now, cfg.defaultLimit).map((e) => JSON.parse(e) as NostrEvent);
}
