// Rate limiting: token buckets, and a store of them keyed by string (a connection, an author, a
// client address) that keeps their state in the object's SQLite, so that eviction or a restart
// does not hand a client a fresh burst. Only a bucket that has spent at least half its burst has a
// row: a quiet client costs no writes, and an evicted object forgets at most half a burst.

/** A token bucket: `rate` tokens per second, holding at most `burst`. */
export class TokenBucket {
  tokens: number;
  last: number;
  rate: number;
  burst: number;
  constructor(rate: number, burst: number, now: number, tokens?: number) {
    this.rate = rate;
    this.burst = Math.max(1, burst);
    this.tokens = tokens === undefined ? this.burst : Math.min(this.burst, tokens);
    this.last = now;
  }
  /** Takes one token if there is one (`cost` tokens when given). `now` in milliseconds. */
  take(now: number, cost = 1): boolean {
    if (this.rate <= 0) return true; // a rate of 0 disables the limit
    this.refill(now);
    if (this.tokens < cost) return false;
    this.tokens -= cost;
    return true;
  }
  refill(now: number): void {
    const elapsed = Math.max(0, now - this.last) / 1000;
    this.tokens = Math.min(this.burst, this.tokens + elapsed * this.rate);
    this.last = now;
  }
  /** Whether the bucket has spent at least half its burst: only then is its state worth keeping. */
  get spent(): boolean {
    return this.rate > 0 && this.tokens <= this.burst / 2;
  }
}

/** How long changed buckets wait before they are written (one small write per second at most). */
export const FLUSH_MS = 1000;

/**
 * Buckets keyed by a string, the least recently used forgotten from memory beyond `max` keys. With
 * `sql`, a spent bucket is written (at most every FLUSH_MS) to the `rate_buckets` table
 * and read back when its key is next used, so limits hold across eviction. The flush is deferred
 * rather than written with each message so that a reply is never held back for a commit.
 */
export class BucketMap {
  private map = new Map<string, TokenBucket>();
  private dirty = new Set<string>();
  /** Keys that have a row in storage. */
  private stored = new Set<string>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private max: number;
  private sql: SqlStorage | undefined;

  constructor(max = 10_000, sql?: SqlStorage) {
    this.max = max;
    this.sql = sql;
    sql?.exec("CREATE TABLE IF NOT EXISTS rate_buckets (key TEXT PRIMARY KEY, tokens REAL NOT NULL, last INTEGER NOT NULL)");
  }

  take(key: string, rate: number, burst: number, now: number, cost = 1): boolean {
    if (rate <= 0) return true;
    let b = this.map.get(key);
    if (b === undefined) {
      b = this.load(key, rate, burst, now);
      if (this.map.size >= this.max) this.evictOldest();
    } else {
      this.map.delete(key);
      b.rate = rate;
      b.burst = Math.max(1, burst);
    }
    this.map.set(key, b);
    const ok = b.take(now, cost);
    if (this.sql && (b.spent || this.stored.has(key))) this.markDirty(key);
    return ok;
  }

  /** Forgets a key (a closed connection), in memory and in storage. */
  forget(key: string): void {
    this.map.delete(key);
    if (this.stored.has(key)) this.markDirty(key);
  }

  /** Writes the buckets changed since the last flush: rows for spent ones, none for the others. */
  flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const sql = this.sql;
    if (!sql || this.dirty.size === 0) return;
    const now = Date.now();
    for (const key of this.dirty) {
      const b = this.map.get(key);
      if (b) b.refill(now);
      if (b && b.spent) {
        this.stored.add(key);
        sql.exec(
          "INSERT INTO rate_buckets (key, tokens, last) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens, last = excluded.last",
          key,
          b.tokens,
          b.last,
        );
      } else if (this.stored.delete(key)) {
        sql.exec("DELETE FROM rate_buckets WHERE key = ?", key);
      }
    }
    this.dirty.clear();
  }

  private load(key: string, rate: number, burst: number, now: number): TokenBucket {
    const row = this.sql?.exec<{ tokens: number; last: number }>("SELECT tokens, last FROM rate_buckets WHERE key = ?", key).toArray()[0];
    if (!row) return new TokenBucket(rate, burst, now);
    this.stored.add(key);
    const b = new TokenBucket(rate, burst, row.last, row.tokens);
    b.refill(now);
    return b;
  }

  private evictOldest(): void {
    const oldest = this.map.keys().next().value!;
    // Write it out before forgetting it, so that a busy relay does not reset a limited client.
    if (this.dirty.has(oldest)) this.flush();
    this.map.delete(oldest);
  }

  private markDirty(key: string): void {
    this.dirty.add(key);
    if (this.timer === null) this.timer = setTimeout(() => this.flush(), FLUSH_MS);
  }
}

/** Takes a message's token from its connection's bucket and its address's: the text of the refusal, or null. */
export function overMessageRate(
  buckets: BucketMap,
  cfg: { messagesPerSecond: number; messageBurst: number; messagesPerSecondPerIp: number; messageBurstPerIp: number },
  conn: { att: { id: string; ip?: string | null } },
  now: number,
): string | null {
  if (!buckets.take(`c:${conn.att.id}`, cfg.messagesPerSecond, cfg.messageBurst, now)) return `rate-limited: more than ${cfg.messagesPerSecond} messages/s; slow down`;
  if (conn.att.ip && !buckets.take(`ip:${conn.att.ip}`, cfg.messagesPerSecondPerIp, cfg.messageBurstPerIp, now))
    return `rate-limited: more than ${cfg.messagesPerSecondPerIp} messages/s from this address; slow down`;
  return null;
}
