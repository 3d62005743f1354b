// Job workers: each agent runs in a worker thread, so a guest that spins never stalls the
// provider's relay traffic, jobs really run in parallel (one per core), and cancelling a job ends
// its process by terminating the thread. Idle workers are kept warm (a job costs a message, not a
// thread start); a terminated or crashed one is simply not reused.
import { Worker } from "node:worker_threads";
import type { Program } from "../../runtime/modules.ts";
import type { Limits } from "../../runtime/process.ts";
import type { RunOutcome } from "./run-job.ts";
import type { JobSpec } from "./spec.ts";
import type { CapGrants } from "../../services/cap/grant.ts";
import type { Secret } from "../../services/cap/secrets.ts";

export interface WorkerRequest {
  hash: string;
  /** Sent the first time a worker runs this program. */
  module?: WebAssembly.Module;
  instrumented: boolean;
  spec: JobSpec;
  limits: Limits;
  /** The capabilities the agent gets (plain data; mounted in the worker, with fresh budgets per job). */
  grants?: CapGrants;
  secrets?: Record<string, Secret>;
  /** Grants the agent /cap/nostr/jobs, hiring as this identity (built in the worker). */
  hire?: HireGrant;
}

/** What one job's agent is granted: capabilities, the secrets they may use, hiring. */
export type JobGrants = Pick<WorkerRequest, "grants" | "secrets" | "hire">;

/** What a worker needs to mount /cap/nostr/jobs for an agent: plain data, it crosses threads. */
export interface HireGrant {
  relays: string[];
  /** Hex secret key the agent's job requests are signed with (the provider's). */
  secretKey: string;
  /** msats the agent may pay per job it runs (invoices go through `wallet`). */
  budgetMsats: number;
  wallet?: string;
  /** Each hired job's limit. */
  timeoutMs: number;
}

interface Slot {
  worker: Worker;
  /** Program hashes this worker already holds. */
  known: Set<string>;
}

const WORKER = new URL("./job-worker.ts", import.meta.url);

export class WorkerPool {
  readonly #idle: Slot[] = [];
  #ids = 0;

  async run(program: Program, spec: JobSpec, limits: Limits, signal: AbortSignal, granted: JobGrants = {}): Promise<RunOutcome> {
    if (signal.aborted) return { ok: false, cancelled: true, reason: "cancelled" };
    const slot = this.#idle.pop() ?? { worker: new Worker(WORKER), known: new Set<string>() };
    const hash = program.hash || `anon-${++this.#ids}`;
    const first = !slot.known.has(hash);
    slot.known.add(hash);
    const req: WorkerRequest = { hash, instrumented: program.instrumented, spec, limits, ...(first ? { module: program.module } : {}), ...granted };
    return new Promise<RunOutcome>((resolve) => {
      const done = (out: RunOutcome, reuse: boolean) => {
        slot.worker.off("message", onMessage);
        slot.worker.off("error", onError);
        slot.worker.off("exit", onExit);
        signal.removeEventListener("abort", onAbort);
        if (reuse) this.#idle.push(slot);
        else void slot.worker.terminate();
        resolve(out);
      };
      const onMessage = (out: RunOutcome) => done(out, true);
      const onError = (e: Error) => done({ ok: false, cancelled: false, reason: `provider error: agent worker failed: ${e.message}` }, false);
      const onExit = (code: number) => done({ ok: false, cancelled: false, reason: `provider error: agent worker exited (${code})` }, false);
      const onAbort = () => done({ ok: false, cancelled: true, reason: "cancelled" }, false);
      slot.worker.on("message", onMessage);
      slot.worker.once("error", onError);
      slot.worker.once("exit", onExit);
      signal.addEventListener("abort", onAbort, { once: true });
      slot.worker.postMessage(req);
    });
  }

  close(): void {
    for (const s of this.#idle.splice(0)) void s.worker.terminate();
  }
}
