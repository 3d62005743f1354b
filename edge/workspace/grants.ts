// Capability grants: a path prefix, read or read-write, until an expiry, for a bearer token (only
// its SHA-256 is kept) or for a named key. The owner mints, lists and revokes them.
import { sha256 } from "@noble/hashes/sha2.js";
import { newToken, type Grant } from "../auth.ts";
import { hex } from "../bytes.ts";
import { fail } from "./reply.ts";

export const GRANT_TABLES = `
CREATE TABLE IF NOT EXISTS grants(id TEXT PRIMARY KEY, token_hash TEXT UNIQUE, pubkey TEXT, prefix TEXT NOT NULL,
  write INTEGER NOT NULL, expires INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL);
`;

export const tokenHash = (token: string): string => hex(sha256(new TextEncoder().encode(token)));

const grantOf = (r: Record<string, SqlStorageValue>): Grant => ({
  id: r.id as string, prefix: r.prefix as string, write: r.write === 1, expires: r.expires as number,
  ...(r.pubkey ? { pubkey: r.pubkey as string } : {}),
});

export class Grants {
  readonly #sql: SqlStorage;
  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  /** The grant a bearer token stands for, or null when the token is not a grant's. */
  byToken(token: string): { grant: Grant; revoked: boolean } | null {
    const r = this.#sql.exec("SELECT * FROM grants WHERE token_hash = ?", tokenHash(token)).toArray()[0];
    return r ? { grant: grantOf(r), revoked: r.revoked === 1 } : null;
  }

  /** The live grants naming a key. */
  forKey(pubkey: string, now: number): Grant[] {
    return this.#sql.exec("SELECT * FROM grants WHERE pubkey = ? AND revoked = 0 AND expires > ?", pubkey, now).toArray().map(grantOf);
  }

  /** Adds a grant; a token grant answers its token (shown once, never stored). */
  add(g: { prefix: string; write: boolean; expires: number; pubkey?: string }): Grant & { token?: string } {
    if (!(g.expires > Date.now())) fail("EINVAL", "expiry must be in the future");
    if (g.pubkey !== undefined && !/^[0-9a-f]{64}$/.test(g.pubkey)) fail("EINVAL", "pubkey must be 64 hex digits");
    const id = crypto.randomUUID();
    const token = g.pubkey ? undefined : newToken();
    this.#sql.exec("INSERT INTO grants VALUES(?, ?, ?, ?, ?, ?, 0, ?)", id,
      token ? tokenHash(token) : null, g.pubkey ?? null, g.prefix, g.write ? 1 : 0, g.expires, Date.now());
    return { id, prefix: g.prefix, write: g.write, expires: g.expires, ...(g.pubkey ? { pubkey: g.pubkey } : {}), ...(token ? { token } : {}) };
  }

  list(): Array<Grant & { revoked: boolean }> {
    return this.#sql.exec("SELECT * FROM grants ORDER BY created").toArray().map((r) => ({ ...grantOf(r), revoked: r.revoked === 1 }));
  }

  revoke(id: string): void {
    if (!this.#sql.exec("SELECT 1 FROM grants WHERE id = ?", id).toArray().length) fail("ENOENT", `grant ${id}`);
    this.#sql.exec("UPDATE grants SET revoked = 1 WHERE id = ?", id);
  }
}
