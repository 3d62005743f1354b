// NIP-90 inside the relay object: accepted job requests are handed to the edge agents registered
// for their kind, and a deletion of a request tells those agents to stop (onCancel). Each hand-over
// is first written to the job outbox (job-outbox.ts), in the turn its event is accepted; hooks then
// run after the reply, in the background (ctx.waitUntil): a failing agent is logged, never fatal,
// and a hand-over the object did not finish is run again by its next instance (`resume`). Telling
// subscribed sockets about a cancellation is fan-out (conns.ts).
import { isJobRequest, edgeAgentHandler, routeJob, type AgentRegistration, type JobContext, type PublishResult } from "./nip90.ts";
import type { NostrEvent } from "./event.ts";
import type { JobOutbox, OutboxRow } from "./job-outbox.ts";

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
  /** Where hand-overs are kept until done. */
  outbox: JobOutbox;
}

/** One hook call for one registration. */
type Hook = JobCall & { reg: AgentRegistration };

const nothing = (): void => undefined;

export class JobRouter {
  private host: JobHost;

  constructor(host: JobHost) {
    this.host = host;
  }

  /**
   * An event was accepted: writes the hand-overs it makes (the hooks of a job request, those of the
   * requests a deletion removed) to the outbox now, and returns what starts them, to call once the
   * OK is sent. Call it in the turn the event is accepted, before the OK: the output gate then holds
   * the OK until the rows are durable.
   */
  accepted(e: NostrEvent, cancelled: NostrEvent[]): () => void {
    const calls: JobCall[] = [...cancelled.map((job) => ({ job, deletion: e })), ...(isJobRequest(e.kind) ? [{ job: e }] : [])];
    if (calls.length === 0) return nothing;
    if (this.host.forward) {
      const ids = this.host.outbox.add(calls.map((c) => ({ ...c, agent: null })));
      return () => this.forward(ids, calls);
    }
    return this.write(calls);
  }

  /** Runs hooks passed on by another connection shard (their rows are written before the RPC answers). */
  run(calls: JobCall[]): void {
    this.write(calls)();
  }

  /** Re-runs the hand-overs an earlier instance (or a failed forward) left in the outbox. */
  resume(): void {
    const rows = this.host.outbox.leftovers();
    const forwards: OutboxRow[] = [];
    for (const row of rows) {
      if (row.agent === null) {
        forwards.push(row);
        continue;
      }
      const hook = this.hookOf(row);
      if (!hook) {
        this.host.outbox.done(row.id);
        continue;
      }
      console.warn(`relay: re-running the job hand-over ${row.id} to ${row.agent} (re-run ${row.attempts})`);
      this.start(row.id, hook);
    }
    if (forwards.length === 0) return;
    const calls = forwards.map((r): JobCall => (r.deletion ? { job: r.job, deletion: r.deletion } : { job: r.job }));
    if (this.host.forward) return this.forward(forwards.map((r) => r.id), calls);
    // A row for shard 0 found on an object that holds the registrations itself: its hooks, here.
    this.run(calls);
    for (const r of forwards) this.host.outbox.done(r.id);
  }

  /** The job requests among events a deletion removed. */
  static jobsAmong(deleted: NostrEvent[]): NostrEvent[] {
    return deleted.filter((d) => isJobRequest(d.kind));
  }

  /** Writes the hooks of calls to the outbox (cancellations before requests, as given); what starts them. */
  private write(calls: JobCall[]): () => void {
    const hooks = this.hooks(calls);
    const ids = this.host.outbox.add(hooks.map((h) => ({ ...h, agent: h.reg.agent })));
    return () => hooks.forEach((h, i) => this.start(ids[i]!, h));
  }

  /** The hook calls of job calls: each request to the agents it routes to, each cancellation to those with onCancel. */
  private hooks(calls: JobCall[]): Hook[] {
    const out: Hook[] = [];
    for (const call of calls) {
      if (!isJobRequest(call.job.kind)) continue;
      for (const reg of routeJob(call.job, this.host.agents(call.job.kind))) {
        const h = edgeAgentHandler(reg.handler);
        if (call.deletion) {
          if (h?.onCancel) out.push({ ...call, reg });
        } else if (!h) console.warn(`relay: no edge agent handler named ${reg.handler} in this bundle (agent ${reg.agent})`);
        else out.push({ ...call, reg });
      }
    }
    return out;
  }

  /** A leftover row's hook, if its agent is still registered, routed to and defined. */
  private hookOf(row: OutboxRow): Hook | null {
    const reg = routeJob(row.job, this.host.agents(row.job.kind)).find((r) => r.agent === row.agent);
    const h = reg && edgeAgentHandler(reg.handler);
    if (!reg || !h || (row.deletion && !h.onCancel)) {
      console.warn(`relay: dropping the job hand-over ${row.id}: agent ${row.agent} is no longer registered or defined for job ${row.job.id}`);
      return null;
    }
    return row.deletion ? { job: row.job, deletion: row.deletion, reg } : { job: row.job, reg };
  }

  /** Runs a hook in the background; its row goes once it settled, whichever way. */
  private start(id: number, { job, deletion, reg }: Hook): void {
    const h = edgeAgentHandler(reg.handler);
    const ctx = this.context(reg);
    const failure = deletion ? `failed to cancel ${job.id}` : `failed on job ${job.id}`;
    const call = () => {
      if (!h) throw new Error(`no edge agent handler named ${reg.handler}`);
      return deletion ? h.onCancel?.(job, deletion, ctx) : h.onJob(job, ctx);
    };
    this.host.waitUntil(
      Promise.resolve()
        .then(call)
        .then(nothing, (err) => console.error(`relay: edge agent ${reg.agent} ${failure}`, err))
        .then(() => this.host.outbox.done(id)),
    );
  }

  /** Passes calls to connection shard 0; their rows go once it answered (it has written its own). */
  private forward(ids: number[], calls: JobCall[]): void {
    const { forward, outbox } = this.host;
    this.host.waitUntil(
      forward!(calls).then(
        () => ids.forEach((id) => outbox.done(id)),
        (err) => {
          console.error("relay: job hooks on connection shard 0 failed; the alarm retries", err);
          ids.forEach((id) => outbox.release(id));
        },
      ),
    );
  }

  private context(reg: AgentRegistration): JobContext {
    return { registration: reg, publish: async (event) => this.host.publish(event) };
  }
}
