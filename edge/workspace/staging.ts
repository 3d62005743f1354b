// Staged R2 uploads not yet committed. A streamed PUT records its multipart upload here before
// sending parts; the commit removes the record in the transaction that makes the file point at
// it. A Worker killed in between leaves a record, and the alarm collects it after STAGE_TTL_MS:
// the upload is aborted (or the completed object deleted). Only unique `blobs/u/` keys are
// recorded; content-addressed pieces may be shared and are never deleted here.
export const STAGING_TABLES = `
CREATE TABLE IF NOT EXISTS staging(key TEXT PRIMARY KEY, upload_id TEXT, started INTEGER NOT NULL);
`;

/** How long an upload may take before it is presumed dead (a Worker request is far shorter). */
export const STAGE_TTL_MS = 60 * 60 * 1000;

export class Staging {
  readonly #sql: SqlStorage;
  readonly #blobs: R2Bucket;

  constructor(sql: SqlStorage, blobs: R2Bucket) {
    this.#sql = sql;
    this.#blobs = blobs;
  }

  begin(key: string, uploadId: string | null): void {
    if (!key.startsWith("blobs/u/")) return;
    this.#sql.exec("INSERT OR REPLACE INTO staging VALUES(?, ?, ?)", key, uploadId, Date.now());
  }

  /** The staged object is now part of a file (call in the commit's transaction). */
  committed(key: string): void {
    this.#sql.exec("DELETE FROM staging WHERE key = ?", key);
  }

  due(): number | null {
    const r = this.#sql.exec<{ started: number }>("SELECT min(started) AS started FROM staging").one();
    return r.started === null ? null : r.started + STAGE_TTL_MS;
  }

  /** Aborts or deletes every upload older than STAGE_TTL_MS. */
  async sweep(now = Date.now()): Promise<number> {
    const stale = this.#sql.exec<{ key: string; upload_id: string | null }>("SELECT key, upload_id FROM staging WHERE started <= ?", now - STAGE_TTL_MS).toArray();
    for (const s of stale) {
      if (s.upload_id) await this.#blobs.resumeMultipartUpload(s.key, s.upload_id).abort().catch(() => {});
      // A completed upload is an object; a committed one would have no record, so this is an orphan.
      if (this.#sql.exec("SELECT 1 FROM staging WHERE key = ?", s.key).toArray().length) await this.#blobs.delete(s.key);
      this.#sql.exec("DELETE FROM staging WHERE key = ?", s.key);
    }
    return stale.length;
  }
}
