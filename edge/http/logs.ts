// Log streams: appends (buffered in the object, segments in R2), reads, and a live tail.
import { Hono } from "hono";
import { INLINE_MAX } from "../../services/remote-wire.ts";
import { resolveSegs } from "../blobs.ts";
import { unwrap } from "../errors.ts";
import { body, credOf, natural, stubOf, wsName, type AppEnv } from "./request.ts";

export const logs = new Hono<AppEnv>();

logs.post("/logs/:stream", body(INLINE_MAX), async (c) => {
  const name = wsName(c);
  return c.json(unwrap(await stubOf(c.env, name).logAppend(await credOf(c), c.req.param("stream"), c.get("body"))));
});

logs.get("/logs/:stream", async (c) => {
  const name = wsName(c);
  const stream = c.req.param("stream");
  const from = natural(c.req.query("from"), "from (a byte offset)", 0);
  const cred = await credOf(c);
  const stub = stubOf(c.env, name);
  if (c.req.query("follow") === "1") {
    const s = unwrap(await stub.follow(cred, stream, from));
    return new Response(s, { headers: { "content-type": "application/octet-stream", "cache-control": "no-store" } });
  }
  const r = unwrap(await stub.logRead(cred, stream, from, 16 * 1024 * 1024));
  const bytes = await resolveSegs(c.env.BLOBS, r.segs);
  return new Response(bytes, { headers: { "content-type": "text/plain; charset=utf-8", "x-oanix-log-length": String(r.length) } });
});
