// Planning runs (bench/run.ts module "plan"):
//   plan-offline  (s, lower)   a whole run, every phase once (17 phase agents, 12 reviews), with
//                              the offline provider: the orchestration's own cost. Target: < 3 s.
//                              Workspace in memory; the same run on a host directory (dir:) in the note.
//   plan-resume   (ms, lower)  resuming a run interrupted after its last phase finished: the
//                              record read, the package written, the record saved.
// No peer runs the same machine; the figures stand against their targets. Medians of repetitions.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadProgram } from "../runtime/modules.ts";
import type { FileService } from "../runtime/types.ts";
import { DirService } from "../services/dir.ts";
import { MemService } from "../services/mem.ts";
import { OfflineProvider } from "../services/cap/llm-offline.ts";
import { resumePlan, startPlan, type PlanOptions } from "../agents/host/planning/orchestrator.ts";
import { loadRecord, saveRecord } from "../agents/host/planning/record.ts";
import type { BenchResult } from "./types.ts";

const RUNS = 5;
const RESUMES = 30;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
const fmt = (x: number): string => Number(x.toPrecision(3)).toString();

export async function run(): Promise<BenchResult[]> {
  const load = async (n: string) => loadProgram(readFileSync(new URL(`../agents/build/${n}.wasm`, import.meta.url)));
  const programs = { phase: await load("phase"), reviewer: await load("reviewer") };
  const opts = (workspace: FileService): PlanOptions => ({ workspace, provider: new OfflineProvider(), llm: "offline", programs });
  const whole = async (ws: FileService): Promise<{ s: number; run: string; calls: number }> => {
    const t0 = performance.now();
    const rec = await startPlan("A bakery that delivers bread by drone", opts(ws));
    if (rec.status !== "completed") throw new Error(`plan-offline: the run ended ${rec.status}: ${rec.error?.message}`);
    return { s: (performance.now() - t0) / 1000, run: rec.run, calls: rec.calls };
  };

  await whole(new MemService()); // warm: compile caches, JIT
  const mem: number[] = [];
  const dir: number[] = [];
  const host = mkdtempSync(join(tmpdir(), "oanix-bench-plan-"));
  let calls = 0;
  try {
    for (let i = 0; i < RUNS; i++) {
      const m = await whole(new MemService());
      mem.push(m.s);
      calls = m.calls;
      dir.push((await whole(new DirService(host))).s);
    }
  } finally {
    rmSync(host, { recursive: true, force: true });
  }

  // A run whose last phase finished but which was interrupted before its package.
  const ws = new MemService();
  const { run: id } = await whole(ws);
  const finished = (await loadRecord(ws, id))!;
  const resumes: number[] = [];
  for (let i = 0; i < RESUMES; i++) {
    await saveRecord(ws, { ...finished, status: "running", package: undefined });
    const t0 = performance.now();
    const rec = await resumePlan(id, opts(ws));
    resumes.push(performance.now() - t0);
    if (rec.status !== "completed" || rec.calls !== finished.calls) throw new Error("plan-resume: the resumed run called the model or did not complete");
  }

  return [
    {
      name: "plan-offline", unit: "s", oanix: Number(fmt(median(mem))), peers: {}, better: "lower",
      note: `${calls} model calls (17 phases, reviewed ones once); target < 3 s. Memory workspace median ${fmt(median(mem))} s (min ${fmt(Math.min(...mem))}), host directory (dir:) ${fmt(median(dir))} s; ${RUNS} runs each.`,
    },
    {
      name: "plan-resume", unit: "ms", oanix: Number(fmt(median(resumes))), peers: {}, better: "lower",
      note: `resume after the last phase: read the record, write package.md, save; no model call. Median of ${RESUMES}, min ${fmt(Math.min(...resumes))} ms.`,
    },
  ];
}
