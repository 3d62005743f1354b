// /cap/http's fetch at the edge: the Worker's own fetch, with the Cache API (caches.default) in
// front of plain GETs, as a CDN would serve them. A request is looked up and stored only when it
// is a GET without a body and without headers (bar user-agent): the cache key is the URL alone,
// so a request whose headers could change the answer (Accept, Range, conditionals) or that
// carries credentials (authorization, cookie, any header holding a secret) always goes to the
// origin. A response is stored only when it says it may be: 200, Cache-Control with a positive
// max-age or s-maxage and none of no-store, no-cache, private; no Set-Cookie; Vary at most
// Accept-Encoding. The grant is checked before this fetch is called (services/cap/http.ts), for
// every hop, so a cached answer is only ever served to a run granted its host.
import type { Secrets } from "../../services/cap/secrets.ts";

const PLAIN_HEADERS = new Set(["user-agent"]);

export interface EdgeFetchOptions {
  secrets: Secrets;
  /** caches.default where the Worker has it. */
  cache?: Cache;
  fetch?: typeof fetch;
}

/** Whether this request may be answered from, and stored in, the cache keyed by its URL. */
export function cacheableRequest(url: string, init: RequestInit, secrets: Secrets): boolean {
  if ((init.method ?? "GET").toUpperCase() !== "GET" || init.body != null || !url.startsWith("http")) return false;
  let plain = true;
  new Headers(init.headers).forEach((v, k) => {
    if (!PLAIN_HEADERS.has(k.toLowerCase()) || secrets.scrub(v) !== v) plain = false;
  });
  return plain;
}

/** Whether a response says it may be kept in a shared cache. */
export function cacheableResponse(res: Response): boolean {
  if (res.status !== 200 || res.headers.has("set-cookie")) return false;
  const vary = (res.headers.get("vary") ?? "").toLowerCase().split(",").map((s) => s.trim()).filter(Boolean);
  if (vary.some((v) => v !== "accept-encoding")) return false;
  const cc = (res.headers.get("cache-control") ?? "").toLowerCase().split(",").map((s) => s.trim());
  if (cc.some((d) => d === "no-store" || d === "private" || d === "no-cache" || d.startsWith("no-cache=") || d.startsWith("private="))) return false;
  return cc.some((d) => /^(max-age|s-maxage)=\s*"?[1-9]\d*"?$/.test(d));
}

export function edgeFetch(o: EdgeFetchOptions): typeof fetch {
  const send = o.fetch ?? ((...a: Parameters<typeof fetch>) => fetch(...a));
  return (async (input: RequestInfo | URL, init: RequestInit = {}): Promise<Response> => {
    const url = input instanceof Request ? input.url : String(input);
    if (!o.cache || !cacheableRequest(url, init, o.secrets)) return send(input, init);
    const key = new Request(url, { method: "GET" });
    const hit = await o.cache.match(key).catch(() => undefined);
    if (hit) return hit;
    const res = await send(input, init);
    if (!cacheableResponse(res)) return res;
    // Stored while the run reads its copy; a failed store only costs the next request a miss.
    o.cache.put(key, res.clone()).catch((e) => console.warn("edge cap http: cache put failed", (e as Error).message));
    return res;
  }) as typeof fetch;
}
