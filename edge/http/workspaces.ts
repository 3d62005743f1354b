// Workspaces: list (a key's own, or all for an admin key), create (the signer owns it), info,
// and sessions (one NIP-98 request traded for a bearer token standing for the key).
import { Hono } from "hono";
import { FsError } from "../../runtime/errors.ts";
import type { Cred } from "../auth.ts";
import { unwrap } from "../errors.ts";
import type { Env } from "../env.ts";
import { body, credOf, keyStub, stubOf, wsName, type AppEnv } from "./request.ts";

export const workspaces = new Hono<AppEnv>();

/** Records a workspace in the KV directory (by name, and under its owner). */
export async function listWorkspace(env: Env, name: string, meta: { owner: string; created: number; forkedFrom?: string }): Promise<void> {
  await Promise.all([
    env.KV.put(`ws:${name}`, JSON.stringify(meta), { metadata: meta }),
    env.KV.put(`owner:${meta.owner}:${name}`, "", { metadata: meta }),
  ]);
}

workspaces.get("/", async (c) => {
  const cred = await credOf(c);
  if (cred.type !== "key") throw new FsError("EACCES", "list workspaces with a key");
  const k = cred as Extract<Cred, { type: "key" }>;
  unwrap(await keyStub(c.env, k.pubkey).touch(cred));
  const admin = (c.env.ADMIN_PUBKEYS ?? "").split(",").map((s) => s.trim()).includes(k.pubkey);
  const all = c.req.query("all") === "1";
  if (all && !admin) throw new FsError("EACCES", "only an admin key lists every workspace");
  const prefix = all ? "ws:" : `owner:${k.pubkey}:`;
  const out: Array<Record<string, unknown>> = [];
  let cursor: string | undefined;
  do {
    const l = await c.env.KV.list<{ owner: string; created: number }>({ prefix, ...(cursor ? { cursor } : {}) });
    for (const key of l.keys) out.push({ name: key.name.slice(prefix.length), ...(key.metadata ?? {}) });
    cursor = l.list_complete ? undefined : l.cursor;
  } while (cursor);
  return c.json({ workspaces: out });
});

workspaces.post("/:name", body(256 * 1024), async (c) => {
  const name = wsName(c);
  const r = unwrap(await stubOf(c.env, name).create(await credOf(c), name));
  if (r.created) await listWorkspace(c.env, name, { owner: r.owner, created: Date.now() });
  return c.json({ name, ...r }, r.created ? 201 : 200);
});

workspaces.get("/:name", async (c) => {
  const name = wsName(c);
  return c.json(unwrap(await stubOf(c.env, name).info(await credOf(c))));
});

workspaces.post("/:name/session", body(1024), async (c) => {
  const name = wsName(c);
  return c.json(unwrap(await stubOf(c.env, name).session(await credOf(c))), 201);
});
