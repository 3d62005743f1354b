// NIP-90 job routing: which events are job requests, feedback and results; their checks; and the
// registry of edge-hosted agents that requests of a kind are handed to.
//
// Two halves make the hook:
//  1. Code in the Worker bundle defines a handler by name, once, at module load:
//       defineEdgeAgent("dvm-runner", { onJob(job, ctx) {...}, onCancel(job, deletion, ctx) {...} })
//  2. A registration (persisted in the relay's SQLite, so it survives eviction) binds a job kind to
//     that handler: `relayStub.registerAgent({ kind: 5050, agent: "summarizer", handler: "dvm-runner",
//     pubkey })`. From then on, every accepted request of that kind (or p-tagged for that pubkey)
//     is handed to the handler, which answers by publishing signed feedback/results with ctx.publish.
import { isHex64, type NostrEvent } from "./event.ts";

export const JOB_FEEDBACK = 7000;
export const HANDLER_INFO = 31990;

export const JOB_STATUSES = new Set(["payment-required", "payment_required", "processing", "error", "success", "partial"]);

export function isJobRequest(kind: number): boolean {
  return kind >= 5000 && kind < 6000;
}
export function isJobResult(kind: number): boolean {
  return kind >= 6000 && kind < 7000;
}

/** NIP-90 checks on feedback and results (an error text, or null when fine). Requests are free-form. */
export function checkJobEvent(e: NostrEvent): string | null {
  if (e.kind === JOB_FEEDBACK) {
    const status = e.tags.find((t) => t[0] === "status");
    if (status === undefined || status[1] === undefined) return "job feedback (kind 7000) needs a status tag";
    if (!JOB_STATUSES.has(status[1])) return `unknown job status ${JSON.stringify(status[1])}`;
  }
  if (e.kind === JOB_FEEDBACK || isJobResult(e.kind)) {
    if (!e.tags.some((t) => t[0] === "e" && isHex64(t[1]))) return `job ${e.kind === JOB_FEEDBACK ? "feedback" : "result"} needs an e tag naming the request`;
  }
  return null;
}

/** The pubkeys a request is addressed to (its p tags); empty means "any provider". */
export function addressedTo(job: NostrEvent): string[] {
  return job.tags.filter((t) => t[0] === "p" && isHex64(t[1])).map((t) => t[1]!);
}

export interface AgentRegistration {
  /** Job request kind (5000–5999). */
  kind: number;
  /** Unique name of the agent (one registration per kind and agent). */
  agent: string;
  /** Name given to defineEdgeAgent. */
  handler: string;
  /** The agent's Nostr pubkey (hex). Requests p-tagged to others are not handed to it. */
  pubkey?: string;
}

export interface PublishResult {
  ok: boolean;
  message: string;
}

export interface JobContext {
  registration: AgentRegistration;
  /** Publishes a signed event (feedback, result, anything) through the relay, as a client would. */
  publish(event: NostrEvent): Promise<PublishResult>;
}

/**
 * An edge agent's hooks. They must be idempotent: the relay keeps each hand-over in its outbox
 * (job-outbox.ts) until the hook's promise settles, and runs it again, up to five times, when the
 * relay object was reset (crash, eviction, deploy) before that, so a hook can be called more than
 * once for one request (or one cancellation), possibly while an earlier call is still at work
 * elsewhere. Answer once: claim the request somewhere durable before working (the OANIX edge
 * providers claim each request in D1, so a second call finds it taken), and treat a cancellation of
 * a job already stopped as done. A hook that throws has run: it is logged, not called again.
 */
export interface EdgeAgentHandler {
  onJob(job: NostrEvent, ctx: JobContext): void | Promise<void>;
  /** The customer deleted (kind 5) the request: stop work. */
  onCancel?(job: NostrEvent, deletion: NostrEvent, ctx: JobContext): void | Promise<void>;
}

const handlers = new Map<string, EdgeAgentHandler>();

/** Defines (or replaces) a named handler in this isolate. Call at module load in the Worker bundle. */
export function defineEdgeAgent(name: string, handler: EdgeAgentHandler): void {
  handlers.set(name, handler);
}

export function edgeAgentHandler(name: string): EdgeAgentHandler | undefined {
  return handlers.get(name);
}

/** Checks a registration coming over RPC. Returns an error text or null. */
export function checkRegistration(r: unknown): string | null {
  if (typeof r !== "object" || r === null) return "registration must be an object";
  const x = r as Record<string, unknown>;
  if (typeof x.kind !== "number" || !isJobRequest(x.kind) || !Number.isInteger(x.kind)) return "kind must be a job request kind (5000-5999)";
  if (typeof x.agent !== "string" || x.agent.length === 0 || x.agent.length > 128) return "agent must be a non-empty name";
  if (typeof x.handler !== "string" || x.handler.length === 0) return "handler must name a defineEdgeAgent handler";
  if (x.pubkey !== undefined && !isHex64(x.pubkey)) return "pubkey must be 64 lowercase hex characters";
  return null;
}

/** The registrations a request goes to: all for its kind, narrowed to the named pubkeys when p-tagged. */
export function routeJob(job: NostrEvent, regs: AgentRegistration[]): AgentRegistration[] {
  const to = addressedTo(job);
  return regs.filter((r) => r.kind === job.kind && (to.length === 0 || (r.pubkey !== undefined && to.includes(r.pubkey))));
}
