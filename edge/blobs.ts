// Blob storage on R2. Pieces bigger than INLINE_MAX are written here by the Worker before the
// workspace DO commits them, and read back with range requests. Known bytes are content-addressed
// (`blobs/<sha256>`: writing the same bytes twice stores them once); streamed bodies are hashed as
// they pass and land under a unique key, through a multipart upload when they outgrow one part.
import { FsError } from "../runtime/errors.ts";
import { INLINE_MAX, MAX_FILE_BYTES } from "../services/remote-wire.ts";
import { concat, hex, sha256hex } from "./bytes.ts";
import type { Part, Seg } from "./workspace/pieces.ts";

/** Multipart part size (R2: every part but the last has the same size, at least 5 MiB). */
export const PART_BYTES = 8 * 1024 * 1024;

export async function stageBytes(bucket: R2Bucket, bytes: Uint8Array): Promise<Part> {
  if (bytes.length <= INLINE_MAX) return bytes;
  const key = `blobs/${await sha256hex(bytes)}`;
  if (!(await bucket.head(key))) await bucket.put(key, bytes);
  return { r2: key, size: bytes.length };
}

/**
 * Stages a streamed body. Small bodies come back as bytes (they live in the DO's SQLite); bodies
 * up to one part are one R2 put; bigger ones a multipart upload. Returns the SHA-256 of the body.
 */
export async function stageStream(bucket: R2Bucket, body: ReadableStream<Uint8Array>, limit = MAX_FILE_BYTES, onUpload?: (key: string, uploadId: string) => Promise<void>): Promise<{ part: Part; sha256: string; size: number }> {
  const digest = new crypto.DigestStream("SHA-256");
  const dw = digest.getWriter();
  const reader = body.getReader();
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let size = 0;
  let upload: R2MultipartUpload | undefined;
  const parts: Promise<R2UploadedPart>[] = [];
  const take = (n: number): Uint8Array => {
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const c = pending[0]!;
      const k = Math.min(c.length, n - at);
      out.set(c.subarray(0, k), at);
      at += k;
      if (k === c.length) pending.shift();
      else pending[0] = c.subarray(k);
    }
    pendingBytes -= n;
    return out;
  };
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!value?.length) continue;
      size += value.length;
      if (size > limit) throw new FsError("EFBIG", `body larger than ${limit} bytes`);
      await dw.write(value);
      pending.push(value);
      pendingBytes += value.length;
      while (pendingBytes >= PART_BYTES * 2 || (upload && pendingBytes >= PART_BYTES)) {
        if (!upload) {
          upload = await bucket.createMultipartUpload(`blobs/u/${crypto.randomUUID()}`);
          // Recorded before any part is sent: if this Worker dies, the upload is still found.
          await onUpload?.(upload.key, upload.uploadId);
        }
        const n = parts.length + 1;
        const chunk = take(PART_BYTES);
        parts.push(upload.uploadPart(n, chunk));
        // At most two parts in flight: enough to overlap, bounded memory.
        if (parts.length >= 2) await parts[parts.length - 2];
      }
    }
    await dw.close();
    const sha = hex(await digest.digest);
    if (!upload) {
      const all = take(pendingBytes);
      if (all.length <= INLINE_MAX) return { part: all, sha256: sha, size };
      const key = `blobs/${sha}`;
      if (!(await bucket.head(key))) await bucket.put(key, all);
      return { part: { r2: key, size }, sha256: sha, size };
    }
    if (pendingBytes) parts.push(upload.uploadPart(parts.length + 1, take(pendingBytes)));
    const obj = await upload.complete(await Promise.all(parts));
    return { part: { r2: obj.key, size }, sha256: sha, size };
  } catch (e) {
    reader.cancel().catch(() => {});
    if (upload) await upload.abort().catch(() => {});
    throw e;
  }
}

/** Deletes a staged object that will not be committed (only unique keys; content keys may be shared). */
export async function discard(bucket: R2Bucket, part: Part): Promise<void> {
  if (!(part instanceof Uint8Array) && part.r2.startsWith("blobs/u/")) await bucket.delete(part.r2);
}

async function rangeOf(bucket: R2Bucket, key: string, off: number, len: number): Promise<Uint8Array> {
  if (len === 0) return new Uint8Array(0);
  const o = await bucket.get(key, { range: { offset: off, length: len } });
  if (!o) throw new FsError("EIO", `blob ${key} is missing`);
  const b = new Uint8Array(await o.arrayBuffer());
  if (b.length !== len) throw new FsError("EIO", `blob ${key} is short`);
  return b;
}

/** Joins segments into bytes, fetching R2 ranges in parallel. */
export async function resolveSegs(bucket: R2Bucket, segs: Seg[]): Promise<Uint8Array> {
  const chunks = await Promise.all(segs.map((s) =>
    s instanceof Uint8Array ? s : typeof s === "number" ? new Uint8Array(s) : rangeOf(bucket, s.r2, s.off, s.len)));
  return chunks.length ? concat(chunks) : new Uint8Array(0);
}

/** Writes segments to a stream in order; R2 ranges are piped, not buffered. */
export async function pipeSegs(bucket: R2Bucket, segs: Seg[], w: WritableStreamDefaultWriter<Uint8Array>): Promise<void> {
  for (const s of segs) {
    if (s instanceof Uint8Array) await w.write(s);
    else if (typeof s === "number") {
      for (let left = s; left > 0; left -= 65536) await w.write(new Uint8Array(Math.min(65536, left)));
    } else if (s.len > 0) {
      const o = await bucket.get(s.r2, { range: { offset: s.off, length: s.len } });
      if (!o) throw new FsError("EIO", `blob ${s.r2} is missing`);
      const r = o.body.getReader();
      for (;;) {
        const { done, value } = await r.read();
        if (done) break;
        await w.write(value);
      }
    }
  }
}
