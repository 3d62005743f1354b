// The OANIX Worker: a small Hono app. Each concern adds its routes and exports its Durable Objects here.
import { Hono } from "hono";
import { FsError } from "../runtime/errors.ts";
import { NostrRelay, RelayStorageShard, handleRelayRequest } from "../relay/index.ts";
// edge: workspaces, files, versions, grants, jobs, audit, task, logs, registry (edge/http/, edge/README.md).
import { edgeApp, errorResponse } from "./http/app.ts";
import { assets } from "./http/assets.ts";
import { Workspace } from "./workspace/index.ts";
import { Runner } from "./runner.ts";
// edge providers: the NIP-90 handler, wrangler.toml's providers on the relay, the admin route (edge/provider/).
import { ProviderJob, ensureConfigured, type ProviderEnv } from "./provider/index.ts";
// planning: runs, parked ideas and webhooks (edge/http/planning.ts), each run a Durable Object.
import { api } from "./http/planning.ts";
import { PlanningRun } from "./planning/run.ts";

// relay: the Nostr relay Durable Object binding (wrangler.toml [[durable_objects.bindings]] RELAY).
type RelayBindings = { RELAY: DurableObjectNamespace<NostrRelay> };

const app = new Hono<{ Bindings: RelayBindings }>();

// browser: the console page at `/`, the library at `/oanix.js`, its worker, the page's agents (edge/http/assets.ts).
app.route("/", assets);

// relay: WebSocket upgrade and NIP-11 on the same URL, with CORS (relay/http.ts).
// edge providers: wrangler.toml's are registered before a connection can ask for a job (one RPC).
const relayRoute = async (c: { req: { raw: Request }; env: RelayBindings }) => {
  await ensureConfigured(c.env as unknown as ProviderEnv).catch((e) => console.error("edge providers: not registered:", e));
  return handleRelayRequest(c.req.raw, c.env.RELAY);
};
app.all("/relay", relayRoute);
app.all("/relay/", relayRoute);

// edge: the workspace API (every route authenticated; see edge/README.md).
app.all("/w", (c) => edgeApp.fetch(c.req.raw, c.env, c.executionCtx));
app.all("/w/*", (c) => edgeApp.fetch(c.req.raw, c.env, c.executionCtx));
app.all("/registry/*", (c) => edgeApp.fetch(c.req.raw, c.env, c.executionCtx));
app.all("/api/providers", (c) => edgeApp.fetch(c.req.raw, c.env, c.executionCtx));
app.all("/api/providers/*", (c) => edgeApp.fetch(c.req.raw, c.env, c.executionCtx));
app.get("/edge", (c) => edgeApp.fetch(c.req.raw, c.env, c.executionCtx));
app.all("/api/*", (c) => api.fetch(c.req.raw, c.env, c.executionCtx));

// Anything else: the edge's JSON error shape, not a plain-text 404.
app.notFound((c) => errorResponse(new FsError("ENOENT", `no route ${c.req.method} ${new URL(c.req.url).pathname}`)));

export { NostrRelay, RelayStorageShard }; // relay: the relay and its storage shards (RELAY_SHARDS)
export { Workspace, Runner }; // edge: Durable Objects (wrangler.toml WORKSPACE, RUNNER)
export { PlanningRun }; // planning: Durable Object (wrangler.toml PLANNING)
export { ProviderJob }; // edge providers: one Durable Object per job (wrangler.toml PROVIDER_JOBS)
export default app;
