// The edge process runner: runs a bundled agent in a Runner object over this workspace, as a
// D1 job (edge/runner.ts).
import { Hono } from "hono";
import { FsError } from "../../runtime/errors.ts";
import { actorOf } from "../auth.ts";
import { createJob } from "../d1.ts";
import { busy, unwrap } from "../errors.ts";
import { PROGRAMS } from "../programs.ts";
import { llmProvider, parseBudgets, parseRunCaps } from "../caps/policy.ts";
import { authFor, body, credOf, jsonOf, stubOf, wsName, type AppEnv } from "./request.ts";

export const run = new Hono<AppEnv>();

/**
 * Runs in progress in this isolate, across workspaces (each workspace has its own bound too,
 * edge/workspace/runs.ts). The local edge is one isolate, so this bounds the whole local edge; on
 * Cloudflare it bounds each isolate.
 */
export const MAX_RUNS_PER_EDGE = 3;
let running = 0;

run.post("/run", body(256 * 1024), async (c) => {
  const name = wsName(c);
  const cred = await credOf(c);
  const b = jsonOf(c);
  const { principal, inner } = await authFor(c, name, cred, true);
  const program = String(b.program ?? "");
  if (!Object.hasOwn(PROGRAMS, program)) throw new FsError("ENOENT", `no bundled program "${program}" (have: ${Object.keys(PROGRAMS).join(", ")})`);
  const args = b.args ?? [];
  if (!Array.isArray(args) || !args.every((a) => typeof a === "string")) throw new FsError("EINVAL", "args is an array of strings");
  const envv = b.env ?? {};
  if (typeof envv !== "object" || envv === null || !Object.values(envv).every((v) => typeof v === "string")) throw new FsError("EINVAL", "env maps names to strings");
  const lim = (b.limits ?? {}) as Record<string, unknown>;
  const limits: Record<string, number> = {};
  for (const k of ["wallTimeMs", "memoryBytes", "outputBytes"]) {
    if (lim[k] === undefined) continue;
    const v = lim[k];
    if (typeof v !== "number" || !(v > 0)) throw new FsError("EINVAL", `limits.${k} is a positive number`);
    limits[k] = v;
  }
  const caps = parseRunCaps(b.caps);
  const asked = parseBudgets(b.budgets);
  if (caps.llm && llmProvider(caps.llm) === "workers-ai" && !c.env.AI) throw new FsError("ENOTSUP", "llm workers-ai: this edge has no AI binding (wrangler.toml [ai] binding = \"AI\")");
  // Admission before anything is created: a refused run leaves no job behind.
  const budgets = Object.keys(caps).length || Object.keys(asked).length ? unwrap(await stubOf(c.env, name).capsAdmit(inner, caps, asked)) : {};
  if (running >= MAX_RUNS_PER_EDGE) throw busy(`${running} runs are in progress on this edge (at most ${MAX_RUNS_PER_EDGE}); try again when one ends`);
  const stub = stubOf(c.env, name);
  const slot = crypto.randomUUID();
  running++;
  const release = async () => {
    running--;
    await stub.runRelease(inner, slot).catch(() => {});
  };
  let started: Promise<unknown>;
  try {
    unwrap(await stub.runAdmit(inner, slot));
    const job = await createJob(c.env.DB, name, actorOf(principal), "run:" + program, { args, env: envv, limits, task: b.task ?? {}, caps, budgets });
    unwrap(await stub.taskPut(inner, job.id, "spec.json", new TextEncoder().encode(JSON.stringify(b.task ?? {}))));
    const runner = c.env.RUNNER.get(c.env.RUNNER.idFromName(job.id));
    const result: Promise<unknown> = runner.run({
      ws: name, job: job.id, principal, program, args: args as string[], env: envv as Record<string, string>, limits,
      caps, budgets, origin: new URL(c.req.url).origin,
    });
    started = result.finally(release);
    if (b.wait === false) {
      c.executionCtx.waitUntil(started.then(() => undefined, () => undefined));
      return c.json({ job: job.id, state: "queued" }, 202);
    }
  } catch (e) {
    await release();
    throw e;
  }
  return c.json(await started);
});
