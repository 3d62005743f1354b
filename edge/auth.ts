// Who is asking. Two kinds of credential reach the edge:
// - NIP-98: `Authorization: Nostr <base64 kind-27235 event>` signed by the caller's key, naming
//   the exact URL and method, within ±60 s, with a `payload` tag (SHA-256 hex of the body) when
//   there is a body. Each event is accepted once: the workspace Durable Object records its id.
// - Capability tokens: `Authorization: Bearer oanix_…`, minted by a workspace owner for a path
//   prefix, read or read-write, until an expiry. The DO stores only their SHA-256.
// The Worker checks signatures (stateless, in parallel); the DO checks replay, ownership, grants.
import { verifyEvent, type Event } from "nostr-tools/pure";

export const NIP98_KIND = 27235;
export const NIP98_WINDOW_S = 60;

export type Cred =
  | { type: "key"; pubkey: string; id: string; exp: number; payload?: string }
  | { type: "token"; token: string }
  /** Already authenticated by this Worker (a second call in one request, or the edge runner). */
  | { type: "internal"; principal: Principal };

export interface Grant { id: string; prefix: string; write: boolean; expires: number; pubkey?: string }

export type Principal =
  | { kind: "owner"; pubkey: string }
  | { kind: "key"; pubkey: string; grants: Grant[] }
  | { kind: "token"; grant: Grant };

export class AuthError extends Error {
  readonly status: 401 | 403;
  constructor(status: 401 | 403, message: string) {
    super(message);
    this.status = status;
  }
}

const b64decode = (s: string): string => {
  const bin = atob(s);
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
};

export const hex = (b: ArrayBuffer | Uint8Array): string =>
  Array.from(b instanceof Uint8Array ? b : new Uint8Array(b), (x) => x.toString(16).padStart(2, "0")).join("");

export async function sha256hex(data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  return hex(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
}

/**
 * Reads the credential of a request. `bodyHash` is the SHA-256 hex of the body when the body was
 * read in full; `"later"` when it streams (the caller compares `payload` once it has seen it all).
 * Throws AuthError(401) for anything missing, malformed, stale or badly signed.
 */
export function credentialOf(req: Request, bodyHash: string | "later" | undefined, nowS = Math.floor(Date.now() / 1000)): Cred {
  const h = req.headers.get("authorization");
  if (!h) throw new AuthError(401, "missing credentials: sign with NIP-98 or present a capability token");
  const sp = h.indexOf(" ");
  const scheme = (sp < 0 ? h : h.slice(0, sp)).toLowerCase();
  const value = sp < 0 ? "" : h.slice(sp + 1).trim();
  if (scheme === "bearer") {
    if (!/^oanix_[A-Za-z0-9_-]{20,100}$/.test(value)) throw new AuthError(401, "malformed capability token");
    return { type: "token", token: value };
  }
  if (scheme !== "nostr") throw new AuthError(401, `unknown authorization scheme ${scheme}`);
  let ev: Event;
  try {
    ev = JSON.parse(b64decode(value)) as Event;
  } catch {
    throw new AuthError(401, "NIP-98: authorization is not a base64 JSON event");
  }
  if (typeof ev !== "object" || ev === null || ev.kind !== NIP98_KIND) throw new AuthError(401, "NIP-98: event kind must be 27235");
  if (!Array.isArray(ev.tags) || typeof ev.created_at !== "number") throw new AuthError(401, "NIP-98: malformed event");
  if (Math.abs(nowS - ev.created_at) > NIP98_WINDOW_S) throw new AuthError(401, "NIP-98: event is expired or from the future");
  const tag = (n: string): string | undefined => {
    const t = ev.tags.find((x) => Array.isArray(x) && x[0] === n);
    return typeof t?.[1] === "string" ? t[1] : undefined;
  };
  if (tag("u") !== req.url) throw new AuthError(401, "NIP-98: u tag does not match the request URL");
  if (tag("method")?.toUpperCase() !== req.method.toUpperCase()) throw new AuthError(401, "NIP-98: method tag does not match");
  const payload = tag("payload");
  if (bodyHash !== undefined && bodyHash !== "later" && payload !== bodyHash) {
    throw new AuthError(401, "NIP-98: payload tag does not match the body");
  }
  if (bodyHash === "later" && !payload) throw new AuthError(401, "NIP-98: a request with a body needs a payload tag");
  let ok = false;
  try {
    ok = verifyEvent(ev);
  } catch {
    ok = false;
  }
  if (!ok) throw new AuthError(401, "NIP-98: bad signature");
  return { type: "key", pubkey: ev.pubkey, id: ev.id, exp: ev.created_at + NIP98_WINDOW_S + 5, ...(payload ? { payload } : {}) };
}

export const covers = (prefix: string, path: string): boolean =>
  prefix === "" || path === prefix || path.startsWith(prefix + "/");

/** May this principal read (or write) `path`? "" is the whole workspace. */
export function allowed(p: Principal, path: string, write: boolean, nowMs = Date.now()): boolean {
  if (p.kind === "owner") return true;
  const grants = p.kind === "token" ? [p.grant] : p.grants;
  return grants.some((g) => g.expires > nowMs && (!write || g.write) && covers(g.prefix, path));
}

export const actorOf = (p: Principal): string =>
  p.kind === "token" ? `token:${p.grant.id}` : p.kind === "owner" ? `key:${p.pubkey}` : `key:${p.pubkey}`;

export function newToken(): string {
  const b = crypto.getRandomValues(new Uint8Array(32));
  return "oanix_" + btoa(String.fromCharCode(...b)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
