// Who is asking, as this workspace sees it: NIP-98 events are accepted once (their ids are kept
// as nonces until they expire), bearer tokens are grants or sessions, and a key's rights are read
// at each use (revoking a grant takes effect at once, sessions included).
import { newToken, AuthError, type Cred, type Principal } from "../auth.ts";
import { tokenHash, type Grants } from "./grants.ts";
import type { Meta } from "./meta.ts";

export const PRINCIPAL_TABLES = `
CREATE TABLE IF NOT EXISTS sessions(token_hash TEXT PRIMARY KEY, pubkey TEXT NOT NULL, expires INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS nonces(id TEXT PRIMARY KEY, exp INTEGER NOT NULL);
`;

export const SESSION_MS = 10 * 60 * 1000;

export class Principals {
  readonly #sql: SqlStorage;
  readonly #meta: Meta;
  readonly #grants: Grants;
  #sweep = 0;

  constructor(sql: SqlStorage, meta: Meta, grants: Grants) {
    this.#sql = sql;
    this.#meta = meta;
    this.#grants = grants;
  }

  /** Authenticates a credential: replay check for NIP-98, grant or session lookup for tokens. */
  of(cred: Cred): Principal {
    if (cred.type === "internal") return cred.principal;
    const now = Date.now();
    if (cred.type === "token") {
      const g = this.#grants.byToken(cred.token);
      if (!g) {
        // A session token stands for its key: the key's rights now, not when it was minted.
        const s = this.#sql.exec<{ pubkey: string; expires: number }>("SELECT pubkey, expires FROM sessions WHERE token_hash = ?", tokenHash(cred.token)).toArray()[0];
        if (!s) throw new AuthError(401, "unknown or revoked capability token");
        if (s.expires <= now) throw new AuthError(401, "session expired");
        return this.ofKey(s.pubkey, now);
      }
      if (g.revoked) throw new AuthError(401, "unknown or revoked capability token");
      if (g.grant.expires <= now) throw new AuthError(401, "capability token expired");
      return { kind: "token", grant: g.grant };
    }
    if (this.#sql.exec("SELECT 1 FROM nonces WHERE id = ?", cred.id).toArray().length) {
      throw new AuthError(401, "NIP-98: this signed request was already used (replay)");
    }
    this.#sql.exec("INSERT INTO nonces(id, exp) VALUES(?, ?)", cred.id, cred.exp);
    if (++this.#sweep % 64 === 0) {
      this.#sql.exec("DELETE FROM nonces WHERE exp < ?", Math.floor(now / 1000));
      this.#sql.exec("DELETE FROM sessions WHERE expires < ?", now);
    }
    return this.ofKey(cred.pubkey, now);
  }

  ofKey(pubkey: string, now = Date.now()): Principal {
    if (this.#meta.owner === pubkey) return { kind: "owner", pubkey };
    return { kind: "key", pubkey, grants: this.#grants.forKey(pubkey, now) };
  }

  /** A session token standing for `pubkey` for SESSION_MS. */
  openSession(pubkey: string): { token: string; expires: number; pubkey: string } {
    const token = newToken();
    const expires = Date.now() + SESSION_MS;
    this.#sql.exec("INSERT INTO sessions VALUES(?, ?, ?)", tokenHash(token), pubkey, expires);
    return { token, expires, pubkey };
  }
}
