// cold-run: a whole `oanix run agents/build/hello.wasm` process, from exec to exit, against
// node:wasi running the same module (bench/node-wasi-run.mjs), both from the pinned Node, runs
// interleaved so that the machine's noise hits both alike. Target: OANIX ≤ 1.5× node:wasi.
// Measured: the `oanix` bin (cli/oanix.mjs, as `npx oanix` and an installed `oanix` run it),
// `node cli/oanix.ts` (a TypeScript entry: Node loads its type stripper before any cache is on),
// and the first run with an empty cache (instrumenting, compiling and caching the module). Besides wall time, each process's own CPU time (user + system, reported by a
// preloaded module at exit) is recorded, which the machine's load disturbs far less.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { BenchResult } from "./types.ts";

const ROOT = join(fileURLToPath(import.meta.url), "../..");
const MODULE = join(ROOT, "agents/build/hello.wasm");
const RUNS = Number(process.env.COLD_RUNS ?? 30);

let cpuProbe = "";
const cpu: Record<string, number[]> = {};

/** Wall ms of one process; its CPU ms go to cpu[label] when a label is given. */
function time(args: string[], env: NodeJS.ProcessEnv, label?: string): number {
  const t = performance.now();
  const r = spawnSync(process.execPath, label ? ["--import", cpuProbe, ...args] : args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  const ms = performance.now() - t;
  if (r.status !== 0) throw new Error(`${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  if (!String(r.stdout).includes("hello")) throw new Error(`${args.join(" ")} did not greet: ${r.stdout}`);
  const used = /oanix-bench-cpu ([\d.]+)/.exec(String(r.stderr));
  if (label && used) (cpu[label] ??= []).push(Number(used[1]));
  return ms;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const q = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.floor(p * (xs.length - 1))]!;
const round = (x: number): number => Math.round(x * 10) / 10;

export async function run(): Promise<BenchResult[]> {
  const cache = mkdtempSync(join(tmpdir(), "oanix-cold-"));
  const env = { ...process.env, OANIX_CACHE_DIR: cache, NODE_NO_WARNINGS: "1" };
  cpuProbe = join(cache, "cpu.mjs");
  writeFileSync(cpuProbe, `process.on("exit", () => { const u = process.cpuUsage(); process.stderr.write("oanix-bench-cpu " + (u.user + u.system) / 1000 + "\\n"); });\n`);
  try {
    const bin = [join(ROOT, "cli/oanix.mjs"), "run", MODULE];
    const ts = [join(ROOT, "cli/oanix.ts"), "run", MODULE];
    const peer = [join(ROOT, "bench/node-wasi-run.mjs"), MODULE];
    const lean = [join(ROOT, "bench/node-wasi-lean.mjs"), MODULE];
    const first = time(bin, env); // empty cache: instrument, compile, store
    for (let i = 0; i < 2; i++) for (const a of [bin, ts, peer, lean]) time(a, env); // compile caches
    const t = { bin: [] as number[], ts: [] as number[], peer: [] as number[], lean: [] as number[] };
    for (let i = 0; i < RUNS; i++) {
      t.peer.push(time(peer, env, "peer"));
      t.lean.push(time(lean, env, "lean"));
      t.bin.push(time(bin, env, "bin"));
      t.ts.push(time(ts, env));
    }
    const [b, s, p, l] = [median(t.bin), median(t.ts), median(t.peer), median(t.lean)];
    const [cb, cp, cl] = [median(cpu.bin ?? [0]), median(cpu.peer ?? [0]), median(cpu.lean ?? [0])];
    const iqr = (xs: number[]) => `${round(q(xs, 0.25))}–${round(q(xs, 0.75))}`;
    return [{
      name: "cold-run", unit: "ms", better: "lower",
      oanix: round(b), peers: { "node:wasi": round(p), "node:wasi (lean)": round(l) },
      note: `whole process, exec to exit, median of ${RUNS} interleaved runs of hello.wasm (IQR: oanix ${iqr(t.bin)}, node:wasi ${iqr(t.peer)}); ` +
        `oanix/node:wasi = ${(b / p).toFixed(2)}× (target ≤ 1.5×). Best runs: oanix ${round(Math.min(...t.bin))}, node:wasi ${round(Math.min(...t.peer))}. ` +
        `node:wasi (lean) = bench/node-wasi-lean.mjs: ${(b / l).toFixed(2)}×. ` +
        `CPU time (user+system) medians: oanix ${round(cb)} ms, node:wasi ${round(cp)} ms (${(cb / cp).toFixed(2)}×), lean ${round(cl)} ms (${(cb / cl).toFixed(2)}×). ` +
        `node cli/oanix.ts: ${round(s)} ms (IQR ${iqr(t.ts)}). First run with an empty cache: ${round(first)} ms.`,
    }];
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
}

if (import.meta.main) console.log(JSON.stringify(await run(), null, 2));
