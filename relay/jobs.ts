// NIP-90 inside the relay object: accepted job requests are handed to the edge agents registered
// for their kind, and a deletion of a request tells those agents to stop (onCancel). Hooks run after
// the reply, in the background (ctx.waitUntil): a failing agent is logged, never fatal. Telling
// subscribed sockets about a cancellation is fan-out (conns.ts).
import { isJobRequest, edgeAgentHandler, routeJob, type AgentRegistration, type JobContext, type PublishResult } from "./nip90.ts";
import type { NostrEvent } from "./event.ts";

/** A job hook to run: a request to hand on, or (with its deletion) one to cancel. */
export type JobCall = { job: NostrEvent; deletion?: NostrEvent };

export interface JobHost {
  /** The registrations for a job kind (state.ts). */
  agents(kind: number): AgentRegistration[];
  /** Publishes as a trusted in-Worker client (the relay's `publish`). */
  publish(event: NostrEvent): PublishResult | Promise<PublishResult>;
  waitUntil(p: Promise<unknown>): void;
  /** Set where the registrations live elsewhere (a connection shard other than 0): hooks are run there. */
  forward?(calls: JobCall[]): Promise<void>;
}

export class JobRouter {
  private host: JobHost;

  constructor(host: JobHost) {
    this.host = host;
  }

  /** After an event was accepted: its hooks if it is a job request, and those of the requests it deleted. */
  accepted(e: NostrEvent, cancelled: NostrEvent[]): void {
    const forward = this.host.forward;
    if (!forward) {
      if (cancelled.length > 0) this.cancel(e, cancelled);
      return this.dispatch(e);
    }
    const calls: JobCall[] = [...cancelled.map((job) => ({ job, deletion: e })), ...(isJobRequest(e.kind) ? [{ job: e }] : [])];
    if (calls.length > 0) this.host.waitUntil(forward(calls).catch((err) => console.error("relay: job hooks on connection shard 0 failed", err)));
  }

  /** Runs hooks passed on by another connection shard. */
  run(calls: JobCall[]): void {
    for (const { job, deletion } of calls) {
      if (deletion) this.cancel(deletion, [job]);
      else this.dispatch(job);
    }
  }

  /** Hands an accepted job request to the edge agents registered for its kind. */
  dispatch(job: NostrEvent): void {
    if (!isJobRequest(job.kind)) return;
    for (const reg of routeJob(job, this.host.agents(job.kind))) {
      const h = edgeAgentHandler(reg.handler);
      if (!h) {
        console.warn(`relay: no edge agent handler named ${reg.handler} in this bundle (agent ${reg.agent})`);
        continue;
      }
      this.inBackground(reg, `failed on job ${job.id}`, () => h.onJob(job, this.context(reg)));
    }
  }

  /** The job requests among events a deletion removed. */
  static jobsAmong(deleted: NostrEvent[]): NostrEvent[] {
    return deleted.filter((d) => isJobRequest(d.kind));
  }

  /** Tells the edge agents each deleted request was routed to (onCancel). */
  cancel(deletion: NostrEvent, jobs: NostrEvent[]): void {
    for (const job of jobs) {
      for (const reg of routeJob(job, this.host.agents(job.kind))) {
        const h = edgeAgentHandler(reg.handler);
        if (!h?.onCancel) continue;
        const onCancel = h.onCancel.bind(h);
        this.inBackground(reg, `failed to cancel ${job.id}`, () => onCancel(job, deletion, this.context(reg)));
      }
    }
  }

  private context(reg: AgentRegistration): JobContext {
    return { registration: reg, publish: async (event) => this.host.publish(event) };
  }

  private inBackground(reg: AgentRegistration, failure: string, call: () => unknown): void {
    this.host.waitUntil(Promise.resolve().then(call).then(() => undefined, (err) => console.error(`relay: edge agent ${reg.agent} ${failure}`, err)));
  }
}
