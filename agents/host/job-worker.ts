// A job worker thread: runs one agent at a time for the provider (see pool.ts). Modules arrive
// compiled (a WebAssembly.Module crosses threads without a recompile) and are kept by hash.
import { parentPort } from "node:worker_threads";
import type { Program } from "../../runtime/modules.ts";
import { runJob, type RunOutcome } from "./run-job.ts";
import type { WorkerRequest } from "./pool.ts";

const programs = new Map<string, Program>();

parentPort!.on("message", async (m: WorkerRequest) => {
  if (m.module) programs.set(m.hash, { module: m.module, hash: m.hash, instrumented: m.instrumented });
  const program = programs.get(m.hash);
  let out: RunOutcome;
  try {
    if (!program) throw new Error(`module ${m.hash} was never sent to this worker`);
    out = await runJob(program, m.spec, { limits: m.limits });
  } catch (e) {
    out = { ok: false, cancelled: false, reason: `provider error: ${(e as Error).message}` };
  }
  parentPort!.postMessage(out);
});
