// Node only: a WebSocket connect that checks the address it actually connects to, as
// fetch-node.ts does for HTTP. hosts.ts judges a ws:// URL by its name's addresses; the global
// WebSocket would then resolve the name again, and a name that answers differently the second
// time (DNS rebinding) would reach an address the check never saw. Here the name is resolved
// once, in the socket's own lookup, through the grant's resolver, and a non-public address is
// refused there unless the grant names the exact host:port. The URL is unchanged, so the Host
// header and TLS SNI still carry the name. Uses the `ws` package (undici's WebSocket takes no
// lookup).
import { isIP, type LookupFunction } from "node:net";
import WebSocket from "ws";
import { isPublic, portOf, type HostGrant } from "./hosts.ts";
import { nodeResolve } from "./dns-node.ts";
import type { WebSocketLike, WsConnect } from "./ws.ts";

export function pinnedWsConnect(grant: HostGrant): WsConnect {
  const resolve = grant.resolve ?? nodeResolve;
  const exact = (host: string, port: number): boolean =>
    grant.patterns.some((p) => p.wildcard === "none" && p.host === host && p.port === port);

  return (url, protocols, headers) => {
    const port = portOf(url);
    const lookup: LookupFunction = (hostname, options, cb) => {
      resolve(hostname).then((addrs) => {
        const bad = addrs.find((a) => !isPublic(a));
        if (bad !== undefined && !exact(url.hostname, port)) {
          return cb(Object.assign(new Error(`${hostname} resolves to the non-public address ${bad}`), { code: "EACCES" }), "", 0);
        }
        if (!addrs.length) return cb(Object.assign(new Error(`${hostname}: no address`), { code: "ENOTFOUND" }), "", 0);
        const all = addrs.map((address) => ({ address, family: isIP(address) }));
        if ((options as { all?: boolean }).all) (cb as unknown as (e: null, a: typeof all) => void)(null, all);
        else cb(null, all[0]!.address, all[0]!.family);
      }, (e: Error) => cb(Object.assign(e, { code: (e as { code?: string }).code ?? "ENOTFOUND" }), "", 0));
    };
    const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
    const ws = new WebSocket(url.href, protocols, { headers, ...(isIP(host) ? {} : { lookup }) });
    return asLike(ws);
  };
}

/**
 * The `ws` socket as WsCap sees a WebSocket. Its event listeners already give `data` (a string for
 * text frames); an error before open (a refused address) closes it with 1006, and the close
 * carries the error as `cause`, so the capability answers EACCES rather than ECONNREFUSED.
 */
function asLike(ws: WebSocket): WebSocketLike {
  let cause: { code?: string; message: string } | undefined;
  ws.on("error", (e: Error & { code?: string }) => (cause = { code: e.code, message: e.message }));
  return {
    get readyState() {
      return ws.readyState;
    },
    get protocol() {
      return ws.protocol;
    },
    get binaryType() {
      return ws.binaryType;
    },
    set binaryType(t: string) {
      ws.binaryType = t as WebSocket["binaryType"];
    },
    send: (d) => ws.send(d),
    close: (code, reason) => ws.close(code, reason),
    addEventListener: (type, fn) => {
      if (type === "close") ws.on("close", (code: number, reason: Buffer) => fn({ code, reason: reason.toString(), cause }));
      else ws.addEventListener(type as "message", (ev: { data?: unknown }) => fn({ data: ev.data }));
    },
  };
}
