// A job worker thread: runs one agent at a time for the provider (see pool.ts). Modules arrive
// compiled (a WebAssembly.Module crosses threads without a recompile) and are kept by hash.
import { parentPort } from "node:worker_threads";
import type { Program } from "../../runtime/modules.ts";
import { runJob, type RunOutcome } from "./run-job.ts";
import type { HireGrant, WorkerRequest } from "./pool.ts";
import { JobsService } from "./jobs-service.ts";
import { Peer, secretBytes } from "./nostr.ts";
import { NwcClient } from "./wallet.ts";
import { nodeResolve } from "../../services/cap/dns-node.ts";
import { pinnedFetch } from "../../services/cap/fetch-node.ts";
import type { CapGrants } from "../../services/cap/grant.ts";

const programs = new Map<string, Program>();
/** One relay connection (and wallet connection) per identity, kept for the thread's life. */
const peers = new Map<string, { peer: Peer; wallet?: NwcClient }>();

function jobsFor(g: HireGrant): JobsService {
  const key = `${g.secretKey}|${g.relays.join(",")}|${g.wallet ?? ""}`;
  let p = peers.get(key);
  if (!p) peers.set(key, (p = { peer: new Peer(g.relays, secretBytes(g.secretKey)), ...(g.wallet ? { wallet: new NwcClient(g.wallet) } : {}) }));
  return new JobsService({ peer: p.peer, ...(p.wallet ? { wallet: p.wallet } : {}), budgetMsats: g.budgetMsats, timeoutMs: g.timeoutMs });
}

parentPort!.on("message", async (m: WorkerRequest) => {
  if (m.module) programs.set(m.hash, { module: m.module, hash: m.hash, instrumented: m.instrumented });
  const program = programs.get(m.hash);
  let out: RunOutcome;
  try {
    if (!program) throw new Error(`module ${m.hash} was never sent to this worker`);
    // Exactly the granted capabilities; hiring adds /cap/nostr (signing with the provider's key)
    // when it was not granted on its own, and its jobs/ here.
    const grants: CapGrants = { ...m.grants };
    if (m.hire && !grants.nostr) grants.nostr = { secretKey: m.hire.secretKey, relays: m.hire.relays };
    out = await runJob(program, m.spec, {
      limits: m.limits,
      grants,
      grantOptions: { secrets: m.secrets ?? {}, resolve: nodeResolve, fetchFor: pinnedFetch },
      caps: m.hire ? { "nostr/jobs": jobsFor(m.hire) } : {},
    });
  } catch (e) {
    out = { ok: false, cancelled: false, reason: `provider error: ${(e as Error).message}` };
  }
  parentPort!.postMessage(out);
});
