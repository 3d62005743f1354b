// The Worker side of the relay: the `/relay` route. WebSocket upgrades and NIP-11 requests go to
// the relay Durable Object (which knows the limits it enforces); CORS preflights are answered here.
// With RELAY_SHARDS > 1 the Worker picks the connection shard of each client (by its address, so
// per-address limits hold), and sends everything else (NIP-11, NIP-86) to connection shard 0.
import { env } from "cloudflare:workers";
import { CORS_HEADERS, preflight } from "./cors.ts";
import { CLIENT_IP_HEADER, type NostrRelay } from "./relay.ts";
import { connShardFor, connShardName, parseShardCount } from "./shards.ts";

/** The name of the relay object (with shards: the base of every shard's name). */
export const RELAY_OBJECT = "main";

/** RELAY_SHARDS of the Worker's environment; throws on a value that is not a shard count. */
export function relayShards(): number {
  const n = parseShardCount((env as { RELAY_SHARDS?: string }).RELAY_SHARDS);
  if (typeof n === "string") throw new Error(`relay: ${n}`);
  return n;
}

/** The object in-Worker callers talk to: the relay, or with shards its connection shard 0. */
export function relayStub(ns: DurableObjectNamespace<NostrRelay>, name: string = RELAY_OBJECT, shards: number = relayShards()): DurableObjectStub<NostrRelay> {
  return ns.get(ns.idFromName(connShardName(name, 0, shards)));
}

/**
 * Handles any request to the relay URL: OPTIONS, GET (NIP-11 or a short text), WebSocket upgrades
 * and POST (NIP-86 management, authorised in the object). `layout` overrides RELAY_SHARDS and the
 * object name (tests run several layouts side by side).
 */
export async function handleRelayRequest(request: Request, ns: DurableObjectNamespace<NostrRelay>, layout: { shards?: number; name?: string } = {}): Promise<Response> {
  if (request.method === "OPTIONS") return preflight();
  if (request.method !== "GET" && request.method !== "HEAD" && request.method !== "POST") {
    return new Response("method not allowed\n", { status: 405, headers: { ...CORS_HEADERS, Allow: "GET, POST, OPTIONS" } });
  }
  let shards: number;
  try {
    shards = layout.shards ?? relayShards();
  } catch (err) {
    return new Response(`${(err as Error).message}\n`, { status: 500, headers: { ...CORS_HEADERS, "Content-Type": "text/plain; charset=utf-8" } });
  }
  const name = layout.name ?? RELAY_OBJECT;
  const upgrade = (request.headers.get("Upgrade") ?? "").toLowerCase() === "websocket";
  const shard = upgrade ? connShardFor(request.headers.get(CLIENT_IP_HEADER), shards) : 0;
  return ns.get(ns.idFromName(connShardName(name, shard, shards))).fetch(request);
}
