// NIP-86 relay management: JSON-RPC over HTTP on the relay URL (POST, Content-Type
// application/nostr+json+rpc), each request authorised by a NIP-98 event (kind 27235, with `u`,
// `method` and the `payload` hash of the body) signed by one of the relay's admin pubkeys.
import { sha256 } from "@noble/hashes/sha2.js";
import { checkConfigPatch, type RelayConfig } from "./config.ts";
import { CORS_HEADERS } from "./cors.ts";
import { canonicalEvent, checkEventShape, isHex64, toHex, type NostrEvent } from "./event.ts";
import type { ListName, Moderation } from "./moderation.ts";
import { relayUrlKey } from "./nip42.ts";
import type { Verifier } from "./verify.ts";

export const RPC_CONTENT_TYPE = "application/nostr+json+rpc";
const NIP98_KIND = 27235;
/** A NIP-98 event must be this close to now (seconds), and is accepted once. */
const NIP98_WINDOW = 60;
const MAX_BODY = 64 * 1024;

/** What the management API changes: the relay implements it. */
export interface Managed {
  moderation: Moderation;
  /** Removes a stored event (the ban itself is recorded by the caller). */
  removeEvent(id: string): boolean | Promise<boolean>;
  configure(patch: Partial<RelayConfig>): RelayConfig;
  info(): Record<string, unknown>;
  /** Resolves once a call's changes have reached every part of the relay (a sharded relay's other objects). */
  settle?(): Promise<void>;
}

/** Admin pubkeys from the ADMIN_PUBKEYS variable: hex keys separated by commas or spaces. */
export function parseAdmins(value: string | undefined): Set<string> {
  const out = new Set<string>();
  for (const k of (value ?? "").split(/[\s,]+/)) if (isHex64(k.toLowerCase())) out.add(k.toLowerCase());
  return out;
}

export function isManagementRequest(request: Request): boolean {
  return request.method === "POST";
}

type Handler = (params: unknown[], relay: Managed) => unknown;

const pubkeyParam = (params: unknown[]): string => {
  const pk = params[0];
  if (!isHex64(pk)) throw new RpcError("the first parameter must be a 64-character lowercase hex pubkey");
  return pk;
};
const idParam = (params: unknown[]): string => {
  const id = params[0];
  if (!isHex64(id)) throw new RpcError("the first parameter must be a 64-character lowercase hex event id");
  return id;
};
const stringParam = (params: unknown[], what: string): string => {
  const v = params[0];
  if (typeof v !== "string" || v.length === 0 || v.length > 1000) throw new RpcError(`the first parameter must be the ${what} (1 to 1000 characters)`);
  return v;
};
const ipParam = (params: unknown[]): string => {
  const ip = params[0];
  if (typeof ip !== "string" || !/^[0-9a-fA-F:.]{2,45}$/.test(ip)) throw new RpcError("the first parameter must be an IPv4 or IPv6 address");
  return ip.toLowerCase();
};
const reasonParam = (params: unknown[]): string => (typeof params[1] === "string" ? params[1].slice(0, 500) : "");

const listMethods = (list: ListName, add: string, remove: string, show: string, field: "pubkey" | "id" | "ip", param: (p: unknown[]) => string) => ({
  [add]: (p: unknown[], r: Managed) => (r.moderation.add(list, param(p), reasonParam(p)), true),
  [remove]: (p: unknown[], r: Managed) => (r.moderation.remove(list, param(p)), true),
  [show]: (_p: unknown[], r: Managed) => r.moderation.entries(list).map((e) => ({ [field]: e.key, reason: e.reason })),
});

const METHODS: Record<string, Handler> = {
  ...listMethods("banned_pubkeys", "banpubkey", "unbanpubkey", "listbannedpubkeys", "pubkey", pubkeyParam),
  ...listMethods("allowed_pubkeys", "allowpubkey", "unallowpubkey", "listallowedpubkeys", "pubkey", pubkeyParam),
  ...listMethods("blocked_ips", "blockip", "unblockip", "listblockedips", "ip", ipParam),
  banevent: (p, r) => {
    const id = idParam(p);
    r.moderation.add("banned_events", id, reasonParam(p));
    void r.removeEvent(id); // a sharded relay's removal finishes in settle()
    return true;
  },
  // Lifts the ban (the event may be published again); what was removed stays removed.
  allowevent: (p, r) => (r.moderation.remove("banned_events", idParam(p)), true),
  listbannedevents: (_p, r) => r.moderation.entries("banned_events").map((e) => ({ id: e.key, reason: e.reason })),
  changerelayname: (p, r) => (r.configure({ name: stringParam(p, "new name") }), true),
  changerelaydescription: (p, r) => (r.configure({ description: stringParam(p, "new description") }), true),
  // OANIX extension: change any limit of RelayConfig ({"maxFilters": 5, "powByKind": {"5050": 20}});
  // answers the NIP-11 document as it now reads.
  changerelaylimits: (p, r) => {
    const err = checkConfigPatch(p[0]);
    if (err !== null) throw new RpcError(err);
    r.configure(p[0] as Partial<RelayConfig>);
    return r.info();
  },
};
METHODS.supportedmethods = () => Object.keys(METHODS).sort();

class RpcError extends Error {}

/** Single-use NIP-98 events: ids seen within their window. */
const seen = new Map<string, number>();
function firstUse(id: string, now: number): boolean {
  for (const [k, exp] of seen) {
    if (exp >= now) break;
    seen.delete(k);
  }
  if (seen.has(id)) return false;
  seen.set(id, now + NIP98_WINDOW + 5);
  return true;
}

function answer(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { ...CORS_HEADERS, "Content-Type": "application/json" } });
}

/** Why the NIP-98 authorization of this request fails, or the pubkey it proves. */
function authorize(request: Request, body: Uint8Array, verifier: Verifier, now: number): { pubkey: string } | { error: string } {
  const h = request.headers.get("Authorization");
  if (!h) return { error: "auth-required: sign the request with NIP-98 (Authorization: Nostr <base64 event>)" };
  const m = /^Nostr\s+([A-Za-z0-9+/=_-]+)$/i.exec(h.trim());
  if (!m) return { error: "invalid: Authorization must be 'Nostr <base64 event>'" };
  let ev: unknown;
  try {
    ev = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(m[1]!.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0))));
  } catch {
    return { error: "invalid: Authorization is not a base64 JSON event" };
  }
  const shape = checkEventShape(ev);
  if (shape !== null) return { error: `invalid: ${shape}` };
  const e = canonicalEvent(ev as NostrEvent);
  if (e.kind !== NIP98_KIND) return { error: "invalid: the NIP-98 event must be kind 27235" };
  if (Math.abs(e.created_at - now) > NIP98_WINDOW) return { error: "invalid: the NIP-98 event is not within 60 seconds of now" };
  const tag = (n: string) => e.tags.find((t) => t[0] === n)?.[1];
  const u = tag("u");
  if (u === undefined || relayUrlKey(u) !== relayUrlKey(request.url)) return { error: "invalid: the u tag does not name this relay" };
  if (tag("method")?.toUpperCase() !== "POST") return { error: "invalid: the method tag must be POST" };
  if (tag("payload") !== toHex(sha256(body))) return { error: "invalid: the payload tag is not the sha256 of the body" };
  const v = verifier.verify(e);
  if (v !== "ok") return { error: v === "bad-id" ? "invalid: event id does not match its serialisation" : "invalid: bad signature" };
  if (!firstUse(e.id, now)) return { error: "invalid: this NIP-98 event was already used" };
  return { pubkey: e.pubkey };
}

/** Answers one management request: 401 without valid auth, 403 for a non-admin, else the JSON-RPC result. */
export async function handleManagement(request: Request, admins: Set<string>, relay: Managed, verifier: Verifier): Promise<Response> {
  if (admins.size === 0) return answer(404, { error: "this relay has no management API (no ADMIN_PUBKEYS)" });
  const type = (request.headers.get("Content-Type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (type !== RPC_CONTENT_TYPE) return answer(415, { error: `requests must be ${RPC_CONTENT_TYPE}` });
  const body = new Uint8Array(await request.arrayBuffer());
  if (body.length > MAX_BODY) return answer(413, { error: `body is larger than ${MAX_BODY} bytes` });
  const auth = authorize(request, body, verifier, Math.floor(Date.now() / 1000));
  if ("error" in auth) return answer(401, { error: auth.error });
  if (!admins.has(auth.pubkey)) return answer(403, { error: "restricted: this pubkey is not an admin of this relay" });
  let call: { method?: unknown; params?: unknown };
  try {
    call = JSON.parse(new TextDecoder().decode(body)) as typeof call;
  } catch {
    return answer(400, { error: "invalid: body is not JSON" });
  }
  if (typeof call !== "object" || call === null || typeof call.method !== "string") return answer(400, { error: "invalid: body must be {method, params}" });
  const params = call.params ?? [];
  if (!Array.isArray(params)) return answer(400, { error: "invalid: params must be an array" });
  const method = Object.hasOwn(METHODS, call.method) ? METHODS[call.method] : undefined;
  if (!method) return answer(400, { error: `unsupported method ${JSON.stringify(call.method).slice(0, 60)}` });
  try {
    const result = method(params, relay);
    await relay.settle?.();
    return answer(200, { result });
  } catch (err) {
    if (err instanceof RpcError) return answer(400, { error: `invalid: ${err.message}` });
    throw err;
  }
}
