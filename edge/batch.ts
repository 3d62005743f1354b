// Runs a batch against a workspace object for the HTTP route and for the edge runner's
// /workspace: large parts are staged in R2 first (after authorising, so a refused request stores
// nothing), and the R2 segments of reads are fetched and joined into the answer's parts.
import { INLINE_MAX, type ErrorCode, type WireOp, type WireResult } from "../services/remote-wire.ts";
import { pathOf } from "./workspace/names.ts";
import type { Cred } from "./auth.ts";
import { stageBytes, resolveSegs } from "./blobs.ts";
import { unwrap } from "./errors.ts";
import type { Env } from "./env.ts";
import type { Part, Workspace } from "./workspace/index.ts";

export async function runBatch(env: Env, stub: DurableObjectStub<Workspace>, cred: Cred, ops: WireOp[], raw: Uint8Array[], atomic: boolean): Promise<{ results: WireResult[]; parts: Uint8Array[] }> {
  let parts: Part[] = raw;
  if (raw.some((p) => p.length > INLINE_MAX)) {
    const access = ops.flatMap((o) => (o.op === "write" ? [{ path: safePath(o.path), write: true }] : []));
    const principal = unwrap(await stub.authenticate(cred, access));
    cred = { type: "internal", principal };
    parts = await Promise.all(raw.map((p) => stageBytes(env.BLOBS, p)));
  }
  const r = unwrap(await stub.batch(cred, ops, parts, atomic));
  const outParts: Uint8Array[] = [];
  const bytes = await Promise.all(r.results.map((x) => (x.ok && x.segs ? resolveSegs(env.BLOBS, x.segs) : undefined)));
  const results = r.results.map((x, i): WireResult => {
    if (!x.ok) return { ok: false, error: x.error as { code: ErrorCode; message: string } };
    const { segs: _segs, ...rest } = x;
    const b = bytes[i];
    if (!b) return rest;
    outParts.push(b);
    return { ...rest, data: outParts.length - 1 };
  });
  return { results, parts: outParts };
}

function safePath(p: string): string {
  try {
    return pathOf(p);
  } catch {
    return "";
  }
}
