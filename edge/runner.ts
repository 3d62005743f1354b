// The edge process runner: a bundled agent runs in a Durable Object (one per run), with
// - /workspace: the caller's workspace, live, through services/remote over Durable Object RPC
//   (every call returns a Promise; the WASI host suspends the guest through JSPI), with exactly
//   the caller's rights (a token for docs/ gives the agent docs/ only);
// - /task: spec.json read from KV (written through the workspace DO), status and result.json
//   written back through the DO when the run ends;
// - /logs: stdout, stderr and events.jsonl, streamed as they happen to the workspace's log
//   streams `<job>.stdout|stderr|events` (R2 segments, live tail);
// - /cap/*: the capabilities the run asked for and the workspace's cap policy allows (edge/caps/:
//   http, ws, nostr, llm with the Worker's transports, the workspace's secrets and agent key);
// and the core runtime's limits (wall time, memory, output). The run is a D1 job:
// queued → running → succeeded | failed, with an exit event.
import { DurableObject } from "cloudflare:workers";
import { FsError } from "../runtime/errors.ts";
import { loadProgram } from "../runtime/modules.ts";
import { Namespace } from "../runtime/namespace.ts";
import { spawn, type ExitStatus, type Limits } from "../runtime/process.ts";
import { LogsService, type LogName } from "../services/logs.ts";
import { RemoteService } from "../services/remote.ts";
import { TaskService } from "../services/task.ts";
import type { Granted } from "../services/cap/grant.ts";
import { mountEdgeCaps } from "./caps/mount.ts";
import type { Budgets, RunCaps } from "./caps/policy.ts";
import { INLINE_MAX, type WireOp } from "../services/remote-wire.ts";
import type { Cred, Principal } from "./auth.ts";
import { addEvent, transition } from "./d1.ts";
import { PROGRAMS } from "./programs.ts";
import { runBatch } from "./batch.ts";
import { unwrap } from "./errors.ts";
import { taskKey } from "./workspace/index.ts";
import type { Env } from "./env.ts";

export interface RunRequest {
  ws: string;
  job: string;
  principal: Principal;
  program: string;
  args?: string[];
  env?: Record<string, string>;
  limits?: Limits;
  /** Capabilities to mount at /cap/* (checked against the workspace's cap policy again here). */
  caps?: RunCaps;
  /** "cap:kind" → N (services/cap/budgets.ts). */
  budgets?: Budgets;
  /** The edge's URL as the caller reached it (names the edge's own relay for /cap/nostr). */
  origin?: string;
}

export interface RunResult { job: string; status: ExitStatus; result: unknown; taskStatus: string }

/** Ceilings for edge runs (a Worker request has bounded time and memory). */
export const EDGE_LIMITS = { wallTimeMs: 30_000, memoryBytes: 128 << 20, outputBytes: 16 << 20 };

const LOG_STREAM: Record<LogName, string> = { stdout: "stdout", stderr: "stderr", "events.jsonl": "events" };

export class Runner extends DurableObject<Env> {
  async run(req: RunRequest): Promise<RunResult> {
    const stub = this.env.WORKSPACE.get(this.env.WORKSPACE.idFromName(req.ws));
    const cred: Cred = { type: "internal", principal: req.principal };
    const mod = PROGRAMS[req.program];
    if (!mod) throw new FsError("ENOENT", `no bundled program ${req.program}`);

    // /workspace: live, through the workspace Durable Object.
    const workspace = new RemoteService(`edge://runner/w/${req.ws}`, {
      // runBatch's errors are FsErrors already (their code is a field).
      transport: (ops: WireOp[], parts: Uint8Array[], atomic: boolean) => runBatch(this.env, stub, cred, ops, parts, atomic),
      attrCacheMs: 1000,
    });

    // /task: the spec from KV (the DO is the authority if KV has no copy yet).
    let specText = await this.env.KV.get(taskKey(req.ws, req.job, "spec.json"));
    if (specText === null) {
      const r = await stub.taskGet(cred, req.job, "spec.json");
      specText = r.ok && r.value ? new TextDecoder().decode(r.value) : "{}";
    }
    const task = new TaskService(JSON.parse(specText), { status: "running" });

    // /logs: every append is streamed to the workspace's log streams, in order.
    const logs = new LogsService();
    let chain: Promise<unknown> = Promise.resolve();
    logs.onAppend((name, bytes) => {
      const stream = `${req.job}.${LOG_STREAM[name]}`;
      for (let i = 0; i < bytes.length; i += INLINE_MAX) {
        const piece = bytes.slice(i, i + INLINE_MAX);
        chain = chain.then(async () => {
          const r = await stub.logAppend(cred, stream, piece);
          if (!r.ok) console.error("runner: log append failed", r.error.message);
        }).catch((e) => console.error("runner: log append failed", e));
      }
    });

    const ns = new Namespace().mount("/workspace", workspace, { access: "rw" }).mount("/task", task).mount("/logs", logs);
    await transition(this.env.DB, req.ws, req.job, "running");
    let status: ExitStatus;
    let caps: Granted | null = null;
    try {
      if (req.caps && Object.keys(req.caps).length) {
        const material = unwrap(await stub.capsOpen(cred, req.caps, req.budgets ?? {}));
        caps = mountEdgeCaps(ns, this.env, req.caps, material, req.origin ?? "https://edge.invalid");
      }
      const limits = {
        wallTimeMs: Math.min(req.limits?.wallTimeMs ?? 10_000, EDGE_LIMITS.wallTimeMs),
        memoryBytes: Math.min(req.limits?.memoryBytes ?? 64 << 20, EDGE_LIMITS.memoryBytes),
        outputBytes: Math.min(req.limits?.outputBytes ?? 1 << 20, EDGE_LIMITS.outputBytes),
      };
      status = await spawn(await loadProgram(mod), { namespace: ns, name: req.program, args: req.args ?? [], env: req.env ?? {}, limits });
      await workspace.flush();
    } catch (e) {
      caps?.close();
      await chain;
      await transition(this.env.DB, req.ws, req.job, "failed", { error: (e as Error).message });
      throw e;
    }
    caps?.close();
    await chain;
    const ok = status.code === 0 && status.reason === "exit";
    task.setStatus(ok ? "succeeded" : "failed");
    let result: unknown = null;
    let resultText: string | null = null;
    try {
      resultText = task.resultText();
      result = task.result();
    } catch {
      // no result.json, or not JSON: recorded as null (the raw text is still kept if there is one)
    }
    const enc = new TextEncoder();
    await stub.taskPut(cred, req.job, "status", enc.encode(ok ? "succeeded" : "failed"));
    if (resultText) await stub.taskPut(cred, req.job, "result.json", enc.encode(resultText));
    await addEvent(this.env.DB, req.job, "exit", status);
    await transition(this.env.DB, req.ws, req.job, ok ? "succeeded" : "failed", ok ? { result } : { error: status.message ?? `exit ${status.code} (${status.reason})` });
    return { job: req.job, status, result, taskStatus: ok ? "succeeded" : "failed" };
  }
}
