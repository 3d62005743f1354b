// The edge HTTP API (documented in edge/README.md): a Hono app mounted by edge/worker.ts.
// Every route but `GET /` is authenticated (edge/auth.ts). Errors are always
// `{"error":{"code","message"}}` with the status from the one table in services/remote-wire.ts.
import { Hono, type Context } from "hono";
import { FsError } from "../runtime/errors.ts";
import {
  STATUS_OF, FRAME_TYPE, MAX_BATCH_BYTES, NAME_RE, INLINE_MAX, decodeFrame, encodeFrame, checkBatch, wirePath,
  type WireResult, type WireOp, type ErrorCode,
} from "../services/remote-wire.ts";
import { AuthError, credentialOf, sha256hex, type Cred, type Principal } from "./auth.ts";
import { stageBytes, stageStream, resolveSegs, pipeSegs, discard } from "./blobs.ts";
import { createJob, transition, getJob, listJobs, addEvent, auditEntries, verifyAudit, type JobState } from "./d1.ts";
import { errorReply, taskKey, type Part, type Seg, type Workspace } from "./workspace.ts";
import { PROGRAMS } from "./programs.ts";
import type { Env, Reply } from "./env.ts";

type C = Context<{ Bindings: Env }>;

export const VERSION = "0.1.0";

class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const errJson = (status: number, code: string, message: string): Response =>
  Response.json({ error: { code, message } }, { status, headers: status === 401 ? { "www-authenticate": 'Nostr realm="oanix"' } : {} });

function fromError(e: unknown): Response {
  if (e instanceof HttpError) return errJson(e.status, e.code, e.message);
  const r = errorReply(e);
  return errJson(r.status, r.error.code, r.error.message);
}

function unwrap<T>(r: Reply<T>): T {
  if (r.ok) return r.value;
  throw new HttpError(r.status, r.error.code, r.error.message);
}

const fsFail = (code: ErrorCode, msg: string): never => {
  throw new HttpError(STATUS_OF[code], code, `${code}: ${msg}`);
};

function wsName(c: C): string {
  const n = c.req.param("name") ?? "";
  if (!NAME_RE.test(n)) fsFail("EINVAL", "workspace names are 1-63 of [A-Za-z0-9._-], starting with a letter or digit");
  return n;
}

const stubOf = (env: Env, name: string) => env.WORKSPACE.get(env.WORKSPACE.idFromName(name));
const keyStub = (env: Env, pubkey: string) => env.WORKSPACE.get(env.WORKSPACE.idFromName("@key:" + pubkey));

/** Reads a whole body with a cap (Content-Length checked first, then while reading). */
async function readBody(req: Request, max: number): Promise<Uint8Array> {
  const cl = req.headers.get("content-length");
  if (cl !== null && Number(cl) > max) fsFail("EFBIG", `body larger than ${max} bytes`);
  if (!req.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let n = 0;
  const r = req.body.getReader();
  for (;;) {
    const { done, value } = await r.read();
    if (done) break;
    n += value.length;
    if (n > max) {
      await r.cancel().catch(() => {});
      fsFail("EFBIG", `body larger than ${max} bytes`);
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(n);
  let at = 0;
  for (const ch of chunks) out.set(ch, at), (at += ch.length);
  return out;
}

/** The credential of a request whose body (if any) has been read in full. */
async function credFor(req: Request, body?: Uint8Array): Promise<Cred> {
  return credentialOf(req, body && body.length ? await sha256hex(body) : undefined);
}

async function jsonBody(c: C, max = 256 * 1024): Promise<{ cred: Cred; body: Record<string, unknown> }> {
  const raw = await readBody(c.req.raw, max);
  const cred = await credFor(c.req.raw, raw);
  let body: unknown = {};
  if (raw.length) {
    try {
      body = JSON.parse(new TextDecoder().decode(raw));
    } catch {
      fsFail("EINVAL", "body is not JSON");
    }
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) fsFail("EINVAL", "body must be a JSON object");
  return { cred, body: body as Record<string, unknown> };
}

/** Authenticates and authorises for a workspace-level action; returns an internal credential. */
async function authFor(env: Env, name: string, cred: Cred, write: boolean): Promise<{ principal: Principal; inner: Cred }> {
  const principal = unwrap(await stubOf(env, name).authenticate(cred, [{ path: "", write }]));
  return { principal, inner: { type: "internal", principal } };
}

const actor = (p: Principal): string => (p.kind === "token" ? `token:${p.grant.id}` : `key:${p.pubkey}`);

function filePath(c: C): string {
  const raw = new URL(c.req.url).pathname;
  const marker = `/w/${c.req.param("name")}/f`;
  const rest = raw.slice(raw.indexOf(marker) + marker.length);
  let segs: string[];
  try {
    segs = rest.split("/").map(decodeURIComponent);
  } catch {
    return fsFail("EINVAL", "bad percent-encoding in path");
  }
  if (segs.some((s) => s.includes("/"))) fsFail("EINVAL", "encoded slash in a name");
  const decoded = segs.join("/");
  try {
    return wirePath(decoded);
  } catch (e) {
    if (e instanceof FsError) fsFail(e.code, e.message.replace(/^\w+: /, ""));
    throw e;
  }
}

async function versionOf(c: C, name: string): Promise<number | undefined> {
  const v = c.req.query("v"), snap = c.req.query("snapshot");
  if (v !== undefined) {
    if (!/^\d{1,15}$/.test(v)) fsFail("EINVAL", "v must be a version number");
    return Number(v);
  }
  if (snap !== undefined) {
    const n = await stubOf(c.env, name).snapshotVersion(snap);
    if (n === null) fsFail("ENOENT", `snapshot ${snap}`);
    return n!;
  }
  return undefined;
}

export function edgeRoutes(): Hono<{ Bindings: Env }> {
  const app = new Hono<{ Bindings: Env }>();
  app.onError((e) => fromError(e));

  app.get("/edge", (c) => c.json({
    name: "oanix-edge", version: VERSION,
    routes: ["/w/:name", "/w/:name/batch", "/w/:name/f/*", "/w/:name/versions", "/w/:name/snapshots", "/w/:name/fork",
      "/w/:name/grants", "/w/:name/jobs", "/w/:name/task/:id/:file", "/w/:name/logs/:stream", "/w/:name/audit", "/w/:name/run", "/registry/:agent", "/relay"],
    auth: "NIP-98 (Authorization: Nostr <base64 event>) or capability token (Authorization: Bearer oanix_...)",
  }));

  // ---------------------------------------------------------------- workspaces

  app.get("/w", async (c) => {
    const cred = await credFor(c.req.raw);
    if (cred.type !== "key") fsFail("EACCES", "list workspaces with a key");
    const k = cred as Extract<Cred, { type: "key" }>;
    unwrap(await keyStub(c.env, k.pubkey).touch(cred));
    const admin = (c.env.ADMIN_PUBKEYS ?? "").split(",").map((s) => s.trim()).includes(k.pubkey);
    const all = c.req.query("all") === "1";
    if (all && !admin) fsFail("EACCES", "only an admin key lists every workspace");
    const prefix = all ? "ws:" : `owner:${k.pubkey}:`;
    const out: Array<Record<string, unknown>> = [];
    let cursor: string | undefined;
    do {
      const l = await c.env.KV.list<{ owner: string; created: number }>({ prefix, ...(cursor ? { cursor } : {}) });
      for (const key of l.keys) {
        const name = key.name.slice(prefix.length);
        out.push({ name, ...(key.metadata ?? {}) });
      }
      cursor = l.list_complete ? undefined : l.cursor;
    } while (cursor);
    return c.json({ workspaces: out });
  });

  app.post("/w/:name", async (c) => {
    const name = wsName(c);
    const { cred } = await jsonBody(c);
    const r = unwrap(await stubOf(c.env, name).create(cred, name));
    if (r.created) {
      const meta = { owner: r.owner, created: Date.now() };
      await Promise.all([
        c.env.KV.put(`ws:${name}`, JSON.stringify(meta), { metadata: meta }),
        c.env.KV.put(`owner:${r.owner}:${name}`, "", { metadata: meta }),
      ]);
    }
    return c.json({ name, ...r }, r.created ? 201 : 200);
  });

  app.get("/w/:name", async (c) => {
    const name = wsName(c);
    return c.json(unwrap(await stubOf(c.env, name).info(await credFor(c.req.raw))));
  });

  app.post("/w/:name/session", async (c) => {
    const name = wsName(c);
    const body = await readBody(c.req.raw, 1024);
    return c.json(unwrap(await stubOf(c.env, name).session(await credFor(c.req.raw, body))), 201);
  });

  // ---------------------------------------------------------------- batch

  app.post("/w/:name/batch", async (c) => {
    const name = wsName(c);
    const body = await readBody(c.req.raw, MAX_BATCH_BYTES);
    const cred = await credFor(c.req.raw, body);
    const { header, parts: raw } = decodeFrame(body);
    const req = checkBatch(header, raw.length);
    const { results, parts: outParts } = await runBatch(c.env, stubOf(c.env, name), cred, req.ops, raw, req.atomic ?? false);
    return new Response(encodeFrame({ results }, outParts), { headers: { "content-type": FRAME_TYPE } });
  });

  // ---------------------------------------------------------------- files as URLs

  app.on(["GET", "HEAD"], "/w/:name/f/*", async (c) => {
    const name = wsName(c);
    const path = filePath(c);
    const cred = await credFor(c.req.raw);
    const version = await versionOf(c, name);
    const stub = stubOf(c.env, name);
    const WINDOW = 8 * 1024 * 1024;
    const first = unwrap(await stub.readSegs(cred, path, 0, 0, version));
    if (first.stat.type === "dir") {
      const inner: Cred = { type: "internal", principal: { kind: "owner", pubkey: "" } };
      const r = unwrap(await stub.batch(inner, [{ op: "readdir", path, ...(version !== undefined ? { version } : {}) }], []));
      const res = r.results[0]!;
      if (!res.ok) fsFail(res.error.code as ErrorCode, res.error.message);
      return c.json({ path: "/" + path, entries: (res as { entries?: unknown[] }).entries ?? [] });
    }
    const size = first.stat.size;
    let start = 0, end = size; // [start, end)
    const range = c.req.header("range");
    let status = 200;
    if (range) {
      const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
      if (!m || (m[1] === "" && m[2] === "")) fsFail("EINVAL", "unsupported Range");
      if (m![1] === "") start = Math.max(0, size - Number(m![2]));
      else {
        start = Number(m![1]);
        end = m![2] === "" ? size : Math.min(size, Number(m![2]) + 1);
      }
      if (start >= size && size > 0) {
        return new Response(null, { status: 416, headers: { "content-range": `bytes */${size}` } });
      }
      status = 206;
    }
    const headers: Record<string, string> = {
      "content-type": "application/octet-stream", "content-length": String(Math.max(0, end - start)),
      "accept-ranges": "bytes", "x-oanix-version": String(first.stat.version ?? ""), "x-oanix-ino": String(first.stat.ino),
      "last-modified": new Date(Number(BigInt(first.stat.mtime) / 1_000_000n)).toUTCString(),
      ...(status === 206 ? { "content-range": `bytes ${start}-${end - 1}/${size}` } : {}),
    };
    if (c.req.method === "HEAD") return new Response(null, { status, headers });
    // Stream window by window; each window is read at the version seen first, so a concurrent
    // writer cannot produce a torn read (a live file is pinned to the version of the first window).
    const pin = version ?? first.stat.version;
    const inner: Cred = { type: "internal", principal: { kind: "owner", pubkey: "" } };
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
    const w = writable.getWriter();
    c.executionCtx.waitUntil((async () => {
      try {
        for (let at = start; at < end; at += WINDOW) {
          const r = unwrap(await stub.readSegs(inner, path, at, Math.min(WINDOW, end - at), pin));
          await pipeSegs(c.env.BLOBS, r.segs, w);
        }
        await w.close();
      } catch (e) {
        await w.abort(e).catch(() => {});
      }
    })());
    return new Response(readable, { status, headers });
  });

  app.put("/w/:name/f/*", async (c) => {
    const name = wsName(c);
    const path = filePath(c);
    const req = c.req.raw;
    const cred = credentialOf(req, req.body ? "later" : undefined);
    const stub = stubOf(c.env, name);
    const principal = unwrap(await stub.authenticate(cred, [{ path, write: true }]));
    const staged = req.body
      ? await stageStream(c.env.BLOBS, req.body)
      : { part: new Uint8Array(0) as Part, sha256: await sha256hex(new Uint8Array(0)), size: 0 };
    if (cred.type === "key" && req.body && cred.payload !== staged.sha256) {
      await discard(c.env.BLOBS, staged.part);
      throw new AuthError(401, "NIP-98: payload tag does not match the body");
    }
    const r = await stub.putFile({ type: "internal", principal }, path, staged.part, c.req.query("parents") === "1");
    if (!r.ok) await discard(c.env.BLOBS, staged.part);
    const stat = unwrap(r);
    return c.json({ path: "/" + path, stat, sha256: staged.sha256 }, 201);
  });

  app.delete("/w/:name/f/*", async (c) => {
    const name = wsName(c);
    const path = filePath(c);
    const r = unwrap(await stubOf(c.env, name).batch(await credFor(c.req.raw), [{ op: "remove", path }], []));
    const res = r.results[0]!;
    if (!res.ok) fsFail(res.error.code as ErrorCode, res.error.message.replace(/^\w+: /, ""));
    return c.body(null, 204);
  });

  // ---------------------------------------------------------------- versions, snapshots, fork

  app.get("/w/:name/versions", async (c) => {
    const name = wsName(c);
    const p = c.req.query("path");
    return c.json(unwrap(await stubOf(c.env, name).versions(await credFor(c.req.raw), p, Number(c.req.query("limit") ?? 100))));
  });

  app.get("/w/:name/snapshots", async (c) => {
    const name = wsName(c);
    return c.json({ snapshots: unwrap(await stubOf(c.env, name).snapshots(await credFor(c.req.raw))) });
  });

  app.post("/w/:name/snapshots", async (c) => {
    const name = wsName(c);
    const { cred, body } = await jsonBody(c);
    return c.json(unwrap(await stubOf(c.env, name).snapshot(cred, String(body.name ?? ""))), 201);
  });

  app.post("/w/:name/fork", async (c) => {
    const name = wsName(c);
    const { cred, body } = await jsonBody(c);
    const to = String(body.to ?? "");
    if (!NAME_RE.test(to)) fsFail("EINVAL", "fork needs a valid `to` name");
    if (cred.type !== "key") fsFail("EACCES", "forks are made by keys (NIP-98)");
    const src = stubOf(c.env, name);
    let version: number | undefined;
    if (body.version !== undefined) version = Number(body.version);
    if (typeof body.snapshot === "string") {
      const v = await src.snapshotVersion(body.snapshot);
      if (v === null) fsFail("ENOENT", `snapshot ${body.snapshot}`);
      version = v!;
    }
    const tree = unwrap(await src.exportTree(cred, version));
    const k = cred as Extract<Cred, { type: "key" }>;
    const r = unwrap(await stubOf(c.env, to).importTree({ type: "internal", principal: { kind: "owner", pubkey: k.pubkey } }, to, `${name}@${tree.version}`, tree));
    const meta = { owner: k.pubkey, created: Date.now(), forkedFrom: `${name}@${tree.version}` };
    await Promise.all([
      c.env.KV.put(`ws:${to}`, JSON.stringify(meta), { metadata: meta }),
      c.env.KV.put(`owner:${k.pubkey}:${to}`, "", { metadata: meta }),
    ]);
    return c.json({ name: to, from: name, version: tree.version, files: tree.nodes.length, head: r.version }, 201);
  });

  // ---------------------------------------------------------------- grants

  app.get("/w/:name/grants", async (c) => c.json({ grants: unwrap(await stubOf(c.env, wsName(c)).grants(await credFor(c.req.raw))) }));

  app.post("/w/:name/grants", async (c) => {
    const name = wsName(c);
    const { cred, body } = await jsonBody(c);
    const rights = body.rights ?? "r";
    if (rights !== "r" && rights !== "rw") fsFail("EINVAL", 'rights are "r" or "rw"');
    const expires = typeof body.expires === "number" ? body.expires
      : Date.now() + 1000 * (typeof body.expiresIn === "number" ? body.expiresIn : 3600);
    const g = unwrap(await stubOf(c.env, name).grant(cred, {
      prefix: String(body.prefix ?? ""), write: rights === "rw", expires,
      ...(typeof body.pubkey === "string" ? { pubkey: body.pubkey } : {}),
    }));
    return c.json(g, 201);
  });

  app.delete("/w/:name/grants/:id", async (c) => c.json(unwrap(await stubOf(c.env, wsName(c)).revoke(await credFor(c.req.raw), c.req.param("id")))));

  // ---------------------------------------------------------------- jobs (D1)

  app.get("/w/:name/jobs", async (c) => {
    const name = wsName(c);
    await authFor(c.env, name, await credFor(c.req.raw), false);
    return c.json({ jobs: await listJobs(c.env.DB, name, c.req.query("state")) });
  });

  app.post("/w/:name/jobs", async (c) => {
    const name = wsName(c);
    const { cred, body } = await jsonBody(c);
    const { principal } = await authFor(c.env, name, cred, true);
    return c.json(await createJob(c.env.DB, name, actor(principal), String(body.kind ?? ""), body.input), 201);
  });

  app.get("/w/:name/jobs/:id", async (c) => {
    const name = wsName(c);
    await authFor(c.env, name, await credFor(c.req.raw), false);
    return c.json(await getJob(c.env.DB, name, c.req.param("id")));
  });

  app.post("/w/:name/jobs/:id/state", async (c) => {
    const name = wsName(c);
    const { cred, body } = await jsonBody(c);
    await authFor(c.env, name, cred, true);
    return c.json(await transition(c.env.DB, name, c.req.param("id"), body.state as JobState, {
      ...(body.result !== undefined ? { result: body.result } : {}),
      ...(typeof body.error === "string" ? { error: body.error } : {}),
    }));
  });

  app.post("/w/:name/jobs/:id/events", async (c) => {
    const name = wsName(c);
    const { cred, body } = await jsonBody(c);
    await authFor(c.env, name, cred, true);
    const id = c.req.param("id");
    await getJob(c.env.DB, name, id);
    const type = String(body.type ?? "");
    if (!/^[a-z][a-z0-9_.-]{0,31}$/.test(type) || ["queued", "running", "succeeded", "failed"].includes(type)) fsFail("EINVAL", "bad event type");
    await addEvent(c.env.DB, id, type, body.data);
    return c.json({ ok: true }, 201);
  });

  // ---------------------------------------------------------------- audit (D1)

  app.get("/w/:name/audit", async (c) => {
    const name = wsName(c);
    const head = unwrap(await stubOf(c.env, name).auditHead(await credFor(c.req.raw)));
    return c.json({ head, entries: await auditEntries(c.env.DB, name, Number(c.req.query("after") ?? 0), Number(c.req.query("limit") ?? 200)) });
  });

  app.get("/w/:name/audit/verify", async (c) => {
    const name = wsName(c);
    const head = unwrap(await stubOf(c.env, name).auditHead(await credFor(c.req.raw)));
    return c.json({ head, ...(await verifyAudit(c.env.DB, name, head)) });
  });

  // ---------------------------------------------------------------- task files (KV reads, DO writes)

  app.get("/w/:name/task/:id/:file", async (c) => {
    const name = wsName(c);
    const id = c.req.param("id"), file = c.req.param("file");
    if (!NAME_RE.test(id) || !NAME_RE.test(file)) fsFail("EINVAL", "bad task id or file name");
    const stub = stubOf(c.env, name);
    const cred = await credFor(c.req.raw);
    // Authorisation and the KV read run side by side; the DO answers only when KV has no copy.
    const [auth, fast] = await Promise.all([stub.authenticate(cred, [{ path: "", write: false }]), c.env.KV.get(taskKey(name, id, file), "arrayBuffer")]);
    const principal = unwrap(auth);
    let data: Uint8Array | null = fast ? new Uint8Array(fast) : null;
    let source = "kv";
    if (!data) {
      data = unwrap(await stub.taskGet({ type: "internal", principal }, id, file));
      source = "do";
    }
    if (!data) fsFail("ENOENT", `task ${id}/${file}`);
    return new Response(data, { headers: { "content-type": file.endsWith(".json") ? "application/json" : "application/octet-stream", "x-oanix-source": source } });
  });

  app.put("/w/:name/task/:id/:file", async (c) => {
    const name = wsName(c);
    const body = await readBody(c.req.raw, INLINE_MAX);
    const cred = await credFor(c.req.raw, body);
    return c.json(unwrap(await stubOf(c.env, name).taskPut(cred, c.req.param("id"), c.req.param("file"), body)), 201);
  });

  // ---------------------------------------------------------------- logs (R2 segments, live tail)

  app.post("/w/:name/logs/:stream", async (c) => {
    const name = wsName(c);
    const body = await readBody(c.req.raw, INLINE_MAX);
    const cred = await credFor(c.req.raw, body);
    return c.json(unwrap(await stubOf(c.env, name).logAppend(cred, c.req.param("stream"), body)));
  });

  app.get("/w/:name/logs/:stream", async (c) => {
    const name = wsName(c);
    const stream = c.req.param("stream");
    const from = Number(c.req.query("from") ?? 0);
    if (!Number.isSafeInteger(from) || from < 0) fsFail("EINVAL", "from must be a byte offset");
    const cred = await credFor(c.req.raw);
    const stub = stubOf(c.env, name);
    if (c.req.query("follow") === "1") {
      const s = unwrap(await stub.follow(cred, stream, from));
      return new Response(s, { headers: { "content-type": "application/octet-stream", "cache-control": "no-store" } });
    }
    const r = unwrap(await stub.logRead(cred, stream, from, 16 * 1024 * 1024));
    const bytes = await resolveSegs(c.env.BLOBS, r.segs as Seg[]);
    return new Response(bytes, { headers: { "content-type": "text/plain; charset=utf-8", "x-oanix-log-length": String(r.length) } });
  });

  // ---------------------------------------------------------------- edge process runner

  app.post("/w/:name/run", async (c) => {
    const name = wsName(c);
    const { cred, body } = await jsonBody(c);
    const { principal, inner } = await authFor(c.env, name, cred, true);
    const program = String(body.program ?? "");
    if (!Object.hasOwn(PROGRAMS, program)) fsFail("ENOENT", `no bundled program "${program}" (have: ${Object.keys(PROGRAMS).join(", ")})`);
    const args = body.args ?? [];
    if (!Array.isArray(args) || !args.every((a) => typeof a === "string")) fsFail("EINVAL", "args is an array of strings");
    const envv = body.env ?? {};
    if (typeof envv !== "object" || envv === null || !Object.values(envv).every((v) => typeof v === "string")) fsFail("EINVAL", "env maps names to strings");
    const lim = (body.limits ?? {}) as Record<string, unknown>;
    const limits: Record<string, number> = {};
    for (const k of ["wallTimeMs", "memoryBytes", "outputBytes"]) {
      if (lim[k] === undefined) continue;
      const v = lim[k];
      if (typeof v !== "number" || !(v > 0)) return fsFail("EINVAL", `limits.${k} is a positive number`);
      limits[k] = v;
    }
    const job = await createJob(c.env.DB, name, actor(principal), "run:" + program, { args, env: envv, limits, task: body.task ?? {} });
    unwrap(await stubOf(c.env, name).taskPut(inner, job.id, "spec.json", new TextEncoder().encode(JSON.stringify(body.task ?? {}))));
    const runner = c.env.RUNNER.get(c.env.RUNNER.idFromName(job.id));
    const run: Promise<unknown> = runner.run({ ws: name, job: job.id, principal, program, args: args as string[], env: envv as Record<string, string>, limits });
    if (body.wait === false) {
      c.executionCtx.waitUntil(run.then(() => undefined, () => undefined));
      return c.json({ job: job.id, state: "queued" }, 202);
    }
    return c.json(await run);
  });

  // ---------------------------------------------------------------- namespace registry (KV)

  app.put("/registry/:agent", async (c) => {
    const agent = c.req.param("agent");
    if (!NAME_RE.test(agent)) fsFail("EINVAL", "bad agent id");
    const { cred, body } = await jsonBody(c);
    const mounts = body.mounts;
    if (typeof mounts !== "object" || mounts === null || Array.isArray(mounts)) fsFail("EINVAL", "mounts must map paths to sources");
    for (const [k, v] of Object.entries(mounts as object)) {
      if (!k.startsWith("/") || typeof v !== "string") fsFail("EINVAL", "mounts map absolute paths to source strings");
    }
    const r = unwrap(await stubOf(c.env, "@agent:" + agent).registryPut(cred, agent, JSON.stringify({ agent, mounts, updated: Date.now() })));
    return c.json(r, 201);
  });

  app.get("/registry/:agent", async (c) => {
    const agent = c.req.param("agent");
    if (!NAME_RE.test(agent)) fsFail("EINVAL", "bad agent id");
    const cred = await credFor(c.req.raw);
    const [auth, fast] = await Promise.all([
      stubOf(c.env, "@agent:" + agent).authenticate(cred, [{ path: "", write: false }]),
      c.env.KV.get(`reg:${agent}`),
    ]);
    unwrap(auth);
    if (!fast) fsFail("ENOENT", `agent ${agent}`);
    return new Response(fast, { headers: { "content-type": "application/json" } });
  });

  return app;
}

/** The edge app, mounted by edge/worker.ts under /w, /registry and /edge. */
export const edgeApp = edgeRoutes();
export { Workspace } from "./workspace.ts";
export { Runner } from "./runner.ts";

/**
 * Runs a batch against a workspace: large parts are staged in R2 first (after authorising, so a
 * refused request stores nothing), R2 segments of reads are fetched and joined. Used by the HTTP
 * route and by the edge runner's /workspace.
 */
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
    return wirePath(p);
  } catch {
    return "";
  }
}
