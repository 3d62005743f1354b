// Node only: a fetch that checks the address it actually connects to. hosts.ts judges a URL by its
// host and the addresses its name resolves to; global fetch would then resolve the name again, and
// a name that answers differently the second time (DNS rebinding) would reach an address the check
// never saw. This fetch resolves once, in the socket's own lookup, through the same resolver, and
// refuses a non-public address there unless the grant names the exact host:port. HTTP/1.1 over
// node:http(s) with keep-alive; gzip, deflate and br bodies are decoded as fetch does.
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { isIP, type LookupFunction } from "node:net";
import { Readable } from "node:stream";
import { createBrotliDecompress, createGunzip, createInflate } from "node:zlib";
import { isPublic, portOf, type HostGrant } from "./hosts.ts";
import { nodeResolve } from "./dns-node.ts";

const NULL_BODY = new Set([101, 204, 205, 304]);

export function pinnedFetch(grant: HostGrant): typeof fetch {
  const resolve = grant.resolve ?? nodeResolve;
  const agents = { "http:": new HttpAgent({ keepAlive: true }), "https:": new HttpsAgent({ keepAlive: true }) };
  const exact = (host: string, port: number): boolean =>
    grant.patterns.some((p) => p.wildcard === "none" && p.host === host && p.port === port);

  return (async (input: RequestInfo | URL, init: RequestInit = {}): Promise<Response> => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const port = portOf(url);
    const lookup: LookupFunction = (hostname, options, cb) => {
      resolve(hostname).then((addrs) => {
        const bad = addrs.find((a) => !isPublic(a));
        if (bad !== undefined && !exact(url.hostname, port)) {
          const e = Object.assign(new Error(`${hostname} resolves to the non-public address ${bad}`), { code: "EACCES" });
          return cb(e, "", 0);
        }
        if (!addrs.length) return cb(Object.assign(new Error(`${hostname}: no address`), { code: "ENOTFOUND" }), "", 0);
        const all = addrs.map((address) => ({ address, family: isIP(address) }));
        if ((options as { all?: boolean }).all) (cb as unknown as (e: null, a: typeof all) => void)(null, all);
        else cb(null, all[0]!.address, all[0]!.family);
      }, (e: Error) => cb(Object.assign(e, { code: (e as { code?: string }).code ?? "ENOTFOUND" }), "", 0));
    };
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((v, k) => (headers[k] = v));
    const body = init.body;
    const send = url.protocol === "https:" ? httpsRequest : httpRequest;
    const agent = agents[url.protocol as "http:" | "https:"];
    if (!agent) throw new TypeError(`pinnedFetch: ${url.protocol} is not http or https`);
    const hostname = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
    return new Promise<Response>((done, fail) => {
      const req = send({
        protocol: url.protocol, hostname, port, path: url.pathname + url.search, method: init.method ?? "GET",
        headers, agent, signal: init.signal ?? undefined, lookup: isIP(hostname) ? undefined : lookup, servername: isIP(hostname) ? undefined : hostname,
      }, (res: IncomingMessage) => {
        const h = new Headers();
        for (let i = 0; i < res.rawHeaders.length; i += 2) h.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
        const status = res.statusCode ?? 0;
        if (NULL_BODY.has(status) || init.method === "HEAD") {
          res.resume();
          return done(new Response(null, { status, statusText: res.statusMessage, headers: h }));
        }
        const coding = (res.headers["content-encoding"] ?? "").toLowerCase();
        const decoder = coding === "gzip" || coding === "x-gzip" ? createGunzip() : coding === "deflate" ? createInflate() : coding === "br" ? createBrotliDecompress() : null;
        const stream: Readable = decoder ? res.pipe(decoder) : res;
        if (decoder) res.on("error", (e) => decoder.destroy(e));
        done(new Response(Readable.toWeb(stream) as ReadableStream<Uint8Array>, { status, statusText: res.statusMessage, headers: h }));
      });
      req.on("error", (e) => fail(Object.assign(new TypeError("fetch failed"), { cause: e })));
      if (body == null) req.end();
      else if (typeof body === "string" || body instanceof Uint8Array) req.end(body);
      else if (body instanceof ReadableStream) Readable.fromWeb(body as import("node:stream/web").ReadableStream).on("error", (e) => req.destroy(e)).pipe(req);
      else fail(new TypeError("pinnedFetch: unsupported body type"));
    });
  }) as typeof fetch;
}
