// Runs a batch against a workspace object, for the HTTP route and for the edge runner's
// /workspace. Large parts are staged in R2 first (after authorising, so a refused request stores
// nothing). The answer's read data comes back as segments: the HTTP route streams them into the
// answer frame (R2 ranges piped, never buffered whole); the runner joins them into bytes.
import { INLINE_MAX, type ErrorCode, type WireOp, type WireResult } from "../services/remote-wire.ts";
import type { Cred } from "./auth.ts";
import { stageBytes, resolveSegs, pipeSegs } from "./blobs.ts";
import { unwrap } from "./errors.ts";
import type { Env } from "./env.ts";
import { pathOf } from "./workspace/names.ts";
import type { DoResult, Part, Seg, Workspace } from "./workspace/index.ts";

export interface BatchCall { ops: WireOp[]; parts: Uint8Array[]; atomic: boolean; rid?: string }

/** The object's answer, read data still as segments. */
export async function batchSegs(env: Env, stub: DurableObjectStub<Workspace>, cred: Cred, b: BatchCall): Promise<DoResult[]> {
  let parts: Part[] = b.parts;
  if (b.parts.some((p) => p.length > INLINE_MAX)) {
    const access = b.ops.flatMap((o) => (o.op === "write" ? [{ path: safePath(o.path), write: true }] : []));
    const principal = unwrap(await stub.authenticate(cred, access));
    cred = { type: "internal", principal };
    parts = await Promise.all(b.parts.map((p) => stageBytes(env.BLOBS, p)));
  }
  return unwrap(await stub.batch(cred, b.ops, parts, b.atomic, b.rid)).results;
}

/** Wire results, with `data` numbering the parts that carry read data, in order. */
function wireResults(results: DoResult[]): { results: WireResult[]; segs: Seg[][] } {
  const segs: Seg[][] = [];
  const out = results.map((x): WireResult => {
    if (!x.ok) return { ok: false, error: x.error as { code: ErrorCode; message: string } };
    const { segs: s, ...rest } = x;
    if (!s) return rest;
    segs.push(s);
    return { ...rest, data: segs.length - 1 };
  });
  return { results: out, segs };
}

/** For the runner: the answer with its read data as bytes. */
export async function runBatch(env: Env, stub: DurableObjectStub<Workspace>, cred: Cred, ops: WireOp[], raw: Uint8Array[], atomic: boolean, rid?: string): Promise<{ results: WireResult[]; parts: Uint8Array[] }> {
  const w = wireResults(await batchSegs(env, stub, cred, { ops, parts: raw, atomic, ...(rid !== undefined ? { rid } : {}) }));
  return { results: w.results, parts: await Promise.all(w.segs.map((s) => resolveSegs(env.BLOBS, s))) };
}

const segLength = (s: Seg): number => (s instanceof Uint8Array ? s.length : typeof s === "number" ? s : s.len);

/**
 * For HTTP: the answer frame (services/remote-wire.ts framing) as a stream of known length. The
 * header and part lengths are known before any byte is read, so parts are piped as they come.
 */
export function answerFrame(bucket: R2Bucket, results: DoResult[]): { body: ReadableStream<Uint8Array>; length: number } {
  const w = wireResults(results);
  const header = new TextEncoder().encode(JSON.stringify({ results: w.results }));
  const lengths = w.segs.map((s) => s.reduce<number>((n, x) => n + segLength(x), 0));
  const head = new Uint8Array(12 + header.length);
  const dv = new DataView(head.buffer);
  dv.setUint32(0, 0x4f414e58); // "OANX"
  dv.setUint32(4, header.length);
  head.set(header, 8);
  dv.setUint32(8 + header.length, w.segs.length);
  const u32 = (n: number) => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, n);
    return b;
  };
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  const out = writable.getWriter();
  void (async () => {
    try {
      await out.write(head);
      for (let i = 0; i < w.segs.length; i++) {
        await out.write(u32(lengths[i]!));
        await pipeSegs(bucket, w.segs[i]!, out);
      }
      await out.close();
    } catch (e) {
      await out.abort(e).catch(() => {});
    }
  })();
  return { body: readable, length: head.length + lengths.reduce<number>((n, l) => n + 4 + l, 0) };
}

function safePath(p: string): string {
  try {
    return pathOf(p);
  } catch {
    return "";
  }
}
