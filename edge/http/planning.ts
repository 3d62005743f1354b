// The planning API (edge/README.md, "Planning runs"): runs of the planning machine, their
// artifacts and parked ideas, and webhook destinations. NIP-98 only: a run belongs to the key that
// asked for it, and another key's run does not exist for you (404). Runs live in D1 and in their
// workspace; each is driven by its own Durable Object (edge/planning/run.ts).
import { Hono } from "hono";
import { FsError, fsError } from "../../runtime/errors.ts";
import { NAME_RE } from "../../services/remote-wire.ts";
import { checkIdea, PlanError } from "../../agents/host/planning/orchestrator.ts";
import { newRunId } from "../../agents/host/planning/record.ts";
import { AuthError, type Cred, type Principal } from "../auth.ts";
import { unwrap } from "../errors.ts";
import { edgeProvider } from "../planning/llm.ts";
import { packageKey } from "../planning/outbox.ts";
import { getRun, listParked, listRuns, runOf } from "../planning/store.ts";
import { addDestination, listDestinations, removeDestination } from "../planning/webhooks.ts";
import { errorResponse } from "./app.ts";
import { body, credOf, jsonOf, keyStub, natural, stubOf, type AppEnv, type C } from "./request.ts";
import { listWorkspace } from "./workspaces.ts";

const RUN_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** The signing key (NIP-98, each event accepted once); tokens are refused: runs belong to keys. */
async function keyOf(c: C): Promise<{ pubkey: string; cred: Cred }> {
  const cred = await credOf(c);
  if (cred.type !== "key") throw new AuthError(403, "planning runs and webhooks belong to a key: sign the request with NIP-98");
  unwrap(await keyStub(c.env, cred.pubkey).touch(cred));
  return { pubkey: cred.pubkey, cred };
}

const runId = (c: C): string => {
  const id = c.req.param("id") ?? "";
  if (!RUN_RE.test(id)) throw fsError("EINVAL", "a run id is 1-100 of [A-Za-z0-9._-]");
  return id;
};

/** An optional natural number within [min, max]. */
function bounded(v: unknown, what: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = natural(v, what);
  if (n < min || n > max) throw fsError("EINVAL", `${what} must be from ${min} to ${max}`);
  return n;
}

const planning = new Hono<AppEnv>();

planning.post("/runs", body(64 * 1024), async (c) => {
  const { pubkey, cred } = await keyOf(c);
  const b = jsonOf(c);
  if (typeof b.idea !== "string") throw fsError("EINVAL", "idea is the text of the idea");
  let idea: string;
  try {
    idea = checkIdea(b.idea);
  } catch (e) {
    if (e instanceof PlanError) throw fsError("EINVAL", e.message);
    throw e;
  }
  const llm = b.llm ?? "offline";
  if (typeof llm !== "string") throw fsError("EINVAL", "llm is offline, workers-ai[#MODEL] or openai:URL[#MODEL]");
  edgeProvider(c.env, llm); // refuses a model this edge cannot use, before anything is created
  const reviewIterations = bounded(b.reviewIterations, "reviewIterations", 1, 10);
  const maxPivots = bounded(b.maxPivots, "maxPivots", 0, 10);
  const budgetTokens = bounded(b.budgetTokens, "budgetTokens", 1, 100_000_000);
  const maxTokens = bounded(b.maxTokens, "maxTokens", 1, 100_000);
  const run = newRunId();
  let workspace: string;
  let principal: Principal;
  if (b.workspace !== undefined) {
    if (typeof b.workspace !== "string" || !NAME_RE.test(b.workspace)) throw fsError("EINVAL", "workspace names are 1-63 of [A-Za-z0-9._-], starting with a letter or digit");
    workspace = b.workspace;
    // The run writes plans/ (its own directory under it) and reads what its phases wrote there.
    principal = unwrap(await stubOf(c.env, workspace).authenticate(cred, [{ path: "plans", write: true }]));
  } else {
    workspace = `plan-${run}`;
    const r = unwrap(await stubOf(c.env, workspace).create(cred, workspace));
    if (r.created) await listWorkspace(c.env, workspace, { owner: r.owner, created: Date.now() });
    principal = { kind: "owner", pubkey };
  }
  const stub = c.env.PLANNING.get(c.env.PLANNING.idFromName(run));
  const out = unwrap(await stub.start({
    run, owner: pubkey, workspace, principal, idea, llm, reviewIterations, maxPivots, maxTokens, limit: budgetTokens ?? null, created: Date.now(),
  }));
  return c.json({ id: run, status: out.status, workspace, idea, createdAt: out.createdAt }, 202);
});

planning.get("/runs", async (c) => {
  const { pubkey } = await keyOf(c);
  return c.json({ runs: await listRuns(c.env.DB, pubkey) });
});

planning.get("/runs/:id", async (c) => {
  const { pubkey } = await keyOf(c);
  const id = runId(c);
  const run = await getRun(c.env.DB, pubkey, id);
  // Asking is also a nudge: a running run always has its alarm set (after an eviction too).
  const info = unwrap(await c.env.PLANNING.get(c.env.PLANNING.idFromName(id)).info(pubkey));
  return c.json({ ...run, deliveries: info.deliveries });
});

planning.get("/runs/:id/package", async (c) => {
  const { pubkey } = await keyOf(c);
  const id = runId(c);
  const r = await runOf(c.env.DB, pubkey, id);
  const obj = r.package_key ? await c.env.BLOBS.get(r.package_key as string) : null;
  if (!obj) throw fsError("ENOENT", `run ${id} has no package (yet): it is ${r.status}`);
  return new Response(obj.body, { headers: { "content-type": "text/markdown; charset=utf-8", "x-oanix-path": String(r.package_path) } });
});

planning.post("/runs/:id/resume", body(4096), async (c) => {
  const { pubkey } = await keyOf(c);
  const id = runId(c);
  const b = jsonOf(c);
  const budgetTokens = bounded(b.budgetTokens, "budgetTokens", 1, 100_000_000);
  await runOf(c.env.DB, pubkey, id);
  const out = unwrap(await c.env.PLANNING.get(c.env.PLANNING.idFromName(id)).resume(pubkey, budgetTokens));
  return c.json({ id, status: out.status });
});

planning.get("/parked", async (c) => {
  const { pubkey } = await keyOf(c);
  return c.json({ parked: await listParked(c.env.DB, pubkey) });
});

const webhooks = new Hono<AppEnv>();

webhooks.post("/", body(16 * 1024), async (c) => {
  const { pubkey } = await keyOf(c);
  return c.json(await addDestination(c.env, pubkey, jsonOf(c)), 201);
});

webhooks.get("/", async (c) => {
  const { pubkey } = await keyOf(c);
  return c.json({ webhooks: await listDestinations(c.env.DB, pubkey) });
});

webhooks.delete("/:id", async (c) => {
  const { pubkey } = await keyOf(c);
  const id = c.req.param("id");
  if (!/^[0-9a-f-]{36}$/.test(id)) throw fsError("ENOENT", "no such webhook");
  await removeDestination(c.env.DB, pubkey, id);
  return c.body(null, 204);
});

/** `/api/planning/*` and `/api/webhooks`, mounted by edge/worker.ts. */
export const api = new Hono<AppEnv>()
  .route("/api/planning", planning)
  .route("/api/webhooks", webhooks)
  .notFound((c) => errorResponse(new FsError("ENOENT", `no route ${c.req.method} ${new URL(c.req.url).pathname}`)))
  .onError((e) => errorResponse(e));
