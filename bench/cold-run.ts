// cold-run: a whole `oanix run agents/build/hello.wasm` process, from exec to exit, against
// node:wasi running the same module (bench/node-wasi-run.mjs), both from the pinned Node, runs
// interleaved so that the machine's noise hits both alike. Target: OANIX ≤ 1.5× node:wasi.
// Measured: the `oanix` bin (cli/oanix.mjs, as `npx oanix` and an installed `oanix` run it),
// `node cli/oanix.ts` (a TypeScript entry: Node loads its type stripper before any cache is on),
// and the first run with an empty cache (instrumenting, compiling and caching the module).
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { BenchResult } from "./types.ts";

const ROOT = join(fileURLToPath(import.meta.url), "../..");
const MODULE = join(ROOT, "agents/build/hello.wasm");
const RUNS = Number(process.env.COLD_RUNS ?? 30);

function time(args: string[], env: NodeJS.ProcessEnv): number {
  const t = performance.now();
  const r = spawnSync(process.execPath, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  const ms = performance.now() - t;
  if (r.status !== 0) throw new Error(`${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  if (!String(r.stdout).includes("hello")) throw new Error(`${args.join(" ")} did not greet: ${r.stdout}`);
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
  try {
    const bin = [join(ROOT, "cli/oanix.mjs"), "run", MODULE];
    const ts = [join(ROOT, "cli/oanix.ts"), "run", MODULE];
    const peer = [join(ROOT, "bench/node-wasi-run.mjs"), MODULE];
    const first = time(bin, env); // empty cache: instrument, compile, store
    const firstTs = (() => {
      rmSync(cache, { recursive: true, force: true });
      return time(ts, env);
    })();
    time(bin, env); // the bin's own compile cache entry
    const t = { bin: [] as number[], ts: [] as number[], peer: [] as number[] };
    for (let i = 0; i < RUNS; i++) {
      t.peer.push(time(peer, env));
      t.bin.push(time(bin, env));
      t.ts.push(time(ts, env));
    }
    const [b, s, p] = [median(t.bin), median(t.ts), median(t.peer)];
    const iqr = (xs: number[]) => `${round(q(xs, 0.25))}–${round(q(xs, 0.75))}`;
    return [{
      name: "cold-run", unit: "ms", better: "lower",
      oanix: round(b), peers: { "node:wasi": round(p) },
      note: `whole process, exec to exit, median of ${RUNS} interleaved runs of hello.wasm (IQR: oanix ${iqr(t.bin)}, node:wasi ${iqr(t.peer)}); ` +
        `oanix/node:wasi = ${(b / p).toFixed(2)}× (target ≤ 1.5×). node cli/oanix.ts: ${round(s)} ms (IQR ${iqr(t.ts)}). ` +
        `First run with an empty cache: ${round(first)} ms (bin), ${round(firstTs)} ms (.ts entry).`,
    }];
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
}

if (import.meta.main) console.log(JSON.stringify(await run(), null, 2));
