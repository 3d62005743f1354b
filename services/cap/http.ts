// /cap/http: outbound HTTP(S) as files.
//   fetch       request/reply: {"url","method"?,"headers"?,"body"?|"bodyBase64"?} →
//               {"status","statusText","url","headers","body"|"bodyBase64"}; a 4xx/5xx is a reply.
//   clone → N/  (http-clone.ts) ctl (the request JSON, no body), body (write: request body stream; read: response
//               body stream), status (status and headers JSON, waits for them).
// Limits: the host grant (redirects are followed by hand, each hop checked, at most 10), a time
// limit per request (30 s), the reply size of `fetch` (16 MiB; clone streams have none), the
// budget (`calls` per request, `bytes` for bodies both ways). Errors: EACCES (grant), EINVAL
// (request), ECONNREFUSED (refused or unreachable), ECONNRESET (cut mid-body), ETIMEDOUT, EFBIG, EDQUOT.
import { FsError, fsError } from "../../runtime/errors.ts";
import type { Budget } from "../../runtime/namespace.ts";
import { cloneDir } from "./clone.ts";
import { httpConn } from "./http-clone.ts";
import { report, type CapContext } from "./events.ts";
import { checkUrl, type HostGrant } from "./hosts.ts";
import { MiB, fromBase64, isRecord, jsonReply, parseJson, reqReplyFile, toBase64 } from "./reqreply.ts";
import { noSecrets, type Secrets } from "./secrets.ts";
import { CapFs } from "./tree.ts";

export interface HttpCapOptions {
  grant: HostGrant;
  secrets?: Secrets;
  /** Per request, headers and body (30 s by default). */
  timeoutMs?: number;
  /** Largest `fetch` reply body (16 MiB by default). */
  maxReply?: number;
  /** Largest `fetch` request (16 MiB by default). */
  maxRequest?: number;
  budget?: Budget;
  /** The fetch to use (global fetch by default; the edge may pass its own). */
  fetch?: typeof fetch;
  ctx: CapContext;
}

export interface HttpRequest {
  url: string;
  method: string;
  headers: Record<string, string>;
  body?: Uint8Array;
}

const FORBIDDEN_HEADERS = new Set(["host", "content-length", "transfer-encoding", "connection", "upgrade", "keep-alive", "te", "trailer"]);
const CROSS_ORIGIN_DROP = new Set(["authorization", "cookie", "proxy-authorization"]);
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/** A response, with its time limit still running until `settled` (the body counts too). */
export interface Sent {
  res: Response;
  url: URL;
  timedOut(): boolean;
  /** The head arrived: the time limit stops. */
  settled(): void;
  /** The body was read: the caller's signal is let go too. */
  finished(): void;
}

/** Validates a request object (for `fetch` with a body, for N/ctl without). */
export function parseRequest(v: unknown, allowBody: boolean): HttpRequest {
  if (!isRecord(v)) throw fsError("EINVAL", 'the request is a JSON object {"url", "method"?, "headers"?, "body"?}');
  if (typeof v.url !== "string") throw fsError("EINVAL", '"url" must be a string');
  const method = v.method === undefined ? "GET" : v.method;
  if (typeof method !== "string" || !/^[A-Za-z]+$/.test(method)) throw fsError("EINVAL", '"method" must be an HTTP method name');
  const headers: Record<string, string> = {};
  if (v.headers !== undefined) {
    if (!isRecord(v.headers)) throw fsError("EINVAL", '"headers" must be an object of strings');
    for (const [k, val] of Object.entries(v.headers)) {
      if (typeof val !== "string") throw fsError("EINVAL", `header ${k}: the value must be a string`);
      const name = k.toLowerCase();
      if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) throw fsError("EINVAL", `header "${k}": not a header name`);
      if (FORBIDDEN_HEADERS.has(name)) throw fsError("EINVAL", `header ${name} is set by the host`);
      headers[name] = val;
    }
  }
  let body: Uint8Array | undefined;
  if (v.body !== undefined || v.bodyBase64 !== undefined) {
    if (!allowBody) throw fsError("EINVAL", "N/ctl takes no body: write it to N/body");
    if (v.body !== undefined && v.bodyBase64 !== undefined) throw fsError("EINVAL", 'give "body" or "bodyBase64", not both');
    if (v.body !== undefined) {
      if (typeof v.body !== "string") throw fsError("EINVAL", '"body" must be a string (or use "bodyBase64")');
      body = new TextEncoder().encode(v.body);
    } else {
      if (typeof v.bodyBase64 !== "string") throw fsError("EINVAL", '"bodyBase64" must be a string');
      try {
        body = fromBase64(v.bodyBase64);
      } catch {
        throw fsError("EINVAL", '"bodyBase64" is not base64');
      }
    }
    if (method.toUpperCase() === "GET" || method.toUpperCase() === "HEAD") throw fsError("EINVAL", `a ${method.toUpperCase()} request has no body`);
  }
  return { url: v.url, method: method.toUpperCase(), headers, body };
}

/** What a network failure means to the guest. */
export function netError(e: unknown, timedOut: boolean, ms: number, where: string): FsError {
  if (e instanceof FsError) return e;
  if (timedOut) return fsError("ETIMEDOUT", `${where}: no answer within ${ms} ms`);
  const cause = (e as { cause?: { code?: string; message?: string } })?.cause;
  if (cause?.code === "ECONNRESET" || cause?.code === "UND_ERR_SOCKET") return fsError("ECONNRESET", `${where}: the connection was reset`);
  if (cause?.code === "EACCES") return fsError("EACCES", `${where}: ${cause.message}; grant it by exact host:port`);
  const why = cause?.code ?? cause?.message ?? (e as Error)?.message ?? String(e);
  return fsError("ECONNREFUSED", `${where}: cannot connect (${why})`);
}

export class HttpCap {
  readonly #o: HttpCapOptions;
  readonly #secrets: Secrets;
  readonly #fetch: typeof fetch;

  constructor(o: HttpCapOptions) {
    this.#o = o;
    this.#secrets = o.secrets ?? noSecrets;
    this.#fetch = o.fetch ?? ((...a) => fetch(...a));
  }

  get budget(): Budget | undefined {
    return this.#o.budget;
  }

  get secrets(): Secrets {
    return this.#secrets;
  }

  get timeoutMs(): number {
    return this.#o.timeoutMs ?? 30_000;
  }

  /**
   * Sends a request, following redirects to granted hosts only. `stream` bodies are sent once, so
   * their redirects are not followed (the 3xx is the answer). Answers the final response.
   */
  async send(req: HttpRequest, signal: AbortSignal, stream?: ReadableStream<Uint8Array>): Promise<Sent> {
    this.#o.budget?.charge("calls", 1);
    if (req.body) this.#o.budget?.charge("bytes", req.body.length);
    let url = await checkUrl(req.url, this.#o.grant, ["http:", "https:"]);
    const headers = this.#secrets.substitute(req.headers, url);
    // One controller for both the caller's signal and the time limit (AbortSignal.any is slow).
    const both = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      both.abort(fsError("ETIMEDOUT", "time limit"));
    }, this.timeoutMs);
    const follow = (): void => both.abort(signal.reason);
    if (signal.aborted) follow();
    else signal.addEventListener("abort", follow, { once: true });
    const settled = (): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", follow);
    };
    try {
      const got = await this.#hops(req, url, headers, both.signal, () => timedOut, stream);
      // The caller's abort (closing the handle) still reaches a body being read, until `finished`.
      return { ...got, timedOut: () => timedOut, settled: () => clearTimeout(timer), finished: settled };
    } catch (e) {
      settled();
      throw e;
    }
  }

  async #hops(req: HttpRequest, url: URL, headers: Record<string, string>, both: AbortSignal, timedOut: () => boolean,
    stream: ReadableStream<Uint8Array> | undefined): Promise<{ res: Response; url: URL }> {
    let { method, body } = req;
    for (let hop = 0; ; hop++) {
      let res: Response;
      try {
        res = await this.#fetch(url, {
          method, headers, body: stream ?? body, redirect: "manual", signal: both,
          ...(stream ? { duplex: "half" } : {}),
        } as RequestInit);
      } catch (e) {
        throw netError(e, timedOut(), this.timeoutMs, `${method} ${url.host}`);
      }
      const location = res.headers.get("location");
      if (stream || !REDIRECTS.has(res.status) || location === null) return { res, url };
      await res.body?.cancel().catch(() => {});
      if (hop + 1 >= MAX_REDIRECTS) throw fsError("ECONNREFUSED", `more than ${MAX_REDIRECTS} redirects`);
      let next: URL;
      try {
        next = await checkUrl(new URL(location, url).href, this.#o.grant, ["http:", "https:"]);
      } catch (e) {
        if (e instanceof FsError) throw fsError(e.code, `redirect from ${url.host}: ${e.message}`);
        throw e;
      }
      if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === "POST")) {
        if (method !== "HEAD") method = "GET";
        body = undefined;
      }
      const crossOrigin = next.origin !== url.origin;
      const kept: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) {
        if (crossOrigin && CROSS_ORIGIN_DROP.has(k)) continue;
        if (body === undefined && k === "content-type") continue;
        try {
          Object.assign(kept, this.#secrets.substitute({ [k]: v }, next));
        } catch {
          // A secret not bound to the redirect's host is not sent there.
        }
      }
      headers = kept;
      url = next;
    }
  }

  /** Reads a whole body, EFBIG past `max`, charging the byte budget as it arrives. */
  async readBody(res: Response, max: number, where: string, timedOut: () => boolean): Promise<Uint8Array> {
    if (!res.body) return new Uint8Array(0);
    const declared = Number(res.headers.get("content-length") ?? NaN);
    if (Number.isSafeInteger(declared) && !res.headers.has("content-encoding")) {
      // A declared length: refuse early when too big, else take it whole (the fast path).
      if (declared > max) {
        res.body.cancel().catch(() => {});
        throw fsError("EFBIG", `${where}: the reply is ${declared} bytes, over ${max} (read it through clone)`);
      }
      this.#o.budget?.charge("bytes", declared);
      try {
        return new Uint8Array(await res.arrayBuffer());
      } catch (e) {
        throw netError(e, timedOut(), this.timeoutMs, where);
      }
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    const reader = res.body.getReader();
    try {
      for (;;) {
        let r: ReadableStreamReadResult<Uint8Array>;
        try {
          r = await reader.read();
        } catch (e) {
          throw netError(e, timedOut(), this.timeoutMs, where);
        }
        if (r.done) break;
        size += r.value.length;
        if (size > max) throw fsError("EFBIG", `${where}: the reply is over ${max} bytes (read it through clone)`);
        this.#o.budget?.charge("bytes", r.value.length);
        chunks.push(r.value);
      }
    } catch (e) {
      reader.cancel().catch(() => {});
      throw e;
    }
    const out = new Uint8Array(size);
    let o = 0;
    for (const c of chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }

  head(res: Response, url: URL): Record<string, unknown> {
    const headers: Record<string, string> = {};
    res.headers.forEach((v, k) => (headers[k.toLowerCase()] = this.#secrets.scrub(v)));
    return { status: res.status, statusText: res.statusText, url: url.href, headers };
  }

  async fetchReply(request: Uint8Array, signal: AbortSignal): Promise<Uint8Array> {
    const req = parseRequest(parseJson(request, "fetch"), true);
    const sent = await this.send(req, signal);
    const { res, url } = sent;
    let body: Uint8Array;
    try {
      body = await this.readBody(res, this.#o.maxReply ?? 16 * MiB, `${req.method} ${url.host}`, sent.timedOut);
    } finally {
      sent.finished();
    }
    const out = this.head(res, url);
    body = this.#secrets.scrubBytes(body);
    let text: string | null = null;
    try {
      text = utf8.decode(body);
    } catch {
      // not UTF-8: base64
    }
    if (text !== null) out.body = text;
    else out.bodyBase64 = toBase64(body);
    return jsonReply(out);
  }

  service(): CapFs {
    const fail = (file: string) => (e: unknown) => report(this.#o.ctx, "http", file, e);
    return new CapFs(cloneDir((id) => httpConn(this, id, fail), {
      fetch: reqReplyFile((r, s) => this.fetchReply(r, s), { maxRequest: this.#o.maxRequest ?? 16 * MiB, fail: fail("fetch") }),
    }));
  }
}
