// The edge HTTP API (documented in edge/README.md): a Hono app of route modules, mounted by
// edge/worker.ts. Every route but `GET /edge` is authenticated (edge/auth.ts). Errors are always
// `{"error":{"code","message"}}`, unknown routes included, with the status from edge/errors.ts.
import { Hono } from "hono";
import { FsError } from "../../runtime/errors.ts";
import { statusOf } from "../errors.ts";
import { errorReply } from "../workspace/reply.ts";
import { audit } from "./audit.ts";
import { caps } from "./caps.ts";
import { files } from "./files.ts";
import { grants } from "./grants.ts";
import { history } from "./history.ts";
import { jobs } from "./jobs.ts";
import { logs } from "./logs.ts";
import { registry } from "./registry.ts";
import type { AppEnv } from "./request.ts";
import { run } from "./run.ts";
import { tasks } from "./tasks.ts";
import { workspaces } from "./workspaces.ts";
import { providers } from "../provider/http.ts";

export const VERSION = "0.1.0";

/** The JSON error answer every failure gets. */
export function errorResponse(e: unknown): Response {
  const r = errorReply(e);
  const status = e instanceof FsError ? statusOf(e) : r.status;
  return Response.json({ error: r.error }, { status, headers: status === 401 ? { "www-authenticate": 'Nostr realm="oanix"' } : {} });
}

export const edgeApp = new Hono<AppEnv>()
  .get("/edge", (c) => c.json({
    name: "oanix-edge", version: VERSION,
    routes: ["/w/:name", "/w/:name/batch", "/w/:name/f/*", "/w/:name/versions", "/w/:name/snapshots", "/w/:name/fork",
      "/w/:name/grants", "/w/:name/jobs", "/w/:name/task/:id/:file", "/w/:name/logs/:stream", "/w/:name/audit", "/w/:name/run", "/w/:name/caps", "/w/:name/secrets", "/registry/:agent", "/api/providers", "/relay",
      "/api/planning/runs", "/api/planning/runs/:id", "/api/planning/runs/:id/resume", "/api/planning/runs/:id/package", "/api/planning/parked", "/api/webhooks"],
    auth: "NIP-98 (Authorization: Nostr <base64 event>) or capability token (Authorization: Bearer oanix_...)",
  }))
  .route("/w", workspaces)
  .route("/w/:name", files)
  .route("/w/:name", history)
  .route("/w/:name", grants)
  .route("/w/:name", jobs)
  .route("/w/:name", audit)
  .route("/w/:name", tasks)
  .route("/w/:name", logs)
  .route("/w/:name", run)
  .route("/w/:name", caps)
  .route("/registry", registry)
  .route("/api/providers", providers)
  .notFound((c) => errorResponse(new FsError("ENOENT", `no route ${c.req.method} ${new URL(c.req.url).pathname}`)))
  .onError((e) => errorResponse(e));
