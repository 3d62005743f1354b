// Grants (owner only): a capability token, or rights for a named key, over a path prefix.
import { Hono } from "hono";
import { FsError } from "../../runtime/errors.ts";
import { unwrap } from "../errors.ts";
import { body, credOf, jsonOf, natural, stubOf, wsName, type AppEnv } from "./request.ts";

export const grants = new Hono<AppEnv>();

grants.get("/grants", async (c) => c.json({ grants: unwrap(await stubOf(c.env, wsName(c)).grants(await credOf(c))) }));

grants.post("/grants", body(256 * 1024), async (c) => {
  const name = wsName(c);
  const cred = await credOf(c);
  const b = jsonOf(c);
  const rights = b.rights ?? "r";
  if (rights !== "r" && rights !== "rw") throw new FsError("EINVAL", 'rights are "r" or "rw"');
  const expires = expiryOf(b);
  const g = unwrap(await stubOf(c.env, name).grant(cred, {
    prefix: String(b.prefix ?? ""), write: rights === "rw", expires,
    ...(typeof b.pubkey === "string" ? { pubkey: b.pubkey } : {}),
  }));
  return c.json(g, 201);
});

grants.delete("/grants/:id", async (c) => c.json(unwrap(await stubOf(c.env, wsName(c)).revoke(await credOf(c), c.req.param("id")))));

/** Grants last an hour unless they say otherwise. */
const DEFAULT_EXPIRES_IN_S = 3600;

/**
 * A grant's expiry (ms since the epoch) from `expires` (ms) or `expiresIn` (s). Every grant
 * expires: anything that is not a number ("never", "1h") is EINVAL, never a silent default.
 */
function expiryOf(b: Record<string, unknown>): number {
  if (b.expires !== undefined && b.expiresIn !== undefined) throw new FsError("EINVAL", "give expires or expiresIn, not both");
  if (b.expires !== undefined) return natural(b.expires, "expires (ms since the epoch)");
  const s = b.expiresIn === undefined ? DEFAULT_EXPIRES_IN_S : natural(b.expiresIn, "expiresIn (seconds; every grant expires)");
  return Date.now() + 1000 * s;
}
