// Turning a remote file's pending changes into batches the edge accepts (services/remote-file.ts
// calls this on every sync). Pure: no I/O, so its limits are tested on their own.
//
// Writes at offsets and truncates are folded into what they amount to: the overlapping and
// adjacent writes become one write per run of bytes, a series of truncates becomes at most a
// shrink to the smallest size and a final extension. Appends (O_APPEND: the edge writes them at
// the file's end as it is when they land) keep their order; neighbours are joined. Then the ops
// are cut into batches within MAX_BATCH_OPS and MAX_BATCH_BYTES, each sent atomic: a sync of any
// size is never refused for an internal limit.
import { concat } from "../runtime/bytes.ts";
import { MAX_BATCH_BYTES, MAX_BATCH_OPS, type WireOp } from "./remote-wire.ts";

export type PendingOp =
  | { kind: "write"; offset: number; data: Uint8Array }
  | { kind: "append"; data: Uint8Array }
  | { kind: "truncate"; size: number };

/** Largest part the planner emits (bigger runs are cut): the edge stages each part to R2. */
export const PART_MAX = 8 << 20;
/** Bytes of a batch's parts (the header and framing fit in what is left of MAX_BATCH_BYTES). */
export const BATCH_PART_BYTES = MAX_BATCH_BYTES - (1 << 20);
/** Ops in a batch, less one for the open that a deferred create sends first. */
export const BATCH_OPS = MAX_BATCH_OPS - 1;

/** Writes this close together are sent as one, the bytes between them taken from the client's copy. */
export const GAP_FILL = 16 << 10;

/**
 * Folds pending ops into the fewest ops with the same effect (order kept where it matters).
 * With `mirror` (the file's bytes as this client holds them, pending ops applied), two writes
 * less than GAP_FILL apart become one, the gap filled from the mirror: the edge pays per op, and
 * a client's view of the bytes between its own writes is as good as its view of the file (Linux's
 * NFS client extends writes to the whole page it holds for the same reason).
 */
export function coalesce(ops: PendingOp[], mirror?: (offset: number, length: number) => Uint8Array | undefined): PendingOp[] {
  if (ops.some((o) => o.kind === "append")) return joinNeighbours(ops);
  // Runs of written bytes, sorted and disjoint; a later write replaces what it overlaps.
  let runs: Array<{ offset: number; data: Uint8Array }> = [];
  let minTrunc = Infinity, size = -1; // size: the file's size after the last truncate and later writes
  for (const o of ops) {
    if (o.kind === "truncate") {
      minTrunc = Math.min(minTrunc, o.size);
      size = o.size;
      runs = clip(runs, o.size);
    } else if (o.kind === "write" && o.data.length) {
      runs = overlay(runs, o.offset, o.data);
      if (size >= 0) size = Math.max(size, o.offset + o.data.length);
    }
  }
  const out: PendingOp[] = [];
  if (minTrunc !== Infinity) out.push({ kind: "truncate", size: minTrunc });
  let end = minTrunc === Infinity ? 0 : minTrunc;
  if (mirror) runs = fillGaps(runs, mirror);
  for (const r of joinRuns(runs)) {
    out.push({ kind: "write", offset: r.offset, data: r.data });
    end = Math.max(end, r.offset + r.data.length);
  }
  if (size > end) out.push({ kind: "truncate", size });
  return out;
}

/** Cuts planned ops into batches within the edge's limits. */
export function batches(ops: PendingOp[], path: string, first: WireOp[] = []): Array<{ ops: WireOp[]; parts: Uint8Array[]; pending: PendingOp[] }> {
  const out: Array<{ ops: WireOp[]; parts: Uint8Array[]; pending: PendingOp[] }> = [];
  let cur = { ops: [...first], parts: [] as Uint8Array[], pending: [] as PendingOp[] }, bytes = 0;
  const push = (p: PendingOp) => {
    const len = p.kind === "truncate" ? 0 : p.data.length;
    if (cur.ops.length >= BATCH_OPS || (len && bytes + len > BATCH_PART_BYTES)) {
      out.push(cur);
      cur = { ops: [], parts: [], pending: [] };
      bytes = 0;
    }
    cur.pending.push(p);
    if (p.kind === "truncate") return void cur.ops.push({ op: "truncate", path, size: p.size });
    cur.parts.push(p.data);
    bytes += len;
    cur.ops.push(p.kind === "append"
      ? { op: "write", path, offset: 0, data: cur.parts.length - 1, append: true }
      : { op: "write", path, offset: p.offset, data: cur.parts.length - 1 });
  };
  for (const p of ops) {
    if (p.kind === "truncate" || p.data.length <= PART_MAX) push(p);
    else for (let at = 0; at < p.data.length; at += PART_MAX) {
      const data = p.data.subarray(at, at + PART_MAX);
      push(p.kind === "append" ? { kind: "append", data } : { kind: "write", offset: p.offset + at, data });
    }
  }
  if (cur.ops.length) out.push(cur);
  return out;
}

// ------------------------------------------------------------------ runs of bytes

type Run = { offset: number; data: Uint8Array };

/** Index of the first run that ends after `at`. */
function firstEndingAfter(runs: Run[], at: number): number {
  let lo = 0, hi = runs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const r = runs[mid]!;
    if (r.offset + r.data.length <= at) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function overlay(runs: Run[], offset: number, data: Uint8Array): Run[] {
  const end = offset + data.length;
  const i = firstEndingAfter(runs, offset);
  let j = i;
  const keep: Run[] = [];
  while (j < runs.length && runs[j]!.offset < end) j++;
  if (i < j) {
    const a = runs[i]!, b = runs[j - 1]!;
    if (a.offset < offset) keep.push({ offset: a.offset, data: a.data.subarray(0, offset - a.offset) });
    keep.push({ offset, data });
    const bEnd = b.offset + b.data.length;
    if (bEnd > end) keep.push({ offset: end, data: b.data.subarray(end - b.offset) });
  } else keep.push({ offset, data });
  runs.splice(i, j - i, ...keep);
  return runs;
}

function clip(runs: Run[], size: number): Run[] {
  const i = firstEndingAfter(runs, size);
  if (i < runs.length && runs[i]!.offset < size) {
    const r = runs[i]!;
    runs[i] = { offset: r.offset, data: r.data.subarray(0, size - r.offset) };
    return runs.slice(0, i + 1);
  }
  return runs.slice(0, i);
}

function fillGaps(runs: Run[], mirror: (offset: number, length: number) => Uint8Array | undefined): Run[] {
  const out: Run[] = [];
  for (const r of runs) {
    const last = out[out.length - 1];
    const gap = last ? r.offset - (last.offset + last.data.length) : Infinity;
    const fill = gap > 0 && gap < GAP_FILL ? mirror(last!.offset + last!.data.length, gap) : undefined;
    if (fill && fill.length === gap) out.push({ offset: r.offset - gap, data: fill });
    out.push(r);
  }
  return out;
}

/** Joins touching runs into parts of up to PART_MAX bytes (copying only what is joined). */
function joinRuns(runs: Run[]): Run[] {
  const out: Run[] = [];
  let group: Run[] = [];
  let len = 0;
  const flush = () => {
    if (!group.length) return;
    out.push({ offset: group[0]!.offset, data: concat(group.map((g) => g.data), len) });
    group = [];
    len = 0;
  };
  for (const r of runs) {
    const last = group[group.length - 1];
    if (!last || last.offset + last.data.length !== r.offset || len + r.data.length > PART_MAX) flush();
    group.push(r);
    len += r.data.length;
  }
  flush();
  return out;
}

/** With appends in the list: keep the order, join consecutive appends and adjacent writes. */
function joinNeighbours(ops: PendingOp[]): PendingOp[] {
  const out: PendingOp[] = [];
  for (const o of ops) {
    const last = out[out.length - 1];
    if (last && last.kind === "append" && o.kind === "append" && last.data.length + o.data.length <= PART_MAX) {
      out[out.length - 1] = { kind: "append", data: concat([last.data, o.data]) };
    } else if (last && last.kind === "write" && o.kind === "write" && last.offset + last.data.length === o.offset && last.data.length + o.data.length <= PART_MAX) {
      out[out.length - 1] = { kind: "write", offset: last.offset, data: concat([last.data, o.data]) };
    } else out.push(o);
  }
  return out;
}
