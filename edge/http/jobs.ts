// Jobs (D1): queued → running → succeeded | failed, with events.
import { Hono } from "hono";
import { FsError } from "../../runtime/errors.ts";
import { actorOf } from "../auth.ts";
import { createJob, transition, getJob, listJobs, addEvent, type JobState } from "../d1.ts";
import { authFor, body, credOf, jsonOf, wsName, type AppEnv } from "./request.ts";

export const jobs = new Hono<AppEnv>();

jobs.get("/jobs", async (c) => {
  const name = wsName(c);
  await authFor(c, name, await credOf(c), false);
  return c.json({ jobs: await listJobs(c.env.DB, name, c.req.query("state")) });
});

jobs.post("/jobs", body(256 * 1024), async (c) => {
  const name = wsName(c);
  const cred = await credOf(c);
  const b = jsonOf(c);
  const { principal } = await authFor(c, name, cred, true);
  return c.json(await createJob(c.env.DB, name, actorOf(principal), String(b.kind ?? ""), b.input), 201);
});

jobs.get("/jobs/:id", async (c) => {
  const name = wsName(c);
  await authFor(c, name, await credOf(c), false);
  return c.json(await getJob(c.env.DB, name, c.req.param("id")));
});

jobs.post("/jobs/:id/state", body(256 * 1024), async (c) => {
  const name = wsName(c);
  const cred = await credOf(c);
  const b = jsonOf(c);
  await authFor(c, name, cred, true);
  return c.json(await transition(c.env.DB, name, c.req.param("id"), b.state as JobState, {
    ...(b.result !== undefined ? { result: b.result } : {}),
    ...(typeof b.error === "string" ? { error: b.error } : {}),
  }));
});

jobs.post("/jobs/:id/events", body(256 * 1024), async (c) => {
  const name = wsName(c);
  const cred = await credOf(c);
  const b = jsonOf(c);
  await authFor(c, name, cred, true);
  const id = c.req.param("id");
  await getJob(c.env.DB, name, id);
  const type = String(b.type ?? "");
  if (!/^[a-z][a-z0-9_.-]{0,31}$/.test(type) || ["queued", "running", "succeeded", "failed"].includes(type)) throw new FsError("EINVAL", "bad event type");
  await addEvent(c.env.DB, id, type, b.data);
  return c.json({ ok: true }, 201);
});
