// Who is asking. Two kinds of credential reach the edge:
// - NIP-98: `Authorization: Nostr <base64 kind-27235 event>` signed by the caller's key, naming
//   the exact URL and method, within ±60 s, with a `payload` tag (SHA-256 hex of the body) when
//   there is a body. Each event is accepted once: the workspace Durable Object records its id.
// - Capability tokens: `Authorization: Bearer oanix_…`, minted by a workspace owner for a path
//   prefix, read or read-write, until an expiry. The DO stores only their SHA-256.
// The Worker checks signatures (stateless, in parallel); the DO checks replay, ownership, grants.
import { FsError } from "../runtime/errors.ts";
import { verifyAuthorization, Nip98Error } from "../services/nip98.ts";

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

/** EACCES with the HTTP status that tells "who are you" (401) from "not allowed" (403). */
export class AuthError extends FsError {
  readonly status: 401 | 403;
  constructor(status: 401 | 403, message: string) {
    super("EACCES", message);
    this.status = status;
  }
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
  try {
    return { type: "key", ...verifyAuthorization(value, req, bodyHash, nowS) };
  } catch (e) {
    if (e instanceof Nip98Error) throw new AuthError(401, e.message);
    throw e;
  }
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
