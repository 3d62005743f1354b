// A FileService over an edge workspace (`http(s)://HOST/w/NAME`), for Node and the browser:
// fetch only. An agent touching N files costs O(N) requests, not one per syscall:
// - open is one request that also answers the first `readAhead` bytes (the whole file, usually);
//   reads are served from that window, and a read past it fetches the next window.
// - writes are kept in the handle (write-behind) and sent on close/sync, or when `writeBehind`
//   bytes are pending, as one atomic batch of ranged writes; the handle reads its own writes.
// - calls made while a request is being assembled share it (one batch per microtask).
// Consistency is close-to-open (as NFS): open always asks the edge, close returns only once the
// edge has acknowledged every write, and a close that cannot flush rejects — nothing is dropped.
// Transient failures (connection refused while the local edge restarts, 502/503) are retried.
import { FsError } from "../runtime/errors.ts";
import type { DirEntry, FileHandle, FileService, OpenFlags, Stat } from "../runtime/types.ts";
import {
  FRAME_TYPE, INLINE_MAX, MAX_READ, checkOp, decodeFrame, encodeFrame, fromWireError, statFromWire,
  type WireOp, type WireResult, type WireStat,
} from "./remote-wire.ts";
import { tokenSigner, type Signer } from "./nip98.ts";

export interface RemoteOptions {
  /** Who signs: a NIP-98 key signer (services/nip98.ts, services/key.ts), or a capability token. */
  signer?: Signer | Promise<Signer>;
  token?: string;
  /** Refuse every write locally with EROFS (the namespace's --ro does too). */
  readOnly?: boolean;
  /** Create the workspace on first use when it does not exist (keys only). Default true. */
  create?: boolean;
  /** Bytes answered with open and fetched per read miss. Default 1 MiB; 0 = none. */
  readAhead?: number;
  /** Pending bytes per handle before a write flushes. Default 8 MiB; 0 = write-through. */
  writeBehind?: number;
  /** How long stat answers learned from readdir/stat stay fresh. Default 1000 ms; 0 = never cached. */
  attrCacheMs?: number;
  /** Join calls made in the same microtask into one request. Default true. */
  coalesce?: boolean;
  /** How long to keep retrying a request the edge did not answer (ms). Default 30 s. */
  retryMs?: number;
  /** With a key: sign once to open a session, then use its token. Default true; false signs every request. */
  sessions?: boolean;
  fetch?: typeof fetch;
  /** Another way to reach the workspace than HTTP (the edge runner calls its Durable Object). */
  transport?: BatchTransport;
}

export type BatchTransport = (ops: WireOp[], parts: Uint8Array[], atomic: boolean) => Promise<{ results: WireResult[]; parts: Uint8Array[] }>;

type Pending = { op: WireOp; part?: Uint8Array; resolve: (r: WireResult & { bytes?: Uint8Array }) => void; reject: (e: unknown) => void };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class RemoteService implements FileService {
  readonly url: string;
  /** HTTP requests sent so far (bench and tests count them). */
  requests = 0;
  private signer: Signer | Promise<Signer>;
  private opts: Required<Omit<RemoteOptions, "signer" | "token" | "fetch" | "transport">>;
  private transport: BatchTransport | undefined;
  private isKey: boolean;
  private fetchFn: typeof fetch;
  private queue: Pending[] = [];
  private scheduled = false;
  private attrs = new Map<string, { stat: Stat; at: number }>();
  private created = false;
  private open_ = new Set<RemoteHandle>();

  constructor(url: string, o: RemoteOptions = {}) {
    const u = new URL(url);
    if (!/^\/w\/[A-Za-z0-9][A-Za-z0-9._-]{0,62}\/?$/.test(u.pathname)) {
      throw new FsError("EINVAL", `a remote workspace URL looks like http://HOST/w/NAME (got ${url})`);
    }
    this.url = u.origin + u.pathname.replace(/\/$/, "");
    if (!o.signer && !o.token && !o.transport) throw new FsError("EACCES", "a remote mount needs a key (NIP-98) or a capability token");
    this.signer = o.signer ?? tokenSigner(o.token ?? "");
    this.transport = o.transport;
    this.opts = {
      readOnly: o.readOnly ?? false, create: o.create ?? !o.token, readAhead: o.readAhead ?? 1 << 20,
      writeBehind: o.writeBehind ?? 8 << 20, attrCacheMs: o.attrCacheMs ?? 1000, coalesce: o.coalesce ?? true,
      retryMs: o.retryMs ?? 30_000, sessions: o.sessions ?? true,
    };
    this.isKey = !!o.signer;
    this.fetchFn = o.fetch ?? ((...a) => fetch(...a));
  }

  // ------------------------------------------------------------------ transport

  /**
   * One HTTP request, retried while the edge is unreachable. With a key, the first request opens
   * a session (one NIP-98 signed POST /session) and later ones carry its bearer token, so a
   * client signs once per workspace and session, not per request; `sign` forces NIP-98.
   */
  async request(method: string, path: string, body?: Uint8Array, headers: Record<string, string> = {}, sign = false): Promise<Response> {
    const useSession = !sign && this.opts.sessions && this.isKey;
    for (let again = 0; ; again++) {
      const token = useSession ? await this.sessionToken() : undefined;
      const res = await this.send(method, path, body, headers, token);
      if (res.status === 401 && token && again === 0) {
        // The session expired (or the edge lost it): open a new one and try once more.
        this.session = undefined;
        await res.body?.cancel();
        continue;
      }
      return res;
    }
  }

  private async send(method: string, path: string, body: Uint8Array | undefined, headers: Record<string, string>, token?: string): Promise<Response> {
    const url = this.url + path;
    const deadline = Date.now() + this.opts.retryMs;
    for (let attempt = 0; ; attempt++) {
      let res: Response | undefined;
      try {
        const auth = token ? `Bearer ${token}` : (await this.signer).authorize(url, method, body);
        this.requests++;
        res = await this.fetchFn(url, {
          method, headers: { ...headers, authorization: auth },
          ...(body ? { body: body as Uint8Array<ArrayBuffer> } : {}),
        });
      } catch (e) {
        if (Date.now() > deadline) throw new FsError("ECONNREFUSED", `${url}: ${(e as Error).message}`);
      }
      if (res && res.status !== 502 && res.status !== 503) return res;
      if (res && Date.now() > deadline) return res;
      await res?.body?.cancel();
      await sleep(Math.min(2000, 50 * 2 ** attempt));
    }
  }

  private session: Promise<{ token: string; expires: number }> | undefined;

  /** The current session token, opening a session (and the workspace, if allowed) when needed. */
  private async sessionToken(): Promise<string> {
    const cur = this.session && (await this.session.catch(() => undefined));
    if (cur && cur.expires - Date.now() > 30_000) return cur.token;
    this.session = (async () => {
      const body = new TextEncoder().encode("{}");
      let res = await this.send("POST", "/session", body, { "content-type": "application/json" });
      if (res.status === 404 && this.opts.create && !this.created) {
        const e = await this.errorOf(res);
        if (!/no such workspace/.test(e.message)) throw e;
        await this.createWorkspace();
        res = await this.send("POST", "/session", body, { "content-type": "application/json" });
      }
      if (res.status !== 201) throw await this.errorOf(res);
      return (await res.json()) as { token: string; expires: number };
    })();
    return (await this.session).token;
  }

  private async errorOf(res: Response): Promise<FsError> {
    let body: unknown;
    try {
      body = await res.json();
    } catch {
      body = undefined;
    }
    return fromWireError((body as { error?: unknown } | undefined)?.error, res.status);
  }

  /** Sends ops as one batch (atomic: all or nothing). Results carry their data bytes. */
  async batch(ops: WireOp[], parts: Uint8Array[] = [], atomic = false): Promise<Array<WireResult & { bytes?: Uint8Array }>> {
    for (const [i, o] of ops.entries()) {
      const why = checkOp(o, parts.length);
      if (why) throw new FsError("EINVAL", `op ${i}: ${why}`);
    }
    if (this.transport) {
      this.requests++;
      const t = await this.transport(ops, parts, atomic);
      return t.results.map((r) => (r.ok && typeof r.data === "number" ? { ...r, bytes: t.parts[r.data] ?? new Uint8Array(0) } : r));
    }
    const body = encodeFrame({ ops, atomic }, parts);
    let res = await this.request("POST", "/batch", body, { "content-type": FRAME_TYPE });
    if (res.status === 404 && this.opts.create && !this.created) {
      const e = await this.errorOf(res);
      if (!/no such workspace/.test(e.message)) throw e;
      await this.createWorkspace();
      res = await this.request("POST", "/batch", body, { "content-type": FRAME_TYPE });
    }
    if (!res.ok || res.headers.get("content-type") !== FRAME_TYPE) throw await this.errorOf(res);
    const f = decodeFrame(new Uint8Array(await res.arrayBuffer()));
    const results = (f.header as { results?: WireResult[] }).results;
    if (!Array.isArray(results) || results.length !== ops.length) throw new FsError("EIO", "edge answered a different number of results");
    return results.map((r) => (r.ok && typeof r.data === "number" ? { ...r, bytes: f.parts[r.data] ?? new Uint8Array(0) } : r));
  }

  /** Creates the workspace (the signing key owns it). */
  async createWorkspace(): Promise<void> {
    const body = new TextEncoder().encode("{}");
    const res = await this.send("POST", "", body, { "content-type": "application/json" });
    if (res.status !== 200 && res.status !== 201) throw await this.errorOf(res);
    this.created = true;
  }

  /** Queues one op; ops queued in the same microtask travel in one request. */
  private call(op: WireOp, part?: Uint8Array): Promise<WireResult & { bytes?: Uint8Array }> {
    return new Promise((resolve, reject) => {
      this.queue.push({ op, ...(part ? { part } : {}), resolve, reject });
      if (!this.opts.coalesce) return void this.drain();
      if (!this.scheduled) {
        this.scheduled = true;
        queueMicrotask(() => {
          this.scheduled = false;
          void this.drain();
        });
      }
    });
  }

  private async drain(): Promise<void> {
    const q = this.queue.splice(0);
    if (!q.length) return;
    const parts: Uint8Array[] = [];
    const ops = q.map((p) => (p.part ? (parts.push(p.part), { ...p.op, data: parts.length - 1 } as WireOp) : p.op));
    try {
      const rs = await this.batch(ops, parts);
      q.forEach((p, i) => p.resolve(rs[i]!));
    } catch (e) {
      for (const p of q) p.reject(e);
    }
  }

  private async one(op: WireOp, part?: Uint8Array): Promise<WireResult & { ok: true; bytes?: Uint8Array }> {
    const r = await this.call(op, part);
    if (!r.ok) throw fromWireError(r.error, 500);
    return r;
  }

  private writable(): void {
    if (this.opts.readOnly) throw new FsError("EROFS", "remote mount is read-only");
  }

  // ------------------------------------------------------------------ attribute cache

  private remember(path: string, s: WireStat): Stat {
    const st = statFromWire(s);
    if (this.opts.attrCacheMs > 0) this.attrs.set(path, { stat: st, at: Date.now() });
    return st;
  }
  /**
   * Forgets what is cached about a path and everything below it. Its parent directory's cached
   * stat is kept (only its times and size moved): attribute caching, as NFS does, for attrCacheMs.
   */
  forget(path: string): void {
    const p = norm(path);
    for (const k of this.attrs.keys()) if (k === p || k.startsWith(p + "/")) this.attrs.delete(k);
  }

  // ------------------------------------------------------------------ FileService

  async open(path: string, flags: OpenFlags): Promise<FileHandle> {
    const p = norm(path);
    const writes = !!(flags.write || flags.truncate || flags.append || flags.create);
    if (writes) this.writable();
    if (!writes) {
      // Opening a directory to list it needs nothing from the edge when its stat is fresh.
      const hit = this.attrs.get(p);
      if (hit && hit.stat.type === "dir" && Date.now() - hit.at < this.opts.attrCacheMs) {
        const h = new RemoteHandle(this, p, flags, hit.stat, undefined, true);
        this.open_.add(h);
        return h;
      }
    }
    const ra = flags.directory ? 0 : this.opts.readAhead;
    const r = await this.one({ op: "open", path: p, flags, ...(ra ? { readahead: ra } : {}) });
    if (writes) this.forget(p);
    const stat = this.remember(p, r.stat!);
    const h = new RemoteHandle(this, p, flags, stat, r.bytes, r.eof ?? false);
    this.open_.add(h);
    return h;
  }

  async stat(path: string): Promise<Stat> {
    const p = norm(path);
    const hit = this.attrs.get(p);
    if (hit && Date.now() - hit.at < this.opts.attrCacheMs) return hit.stat;
    const r = await this.one({ op: "stat", path: p });
    return this.remember(p, r.stat!);
  }

  async readdir(path: string): Promise<DirEntry[]> {
    const p = norm(path);
    const r = await this.one({ op: "readdir", path: p });
    return (r.entries ?? []).map((e) => {
      if (e.stat) this.remember(p ? `${p}/${e.name}` : e.name, e.stat);
      return { name: e.name, type: e.type, ...(e.ino !== undefined ? { ino: e.ino } : {}) };
    });
  }

  async mkdir(path: string): Promise<void> {
    this.writable();
    const p = norm(path);
    this.forget(p);
    await this.one({ op: "mkdir", path: p });
  }

  async remove(path: string): Promise<void> {
    this.writable();
    const p = norm(path);
    this.forget(p);
    await this.one({ op: "remove", path: p });
  }

  async rename(from: string, to: string): Promise<void> {
    this.writable();
    const f = norm(from), t = norm(to);
    this.forget(f);
    this.forget(t);
    await this.one({ op: "rename", from: f, to: t });
  }

  async setTimes(path: string, atimeNs: bigint | undefined, mtimeNs: bigint | undefined): Promise<void> {
    this.writable();
    const p = norm(path);
    this.forget(p);
    await this.one({ op: "setTimes", path: p, ...(atimeNs !== undefined ? { atime: atimeNs.toString() } : {}), ...(mtimeNs !== undefined ? { mtime: mtimeNs.toString() } : {}) });
  }

  /** Flushes every open handle's pending writes (call before a process exits). */
  async flush(): Promise<void> {
    await Promise.all([...this.open_].map((h) => h.sync()));
  }

  /** @internal */ _closed(h: RemoteHandle): void {
    this.open_.delete(h);
  }
  /** @internal */ _one(op: WireOp, part?: Uint8Array) {
    return this.one(op, part);
  }
  /** @internal */ _batch(ops: WireOp[], parts: Uint8Array[], atomic: boolean) {
    return this.batch(ops, parts, atomic);
  }
  /** @internal */ get _opts() {
    return this.opts;
  }
  /** @internal */ _remember(path: string, s: WireStat) {
    return this.remember(path, s);
  }
}

/** Files up to this size are mirrored whole in an open handle. */
const FULL_CACHE_MAX = 64 << 20;

const norm = (p: string): string => p.split("/").filter((s) => s && s !== ".").join("/");

type PendingOp = { kind: "write"; offset: number; chunks: Uint8Array[]; len: number; append: boolean } | { kind: "truncate"; size: number };

class RemoteHandle implements FileHandle {
  position = 0;
  private svc: RemoteService;
  private path: string;
  private flags: OpenFlags;
  private stat_: Stat;
  /** Cached bytes [winOff, winOff + win.length); `full` when the window is the whole file. */
  private win: Uint8Array;
  private winLen: number;
  private winOff = 0;
  private full: boolean;
  private size: number;
  private pending: PendingOp[] = [];
  private pendingBytes = 0;
  private closed = false;
  private flushing: Promise<void> | undefined;

  constructor(svc: RemoteService, path: string, flags: OpenFlags, stat: Stat, data: Uint8Array | undefined, eof: boolean) {
    this.svc = svc;
    this.path = path;
    this.flags = flags;
    this.stat_ = stat;
    this.size = stat.size;
    this.win = data ? data.slice() : new Uint8Array(0);
    this.winLen = this.win.length;
    this.full = stat.type === "file" && (eof || stat.size === 0) && this.winLen === stat.size;
  }

  private live(): void {
    if (this.closed) throw new FsError("EBADF", "handle is closed");
  }

  async read(length: number, offset?: number): Promise<Uint8Array> {
    this.live();
    if (this.flags.write && !this.flags.read && this.flags.read !== undefined) throw new FsError("EBADF", "handle is not open for reading");
    if (this.stat_.type === "dir") throw new FsError("EISDIR", this.path);
    const at = offset ?? this.position;
    const end = Math.min(this.size, at + length);
    let out: Uint8Array;
    if (at >= end) out = new Uint8Array(0);
    else if (this.full || (at >= this.winOff && end <= this.winOff + this.winLen)) {
      out = this.win.slice(at - this.winOff, end - this.winOff);
    } else {
      // A miss: pending writes go first so the edge's answer includes them.
      await this.sync();
      const want = Math.min(MAX_READ, Math.max(end - at, this.svc._opts.readAhead));
      const r = await this.svc._one({ op: "read", path: this.path, offset: at, length: want });
      this.win = r.bytes ?? new Uint8Array(0);
      this.winLen = this.win.length;
      this.winOff = at;
      if (r.eof) this.size = at + this.winLen;
      out = this.win.slice(0, Math.max(0, Math.min(end, this.size) - at));
    }
    if (offset === undefined) this.position = at + out.length;
    return out;
  }

  async write(data: Uint8Array, offset?: number): Promise<number> {
    this.live();
    if (!(this.flags.write || this.flags.append)) throw new FsError("EBADF", "handle is not open for writing");
    const at = this.flags.append ? this.size : offset ?? this.position;
    const bytes = data.slice();
    const last = this.pending[this.pending.length - 1];
    if (last?.kind === "write" && !last.append && !this.flags.append && last.offset + last.len === at && last.len + bytes.length <= INLINE_MAX * 64) {
      last.chunks.push(bytes);
      last.len += bytes.length;
    } else this.pending.push({ kind: "write", offset: at, chunks: [bytes], len: bytes.length, append: !!this.flags.append });
    this.pendingBytes += bytes.length;
    this.applyLocal(at, bytes);
    if (offset === undefined || this.flags.append) this.position = at + bytes.length;
    if (this.pendingBytes >= this.svc._opts.writeBehind) await this.sync();
    return bytes.length;
  }

  /** Keeps the cached window equal to what the edge will hold once pending ops are applied. */
  private applyLocal(at: number, bytes: Uint8Array): void {
    const end = at + bytes.length;
    if (this.full && end > FULL_CACHE_MAX) {
      // Too big to mirror: keep nothing cached; reads after this go to the edge (after a sync).
      this.full = false;
      this.win = new Uint8Array(0);
      this.winLen = 0;
      this.winOff = 0;
    }
    if (this.full) {
      if (end > this.win.length) {
        const grown = new Uint8Array(Math.max(end, this.win.length * 2, 4096));
        grown.set(this.win.subarray(0, this.winLen));
        this.win = grown;
      }
      this.win.set(bytes, at);
      this.winLen = Math.max(this.winLen, end);
    } else if (at < this.winOff + this.winLen && end > this.winOff) {
      const a = Math.max(at, this.winOff), b = Math.min(end, this.winOff + this.winLen);
      this.win.set(bytes.subarray(a - at, b - at), a - this.winOff);
    }
    this.size = Math.max(this.size, end);
  }

  async truncate(size: number): Promise<void> {
    this.live();
    if (!(this.flags.write || this.flags.append)) throw new FsError("EBADF", "handle is not open for writing");
    this.pending.push({ kind: "truncate", size });
    if (this.full) {
      if (size > this.win.length) {
        const w = new Uint8Array(size);
        w.set(this.win.subarray(0, this.winLen));
        this.win = w;
      } else this.win.fill(0, Math.min(size, this.winLen), this.winLen);
      this.winLen = size;
    } else if (size < this.winOff + this.winLen) {
      this.winLen = Math.max(0, size - this.winOff);
    }
    this.size = size;
  }

  /** The handle's view (close-to-open): the stat from open, with this handle's own changes. */
  async stat(): Promise<Stat> {
    this.live();
    return { ...this.stat_, size: this.size };
  }

  /** Sends pending writes as one atomic batch; resolves once the edge acknowledged them. */
  async sync(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (!this.pending.length) return;
    const ops = this.pending.splice(0);
    this.pendingBytes = 0;
    this.flushing = (async () => {
      const wire: WireOp[] = [];
      const parts: Uint8Array[] = [];
      for (const p of ops) {
        if (p.kind === "truncate") wire.push({ op: "truncate", path: this.path, size: p.size });
        else {
          const body = p.chunks.length === 1 ? p.chunks[0]! : concat(p.chunks, p.len);
          parts.push(body);
          wire.push({ op: "write", path: this.path, offset: p.offset, data: parts.length - 1, ...(p.append ? { append: true } : {}) });
        }
      }
      try {
        const rs = await this.svc._batch(wire, parts, true);
        const bad = rs.find((r) => !r.ok && r.error.code !== "ECANCELED") ?? rs.find((r) => !r.ok);
        if (bad && !bad.ok) throw fromWireError(bad.error, 500);
        this.svc.forget(this.path);
        const lastStat = [...rs].reverse().find((r) => r.ok && r.stat);
        if (lastStat?.ok && lastStat.stat) this.stat_ = this.svc._remember(this.path, lastStat.stat);
      } catch (e) {
        // Not acknowledged: keep the ops so a later sync/close can try again.
        this.pending.unshift(...ops);
        this.pendingBytes += ops.reduce((n, p) => n + (p.kind === "write" ? p.len : 0), 0);
        throw e;
      }
    })();
    try {
      await this.flushing;
    } finally {
      this.flushing = undefined;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.sync();
    this.closed = true;
    this.svc._closed(this);
  }

  async setTimes(atimeNs: bigint | undefined, mtimeNs: bigint | undefined): Promise<void> {
    await this.sync();
    await this.svc.setTimes(this.path, atimeNs, mtimeNs);
  }
}

function concat(chunks: Uint8Array[], len: number): Uint8Array {
  const out = new Uint8Array(len);
  let at = 0;
  for (const c of chunks) out.set(c, at), (at += c.length);
  return out;
}

/**
 * The CLI's `http://…/w/NAME` mount source (synchronous, like the other sources). Without a signer
 * it uses `OANIX_TOKEN` (a capability token) when set, else the CLI key (services/key.ts: OANIX_KEY
 * or ~/.config/oanix/key, created on first use), loaded on the first request. In the browser pass
 * a signer or a token.
 */
export function remoteSource(url: string, opts: RemoteOptions = {}): RemoteService {
  if (!opts.signer && !opts.token) {
    const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env ?? {};
    if (env.OANIX_TOKEN) opts = { ...opts, token: env.OANIX_TOKEN };
    else {
      // Not a literal specifier: bundlers for the browser and the Worker leave this Node-only
      // module out; in Node it resolves next to this file.
      const keyModule = "./key.ts";
      opts = { ...opts, signer: import(keyModule).then((m: { loadKey(): Signer }) => m.loadKey()) };
    }
  }
  return new RemoteService(url, opts);
}
