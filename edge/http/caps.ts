// The workspace's capabilities at the edge (owner only): the cap policy every run is checked
// against, the agents' Nostr identity, and the secrets store (values go in, never come out).
import { Hono } from "hono";
import { FsError } from "../../runtime/errors.ts";
import { parseHosts } from "../../services/cap/hosts.ts";
import { parsePolicy } from "../caps/policy.ts";
import { unwrap } from "../errors.ts";
import { body, credOf, jsonOf, stubOf, wsName, type AppEnv } from "./request.ts";

export const caps = new Hono<AppEnv>();

caps.get("/caps", async (c) => c.json(unwrap(await stubOf(c.env, wsName(c)).capsGet(await credOf(c)))));

caps.put("/caps", body(64 * 1024), async (c) => {
  const name = wsName(c);
  const cred = await credOf(c);
  return c.json(unwrap(await stubOf(c.env, name).capsPut(cred, parsePolicy(jsonOf(c)))));
});

caps.get("/secrets", async (c) => c.json({ secrets: unwrap(await stubOf(c.env, wsName(c)).secretList(await credOf(c))) }));

caps.put("/secrets/:secret", body(16 * 1024), async (c) => {
  const name = wsName(c);
  const cred = await credOf(c);
  const b = jsonOf(c);
  if (typeof b.value !== "string") throw new FsError("EINVAL", 'a secret is {"value": string, "hosts": [host pattern…]}');
  const hosts = b.hosts;
  if (!Array.isArray(hosts) || !hosts.length || !hosts.every((h) => typeof h === "string")) {
    throw new FsError("EINVAL", 'a secret is bound to hosts: "hosts" is a non-empty array of host patterns (host, host:port, *.domain, *)');
  }
  parseHosts(hosts as string[]);
  const info = unwrap(await stubOf(c.env, name).secretPut(cred, c.req.param("secret"), b.value, hosts as string[]));
  return c.json({ name: info.name, hosts: info.hosts });
});

caps.delete("/secrets/:secret", async (c) => c.json(unwrap(await stubOf(c.env, wsName(c)).secretDelete(await credOf(c), c.req.param("secret")))));
