// The edge provider's job life: the `oanix-provider` handler the relay hands job requests to
// (relay/nip90.ts defineEdgeAgent), running the provider's bundled program in a Runner Durable
// Object over the provider's workspace, as `oanix serve` does in Node (agents/host/serve.ts; the
// spec, the events and the reasons are the same code, agents/host/spec.ts and answers.ts).
//
// A request's life: claimed once in D1 (a second hand-over is ignored); `error` feedback when it is
// malformed, bids below the price, or names a job/event input (not resolved at the edge); else
// `processing`, the provider's caps checked against the workspace's cap policy as it is now (a
// refusal is `error` feedback naming what it does not allow), url inputs fetched when http is
// granted (inputs.ts), a run slot of the workspace (queued requests get a second `processing` saying
// so), /task/spec.json written as the workspace's task file, `Runner.run` with the caps, and a result event
// (kind + 1000) or `error` feedback with the exit status and the end of stderr. A kind-5 deletion
// by the customer ends it: a request still waiting never runs; one already running in its Runner
// runs on to its exit or wall-time limit (Runner.run has no stop, and a guest spinning in its
// object would not let a stop in before then anyway), and nothing is published for it.
import { env as workerEnv } from "cloudflare:workers";
import { defineEdgeAgent, type JobContext } from "../../relay/nip90.ts";
import type { NostrEvent } from "../../relay/event.ts";
import { encrypt } from "../../agents/host/cipher.ts";
import { MAX_RESULT_CHARS, NO_RESULT, STDERR_TAIL, exitReason, feedback, result, resultContent, type Template } from "../../agents/host/answers.ts";
import { BadRequest, Cancelled, sleepUnlessCancelled, expiration, readRequest, requestTags, type JobSpec } from "../../agents/host/spec.ts";
import { actorOf, type Cred, type Principal } from "../auth.ts";
import { resolveSegs } from "../blobs.ts";
import { addEvent, createJob } from "../d1.ts";
import { ReplyError } from "../errors.ts";
import type { RunResult } from "../runner.ts";
import { resolveUrlInputs } from "./inputs.ts";
import { configured, reason, type ProviderConfig, type ProviderEnv } from "./config.ts";
import { masterKey, providerKey, type ProviderKey } from "./keys.ts";
import { HANDLER, now, signWith, withdraw } from "./relay.ts";
import { cancelRequest, claim, recordRun, settle, storedProvider } from "./store.ts";

/** How long a request waits for one of its workspace's run slots before it is refused. */
export const QUEUE_TIMEOUT_MS = 60_000;
const SLOT_POLL_MS = 250;


/** Requests being served in this isolate, by `provider\nrequest`: a cancel aborts the wait. */
const serving = new Map<string, AbortController>();

/** The provider a registration names: wrangler.toml first, then the admin route's. */
export async function providerNamed(env: ProviderEnv, name: string): Promise<ProviderConfig | null> {
  return configured(env).find((p) => p.name === name) ?? (await storedProvider(env.DB, name))?.config ?? null;
}

/** The workspace's owner, from the edge's directory (KV `ws:NAME`); a pinned owner must match. */
async function ownerOf(env: ProviderEnv, p: ProviderConfig): Promise<string> {
  const meta = await env.KV.get<{ owner: string }>(`ws:${p.workspace}`, "json");
  if (!meta?.owner) throw new BadRequest(`provider error: workspace ${p.workspace} does not exist`);
  if (p.owner && p.owner !== meta.owner) throw new BadRequest(`provider error: workspace ${p.workspace} is not owned by the provider's owner`);
  return meta.owner;
}

export async function serveJob(env: ProviderEnv, job: NostrEvent, ctx: JobContext): Promise<void> {
  const name = ctx.registration.agent;
  const master = masterKey(env);
  if (!master) return console.error(`edge provider ${name}: PROVIDER_KEY is not set; job ${job.id} not served`);
  const p = await providerNamed(env, name);
  if (!p || p.kind !== job.kind) {
    // Removed (or moved to another kind) since it was registered: withdraw the stale registration.
    console.warn(`edge provider ${name}: no longer serves kind ${job.kind}; withdrawing it`);
    return withdraw(env, master, ctx.registration);
  }
  const key = providerKey(master, name);
  const exp = expiration(job);
  if (exp !== undefined && exp <= now()) return;
  const to = job.tags.filter((t) => t[0] === "p").map((t) => t[1]);
  if (to.length && !to.includes(key.pubkey)) return;
  let read: ReturnType<typeof requestTags>;
  try {
    read = requestTags(job, key.secretKey, key.pubkey);
  } catch (e) {
    read = null;
    if (!(e instanceof BadRequest)) throw e;
    if (await claim(env.DB, name, job.id)) await refuse(env, ctx, key, name, job, e.message);
    return;
  }
  if (!read) return; // encrypted for another provider
  // Once per (provider, request), whichever isolate and however often the relay hands it over.
  if (!(await claim(env.DB, name, job.id))) return;
  const ctl = new AbortController();
  serving.set(`${name}\n${job.id}`, ctl);
  const say = async (t: Template) => {
    const r = await ctx.publish(signWith(key, t));
    if (!r.ok) console.error(`edge provider ${name}: job ${job.id}: event refused: ${r.message}`);
  };
  try {
    const spec = readRequest(job, read.tags);
    if (p.price && spec.bid !== undefined && spec.bid < p.price) throw new BadRequest(`bid of ${spec.bid} msats is below the price of ${p.price} msats`);
    for (const [i, input] of spec.input.entries())
      if (input.type === "job" || input.type === "event") throw new BadRequest(`input ${i + 1} (${input.type}): edge providers do not resolve ${input.type} inputs yet; send its text`);
    await say(feedback(job, "processing", ""));
    const content = await run(env, p, spec, ctl.signal, () => say(feedback(job, "processing", `queued: waiting for a run slot in workspace ${p.workspace}`)));
    if (content.length > MAX_RESULT_CHARS) throw new BadRequest(`result is ${content.length} characters, over the ${MAX_RESULT_CHARS} a result event may carry`);
    // The one answer: a cancel that landed meanwhile (here or in another isolate) wins.
    if (ctl.signal.aborted || !(await settle(env.DB, name, job.id, "answered"))) return;
    const body = read.cipher ? encrypt(key.secretKey, job.pubkey, content, read.cipher) : content;
    await say(result(job, body, { plainTags: read.tags, encrypted: read.cipher !== null, ...(p.price ? { price: p.price } : {}) }));
  } catch (e) {
    if (e instanceof Cancelled || ctl.signal.aborted) return;
    const why = e instanceof BadRequest ? e.message : `provider error: ${reason(e)}`;
    console.error(`edge provider ${name}: job ${job.id}: ${why}`);
    if (await settle(env.DB, name, job.id, "failed")) await say(feedback(job, "error", why));
  } finally {
    serving.delete(`${name}\n${job.id}`);
  }
}

async function refuse(env: ProviderEnv, ctx: JobContext, key: ProviderKey, name: string, job: NostrEvent, why: string): Promise<void> {
  if (!(await settle(env.DB, name, job.id, "failed"))) return;
  const r = await ctx.publish(signWith(key, feedback(job, "error", why)));
  if (!r.ok) console.error(`edge provider ${name}: job ${job.id}: error feedback refused: ${r.message}`);
}

/**
 * One run of the provider's program for `spec`: a slot of the workspace, an edge job (D1) with
 * the spec as its task file, the Runner. Answers the result content; throws BadRequest with the
 * reason there is none, Cancelled when the customer cancelled before the run started.
 */
async function run(env: ProviderEnv, p: ProviderConfig, spec: JobSpec, signal: AbortSignal, onQueued: () => Promise<void>): Promise<string> {
  const principal: Principal = { kind: "owner", pubkey: await ownerOf(env, p) };
  const cred: Cred = { type: "internal", principal };
  const ws = env.WORKSPACE.get(env.WORKSPACE.idFromName(p.workspace));
  if (p.caps || p.budgets) {
    // The policy may have been narrowed since the provider was added: checked before anything is fetched or run.
    const allowed = await ws.capsAdmit(cred, p.caps ?? {}, p.budgets ?? {});
    if (!allowed.ok) throw new ReplyError(allowed);
  }
  spec = { ...spec, input: await resolveUrlInputs(spec.input, p.caps, signal) };
  const slot = `nip90:${p.name}:${spec.id}`;
  await admit(ws, cred, slot, signal, onQueued);
  let out: RunResult;
  let jobId: string;
  try {
    if (signal.aborted) throw new Cancelled();
    const job = await createJob(env.DB, p.workspace, actorOf(principal), `nip90:${spec.kind}`, { request: spec.id, provider: p.name, customer: spec.customer });
    jobId = job.id;
    await recordRun(env.DB, p.name, spec.id, jobId);
    const put = await ws.taskPut(cred, jobId, "spec.json", new TextEncoder().encode(JSON.stringify(spec)));
    if (!put.ok) throw new BadRequest(`the job does not fit a task file: ${put.error.message.replace(/^E[A-Z]+: /, "")}`);
    const limits = { wallTimeMs: p.timeoutMs ?? 10_000, memoryBytes: (p.memoryMb ?? 64) << 20 };
    // Each job's run mounts its own /cap/*: it starts with the whole of every budget.
    const caps = p.caps ? { caps: p.caps, budgets: p.budgets ?? {}, origin: p.origin } : {};
    out = await env.RUNNER.get(env.RUNNER.idFromName(jobId)).run({ ws: p.workspace, job: jobId, principal, program: p.program, limits, ...caps });
  } finally {
    await ws.runRelease(cred, slot).catch(() => {});
  }
  if (signal.aborted) {
    await addEvent(env.DB, jobId, "cancelled", { request: spec.id });
    throw new Cancelled();
  }
  if (out.status.code !== 0 || out.status.reason !== "exit") throw new BadRequest(exitReason(out.status, await stderrTail(env, ws, cred, jobId)));
  const text = await ws.taskGet(cred, jobId, "result.json");
  if (!text.ok) throw new ReplyError(text);
  if (!text.value) throw new BadRequest(NO_RESULT);
  return resultContent(new TextDecoder().decode(text.value));
}

/** Takes one of the workspace's run slots, waiting while all are taken (EAGAIN), up to QUEUE_TIMEOUT_MS. */
async function admit(ws: DurableObjectStub<import("../workspace/index.ts").Workspace>, cred: Cred, slot: string, signal: AbortSignal, onQueued: () => Promise<void>): Promise<void> {
  const until = Date.now() + QUEUE_TIMEOUT_MS;
  for (let told = false; ; ) {
    if (signal.aborted) throw new Cancelled();
    const r = await ws.runAdmit(cred, slot);
    if (r.ok) return;
    if (r.error.code !== "EAGAIN") throw new ReplyError(r);
    if (Date.now() > until) throw new BadRequest(`no run slot came free within ${QUEUE_TIMEOUT_MS / 1000} s`);
    if (!told) (told = true), await onQueued();
    await sleepUnlessCancelled(SLOT_POLL_MS, signal);
  }
}

/** The end of the run's stderr (its log stream `JOB.stderr` in the workspace). */
async function stderrTail(env: ProviderEnv, ws: DurableObjectStub<import("../workspace/index.ts").Workspace>, cred: Cred, job: string): Promise<string> {
  const stream = `${job}.stderr`;
  const head = await ws.logRead(cred, stream, 0, 0);
  if (!head.ok) return "";
  // Four bytes a character at most: enough bytes for the tail's characters.
  const r = await ws.logRead(cred, stream, Math.max(0, head.value.length - STDERR_TAIL * 4), STDERR_TAIL * 4);
  if (!r.ok) return "";
  return new TextDecoder().decode(await resolveSegs(env.BLOBS, r.value.segs));
}

/** The customer deleted the request (the relay only deletes for its author, NIP-09). */
export async function cancelJob(env: ProviderEnv, job: NostrEvent, deletion: NostrEvent, ctx: JobContext): Promise<void> {
  if (deletion.pubkey !== job.pubkey) return;
  const name = ctx.registration.agent;
  serving.get(`${name}\n${job.id}`)?.abort();
  const c = await cancelRequest(env.DB, name, job.id);
  if (c?.job) await addEvent(env.DB, c.job, "cancel-requested", { deletion: deletion.id });
}


defineEdgeAgent(HANDLER, {
  onJob: (job, ctx) => serveJob(workerEnv as unknown as ProviderEnv, job, ctx),
  onCancel: (job, deletion, ctx) => cancelJob(workerEnv as unknown as ProviderEnv, job, deletion, ctx),
});
