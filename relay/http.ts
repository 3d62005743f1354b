// The Worker side of the relay: the `/relay` route. WebSocket upgrades and NIP-11 requests go to
// the relay Durable Object (which knows the limits it enforces); CORS preflights are answered here.
import { CORS_HEADERS, preflight } from "./cors.ts";
import type { NostrRelay } from "./relay.ts";

/** The name of the relay object. One object today; see README "Sharding" for more. */
export const RELAY_OBJECT = "main";

export function relayStub(ns: DurableObjectNamespace<NostrRelay>, name: string = RELAY_OBJECT): DurableObjectStub<NostrRelay> {
  return ns.get(ns.idFromName(name));
}

/**
 * Handles any request to the relay URL: OPTIONS, GET (NIP-11 or a short text), WebSocket upgrades
 * and POST (NIP-86 management, authorised in the object).
 */
export async function handleRelayRequest(request: Request, ns: DurableObjectNamespace<NostrRelay>): Promise<Response> {
  if (request.method === "OPTIONS") return preflight();
  if (request.method !== "GET" && request.method !== "HEAD" && request.method !== "POST") {
    return new Response("method not allowed\n", { status: 405, headers: { ...CORS_HEADERS, Allow: "GET, POST, OPTIONS" } });
  }
  return relayStub(ns).fetch(request);
}
