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
import { grantCaps, type CapGrants } from "../../services/cap/grant.ts";
import type { JobSpec } from "./spec.ts";

export type RunOutcome =
  | { ok: true; content: string; durationMs: number }
  | { ok: false; cancelled: boolean; reason: string };

const STDERR_TAIL = 400;

export async function runJob(
  program: Program,
  spec: JobSpec,
  o: { limits: Limits; grants?: CapGrants; caps?: Record<string, FileService> },
): Promise<RunOutcome> {
  const task = new TaskService(spec, { status: "running" });
  const ns = new Namespace().mount("/task", task).mount("/workspace", new MemService()).mount("/logs", new LogsService());
  // The granted capabilities (services/cap), then this host's own files (e.g. nostr/jobs inside /cap/nostr).
  const granted = o.grants ? grantCaps(ns, o.grants) : null;
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
  if (status.code !== 0) {
    const tail = stderr.trim();
    return { ok: false, cancelled: false, reason: `agent exited with status ${status.code}${status.message ? ` (${status.message})` : ""}${tail ? `: ${tail}` : ""}` };
  }
  let text: string;
  try {
    text = task.resultText();
  } catch (e) {
    if (!isFsError(e)) throw e;
    const reason = e.code === "ENOENT" ? "agent exited 0 without writing /task/result.json" : `agent's /task/result.json: ${e.message}`;
    return { ok: false, cancelled: false, reason };
  }
  return { ok: true, content: resultContent(text), durationMs: status.durationMs };
}

/** The `content` string of result.json when it has one, else the whole text. */
export function resultContent(text: string): string {
  try {
    const v = JSON.parse(text) as unknown;
    if (v && typeof v === "object" && typeof (v as { content?: unknown }).content === "string") return (v as { content: string }).content;
  } catch {
    // not JSON: the text itself is the answer
  }
  return text;
}
