// Files: the batch route (every FileService operation in one round trip) and files as URLs
// (`/w/NAME/f/PATH`: GET/HEAD streamed with ranges, PUT streamed to R2, DELETE).
import { Hono } from "hono";
import { FsError } from "../../runtime/errors.ts";
import { FRAME_TYPE, MAX_BATCH_BYTES, MAX_FILE_BYTES, decodeFrame, checkBatch } from "../../services/remote-wire.ts";
import { AuthError, credentialOf, type Cred } from "../auth.ts";
import { sha256hex } from "../bytes.ts";
import { answerFrame, batchSegs } from "../batch.ts";
import { stageStream, pipeSegs, discard } from "../blobs.ts";
import { opError, unwrap } from "../errors.ts";
import type { Part, Workspace } from "../workspace/index.ts";
import { body, credOf, filePath, stubOf, wsName, type AppEnv, type C } from "./request.ts";

/** GETs stream a window at a time: no RPC answer carries more than this. */
const WINDOW = 8 * 1024 * 1024;
/** Reads after the first window run as the object itself (the first one was authorised). */
const INNER: Cred = { type: "internal", principal: { kind: "owner", pubkey: "" } };

export const files = new Hono<AppEnv>();

files.post("/batch", body(MAX_BATCH_BYTES), async (c) => {
  const name = wsName(c);
  const cred = await credOf(c);
  const { header, parts } = decodeFrame(c.get("body"));
  const req = checkBatch(header, parts.length);
  const results = await batchSegs(c.env, stubOf(c.env, name), cred, { ops: req.ops, parts, atomic: req.atomic ?? false, ...(req.rid !== undefined ? { rid: req.rid } : {}) });
  const answer = answerFrame(c.env.BLOBS, results);
  return new Response(answer.body, { headers: { "content-type": FRAME_TYPE, "content-length": String(answer.length) } });
});

files.on(["GET", "HEAD"], "/f/*", async (c) => {
  const name = wsName(c);
  const path = filePath(c);
  const stub = stubOf(c.env, name);
  // Rights first (so a stranger learns nothing, not even whether a snapshot exists), then lookups.
  const principal = unwrap(await stub.authenticate(await credOf(c), [{ path, write: false }]));
  const cred: Cred = { type: "internal", principal };
  const version = await versionOf(c, stub, cred, path);
  const first = unwrap(await stub.readSegs(cred, path, 0, 0, version));
  if (first.stat.type === "dir") {
    const r = unwrap(await stub.batch(INNER, [{ op: "readdir", path, ...(version !== undefined ? { version } : {}) }], []));
    const res = r.results[0]!;
    if (!res.ok) throw opError(res.error);
    return c.json({ path: "/" + path, entries: res.entries ?? [] });
  }
  const size = first.stat.size;
  const range = rangeOf(c.req.header("range"), size);
  if (range === "unsatisfiable") return new Response(null, { status: 416, headers: { "content-range": `bytes */${size}` } });
  const [start, end] = range ?? [0, size];
  const status = range ? 206 : 200;
  const headers: Record<string, string> = {
    "content-type": "application/octet-stream", "content-length": String(Math.max(0, end - start)),
    "accept-ranges": "bytes", "x-oanix-version": String(first.stat.version ?? ""), "x-oanix-ino": String(first.stat.ino),
    "last-modified": new Date(Number(BigInt(first.stat.mtime) / 1_000_000n)).toUTCString(),
    ...(range ? { "content-range": `bytes ${start}-${end - 1}/${size}` } : {}),
  };
  if (c.req.method === "HEAD") return new Response(null, { status, headers });
  // Stream window by window; each window is read at the version seen first, so a concurrent
  // writer cannot produce a torn read (a live file is pinned to the version of the first window).
  const pin = version ?? first.stat.version;
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  const w = writable.getWriter();
  c.executionCtx.waitUntil((async () => {
    try {
      for (let at = start; at < end; at += WINDOW) {
        const r = unwrap(await stub.readSegs(INNER, path, at, Math.min(WINDOW, end - at), pin));
        await pipeSegs(c.env.BLOBS, r.segs, w);
      }
      await w.close();
    } catch (e) {
      await w.abort(e).catch(() => {});
    }
  })());
  return new Response(readable, { status, headers });
});

files.put("/f/*", async (c) => {
  const name = wsName(c);
  const path = filePath(c);
  const req = c.req.raw;
  const cred = credentialOf(req, req.body ? "later" : undefined);
  const stub = stubOf(c.env, name);
  const principal = unwrap(await stub.authenticate(cred, [{ path, write: true }]));
  const inner: Cred = { type: "internal", principal };
  const staged = req.body
    ? await stageStream(c.env.BLOBS, req.body, MAX_FILE_BYTES, async (key, id) => void unwrap(await stub.stageBegin(inner, key, id)))
    : { part: new Uint8Array(0) as Part, sha256: await sha256hex(new Uint8Array(0)), size: 0 };
  if (cred.type === "key" && req.body && cred.payload !== staged.sha256) {
    await discard(c.env.BLOBS, staged.part);
    throw new AuthError(401, "NIP-98: payload tag does not match the body");
  }
  const r = await stub.putFile(inner, path, staged.part, c.req.query("parents") === "1");
  if (!r.ok) await discard(c.env.BLOBS, staged.part);
  const stat = unwrap(r);
  return c.json({ path: "/" + path, stat, sha256: staged.sha256 }, 201);
});

files.delete("/f/*", async (c) => {
  const name = wsName(c);
  const path = filePath(c);
  const r = unwrap(await stubOf(c.env, name).batch(await credOf(c), [{ op: "remove", path }], []));
  const res = r.results[0]!;
  if (!res.ok) throw opError(res.error);
  return c.body(null, 204);
});

/** `?v=N` or `?snapshot=S` as a version number. */
async function versionOf(c: C, stub: DurableObjectStub<Workspace>, cred: Cred, path: string): Promise<number | undefined> {
  const v = c.req.query("v"), snap = c.req.query("snapshot");
  if (v !== undefined) {
    if (!/^\d{1,15}$/.test(v)) throw new FsError("EINVAL", "v must be a version number");
    return Number(v);
  }
  if (snap !== undefined) {
    const n = unwrap(await stub.snapshotVersion(cred, snap, path));
    if (n === null) throw new FsError("ENOENT", `snapshot ${snap}`);
    return n;
  }
  return undefined;
}

// A Range header as [start, end) of a file of `size` bytes; null when there is none. A range
// that selects no byte (backwards, past the end, `-0`, or any range of an empty file) is
// unsatisfiable: 416 with `Content-Range: bytes */SIZE` (RFC 9110 §14.1.2).
function rangeOf(h: string | undefined, size: number): [number, number] | "unsatisfiable" | null {
  if (!h) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(h.trim());
  if (!m || (m[1] === "" && m[2] === "")) throw new FsError("EINVAL", "unsupported Range");
  let start: number, end: number;
  if (m[1] === "") {
    const n = Number(m[2]);
    start = Math.max(0, size - n);
    end = n === 0 ? start : size;
  } else {
    start = Number(m[1]);
    if (m[2] !== "" && Number(m[2]) < start) return "unsatisfiable";
    end = m[2] === "" ? size : Math.min(size, Number(m[2]) + 1);
  }
  return start < end ? [start, end] : "unsatisfiable";
}
