// The relay's hook for edge providers: the `oanix-provider` handler (relay/nip90.ts
// defineEdgeAgent) that job requests of a registered kind are handed to. It keeps nothing and runs
// nothing itself: a request for this provider goes to its own ProviderJob object (job.ts), which
// serves it from its alarm whatever happens to the relay object meanwhile, and a deletion by the
// customer goes to the same object. Requests for other providers (p tags, or encrypted for
// another) and expired ones are dropped here, so they make no object.
import { env as workerEnv } from "cloudflare:workers";
import { defineEdgeAgent, type JobContext } from "../../relay/nip90.ts";
import type { NostrEvent } from "../../relay/event.ts";
import { expiration } from "../../agents/host/spec.ts";
import type { ProviderEnv } from "./config.ts";
import { jobObjectName } from "./job.ts";
import { masterKey, providerKey } from "./keys.ts";
import { HANDLER, now, withdraw } from "./relay.ts";
import { providerNamed } from "./store.ts";

const jobObject = (env: ProviderEnv, provider: string, request: string) => env.PROVIDER_JOBS.get(env.PROVIDER_JOBS.idFromName(jobObjectName(provider, request)));

/** Hands a request to its job object (which keeps it before this resolves), unless it is not this provider's. */
export async function serveJob(env: ProviderEnv, job: NostrEvent, ctx: Pick<JobContext, "registration">): Promise<void> {
  const name = ctx.registration.agent;
  const master = masterKey(env);
  if (!master) return console.error(`edge provider ${name}: PROVIDER_KEY is not set; job ${job.id} not served`);
  const p = await providerNamed(env, name);
  if (!p || p.kind !== job.kind) {
    // Removed (or moved to another kind) since it was registered: withdraw the stale registration.
    console.warn(`edge provider ${name}: no longer serves kind ${job.kind}; withdrawing it`);
    return withdraw(env, master, ctx.registration);
  }
  const exp = expiration(job);
  if (exp !== undefined && exp <= now()) return;
  const pubkey = providerKey(master, name).pubkey;
  const to = job.tags.filter((t) => t[0] === "p").map((t) => t[1]);
  if (to.length && !to.includes(pubkey)) return;
  // An encrypted request names its one provider in a clear p tag.
  if (job.tags.some((t) => t[0] === "encrypted") && !to.includes(pubkey)) return;
  await jobObject(env, name, job.id).accept(name, job);
}

/** The customer deleted the request: its job object ends it. */
export async function cancelJob(env: ProviderEnv, job: NostrEvent, deletion: NostrEvent, ctx: Pick<JobContext, "registration">): Promise<void> {
  if (deletion.pubkey !== job.pubkey) return;
  const name = ctx.registration.agent;
  await jobObject(env, name, job.id).cancel(name, job, deletion);
}

defineEdgeAgent(HANDLER, {
  onJob: (job, ctx) => serveJob(workerEnv as unknown as ProviderEnv, job, ctx),
  onCancel: (job, deletion, ctx) => cancelJob(workerEnv as unknown as ProviderEnv, job, deletion, ctx),
});
