// A FileService over an edge workspace (`http(s)://HOST/w/NAME`), for Node and the browser:
// fetch only. An agent touching N files costs about N requests, not one per syscall:
// - open is one request that also answers the first `readAhead` bytes (the whole file, usually);
//   reads are served from that window, and a read past it fetches the next window.
// - writes are kept in the open file (write-behind) and sent on close/sync, or when `writeBehind`
//   bytes are pending, folded and cut into atomic batches within the edge's limits
//   (services/remote-flush.ts); a create with O_TRUNC waits for that flush, so open-write-close
//   is one request.
// - handles on one path share one open file (services/remote-file.ts): they see each other's
//   writes at once; a file removed or replaced while open lives on under a hidden name.
// - calls made while a request is being assembled share it (one batch per microtask).
// Consistency is close-to-open (as NFS): open always asks the edge, close returns only once the
// edge has acknowledged every write, and a close that cannot flush rejects — nothing is dropped.
// Transient failures (connection refused while the local edge restarts, 502/503) are retried with
// the same request id, which the edge uses to answer a batch it already ran without running it
// again. A read-only mount sends nothing that writes or creates, its workspace included.
import { FsError } from "../runtime/errors.ts";
import { normalize as norm, parent as parentOf } from "../runtime/path.ts";
import type { DirEntry, FileHandle, FileService, OpenFlags, Stat } from "../runtime/types.ts";
import {
  FRAME_TYPE, MAX_ANSWER_BYTES, MAX_BATCH_OPS, checkOp, decodeFrame, encodeFrame, fromWireError, statFromWire,
  type BatchRequest, type WireOp, type WireResult, type WireStat,
} from "./remote-wire.ts";
import { RemoteFile, RemoteHandle, type FileHost } from "./remote-file.ts";
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

type Pending = { op: WireOp; resolve: (r: WireResult & { bytes?: Uint8Array }) => void; reject: (e: unknown) => void };

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
  /** Open files by their current path (a file removed while open is under a hidden name). */
  private files = new Map<string, RemoteFile>();
  /** Directories seen lately (made, listed, stat'ed), for creates that may wait. */
  private dirs = new Map<string, number>();
  /** The edge accepted a write from this client (so its key may write). */
  private wrote = false;

  constructor(url: string, o: RemoteOptions = {}) {
    const u = new URL(url);
    if (!/^\/w\/[A-Za-z0-9][A-Za-z0-9._-]{0,62}\/?$/.test(u.pathname)) {
      throw new FsError("EINVAL", `a remote workspace URL looks like http://HOST/w/NAME (got ${url})`);
    }
    this.url = u.origin + u.pathname.replace(/\/$/, "");
    if (!o.signer && !o.token && !o.transport) throw new FsError("EACCES", "a remote mount needs a key (NIP-98) or a capability token");
    this.signer = o.signer ?? tokenSigner(o.token ?? "");
    this.transport = o.transport;
    // A read-only mount sends nothing that creates, its workspace included.
    this.opts = {
      readOnly: o.readOnly ?? false, create: !o.readOnly && (o.create ?? !o.token), readAhead: o.readAhead ?? 1 << 20,
      writeBehind: o.writeBehind ?? 8 << 20, attrCacheMs: o.attrCacheMs ?? 1000, coalesce: o.coalesce ?? true,
      retryMs: o.retryMs ?? 30_000, sessions: o.sessions ?? true,
    };
    this.isKey = !!o.signer;
    this.fetchFn = o.fetch ?? ((...a) => fetch(...a));
    this.host = { ...this.host, readAhead: this.opts.readAhead, writeBehind: this.opts.writeBehind };
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

  /** One NIP-98 header; a signer that fails (a NIP-07 extension the user said no to) is EACCES, not retried. */
  private async sign(url: string, method: string, body: Uint8Array | undefined): Promise<string> {
    try {
      return await (await this.signer).authorize(url, method, body);
    } catch (e) {
      throw new FsError("EACCES", `${url}: the request could not be signed: ${(e as Error)?.message ?? String(e)}`);
    }
  }

  private async send(method: string, path: string, body: Uint8Array | undefined, headers: Record<string, string>, token?: string): Promise<Response> {
    const url = this.url + path;
    const deadline = Date.now() + this.opts.retryMs;
    const auth = token ? `Bearer ${token}` : await this.sign(url, method, body);
    for (let attempt = 0; ; attempt++) {
      let res: Response | undefined;
      try {
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
      if (res.status === 404 && !this.created) {
        const e = await this.errorOf(res);
        if (!isNoWorkspace(e)) throw e;
        if (!this.opts.create) throw this.noWorkspace();
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
    // One id per batch, kept across every resend of it: the edge answers a batch it already ran
    // (whose answer was lost) from memory instead of running it twice.
    const body = encodeFrame({ ops, atomic, rid: newRid() } satisfies BatchRequest, parts);
    let res = await this.request("POST", "/batch", body, { "content-type": FRAME_TYPE });
    if (res.status === 404 && !this.created) {
      const e = await this.errorOf(res);
      if (!isNoWorkspace(e)) throw e;
      if (!this.opts.create) throw this.noWorkspace();
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
    if (this.opts.readOnly) throw new FsError("EROFS", "a read-only mount does not create its workspace");
    const body = new TextEncoder().encode("{}");
    const res = await this.send("POST", "", body, { "content-type": "application/json" });
    if (res.status !== 200 && res.status !== 201) throw await this.errorOf(res);
    this.created = true;
  }

  private noWorkspace(): FsError {
    return new FsError("ENOENT", `workspace ${this.url} does not exist${this.opts.readOnly ? " (a read-only mount does not create it)" : ""}`);
  }

  /** Queues one op; ops queued in the same microtask travel in one request. */
  private call(op: WireOp): Promise<WireResult & { bytes?: Uint8Array }> {
    return new Promise((resolve, reject) => {
      this.queue.push({ op, resolve, reject });
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
    // Many calls at once (a Promise.all over thousands of stats, reads of many windows) go as
    // several batches, each within the edge's op count and answer size.
    const send = (chunk: Pending[]) => void this.batch(chunk.map((p) => p.op)).then(
      (rs) => chunk.forEach((p, j) => p.resolve(rs[j]!)),
      (e) => chunk.forEach((p) => p.reject(e)),
    );
    let chunk: Pending[] = [], answer = 0;
    for (const p of q) {
      const bytes = p.op.op === "read" ? p.op.length : p.op.op === "open" ? (p.op.readahead ?? 0) : 0;
      if (chunk.length && (chunk.length >= MAX_BATCH_OPS || (p.op.op === "read" && answer + bytes > MAX_ANSWER_BYTES))) {
        send(chunk);
        chunk = [];
        answer = 0;
      }
      chunk.push(p);
      answer += bytes;
    }
    if (chunk.length) send(chunk);
  }

  private async one(op: WireOp): Promise<WireResult & { ok: true; bytes?: Uint8Array }> {
    const r = await this.call(op);
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
    if (st.type === "dir") this.sawDir(path);
    if (path !== "") this.sawDir(parentOf(path)); // it has a parent, as of now
    return st;
  }
  /**
   * Forgets what is cached about a path and everything below it. Its parent directory's cached
   * stat is kept (only its times and size moved): attribute caching, as NFS does, for attrCacheMs.
   */
  forget(path: string): void {
    const p = norm(path);
    for (const k of this.attrs.keys()) if (k === p || k.startsWith(p + "/")) this.attrs.delete(k);
    for (const k of this.dirs.keys()) if (k === p || k.startsWith(p + "/")) this.dirs.delete(k);
  }
  private sawDir(path: string): void {
    if (this.opts.attrCacheMs > 0) this.dirs.set(path, Date.now());
  }
  /** A directory this client saw (listed, made, opened) within attrCacheMs. */
  private knownDir(path: string): boolean {
    if (path === "") return true;
    const t = this.dirs.get(path);
    return t !== undefined && Date.now() - t < this.opts.attrCacheMs;
  }

  /**
   * Whether a create may wait for the first sync (open-write-close is then one request): a plain
   * O_CREAT|O_TRUNC in a directory seen lately, by a client whose writes the edge has accepted.
   * Its errors then come from that sync (as NFS reports write-behind errors at close).
   */
  private mayDefer(p: string, flags: OpenFlags): boolean {
    if (!flags.create || !flags.truncate || flags.exclusive || flags.directory || !this.wrote) return false;
    if (this.opts.writeBehind <= 0 || !this.opts.coalesce) return false;
    const hit = this.attrs.get(p);
    if (hit && hit.stat.type !== "file") return false;
    return this.knownDir(parentOf(p));
  }

  // ------------------------------------------------------------------ open files

  private host: FileHost = {
    readAhead: 0, writeBehind: 0, // set in the constructor
    one: (op) => this.one(op),
    batch: (ops, parts, atomic) => this.batch(ops, parts, atomic),
    remember: (path, s) => this.remember(path, s),
    forget: (path) => this.forget(path),
    release: (f) => this.release(f),
  };

  /** The last handle on a file closed: an unlinked file goes now (its unsent bytes with it). */
  private async release(f: RemoteFile): Promise<void> {
    if (this.files.get(f.path) === f) this.files.delete(f.path);
    if (!f.unlinked) return;
    f.discard();
    try {
      await this.one({ op: "remove", path: f.path });
    } catch (e) {
      if (!(e instanceof FsError && e.code === "ENOENT")) throw e;
    }
  }

  /** Moves an open file out of the way (remove or rename over it while open): NFS's silly rename. */
  private hiddenName(p: string): string {
    const dir = parentOf(p);
    return (dir ? dir + "/" : "") + HIDDEN_PREFIX + newRid().slice(0, 16);
  }

  private hide(f: RemoteFile, hidden: string): void {
    this.files.delete(f.path);
    this.forget(f.path);
    f.path = hidden;
    f.unlinked = true;
    this.files.set(hidden, f);
  }

  /** Open files at `p` or below it, and not unlinked. */
  private openUnder(p: string): RemoteFile[] {
    return [...this.files.values()].filter((f) => !f.unlinked && (f.path === p || f.path.startsWith(p + "/")));
  }

  // ------------------------------------------------------------------ FileService

  async open(path: string, flags: OpenFlags): Promise<FileHandle> {
    const p = norm(path);
    const writes = !!(flags.write || flags.truncate || flags.append || flags.create);
    if (writes) this.writable();
    const open = this.files.get(p);
    if (!writes && !open) {
      // Opening a directory to list it needs nothing from the edge when its stat is fresh.
      const hit = this.attrs.get(p);
      if (hit && hit.stat.type === "dir" && Date.now() - hit.at < this.opts.attrCacheMs) {
        return new RemoteHandle(this.host, new RemoteFile(this.host, p, hit.stat, undefined, true), flags);
      }
    }
    // Earlier handles' writes land before this open asks the edge, so it sees them.
    if (open) await open.sync(true);
    else if (this.mayDefer(p, flags)) {
      const t = BigInt(Date.now()) * 1_000_000n;
      const stat: Stat = { type: "file", size: 0, ino: 0, nlink: 1, atimeNs: t, mtimeNs: t, ctimeNs: t };
      const f = new RemoteFile(this.host, p, stat, undefined, true, { write: true, create: true, truncate: true });
      this.forget(p);
      this.files.set(p, f);
      return new RemoteHandle(this.host, f, flags);
    }
    const ra = flags.directory ? 0 : this.opts.readAhead;
    const r = await this.one({ op: "open", path: p, flags, ...(ra ? { readahead: ra } : {}) });
    if (writes) {
      this.forget(p);
      this.wrote = true;
    }
    const stat = this.remember(p, r.stat!);
    const cur = this.files.get(p);
    if (cur) {
      cur.refresh(stat, r.bytes, r.eof ?? false);
      return new RemoteHandle(this.host, cur, flags);
    }
    const f = new RemoteFile(this.host, p, stat, r.bytes, r.eof ?? false);
    if (stat.type === "file") this.files.set(p, f);
    return new RemoteHandle(this.host, f, flags);
  }

  async stat(path: string): Promise<Stat> {
    const p = norm(path);
    const open = this.files.get(p);
    if (open?.dirty) await open.sync(true);
    const hit = this.attrs.get(p);
    if (hit && Date.now() - hit.at < this.opts.attrCacheMs) return open ? { ...hit.stat, size: open.size } : hit.stat;
    const r = await this.one({ op: "stat", path: p });
    return this.remember(p, r.stat!);
  }

  async readdir(path: string): Promise<DirEntry[]> {
    const p = norm(path);
    // Files created or grown here show in the listing with their sizes.
    await Promise.all([...this.files.values()].filter((f) => f.dirty && !f.unlinked && parentOf(f.path) === p).map((f) => f.sync(true)));
    const r = await this.one({ op: "readdir", path: p });
    this.sawDir(p);
    return (r.entries ?? []).filter((e) => !e.name.startsWith(HIDDEN_PREFIX)).map((e) => {
      if (e.stat) this.remember(p ? `${p}/${e.name}` : e.name, e.stat);
      return { name: e.name, type: e.type, ...(e.ino !== undefined ? { ino: e.ino } : {}) };
    });
  }

  async mkdir(path: string): Promise<void> {
    this.writable();
    const p = norm(path);
    this.forget(p);
    await this.one({ op: "mkdir", path: p });
    this.wrote = true;
    this.sawDir(p);
  }

  /** Removes a path; a file open here is renamed to a hidden name instead and removed at its last close. */
  async remove(path: string): Promise<void> {
    this.writable();
    const p = norm(path);
    const open = this.files.get(p);
    this.forget(p);
    if (!open) return void (await this.one({ op: "remove", path: p }));
    await open.sync(true);
    const hidden = this.hiddenName(p);
    await this.one({ op: "rename", from: p, to: hidden });
    this.hide(open, hidden);
  }

  async rename(from: string, to: string): Promise<void> {
    this.writable();
    const f = norm(from), t = norm(to);
    const moving = this.openUnder(f);
    await Promise.all(moving.map((m) => m.sync(true)));
    const over = this.files.get(t);
    this.forget(f);
    this.forget(t);
    if (over && !moving.includes(over) && f !== t) {
      // A file open here is replaced: it lives on under a hidden name (both renames or neither).
      await over.sync(true);
      const hidden = this.hiddenName(t);
      const rs = await this.batch([{ op: "rename", from: t, to: hidden }, { op: "rename", from: f, to: t }], [], true);
      const bad = rs.find((r) => !r.ok && r.error.code !== "ECANCELED") ?? rs.find((r) => !r.ok);
      if (bad && !bad.ok) throw fromWireError(bad.error, 500);
      this.hide(over, hidden);
    } else await this.one({ op: "rename", from: f, to: t });
    for (const m of moving) {
      this.files.delete(m.path);
      m.path = t + m.path.slice(f.length);
      this.files.set(m.path, m);
    }
  }

  async setTimes(path: string, atimeNs: bigint | undefined, mtimeNs: bigint | undefined): Promise<void> {
    this.writable();
    const p = norm(path);
    const open = this.files.get(p);
    if (open?.dirty) await open.sync(true);
    this.forget(p);
    const r = await this.one({ op: "setTimes", path: p, ...(atimeNs !== undefined ? { atime: atimeNs.toString() } : {}), ...(mtimeNs !== undefined ? { mtime: mtimeNs.toString() } : {}) });
    if (open && r.stat) open.adopt(r.stat);
  }

  /** Flushes every open file's pending writes (call before a process exits). */
  async flush(): Promise<void> {
    await Promise.all([...this.files.values()].map((f) => f.sync()));
  }
}

/** Where a file removed while open lives until its last close; readdir does not list these. */
export const HIDDEN_PREFIX = ".oanix-unlinked-";

/** A random request id (Web Crypto exists in Node, browsers and workerd; typed here for every tsconfig). */
const newRid = (): string => (globalThis as unknown as { crypto: { randomUUID(): string } }).crypto.randomUUID();
const isNoWorkspace = (e: FsError): boolean => e.code === "ENOENT" && /no such workspace/.test(e.message);

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
