// A planning run at the edge: one Durable Object per run, driven by its alarm. Each alarm runs the
// orchestrator (agents/host/planning/) for one agent (`maxAgents: 1`): the run's workspace is the
// workspace object over RPC (as the edge runner's /workspace), the phase and reviewer agents are
// bundled, /cap/llm is the run's model. The run record in the workspace is the state: an object
// that is evicted or restarted mid-agent wakes to its alarm (alarms survive both) and resumes from
// the last checkpoint, repeating at most the call that was in flight. The workspace's run lock
// (lock.ts) keeps a CLI resuming the same run from driving it at the same time.
//
// Why not Cloudflare Workflows: they run in the local edge (wrangler dev, miniflare 5), but there
// an instance interrupted by a restart stays "running" and never resumes (measured with wrangler
// 4.156.2), while a Durable Object's alarm fires again after a restart. A run must survive that.
import { DurableObject } from "cloudflare:workers";
import { fsError } from "../../runtime/errors.ts";
import { RemoteService } from "../../services/remote.ts";
import type { WireOp } from "../../services/remote-wire.ts";
import { LockBusy, LockLost } from "../../agents/host/planning/lock.ts";
import { PlanError, resumePlan, startPlan, type PlanOptions } from "../../agents/host/planning/orchestrator.ts";
import type { RunStatus } from "../../agents/host/planning/record.ts";
import type { Cred } from "../auth.ts";
import { runBatch } from "../batch.ts";
import type { Env, Reply } from "../env.ts";
import { errorReply } from "../workspace/reply.ts";
import { edgeProvider } from "./llm.ts";
import { flushOutbox } from "./outbox.ts";
import { planningPrograms } from "./programs.ts";
import { RunState, type DeliveryInfo, type RunConfig } from "./state.ts";
import { insertRun, updateRunStmt } from "./store.ts";

/** Wall time of one agent at the edge (an alarm may run for 15 minutes). */
const AGENT_MS = 180_000;
/** Slices that fail outside the run (the workspace unreachable, …) before the run is failed. */
const MAX_SLICE_FAILURES = 6;
const LOCK_TTL_MS = 5 * 60_000;

const reply = async <T>(fn: () => Promise<T>): Promise<Reply<T>> => {
  try {
    return { ok: true, value: await fn() };
  } catch (e) {
    return errorReply(e instanceof PlanError ? fsError("EINVAL", e.message) : e instanceof LockBusy ? fsError("EBUSY", e.message) : e);
  }
};

export class PlanningRun extends DurableObject<Env> {
  readonly #state: RunState;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#state = new RunState(ctx.storage.sql);
  }

  /** Writes the run record (nothing driven yet), the D1 row, and arms the alarm. */
  async start(cfg: RunConfig): Promise<Reply<{ status: RunStatus; createdAt: string }>> {
    return reply(async () => {
      if (this.#state.config) throw fsError("EEXIST", `run ${cfg.run} exists`);
      this.#state.set("config", cfg);
      this.#state.set("epoch", 1);
      try {
        const rec = await startPlan(cfg.idea, { ...(await this.#options(cfg)), run: cfg.run, maxAgents: 0 });
        await this.#workspace.flush();
        this.#state.set("state", "running");
        await insertRun(this.env.DB, { id: cfg.run, owner: cfg.owner, workspace: cfg.workspace, idea: rec.idea, llm: cfg.llm, created: Date.parse(rec.createdAt) }, this.#state.row!);
        this.#state.set("row_dirty", null);
        await this.ctx.storage.setAlarm(Date.now());
        return { status: rec.status, createdAt: rec.createdAt };
      } catch (e) {
        // Nothing started: the object forgets the run (the workspace keeps whatever was written).
        for (const k of ["config", "state", "row", "row_dirty", "epoch"]) this.#state.set(k, null);
        throw e;
      }
    });
  }

  /** Drives a paused or failed run again; `budgetTokens` more tokens it may spend from here. */
  async resume(owner: string, budgetTokens?: number): Promise<Reply<{ status: RunStatus }>> {
    return reply(async () => {
      const cfg = this.#mine(owner);
      const row = this.#state.row!;
      if (row.status === "completed" || row.status === "killed") return { status: row.status };
      if (budgetTokens !== undefined) this.#state.set("config", { ...cfg, limit: row.tokens + budgetTokens });
      if (this.#state.state !== "running") {
        this.#state.set("epoch", this.#state.epoch + 1);
        this.#state.set("state", "running");
        this.#state.set("failures", 0);
        this.#state.set("row", { ...row, status: "running", error: null });
        // D1 says so before the answer does: whoever reads the run next sees it running.
        await updateRunStmt(this.env.DB, cfg.run, this.#state.row!).run();
      }
      await this.#arm(true);
      return { status: "running" as const };
    });
  }

  /** The run's deliveries (for the owner), and a nudge: a running run always has its alarm. */
  async info(owner: string): Promise<Reply<{ state: RunStatus | null; deliveries: DeliveryInfo[] }>> {
    return reply(async () => {
      this.#mine(owner);
      await this.#arm(false);
      return { state: this.#state.state, deliveries: this.#state.deliveries() };
    });
  }

  override async alarm(): Promise<void> {
    const cfg = this.#state.config;
    if (!cfg) return;
    if (this.#state.state === "running" && Date.now() >= (this.#state.get<number>("retry_at") ?? 0)) await this.#slice(cfg);
    try {
      await flushOutbox({ env: this.env, state: this.#state, workspace: () => this.#workspace, cred: this.#cred(cfg) });
      this.#state.set("outbox_retry_at", null);
    } catch (e) {
      // Kept for the next alarm (D1 or the workspace did not answer): nothing is marked done.
      console.error(`planning ${cfg.run}: outbox: ${(e as Error).message}`);
      this.#state.set("outbox_retry_at", Date.now() + 2000);
    }
    await this.#arm(false);
  }

  /** One agent of the run, then the run's new state. */
  async #slice(cfg: RunConfig): Promise<void> {
    const epoch = this.#state.epoch;
    try {
      const tokens = this.#state.row?.tokens ?? 0;
      const rec = await resumePlan(cfg.run, {
        ...(await this.#options(cfg)), maxAgents: 1,
        ...(cfg.limit !== null ? { budgetTokens: Math.max(0, cfg.limit - tokens) } : {}),
      });
      await this.#workspace.flush();
      this.#state.observe(rec);
      this.#state.set("failures", 0);
      this.#state.set("retry_at", null);
      // A resume asked for while this slice ran wins over the pause or failure it ended in.
      if (rec.status !== "running" && this.#state.epoch === epoch) this.#state.set("state", rec.status);
    } catch (e) {
      if (e instanceof LockBusy || e instanceof LockLost) {
        this.#state.set("retry_at", Date.now() + 5000); // someone else (a CLI) drives it now
        return;
      }
      const n = (this.#state.get<number>("failures") ?? 0) + 1;
      this.#state.set("failures", n);
      const err = e as { code?: string; message?: string };
      console.error(`planning ${cfg.run}: slice failed (${n}): ${err.message}`);
      if (n >= MAX_SLICE_FAILURES) this.#state.fail({ phase: this.#state.row?.current_phase ?? "", iteration: 0, agent: "host", code: err.code ?? "EIO", message: err.message ?? String(e) });
      else this.#state.set("retry_at", Date.now() + 1000 * 2 ** n);
    }
  }

  async #options(cfg: RunConfig): Promise<PlanOptions> {
    return {
      workspace: this.#workspace, provider: edgeProvider(this.env, cfg.llm), llm: cfg.llm, programs: await planningPrograms(),
      reviewIterations: cfg.reviewIterations, maxPivots: cfg.maxPivots, maxTokens: cfg.maxTokens, agentTimeMs: AGENT_MS,
      driver: { owner: `edge:${cfg.run}`, ttlMs: LOCK_TTL_MS }, onCheckpoint: (rec) => this.#state.observe(rec),
    };
  }

  #ws: RemoteService | undefined;

  /** The run's workspace, live over RPC with the rights of the key that started the run. */
  get #workspace(): RemoteService {
    const cfg = this.#state.config!;
    if (!this.#ws) {
      const stub = this.env.WORKSPACE.get(this.env.WORKSPACE.idFromName(cfg.workspace));
      const cred = this.#cred(cfg);
      // No attribute cache: the run lock reads its directory and must see another driver at once.
      this.#ws = new RemoteService(`edge://planning/w/${cfg.workspace}`, {
        transport: (ops: WireOp[], parts: Uint8Array[], atomic: boolean) => runBatch(this.env, stub, cred, ops, parts, atomic),
        attrCacheMs: 0,
      });
    }
    return this.#ws;
  }

  #cred(cfg: RunConfig): Cred {
    return { type: "internal", principal: cfg.principal };
  }

  #mine(owner: string): RunConfig {
    const cfg = this.#state.config;
    if (!cfg || cfg.owner !== owner) throw fsError("ENOENT", "no such planning run");
    return cfg;
  }

  /** The alarm at the earliest of: the next slice, the outbox, the next delivery. */
  async #arm(now: boolean): Promise<void> {
    const times: number[] = [];
    if (now) times.push(Date.now());
    if (this.#state.state === "running") times.push(Math.max(Date.now(), this.#state.get<number>("retry_at") ?? 0));
    const due = this.#state.nextDue();
    if (due !== null) times.push(due);
    if (!times.length) return void (await this.ctx.storage.deleteAlarm());
    const at = Math.min(...times);
    const cur = await this.ctx.storage.getAlarm();
    if (cur === null || cur > at) await this.ctx.storage.setAlarm(at);
  }
}
