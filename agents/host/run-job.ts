// One job's agent run: the namespace (/task with the spec, a fresh /workspace, /logs, the granted
// capabilities), the spawn under limits, and the result text or the reason there is none. It runs
// inside a job worker (job-worker.ts), so a spinning guest never stalls the provider and a
// cancelled one is ended by terminating its thread.
import type { Program } from "../../runtime/modules.ts";
import { Namespace } from "../../runtime/namespace.ts";
import { spawn, type Limits } from "../../runtime/process.ts";
import { isFsError } from "../../runtime/errors.ts";
import type { FileService } from "../../runtime/types.ts";
import { LogsService } from "../../services/logs.ts";
import { MemService } from "../../services/mem.ts";
import { TaskService } from "../../services/task.ts";
import { grantCaps, type CapGrants, type GrantOptions } from "../../services/cap/grant.ts";
import type { JobSpec } from "./spec.ts";
import { NO_RESULT, STDERR_TAIL, exitReason, resultContent } from "./answers.ts";

export type RunOutcome =
  | { ok: true; content: string; durationMs: number }
  | { ok: false; cancelled: boolean; reason: string };

export async function runJob(
  program: Program,
  spec: JobSpec,
  o: { limits: Limits; grants?: CapGrants; grantOptions?: GrantOptions; caps?: Record<string, FileService> },
): Promise<RunOutcome> {
  const task = new TaskService(spec, { status: "running" });
  const ns = new Namespace().mount("/task", task).mount("/workspace", new MemService()).mount("/logs", new LogsService());
  // The granted capabilities (services/cap), then this host's own files (e.g. nostr/jobs inside /cap/nostr).
  // Made per job: every job starts with the whole of each budget.
  const granted = o.grants ? grantCaps(ns, o.grants, o.grantOptions) : null;
  for (const [name, service] of Object.entries(o.caps ?? {})) ns.mount(`/cap/${name}`, service);
  let stderr = "";
  const dec = new TextDecoder();
  let status;
  try {
    status = await spawn(program, {
      namespace: ns,
      name: `job-${spec.kind}`,
      limits: o.limits,
      onStderr: (b) => (stderr = (stderr + dec.decode(b, { stream: true })).slice(-STDERR_TAIL)),
    });
  } finally {
    granted?.close();
  }
  if (status.code !== 0) return { ok: false, cancelled: false, reason: exitReason(status, stderr) };
  let text: string;
  try {
    text = task.resultText();
  } catch (e) {
    if (!isFsError(e)) throw e;
    const reason = e.code === "ENOENT" ? NO_RESULT : `agent's /task/result.json: ${e.message}`;
    return { ok: false, cancelled: false, reason };
  }
  return { ok: true, content: resultContent(text), durationMs: status.durationMs };
}
