// The audit log (D1): entries after a sequence number, and a verification of the whole chain
// against the head the workspace object holds.
import { Hono } from "hono";
import { auditEntries, verifyAudit } from "../d1.ts";
import { unwrap } from "../errors.ts";
import { credOf, natural, stubOf, wsName, type AppEnv } from "./request.ts";

export const audit = new Hono<AppEnv>();

audit.get("/audit", async (c) => {
  const name = wsName(c);
  const head = unwrap(await stubOf(c.env, name).auditHead(await credOf(c)));
  return c.json({ head, entries: await auditEntries(c.env.DB, name, natural(c.req.query("after"), "after", 0), natural(c.req.query("limit"), "limit", 200)) });
});

audit.get("/audit/verify", async (c) => {
  const name = wsName(c);
  const head = unwrap(await stubOf(c.env, name).auditHead(await credOf(c)));
  return c.json({ head, ...(await verifyAudit(c.env.DB, name, head)) });
});
