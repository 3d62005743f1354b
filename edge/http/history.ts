// Versions, snapshots and forks (a fork is a new workspace holding the tree at a version; R2
// pieces are shared, never copied).
import { Hono } from "hono";
import { FsError } from "../../runtime/errors.ts";
import { NAME_RE } from "../../services/remote-wire.ts";
import type { Cred } from "../auth.ts";
import { unwrap } from "../errors.ts";
import { body, credOf, jsonOf, natural, stubOf, wsName, type AppEnv } from "./request.ts";
import { listWorkspace } from "./workspaces.ts";

export const history = new Hono<AppEnv>();

history.get("/versions", async (c) => {
  const name = wsName(c);
  return c.json(unwrap(await stubOf(c.env, name).versions(await credOf(c), c.req.query("path"), natural(c.req.query("limit"), "limit", 100))));
});

history.get("/snapshots", async (c) => {
  const name = wsName(c);
  return c.json({ snapshots: unwrap(await stubOf(c.env, name).snapshots(await credOf(c))) });
});

history.post("/snapshots", body(256 * 1024), async (c) => {
  const name = wsName(c);
  const cred = await credOf(c);
  const b = jsonOf(c);
  return c.json(unwrap(await stubOf(c.env, name).snapshot(cred, String(b.name ?? ""))), 201);
});

history.post("/fork", body(256 * 1024), async (c) => {
  const name = wsName(c);
  const cred = await credOf(c);
  const b = jsonOf(c);
  const to = String(b.to ?? "");
  if (!NAME_RE.test(to)) throw new FsError("EINVAL", "fork needs a valid `to` name");
  if (cred.type !== "key") throw new FsError("EACCES", "forks are made by keys (NIP-98)");
  let version: number | undefined;
  if (b.version !== undefined) version = natural(b.version, "version");
  const src = stubOf(c.env, name);
  // Rights on the source first; the snapshot lookup and the export run as that principal.
  const principal = unwrap(await src.authenticate(cred, [{ path: "", write: false }]));
  const inner: Cred = { type: "internal", principal };
  if (typeof b.snapshot === "string") {
    const v = unwrap(await src.snapshotVersion(inner, b.snapshot));
    if (v === null) throw new FsError("ENOENT", `snapshot ${b.snapshot}`);
    version = v;
  }
  const tree = unwrap(await src.exportTree(inner, version));
  const k = cred as Extract<Cred, { type: "key" }>;
  const from = `${name}@${tree.version}`;
  const r = unwrap(await stubOf(c.env, to).importTree({ type: "internal", principal: { kind: "owner", pubkey: k.pubkey } }, to, from, tree));
  await listWorkspace(c.env, to, { owner: k.pubkey, created: Date.now(), forkedFrom: from });
  return c.json({ name: to, from: name, version: tree.version, files: tree.nodes.length, head: r.version }, 201);
});
