// The namespace registry (KV): an agent id maps to its mounts; the first key to register owns it.
import { Hono } from "hono";
import { FsError } from "../../runtime/errors.ts";
import { NAME_RE } from "../../services/remote-wire.ts";
import { unwrap } from "../errors.ts";
import { registryKey } from "../workspace/registry.ts";
import { body, credOf, jsonOf, stubOf, type AppEnv } from "./request.ts";

export const registry = new Hono<AppEnv>();

const agentOf = (id: string): string => {
  if (!NAME_RE.test(id)) throw new FsError("EINVAL", "bad agent id");
  return id;
};

registry.put("/:agent", body(256 * 1024), async (c) => {
  const agent = agentOf(c.req.param("agent"));
  const cred = await credOf(c);
  const mounts = jsonOf(c).mounts;
  if (typeof mounts !== "object" || mounts === null || Array.isArray(mounts)) throw new FsError("EINVAL", "mounts must map paths to sources");
  for (const [k, v] of Object.entries(mounts as object)) {
    if (!k.startsWith("/") || typeof v !== "string") throw new FsError("EINVAL", "mounts map absolute paths to source strings");
  }
  const r = unwrap(await stubOf(c.env, "@agent:" + agent).registryPut(cred, agent, JSON.stringify({ agent, mounts, updated: Date.now() })));
  return c.json(r, 201);
});

registry.get("/:agent", async (c) => {
  const agent = agentOf(c.req.param("agent"));
  const cred = await credOf(c);
  const [auth, fast] = await Promise.all([
    stubOf(c.env, "@agent:" + agent).authenticate(cred, [{ path: "", write: false }]),
    c.env.KV.get(registryKey(agent)),
  ]);
  unwrap(auth);
  if (!fast) throw new FsError("ENOENT", `agent ${agent}`);
  return new Response(fast, { headers: { "content-type": "application/json" } });
});
