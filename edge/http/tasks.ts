// Task files: written through the workspace object (the authority), read from KV (fast), with
// the object answering when KV has no copy yet.
import { Hono } from "hono";
import { FsError } from "../../runtime/errors.ts";
import { INLINE_MAX, NAME_RE } from "../../services/remote-wire.ts";
import { unwrap } from "../errors.ts";
import { taskKey } from "../workspace/index.ts";
import { body, credOf, stubOf, wsName, type AppEnv } from "./request.ts";

export const tasks = new Hono<AppEnv>();

tasks.get("/task/:id/:file", async (c) => {
  const name = wsName(c);
  const id = c.req.param("id"), file = c.req.param("file");
  if (!NAME_RE.test(id) || !NAME_RE.test(file)) throw new FsError("EINVAL", "bad task id or file name");
  const stub = stubOf(c.env, name);
  const cred = await credOf(c);
  // Authorisation and the KV read run side by side; the object answers only when KV has no copy.
  const [auth, fast] = await Promise.all([stub.authenticate(cred, [{ path: "", write: false }]), c.env.KV.get(taskKey(name, id, file), "arrayBuffer")]);
  const principal = unwrap(auth);
  let data: Uint8Array | null = fast ? new Uint8Array(fast) : null;
  let source = "kv";
  if (!data) {
    data = unwrap(await stub.taskGet({ type: "internal", principal }, id, file));
    source = "do";
  }
  if (!data) throw new FsError("ENOENT", `task ${id}/${file}`);
  return new Response(data, { headers: { "content-type": file.endsWith(".json") ? "application/json" : "application/octet-stream", "x-oanix-source": source } });
});

tasks.put("/task/:id/:file", body(INLINE_MAX), async (c) => {
  const name = wsName(c);
  return c.json(unwrap(await stubOf(c.env, name).taskPut(await credOf(c), c.req.param("id"), c.req.param("file"), c.get("body"))), 201);
});
