// Event storage on the Durable Object's SQLite: events, a tag index for #x filters, the NIP-50
// full-text index, NIP-09 tombstones, NIP-40 expiry. Everything here is synchronous
// (ctx.storage.sql), so one call is atomic with respect to other messages. This class is the seam for
// sharding (see README): the relay only talks to it through `save`, `messages`/`query`, `count`,
// `negentropyItems`, `remove` and `expire`, and a storage shard (shard.ts) serves the same calls.
//
// The full-text index is written in batches, off the reply path: `save` only notes the event in
// `fts_pending` (a one-integer row), and `indexPending` (run by the relay after replies, or by any
// search before it reads) moves the pending events into FTS5. A search therefore always sees every
// stored event, and an EVENT's commit does not carry the cost of the inverted index.
import { dTag, expirationOf, isAddressable, isIndexedTag, isReplaceable, type NostrEvent } from "./event.ts";
import { filterWhere, isEmptyFilter, type Filter } from "./filter.ts";
import { ftsQuery, searchableText } from "./search.ts";
import { mergeQuery, type Row } from "./shards.ts";

export type SaveResult =
  | { status: "stored"; deleted: NostrEvent[] }
  | { status: "duplicate" }
  | { status: "superseded" }
  | { status: "deleted" };

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS events (
     seq INTEGER PRIMARY KEY,
     id TEXT NOT NULL UNIQUE,
     pubkey TEXT NOT NULL,
     kind INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     d TEXT,
     expires_at INTEGER,
     raw TEXT NOT NULL)`,
  `CREATE INDEX IF NOT EXISTS events_created ON events(created_at DESC, id)`,
  `CREATE INDEX IF NOT EXISTS events_author_kind ON events(pubkey, kind, created_at DESC)`,
  `CREATE INDEX IF NOT EXISTS events_kind ON events(kind, created_at DESC)`,
  `CREATE INDEX IF NOT EXISTS events_replaceable ON events(pubkey, kind, d) WHERE d IS NOT NULL`,
  `CREATE INDEX IF NOT EXISTS events_expiry ON events(expires_at) WHERE expires_at IS NOT NULL`,
  `CREATE TABLE IF NOT EXISTS tags (
     ev INTEGER NOT NULL,
     name TEXT NOT NULL,
     value TEXT NOT NULL,
     created_at INTEGER NOT NULL)`,
  `CREATE INDEX IF NOT EXISTS tags_lookup ON tags(name, value, created_at DESC)`,
  `CREATE INDEX IF NOT EXISTS tags_event ON tags(ev)`,
  // NIP-09 tombstones: target is an event id or an address "kind:pubkey:d"; events of `pubkey` at
  // that target with created_at <= until are refused from now on.
  // NIP-50: the searchable text of each event (search.ts), keyed by events.seq. Contentless: the
  // text is only tokenized, never stored twice.
  `CREATE VIRTUAL TABLE IF NOT EXISTS events_fts USING fts5(text, content='', contentless_delete=1, tokenize='unicode61 remove_diacritics 2')`,
  // Stored events whose searchable text is not yet in events_fts (see indexPending).
  `CREATE TABLE IF NOT EXISTS fts_pending (seq INTEGER PRIMARY KEY)`,
  `CREATE TABLE IF NOT EXISTS deletions (
     target TEXT NOT NULL,
     pubkey TEXT NOT NULL,
     until INTEGER NOT NULL,
     PRIMARY KEY (target, pubkey))`,
];

const MAX_TIME = Number.MAX_SAFE_INTEGER;

interface EventRow {
  raw: string;
  [k: string]: SqlStorageValue;
}

export class EventStore {
  readonly sql: SqlStorage;
  readonly transaction: <T>(fn: () => T) => T;

  /** Events waiting for the full-text index (rows of fts_pending). */
  private pending: number;

  constructor(storage: DurableObjectStorage) {
    this.sql = storage.sql;
    this.transaction = (fn) => storage.transactionSync(fn);
    for (const stmt of SCHEMA) this.sql.exec(stmt);
    this.pending = this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM fts_pending").one().n;
  }

  /** How many stored events wait for the full-text index. */
  get pendingIndex(): number {
    return this.pending;
  }

  /**
   * Moves up to `max` pending events into the full-text index, oldest first, in one transaction.
   * Returns how many are still pending.
   */
  indexPending(max = Number.MAX_SAFE_INTEGER): number {
    if (this.pending === 0) return 0;
    this.transaction(() => {
      const rows = this.sql.exec<{ seq: number; raw: string }>("SELECT p.seq, e.raw FROM fts_pending p JOIN events e ON e.seq = p.seq ORDER BY p.seq LIMIT ?", max).toArray();
      for (const r of rows) this.sql.exec("INSERT INTO events_fts (rowid, text) VALUES (?, ?)", r.seq, searchableText(JSON.parse(r.raw) as NostrEvent));
      const upto = rows.length === 0 ? null : rows[rows.length - 1]!.seq;
      if (rows.length < max || upto === null) this.sql.exec("DELETE FROM fts_pending");
      else this.sql.exec("DELETE FROM fts_pending WHERE seq <= ?", upto);
    });
    this.pending = this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM fts_pending").one().n;
    return this.pending;
  }

  /**
   * Stores a verified, non-ephemeral event, applying the replaceable/addressable rules and NIP-09
   * (for a kind-5 event, the events it deletes are removed and returned).
   */
  save(e: NostrEvent, raw: string): SaveResult {
    return this.transaction(() => {
      if (this.sql.exec("SELECT 1 FROM events WHERE id = ?", e.id).toArray().length > 0) return { status: "duplicate" };
      if (this.isTombstoned(e)) return { status: "deleted" };
      let d: string | null = null;
      if (isReplaceable(e.kind) || isAddressable(e.kind)) {
        d = isAddressable(e.kind) ? dTag(e) : "";
        const existing = this.sql
          .exec<{ seq: number; id: string; created_at: number }>(
            "SELECT seq, id, created_at FROM events WHERE pubkey = ? AND kind = ? AND d = ?",
            e.pubkey,
            e.kind,
            d,
          )
          .toArray();
        for (const old of existing) {
          // Newest wins; on equal created_at the lowest id is kept (NIP-01).
          if (old.created_at > e.created_at || (old.created_at === e.created_at && old.id < e.id)) return { status: "superseded" };
        }
        for (const old of existing) this.removeSeq(old.seq);
      }
      const seq = this.sql
        .exec<{ seq: number }>(
          "INSERT INTO events (id, pubkey, kind, created_at, d, expires_at, raw) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING seq",
          e.id,
          e.pubkey,
          e.kind,
          e.created_at,
          d,
          expirationOf(e),
          raw,
        )
        .one().seq;
      for (const t of e.tags) {
        if (isIndexedTag(t)) this.sql.exec("INSERT INTO tags (ev, name, value, created_at) VALUES (?, ?, ?, ?)", seq, t[0]!, t[1]!, e.created_at);
      }
      if (searchableText(e) !== "") {
        this.sql.exec("INSERT INTO fts_pending (seq) VALUES (?)", seq);
        this.pending++;
      }
      const deleted = e.kind === 5 ? this.applyDeletion(e) : [];
      return { status: "stored", deleted };
    });
  }

  private isTombstoned(e: NostrEvent): boolean {
    const targets = [e.id];
    if (isReplaceable(e.kind) || isAddressable(e.kind)) targets.push(`${e.kind}:${e.pubkey}:${isAddressable(e.kind) ? dTag(e) : ""}`);
    for (const target of targets) {
      const hit = this.sql
        .exec("SELECT 1 FROM deletions WHERE target = ? AND pubkey = ? AND until >= ?", target, e.pubkey, e.created_at)
        .toArray();
      if (hit.length > 0) return true;
    }
    return false;
  }

  /** NIP-09: removes the author's own events named by `e` and `a` tags; kind-5 events are never deleted. */
  private applyDeletion(del: NostrEvent): NostrEvent[] {
    const removed: NostrEvent[] = [];
    for (const t of del.tags) {
      if (t[0] === "e" && t[1] !== undefined && /^[0-9a-f]{64}$/.test(t[1])) {
        const rows = this.sql
          .exec<EventRow & { seq: number }>("SELECT seq, raw FROM events WHERE id = ? AND pubkey = ? AND kind != 5", t[1], del.pubkey)
          .toArray();
        for (const r of rows) {
          removed.push(JSON.parse(r.raw) as NostrEvent);
          this.removeSeq(r.seq);
        }
        this.tombstone(t[1], del.pubkey, MAX_TIME);
      } else if (t[0] === "a" && t[1] !== undefined) {
        const m = /^(\d{1,5}):([0-9a-f]{64}):(.*)$/s.exec(t[1]);
        if (!m || m[2] !== del.pubkey) continue;
        const kind = Number(m[1]);
        if (!isReplaceable(kind) && !isAddressable(kind)) continue;
        const d = isAddressable(kind) ? m[3]! : "";
        const rows = this.sql
          .exec<EventRow & { seq: number }>(
            "SELECT seq, raw FROM events WHERE pubkey = ? AND kind = ? AND d = ? AND created_at <= ?",
            del.pubkey,
            kind,
            d,
            del.created_at,
          )
          .toArray();
        for (const r of rows) {
          removed.push(JSON.parse(r.raw) as NostrEvent);
          this.removeSeq(r.seq);
        }
        this.tombstone(`${kind}:${del.pubkey}:${d}`, del.pubkey, del.created_at);
      }
    }
    return removed;
  }

  private tombstone(target: string, pubkey: string, until: number): void {
    this.sql.exec(
      "INSERT INTO deletions (target, pubkey, until) VALUES (?, ?, ?) ON CONFLICT (target, pubkey) DO UPDATE SET until = max(until, excluded.until)",
      target,
      pubkey,
      until,
    );
  }

  private removeSeq(seq: number): void {
    this.sql.exec("DELETE FROM tags WHERE ev = ?", seq);
    // An event still pending was never indexed: dropping its pending row is enough.
    if (this.pending > 0 && this.sql.exec("DELETE FROM fts_pending WHERE seq = ?", seq).rowsWritten > 0) this.pending--;
    else this.sql.exec("DELETE FROM events_fts WHERE rowid = ?", seq);
    this.sql.exec("DELETE FROM events WHERE seq = ?", seq);
  }

  /** Removes a stored event by id (a relay operator's ban); whether there was one. */
  remove(id: string): boolean {
    return this.transaction(() => {
      const row = this.sql.exec<{ seq: number }>("SELECT seq FROM events WHERE id = ?", id).toArray()[0];
      if (row) this.removeSeq(row.seq);
      return row !== undefined;
    });
  }

  /**
   * Stored events matching any of the filters, each filter limited by its own `limit` (or
   * `defaultLimit`). Newest first (ties: lowest id first); a NIP-50 search filter's events come in
   * its rank order instead (best match first), before those of the other filters. Returns the raw
   * JSON of each event.
   */
  query(filters: Filter[], now: number, defaultLimit: number): string[] {
    return mergeQuery(filters, [this.rows(filters, now, defaultLimit)], defaultLimit);
  }

  /**
   * Per filter, the matching stored events in that filter's order (newest first, or best rank first
   * for a search), limited: what a storage shard answers, merged by shards.ts's mergeQuery.
   */
  rows(filters: Filter[], now: number, defaultLimit: number): Row[][] {
    if (filters.some((f) => f.search)) this.indexPending();
    return filters.map((f) => {
      const limit = f.limit ?? defaultLimit;
      if (limit === 0 || isEmptyFilter(f)) return [];
      const w = filterWhere(f, now);
      if (f.search) {
        return this.sql
          .exec<{ created_at: number; id: string; raw: string; rank: number }>(
            `SELECT e.created_at, e.id, e.raw, events_fts.rank AS rank FROM events_fts JOIN events e ON e.seq = events_fts.rowid
             WHERE events_fts MATCH ? AND ${w.sql} ORDER BY events_fts.rank, e.created_at DESC, e.id ASC LIMIT ?`,
            ftsQuery(f.search),
            ...w.params,
            limit,
          )
          .toArray();
      }
      return this.sql
        .exec<{ created_at: number; id: string; raw: string }>(`SELECT e.created_at, e.id, e.raw FROM events e WHERE ${w.sql} ORDER BY e.created_at DESC, e.id ASC LIMIT ?`, ...w.params, limit)
        .toArray();
    });
  }

  /**
   * NIP-77: `created_at` and id of the stored events matching one filter (its `limit` ignored),
   * sorted by (created_at, id) as negentropy wants them, at most `max` rows (callers pass their
   * limit + 1 to tell "more than the limit").
   */
  negentropyItems(f: Filter, now: number, max: number): { timestamps: number[]; ids: string[] } {
    const timestamps: number[] = [];
    const ids: string[] = [];
    if (isEmptyFilter(f) || max <= 0) return { timestamps, ids };
    const w = filterWhere(f, now);
    const cur = this.sql.exec(`SELECT e.created_at, e.id FROM events e WHERE ${w.sql} ORDER BY e.created_at ASC, e.id ASC LIMIT ?`, ...w.params, max);
    for (const [t, id] of cur.raw()) {
      timestamps.push(t as number);
      ids.push(id as string);
    }
    return { timestamps, ids };
  }

  /**
   * The stored events of a REQ as the messages that carry them (`prefix` + raw event + `]`), in
   * query()'s order. With one plain filter (the common REQ) SQLite builds each message itself and
   * the rows are read as arrays: no row objects, no string joins in JS.
   */
  messages(filters: Filter[], now: number, defaultLimit: number, prefix: string): string[] {
    const f = filters[0]!;
    if (filters.length > 1 || f.search) return this.query(filters, now, defaultLimit).map((raw) => prefix + raw + "]");
    const limit = f.limit ?? defaultLimit;
    if (limit === 0 || isEmptyFilter(f)) return [];
    const w = filterWhere(f, now);
    const out: string[] = [];
    const cur = this.sql.exec(`SELECT ? || e.raw || ']' FROM events e WHERE ${w.sql} ORDER BY e.created_at DESC, e.id ASC LIMIT ?`, prefix, ...w.params, limit);
    for (const row of cur.raw()) out.push(row[0] as string);
    return out;
  }

  /**
   * NIP-45: the number of distinct stored events matching any filter (limits do not apply). The
   * filters' selections are joined with UNION, nested in groups because the Durable Object's
   * SQLite allows only a few terms in one compound SELECT.
   */
  count(filters: Filter[], now: number): number {
    if (filters.some((f) => f.search)) this.indexPending();
    const parts: string[] = [];
    const params: Array<string | number> = [];
    for (const f of filters) {
      if (isEmptyFilter(f)) continue;
      const w = filterWhere(f, now);
      if (f.search) {
        parts.push(`SELECT e.seq FROM events e WHERE ${w.sql} AND e.seq IN (SELECT rowid FROM events_fts WHERE events_fts MATCH ?)`);
        params.push(...w.params, ftsQuery(f.search));
      } else {
        parts.push(`SELECT e.seq FROM events e WHERE ${w.sql}`);
        params.push(...w.params);
      }
    }
    if (parts.length === 0) return 0;
    return this.sql.exec<{ n: number }>(`SELECT count(*) AS n FROM (${unionOf(parts)})`, ...params).one().n;
  }

  /** Deletes expired events (NIP-40). Returns the next expiry time still pending, or null. */
  expire(now: number): number | null {
    this.transaction(() => {
      const rows = this.sql.exec<{ seq: number }>("SELECT seq FROM events WHERE expires_at IS NOT NULL AND expires_at <= ?", now).toArray();
      for (const r of rows) this.removeSeq(r.seq);
    });
    const next = this.sql.exec<{ t: number | null }>("SELECT min(expires_at) AS t FROM events WHERE expires_at IS NOT NULL").one().t;
    return next ?? null;
  }

  /** The stored event with this id, if any (and not expired). */
  get(id: string, now: number): NostrEvent | undefined {
    const raw = this.query([{ ids: [id] }], now, 1)[0];
    return raw === undefined ? undefined : (JSON.parse(raw) as NostrEvent);
  }
}

/** Pending events indexed per turn by the background indexer (a few ms of work). */
const INDEX_CHUNK = 128;
/** How long a few pending events may wait for the background indexer, in ms. */
const INDEX_DELAY_MS = 50;

/**
 * Runs `indexPending` in the object's background, after replies: soon once a chunk's worth waits,
 * else within INDEX_DELAY_MS, a chunk per turn so that messages are not held behind a long run.
 * Searches never wait for it (they index what is pending themselves).
 */
export class BackgroundIndexer {
  private store: EventStore;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private soon = false;

  constructor(store: EventStore) {
    this.store = store;
    this.poke();
  }

  /** Call after saving events. */
  poke(): void {
    const n = this.store.pendingIndex;
    if (n === 0) return;
    if (n >= INDEX_CHUNK && !this.soon) {
      if (this.timer !== null) clearTimeout(this.timer);
      this.soon = true;
      this.timer = setTimeout(() => this.run(), 0);
    } else if (this.timer === null) {
      this.timer = setTimeout(() => this.run(), INDEX_DELAY_MS);
    }
  }

  private run(): void {
    this.timer = null;
    this.soon = false;
    this.store.indexPending(INDEX_CHUNK);
    this.poke();
  }
}

/** Terms per compound SELECT: the Durable Object's SQLite refuses more than a handful. */
const COMPOUND_TERMS = 4;

/** The UNION of `SELECT seq …` statements, nested so that no compound has more than COMPOUND_TERMS terms. */
export function unionOf(parts: string[]): string {
  if (parts.length <= COMPOUND_TERMS) return parts.join(" UNION ");
  const groups: string[] = [];
  for (let i = 0; i < parts.length; i += COMPOUND_TERMS) groups.push(`SELECT seq FROM (${parts.slice(i, i + COMPOUND_TERMS).join(" UNION ")})`);
  return unionOf(groups);
}
