// Log streams: appends are buffered here (`log_chunks`) and moved to R2 segments at
// LOG_FLUSH_BYTES or by the alarm; a live tail gets the backlog, then every append in order.
import { NAME_RE, INLINE_MAX } from "../../services/remote-wire.ts";
import { concat } from "../bytes.ts";
import type { Meta } from "./meta.ts";
import type { Seg } from "./pieces.ts";
import { buf, fail } from "./reply.ts";

export const LOG_TABLES = `
CREATE TABLE IF NOT EXISTS log_streams(stream TEXT PRIMARY KEY, length INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS log_chunks(stream TEXT NOT NULL, start INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY(stream, start));
CREATE TABLE IF NOT EXISTS log_segments(stream TEXT NOT NULL, start INTEGER NOT NULL, len INTEGER NOT NULL, key TEXT NOT NULL,
  PRIMARY KEY(stream, start));
`;

const LOG_FLUSH_BYTES = 256 * 1024;
const FLUSH_DELAY_MS = 1000;

interface Tail { writer: WritableStreamDefaultWriter<Uint8Array>; live: boolean; queue: Uint8Array[] }

export class Logs {
  readonly #storage: DurableObjectStorage;
  readonly #sql: SqlStorage;
  readonly #meta: Meta;
  readonly #blobs: R2Bucket;
  readonly #tails = new Map<string, Set<Tail>>();
  readonly #arm: () => void;
  #flushing: Promise<void> | undefined;
  /** When the oldest buffered chunk arrived (in memory: after an eviction, the first look). */
  #since: number | null = null;

  constructor(storage: DurableObjectStorage, meta: Meta, blobs: R2Bucket, arm: () => void) {
    this.#storage = storage;
    this.#sql = storage.sql;
    this.#meta = meta;
    this.#blobs = blobs;
    this.#arm = arm;
  }

  /** Buffered chunks go to R2 at most FLUSH_DELAY_MS after the oldest arrived. */
  due(): number | null {
    if (!this.#sql.exec("SELECT 1 FROM log_chunks LIMIT 1").toArray().length) return (this.#since = null);
    this.#since ??= Date.now();
    return this.#since + FLUSH_DELAY_MS;
  }

  static checkStream(stream: string): void {
    if (!NAME_RE.test(stream)) fail("EINVAL", "bad log stream name");
  }

  /** Appends bytes to a stream; answers its new length. */
  async append(stream: string, data: Uint8Array): Promise<{ length: number }> {
    Logs.checkStream(stream);
    if (data.length > INLINE_MAX) fail("EFBIG", `append at most ${INLINE_MAX} bytes at a time`);
    const r = this.#storage.transactionSync(() => {
      const start = this.#length(stream) ?? 0;
      if (data.length) this.#sql.exec("INSERT INTO log_chunks VALUES(?, ?, ?)", stream, start, buf(data));
      this.#sql.exec("INSERT INTO log_streams VALUES(?, ?) ON CONFLICT(stream) DO UPDATE SET length = excluded.length", stream, start + data.length);
      this.#arm();
      return { length: start + data.length };
    });
    for (const t of this.#tails.get(stream) ?? []) this.#feed(t, stream, data.slice());
    const buffered = this.#sql.exec<{ n: number }>("SELECT coalesce(sum(length(data)), 0) AS n FROM log_chunks WHERE stream = ?", stream).one().n;
    if (buffered >= LOG_FLUSH_BYTES) await this.flush();
    return r;
  }

  /** Moves buffered chunks to R2 segments (one object per flush per stream). */
  async flush(): Promise<void> {
    while (this.#flushing) await this.#flushing;
    this.#flushing = this.#flushAll();
    try {
      await this.#flushing;
    } finally {
      this.#flushing = undefined;
    }
  }

  /** Log bytes from `from` (up to `max`) as segments; the Worker resolves R2 ranges. */
  read(stream: string, from: number, max: number): { length: number; segs: Seg[] } {
    const length = this.#length(stream);
    if (length === undefined) return fail("ENOENT", `log ${stream}`);
    const end = Math.min(length, from + max);
    const segs: Seg[] = [];
    if (from >= end) return { length, segs };
    for (const s of this.#sql.exec<{ start: number; len: number; key: string }>(
      "SELECT start, len, key FROM log_segments WHERE stream = ? AND start + len > ? AND start < ? ORDER BY start", stream, from, end)) {
      const a = Math.max(from, s.start), b = Math.min(end, s.start + s.len);
      segs.push({ r2: s.key, off: a - s.start, len: b - a });
    }
    for (const c of this.#sql.exec<{ start: number; data: ArrayBuffer }>(
      "SELECT start, data FROM log_chunks WHERE stream = ? AND start + length(data) > ? AND start < ? ORDER BY start", stream, from, end)) {
      const a = Math.max(from, c.start), b = Math.min(end, c.start + c.data.byteLength);
      segs.push(new Uint8Array(c.data, a - c.start, b - a).slice());
    }
    return { length, segs };
  }

  /** A live tail: the backlog from `from`, then every append as it happens, in order. */
  follow(stream: string, from: number): ReadableStream<Uint8Array> {
    Logs.checkStream(stream);
    const length = this.#length(stream) ?? 0;
    const backlog = from < length ? this.read(stream, from, length - from).segs : [];
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
    const t: Tail = { writer: writable.getWriter(), live: false, queue: [] };
    let set = this.#tails.get(stream);
    if (!set) this.#tails.set(stream, (set = new Set()));
    set.add(t);
    void (async () => {
      try {
        for (const s of backlog) {
          if (s instanceof Uint8Array) await t.writer.write(s);
          else if (typeof s !== "number") {
            const o = await this.#blobs.get(s.r2, { range: { offset: s.off, length: s.len } });
            if (o) await t.writer.write(new Uint8Array(await o.arrayBuffer()));
          }
        }
        for (const q of t.queue) await t.writer.write(q);
        t.queue = [];
        t.live = true;
      } catch {
        set.delete(t);
      }
    })();
    return readable;
  }

  #length(stream: string): number | undefined {
    return this.#sql.exec<{ length: number }>("SELECT length FROM log_streams WHERE stream = ?", stream).toArray()[0]?.length;
  }

  async #flushAll(): Promise<void> {
    const streams = this.#sql.exec<{ stream: string }>("SELECT DISTINCT stream FROM log_chunks").toArray();
    for (const { stream } of streams) {
      const rows = this.#sql.exec<{ start: number; data: ArrayBuffer }>("SELECT start, data FROM log_chunks WHERE stream = ? ORDER BY start", stream).toArray();
      if (!rows.length) continue;
      const start = rows[0]!.start;
      const body = concat(rows.map((r) => new Uint8Array(r.data)));
      const total = body.length;
      const key = `logs/${this.#meta.name}/${stream}/${String(start).padStart(16, "0")}`;
      await this.#blobs.put(key, body);
      this.#storage.transactionSync(() => {
        this.#sql.exec("INSERT OR REPLACE INTO log_segments VALUES(?, ?, ?, ?)", stream, start, total, key);
        this.#sql.exec("DELETE FROM log_chunks WHERE stream = ? AND start <= ?", stream, rows[rows.length - 1]!.start);
      });
    }
  }

  #feed(t: Tail, stream: string, data: Uint8Array): void {
    if (!t.live) {
      t.queue.push(data);
      return;
    }
    t.writer.write(data).catch(() => this.#tails.get(stream)?.delete(t));
  }
}
