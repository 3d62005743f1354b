// The sharded layout, pure: how many shards (`RELAY_SHARDS`), what each object is named, which
// storage shard holds an author's events, which connection shard the Worker gives a client, and
// how the per-shard answers of a query merge into the single object's answer.
//
// With K = 1 (the default) there is one object, named as before ("main"). With K > 1:
//   connection shards  RELAY          "<base>/<K>/conn-<i>"   sockets, subscriptions, AUTH, limits
//   storage shards     RELAY_STORAGE  "<base>/<K>/store-<j>"  the events of the authors hashed to j
// The shard count is part of every name, so a relay with another K is another set of objects
// (moving events between layouts is not done here).

/** Most shards a layout may have (each query may ask every storage shard). */
export const MAX_SHARDS = 64;

/** RELAY_SHARDS as a count: unset or empty = 1; anything else must be an integer from 1 to MAX_SHARDS. */
export function parseShardCount(value: string | undefined): number | string {
  if (value === undefined || value.trim() === "") return 1;
  const n = Number(value.trim());
  if (!Number.isInteger(n) || n < 1 || n > MAX_SHARDS) return `RELAY_SHARDS must be an integer from 1 to ${MAX_SHARDS}, not ${JSON.stringify(value).slice(0, 40)}`;
  return n;
}

export interface Layout {
  base: string;
  shards: number;
  /** This connection shard's index. */
  index: number;
}

export function connShardName(base: string, index: number, shards: number): string {
  return shards === 1 ? base : `${base}/${shards}/conn-${index}`;
}

export function storageShardName(base: string, index: number, shards: number): string {
  return `${base}/${shards}/store-${index}`;
}

const CONN_NAME = /^(.*)\/(\d+)\/conn-(\d+)$/s;

/** The layout a connection shard's object name says, or null for a single object. */
export function parseConnShardName(name: string | undefined): Layout | null {
  const m = name === undefined ? null : CONN_NAME.exec(name);
  if (!m) return null;
  const shards = Number(m[2]);
  const index = Number(m[3]);
  if (shards < 2 || shards > MAX_SHARDS || index >= shards) return null;
  return { base: m[1]!, shards, index };
}

/** The storage shard of an author: the first 32 bits of the (random-looking) pubkey, mod K. */
export function shardOfAuthor(pubkey: string, shards: number): number {
  return parseInt(pubkey.slice(0, 8), 16) % shards;
}

/**
 * The connection shard for a client: by its address when known (so that every connection from one
 * address meets the same per-address limits), else any.
 */
export function connShardFor(ip: string | null, shards: number): number {
  if (!ip) return Math.floor(Math.random() * shards);
  let h = 0x811c9dc5; // FNV-1a
  for (let i = 0; i < ip.length; i++) h = Math.imul(h ^ ip.charCodeAt(i), 0x01000193);
  return (h >>> 0) % shards;
}

// ---------------------------------------------------------------- merging answers

/** A stored event as a query returns it; `rank` (FTS5 bm25, lower is better) for search filters. */
export type Row = {
  created_at: number;
  id: string;
  raw: string;
  rank?: number;
};

interface MergeFilter {
  limit?: number;
  search?: string[];
}

const byTime = (a: Row, b: Row) => b.created_at - a.created_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
const byRank = (a: Row, b: Row) => a.rank! - b.rank! || byTime(a, b);

/**
 * The answer to a REQ from the rows each shard returned per filter (`perShard[s][f]`, each already
 * sorted and limited by that shard): per filter, the best `limit` over all shards; then the union,
 * search filters' events first in rank order, the others newest first (ties: lowest id). With one
 * shard this is exactly the single object's order.
 */
export function mergeQuery(filters: MergeFilter[], perShard: Row[][][], defaultLimit: number): string[] {
  const ranked = new Map<string, Row>();
  const rows = new Map<string, Row>();
  filters.forEach((f, i) => {
    const limit = f.limit ?? defaultLimit;
    let all = perShard.flatMap((shard) => shard[i] ?? []);
    if (perShard.length > 1) all = all.sort(f.search ? byRank : byTime).slice(0, limit);
    for (const r of all) {
      if (f.search) {
        if (!ranked.has(r.id)) ranked.set(r.id, r);
      } else rows.set(r.id, r);
    }
  });
  const list = [...rows.values()];
  if (filters.length > 1) list.sort(byTime);
  if (ranked.size === 0) return list.map((r) => r.raw);
  return [...ranked.values(), ...list.filter((r) => !ranked.has(r.id))].map((r) => r.raw);
}

/** NIP-77 items of several shards, each sorted by (created_at, id) ascending, merged and cut at `max`. */
export function mergeItems(parts: Array<{ timestamps: number[]; ids: string[] }>, max: number): { timestamps: number[]; ids: string[] } {
  if (parts.length === 1) return parts[0]!;
  const all: Array<[number, string]> = [];
  for (const p of parts) for (let i = 0; i < p.ids.length; i++) all.push([p.timestamps[i]!, p.ids[i]!]);
  all.sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  const cut = all.slice(0, max);
  return { timestamps: cut.map((x) => x[0]), ids: cut.map((x) => x[1]) };
}
