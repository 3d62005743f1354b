// File content as pieces (edge/extents.ts): small pieces live here, content-addressed, in the
// `pieces` table; big ones are R2 objects the Worker staged before calling in, so this object
// never holds a large body in memory. A read resolves extents to segments (Seg): bytes, an R2
// range for the Worker to fetch, or a run of zeros.
import { sha256 } from "@noble/hashes/sha2.js";
import { INLINE_MAX } from "../../services/remote-wire.ts";
import { hex } from "../bytes.ts";
import { foldRuns, sizeOf, tidy, type Extent } from "../extents.ts";
import { buf, fail } from "./reply.ts";

export const PIECE_TABLES = `
CREATE TABLE IF NOT EXISTS pieces(hash TEXT PRIMARY KEY, data BLOB NOT NULL);
`;

/** A staged body part: bytes (small) or an R2 object the Worker already wrote. */
export type Part = Uint8Array | { r2: string; size: number };
/** A piece of a read answer: bytes, a range of an R2 object, or a run of zeros. */
export type Seg = Uint8Array | { r2: string; off: number; len: number } | number;

/**
 * Past this many extents, runs of small pieces are folded into pieces of up to INLINE_MAX: 64,
 * or one per 2 KiB of content for a bigger file, at most 4,096. A database writes pages all over
 * its file; folding each page back into the 128 KiB around it re-stores (and re-hashes) 32 times
 * what was written, so a bigger file may keep a piece per page for longer instead (an extent is
 * about 85 bytes in the node and history rows).
 */
export const extentsAllowed = (size: number): number => Math.min(4096, Math.max(64, Math.ceil(size / 2048)));

export class Pieces {
  readonly #sql: SqlStorage;
  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  /** Stores small bytes (once per content) and answers their extent ref. */
  inline(bytes: Uint8Array): string {
    const h = hex(sha256(bytes));
    this.#sql.exec("INSERT OR IGNORE INTO pieces(hash, data) VALUES(?, ?)", h, buf(bytes));
    return "i:" + h;
  }

  /** The extent of a staged part. */
  ofPart(part: Part): Extent {
    if (part instanceof Uint8Array) {
      if (part.length > INLINE_MAX) fail("EIO", "large piece was not staged to R2");
      return part.length === 0 ? ["z", 0, 0] : [this.inline(part), 0, part.length];
    }
    return ["r:" + part.r2, 0, part.size];
  }

  /** Folds runs of small inline pieces once a file has many extents. */
  fold(ext: Extent[]): Extent[] {
    const runs = foldRuns(ext, extentsAllowed(sizeOf(ext)), INLINE_MAX);
    if (!runs.length) return ext;
    const out: Extent[] = [];
    let i = 0;
    for (const [a, b] of runs) {
      out.push(...ext.slice(i, a));
      const bytes = this.#bytesOf(ext.slice(a, b));
      out.push([this.inline(bytes), 0, bytes.length]);
      i = b;
    }
    out.push(...ext.slice(i));
    return tidy(out);
  }

  /** Resolves extents to segments: inline pieces become bytes, R2 pieces stay references. */
  segs(ext: Extent[]): Seg[] {
    const out: Seg[] = [];
    for (const [ref, off, len] of ext) {
      if (ref === "z") out.push(len);
      else if (ref.startsWith("i:")) {
        const r = this.#sql.exec<{ d: ArrayBuffer }>("SELECT substr(data, ?, ?) AS d FROM pieces WHERE hash = ?", off + 1, len, ref.slice(2)).toArray()[0];
        if (!r) fail("EIO", `missing piece ${ref}`);
        out.push(new Uint8Array(r!.d));
      } else out.push({ r2: ref.slice(2), off, len });
    }
    return out;
  }

  /** The inline pieces a set of extent lists refers to (a fork copies them). */
  export(extents: Iterable<string>): Array<[string, ArrayBuffer]> {
    const want = new Set<string>();
    for (const e of extents) for (const [ref] of JSON.parse(e) as Extent[]) if (ref.startsWith("i:")) want.add(ref.slice(2));
    const out: Array<[string, ArrayBuffer]> = [];
    for (const h of want) {
      const r = this.#sql.exec<{ data: ArrayBuffer }>("SELECT data FROM pieces WHERE hash = ?", h).toArray()[0];
      if (r) out.push([h, r.data]);
    }
    return out;
  }

  import(pieces: Array<[string, ArrayBuffer]>): void {
    for (const [h, d] of pieces) this.#sql.exec("INSERT OR IGNORE INTO pieces VALUES(?, ?)", h, d);
  }

  /** Bytes of inline-only extents (used for folding). */
  #bytesOf(ext: Extent[]): Uint8Array {
    const out = new Uint8Array(sizeOf(ext));
    let at = 0;
    for (const s of this.segs(ext)) {
      if (s instanceof Uint8Array) out.set(s, at), (at += s.length);
      else if (typeof s === "number") at += s;
      else fail("EIO", "cannot fold an R2 piece");
    }
    return out;
  }
}
