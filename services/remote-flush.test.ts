// The flush planner: folding pending writes and truncates must not change what the file holds,
// and no batch may pass the edge's limits, whatever the guest did.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BATCH_OPS, BATCH_PART_BYTES, GAP_FILL, PART_MAX, batches, coalesce, type PendingOp } from "./remote-flush.ts";
import { MAX_BATCH_OPS, checkBatch, type WireOp } from "./remote-wire.ts";

/** A file as POSIX would hold it after `ops` (writes past the end fill with zeros; empty writes change nothing). */
function apply(start: Uint8Array, ops: PendingOp[]): Uint8Array {
  let f = start.slice();
  const resize = (n: number) => {
    const g = new Uint8Array(n);
    g.set(f.subarray(0, Math.min(n, f.length)));
    f = g;
  };
  for (const o of ops) {
    if (o.kind === "truncate") resize(o.size);
    else {
      const at = o.kind === "append" ? f.length : o.offset;
      if (o.data.length && at + o.data.length > f.length) resize(at + o.data.length);
      if (o.data.length) f.set(o.data, at);
    }
  }
  return f;
}

const op: fc.Arbitrary<PendingOp> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant("write" as const), offset: fc.nat(300), data: fc.uint8Array({ minLength: 0, maxLength: 40 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("truncate" as const), size: fc.nat(320) }) },
);

describe("remote flush planner", () => {
  it("folded writes and truncates leave the file as the original ops would", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), fc.array(op, { maxLength: 60 }), (start, ops) => {
      expect(apply(start, coalesce(ops))).toEqual(apply(start, ops));
    }), { numRuns: 2000 });
  });

  it("with the client's copy, nearby writes become one and the file is still the same", () => {
    const spread: fc.Arbitrary<PendingOp> = fc.oneof(
      { weight: 6, arbitrary: fc.record({ kind: fc.constant("write" as const), offset: fc.nat(3 * GAP_FILL), data: fc.uint8Array({ minLength: 1, maxLength: 40 }) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant("truncate" as const), size: fc.nat(3 * GAP_FILL) }) },
    );
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), fc.array(spread, { maxLength: 40 }), (start, ops) => {
      const want = apply(start, ops);
      const mirror = (at: number, len: number) => (at + len <= want.length ? want.slice(at, at + len) : undefined);
      const out = coalesce(ops, mirror);
      expect(apply(start, out)).toEqual(want);
      const writes = out.filter((o) => o.kind === "write") as Array<{ offset: number; data: Uint8Array }>;
      for (let i = 1; i < writes.length; i++) expect(writes[i]!.offset - (writes[i - 1]!.offset + writes[i - 1]!.data.length)).toBeGreaterThanOrEqual(GAP_FILL);
    }), { numRuns: 1000 });
  });

  it("appends keep their order among the other ops", () => {
    const withAppends = fc.oneof(op, fc.record({ kind: fc.constant("append" as const), data: fc.uint8Array({ minLength: 1, maxLength: 20 }) }));
    fc.assert(fc.property(fc.uint8Array({ maxLength: 100 }), fc.array(withAppends, { maxLength: 40 }), (start, ops) => {
      expect(apply(start, coalesce(ops))).toEqual(apply(start, ops));
    }), { numRuns: 1000 });
  });

  it("overlapping and adjacent writes become one write per run of bytes", () => {
    const ops: PendingOp[] = [];
    for (let i = 0; i < 5000; i++) ops.push({ kind: "write", offset: (i * 4096) % (64 * 4096), data: new Uint8Array(4096).fill(i & 0xff) });
    const out = coalesce(ops);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ kind: "write", offset: 0 });
  });

  it("cuts any number of scattered writes into batches the edge accepts, each within the limits", () => {
    const ops: PendingOp[] = [];
    for (let i = 0; i < 3000; i++) ops.push({ kind: "write", offset: i * 10, data: new Uint8Array([i & 0xff, 1, 2]) });
    ops.push({ kind: "write", offset: 40_000, data: new Uint8Array(PART_MAX * 5 + 3) });
    const first: WireOp[] = [{ op: "open", path: "f", flags: { write: true, create: true, truncate: true } }];
    const plan = batches(coalesce(ops), "f", first);
    expect(plan.length).toBeGreaterThan(2);
    expect(plan[0]!.ops[0]).toEqual(first[0]);
    let bytes = 0, writes = 0;
    for (const b of plan) {
      expect(b.ops.length).toBeLessThanOrEqual(MAX_BATCH_OPS);
      expect(b.ops.length).toBeLessThanOrEqual(BATCH_OPS + (b === plan[0] ? 1 : 0));
      const size = b.parts.reduce((n, p) => n + p.length, 0);
      expect(size).toBeLessThanOrEqual(BATCH_PART_BYTES);
      for (const p of b.parts) expect(p.length).toBeLessThanOrEqual(PART_MAX);
      expect(() => checkBatch({ ops: b.ops, atomic: true }, b.parts.length)).not.toThrow();
      bytes += size;
      writes += b.pending.length;
    }
    expect(bytes).toBe(3000 * 3 + PART_MAX * 5 + 3);
    expect(writes).toBe(3000 + 6);
  });
});
