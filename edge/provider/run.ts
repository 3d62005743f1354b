// One run of an edge provider's program for a job (ProviderJob's last step before the answer): a
// run slot of the workspace, an edge job (D1 `jobs`) with the spec as its task file, the Runner
// Durable Object, and the outcome read back from D1 and the task. The outcome is read the same
// way after a normal return and after a restart of the job's object mid-run (the Runner records
// the exit in D1 whether or not anyone still waits for it), so a run is never started twice
// while the first may still answer.
import type { ExitStatus } from "../../runtime/process.ts";
import { BadRequest, type JobSpec } from "../../agents/host/spec.ts";
import { NO_RESULT, STDERR_TAIL, exitReason, resultContent } from "../../agents/host/answers.ts";
import { actorOf, type Cred, type Principal } from "../auth.ts";
import { resolveSegs } from "../blobs.ts";
import { addEvent, createJob, getJob, transition } from "../d1.ts";
import { ReplyError } from "../errors.ts";
import type { Workspace } from "../workspace/index.ts";
import type { ProviderConfig, ProviderEnv } from "./config.ts";
import { recordRun } from "./store.ts";

/** How long after its wall time a run that never recorded an exit is taken for lost (its Runner died too). */
const LOST_AFTER_MS = 60_000;

type WorkspaceStub = DurableObjectStub<Workspace>;

export interface RunTicket {
  /** The edge job (D1) of this attempt. */
  job: string;
  started: number;
  attempt: number;
}

export class Provided {
  readonly env: ProviderEnv;
  readonly p: ProviderConfig;
  readonly principal: Principal;
  readonly cred: Cred;
  readonly ws: WorkspaceStub;

  constructor(env: ProviderEnv, p: ProviderConfig, owner: string) {
    this.env = env;
    this.p = p;
    this.principal = { kind: "owner", pubkey: owner };
    this.cred = { type: "internal", principal: this.principal };
    this.ws = env.WORKSPACE.get(env.WORKSPACE.idFromName(p.workspace));
  }

  /** The workspace's owner, from the edge's directory (KV `ws:NAME`); a pinned owner must match. */
  static async open(env: ProviderEnv, p: ProviderConfig): Promise<Provided> {
    const meta = await env.KV.get<{ owner: string }>(`ws:${p.workspace}`, "json");
    if (!meta?.owner) throw new BadRequest(`provider error: workspace ${p.workspace} does not exist`);
    if (p.owner && p.owner !== meta.owner) throw new BadRequest(`provider error: workspace ${p.workspace} is not owned by the provider's owner`);
    return new Provided(env, p, meta.owner);
  }

  /** The provider's caps against the workspace's policy as it is now (it may have been narrowed since the provider was added). */
  async checkCaps(): Promise<void> {
    if (!this.p.caps && !this.p.budgets) return;
    const allowed = await this.ws.capsAdmit(this.cred, this.p.caps ?? {}, this.p.budgets ?? {});
    if (!allowed.ok) throw new ReplyError(allowed);
  }

  /** Takes one of the workspace's run slots for `slot`: false while all are taken (`waiter` is then in line). */
  async admit(slot: string, waiter: string): Promise<boolean> {
    const r = await this.ws.runAdmit(this.cred, slot, waiter);
    if (r.ok) return true;
    if (r.error.code !== "EAGAIN") throw new ReplyError(r);
    return false;
  }

  /** Gives the slot back, and wakes the jobs that waited longest for one. */
  async release(slot: string): Promise<void> {
    const r = await this.ws.runRelease(this.cred, slot).catch(() => null);
    for (const waiter of r?.ok ? r.value : []) {
      await this.env.PROVIDER_JOBS.get(this.env.PROVIDER_JOBS.idFromName(waiter)).wake().catch(() => {});
    }
  }

  /** Makes the attempt's edge job and its task file; the ticket is saved before the run starts. */
  async prepare(spec: JobSpec, attempt: number): Promise<RunTicket> {
    const job = await createJob(this.env.DB, this.p.workspace, actorOf(this.principal), `nip90:${spec.kind}`, { request: spec.id, provider: this.p.name, customer: spec.customer, ...(attempt > 1 ? { attempt } : {}) });
    await recordRun(this.env.DB, this.p.name, spec.id, job.id);
    const put = await this.ws.taskPut(this.cred, job.id, "spec.json", new TextEncoder().encode(JSON.stringify(spec)));
    if (!put.ok) throw new BadRequest(`the job does not fit a task file: ${put.error.message.replace(/^E[A-Z]+: /, "")}`);
    return { job: job.id, started: Date.now(), attempt };
  }

  /** Runs the program for the ticket's job in its Runner; what it ended with is read by `outcome`. */
  async run(t: RunTicket): Promise<void> {
    const p = this.p;
    const limits = { wallTimeMs: this.wallTimeMs, memoryBytes: (p.memoryMb ?? 64) << 20 };
    // Each job's run mounts its own /cap/*: it starts with the whole of every budget.
    const caps = p.caps ? { caps: p.caps, budgets: p.budgets ?? {}, origin: p.origin } : {};
    try {
      await this.env.RUNNER.get(this.env.RUNNER.idFromName(t.job)).run({ ws: p.workspace, job: t.job, principal: this.principal, program: p.program, limits, ...caps });
    } catch (e) {
      // Recorded as the job's error by the Runner (outcome reads it), unless the call itself broke.
      console.error(`edge provider ${p.name}: run ${t.job}: ${(e as Error).message}`);
    }
  }

  get wallTimeMs(): number {
    return this.p.timeoutMs ?? 10_000;
  }

  /**
   * The result content of a finished run; BadRequest with the reason there is none; null while the
   * run may still be going (not recorded yet and not past its wall time by LOST_AFTER_MS); "lost"
   * when it never will be (marked failed here).
   */
  async outcome(t: RunTicket): Promise<string | null | "lost"> {
    const { job, events } = await getJob(this.env.DB, this.p.workspace, t.job);
    if (job.state === "queued" || job.state === "running") {
      if (Date.now() < t.started + this.wallTimeMs + LOST_AFTER_MS) return null;
      await transition(this.env.DB, this.p.workspace, t.job, "failed", { error: "lost: the provider's job object restarted and the run never recorded an exit" }).catch(() => {});
      return "lost";
    }
    const exit = events.find((e) => e.type === "exit")?.data as ExitStatus | undefined;
    if (!exit) throw new BadRequest(`provider error: ${job.error ?? "the run failed before the program started"}`);
    if (exit.code !== 0 || exit.reason !== "exit") throw new BadRequest(exitReason(exit, await this.stderrTail(t.job)));
    const text = await this.ws.taskGet(this.cred, t.job, "result.json");
    if (!text.ok) throw new ReplyError(text);
    if (!text.value) throw new BadRequest(NO_RESULT);
    return resultContent(new TextDecoder().decode(text.value));
  }

  note(job: string, type: string, data?: unknown): Promise<void> {
    return addEvent(this.env.DB, job, type, data);
  }

  /** The end of the run's stderr (its log stream `JOB.stderr` in the workspace). */
  async stderrTail(job: string): Promise<string> {
    const stream = `${job}.stderr`;
    const head = await this.ws.logRead(this.cred, stream, 0, 0);
    if (!head.ok) return "";
    // Four bytes a character at most: enough bytes for the tail's characters.
    const r = await this.ws.logRead(this.cred, stream, Math.max(0, head.value.length - STDERR_TAIL * 4), STDERR_TAIL * 4);
    if (!r.ok) return "";
    return new TextDecoder().decode(await resolveSegs(this.env.BLOBS, r.value.segs));
  }
}
