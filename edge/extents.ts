// A file's content is a list of extents over immutable, content-addressed pieces (a piece table):
// `["i:<sha256>", off, len]` is a slice of a small piece kept in the workspace's SQLite,
// `["r:<key>", off, len]` a slice of an R2 object, `["z", 0, len]` a run of zeros (a hole).
// Writing at an offset splices in a new piece; nothing is rewritten, so versions and forks share
// every piece. Pure functions: unit-testable anywhere.

export type Extent = [ref: string, off: number, len: number];

export const sizeOf = (ext: Extent[]): number => ext.reduce((n, e) => n + e[2], 0);

/** The extents covering bytes [start, end) of a file. */
export function slice(ext: Extent[], start: number, end: number): Extent[] {
  const out: Extent[] = [];
  let pos = 0;
  for (const [ref, off, len] of ext) {
    const a = Math.max(start, pos), b = Math.min(end, pos + len);
    if (a < b) out.push([ref, ref === "z" ? 0 : off + (a - pos), b - a]);
    pos += len;
    if (pos >= end) break;
  }
  return out;
}

/** Joins neighbours that continue each other (same piece, contiguous) and adjacent holes. */
export function tidy(ext: Extent[]): Extent[] {
  const out: Extent[] = [];
  for (const e of ext) {
    if (e[2] === 0) continue;
    const last = out[out.length - 1];
    if (last && last[0] === e[0] && (e[0] === "z" || last[1] + last[2] === e[1])) last[2] += e[2];
    else out.push([e[0], e[1], e[2]]);
  }
  return out;
}

/** pwrite: the piece `[ref, 0, len]` lands at `offset`; a gap past the end becomes a hole. */
export function writeAt(ext: Extent[], size: number, offset: number, piece: Extent): { ext: Extent[]; size: number } {
  const end = offset + piece[2];
  const head = offset <= size ? slice(ext, 0, offset) : [...ext, ["z", 0, offset - size] as Extent];
  const tail = end < size ? slice(ext, end, size) : [];
  return { ext: tidy([...head, piece, ...tail]), size: Math.max(size, end) };
}

export function truncateTo(ext: Extent[], size: number, to: number): Extent[] {
  if (to <= size) return tidy(slice(ext, 0, to));
  return tidy([...ext, ["z", 0, to - size]]);
}

/**
 * Runs of small inline pieces are folded into one new piece once a file has more than `maxExtents`
 * extents, so a file written by many small appends stays a short list. Returns the ranges
 * [start, end) of extents to fold (their bytes are joined by the caller, which owns the storage).
 */
export function foldRuns(ext: Extent[], maxExtents: number, inlineMax: number): Array<[number, number]> {
  if (ext.length <= maxExtents) return [];
  const runs: Array<[number, number]> = [];
  let i = 0;
  while (i < ext.length) {
    if (!ext[i]![0].startsWith("i:")) { i++; continue; }
    let j = i, bytes = 0;
    while (j < ext.length && ext[j]![0].startsWith("i:") && bytes + ext[j]![2] <= inlineMax) bytes += ext[j++]![2];
    if (j - i >= 2) runs.push([i, j]);
    i = Math.max(j, i + 1);
  }
  return runs;
}
