// Browser benchmarks, in Debian's Chromium driven by playwright-core against the local edge:
// - browser-smallfile: smallfile.wasm through `host.run` (the runtime in its worker, a memory
//   mount) vs @bjorn3/browser_wasi_shim (the browser's reference WASI runtime) in the same page.
// - browser-spawn-warm: hello.wasm, already compiled in the worker, from `host.run` to its
//   result, worker round trip included; the shim instantiating and running the same module in the
//   page is shown beside it.
// - browser-fallback-smallfile: the same through the JSPI-free path (`createHost({ jspi: false })`:
//   the guest in its own worker blocking on Atomics.wait, every file call crossing to the runtime
//   worker over a SharedArrayBuffer) vs the JSPI path.
// Runs are interleaved after warm-ups; medians. BENCH_SCALE scales the sizes.
import { build } from "esbuild";
import { existsSync } from "node:fs";
import { CHROMIUM, startLab } from "../test/browser/harness.ts";
import type { BenchResult } from "./types.ts";

const SCALE = Number(process.env.BENCH_SCALE ?? "1") || 1;
const scaled = (n: number, min = 1): number => Math.max(min, Math.round(n * SCALE));

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** The shim as a script that sets globalThis.shim (evaluated through the debugger, so the page's CSP allows it). */
async function shimScript(): Promise<string> {
  const r = await build({
    stdin: { contents: 'export * from "@bjorn3/browser_wasi_shim";', resolveDir: new URL("..", import.meta.url).pathname },
    bundle: true, format: "iife", globalName: "shim", platform: "browser", write: false, logLevel: "error",
  });
  return r.outputFiles[0]!.text;
}

export async function run(): Promise<BenchResult[]> {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM} (apt-get install -y chromium)`);
  const lab = await startLab();
  try {
    const { page } = await lab.page();
    await page.evaluate(await shimScript());
    const iterations = scaled(2000, 16);
    const reps = scaled(9, 3);
    const warmReps = scaled(200, 20);
    const browser = lab.browser.version();
    const r = await page.evaluate(async ({ iterations, reps, warmReps }) => {
      type Shim = typeof import("@bjorn3/browser_wasi_shim");
      const g = globalThis as unknown as { shim: Shim; oanix: () => typeof import("../browser/host.ts") };
      const { ConsoleStdout, Directory, File, OpenFile, PreopenDirectory, WASI } = g.shim;
      const bytes = async (name: string) => new Uint8Array(await (await fetch(`/agents/${name}.wasm`)).arrayBuffer());
      const [small, hello] = await Promise.all([bytes("smallfile"), bytes("hello")]);
      const [smallMod, helloMod] = await Promise.all([WebAssembly.compile(small), WebAssembly.compile(hello)]);
      const host = await g.oanix().createHost();
      const fallback = await g.oanix().createHost({ jspi: false });
      const args = ["/workspace/smallfile", String(iterations)];
      const expect = `ops=${6 * iterations}\n`;

      const shim = (module: WebAssembly.Module, argv: string[]): { ms: number; out: string } => {
        const out: string[] = [];
        const t0 = performance.now();
        const fds = [
          new OpenFile(new File([])),
          ConsoleStdout.lineBuffered((l) => out.push(l + "\n")),
          ConsoleStdout.lineBuffered((l) => out.push(l + "\n")),
          new PreopenDirectory("/", new Map([["workspace", new Directory(new Map())], ["task", new Directory(new Map())]])),
        ];
        const wasi = new WASI(argv, [], fds);
        const code = wasi.start(new WebAssembly.Instance(module, { wasi_snapshot_preview1: wasi.wasiImport }) as never);
        const ms = performance.now() - t0;
        if (code !== 0) throw new Error(`shim: exit ${code}: ${out.join("")}`);
        return { ms, out: out.join("") };
      };
      const oanix = async (wasm: Uint8Array, argv: string[], on = host): Promise<{ ms: number; out: string }> => {
        const t0 = performance.now();
        const res = await on.run(wasm, { args: argv });
        const ms = performance.now() - t0;
        if (res.code !== 0) throw new Error(`oanix: exit ${res.code}: ${res.stderr} ${res.message ?? ""}`);
        return { ms, out: res.stdout };
      };

      const smallfile = { oanix: [] as number[], shim: [] as number[], fallback: [] as number[] };
      for (let i = 0; i < 2 + reps; i++) {
        const a = await oanix(small, args);
        const b = shim(smallMod, ["smallfile", ...args]);
        const c = await oanix(small, args, fallback);
        if (a.out !== expect || b.out !== expect || c.out !== expect) throw new Error(`smallfile printed ${JSON.stringify(a.out)} / ${JSON.stringify(b.out)} / ${JSON.stringify(c.out)}`);
        if (i >= 2) smallfile.oanix.push(a.ms), smallfile.shim.push(b.ms), smallfile.fallback.push(c.ms);
      }
      fallback.close();
      const warm = { oanix: [] as number[], shim: [] as number[] };
      for (let i = 0; i < 10 + warmReps; i++) {
        const a = await oanix(hello, []);
        const b = shim(helloMod, ["hello"]);
        if (a.out !== "hello\n" || b.out !== "hello\n") throw new Error(`hello printed ${JSON.stringify(a.out)} / ${JSON.stringify(b.out)}`);
        if (i >= 10) warm.oanix.push(a.ms), warm.shim.push(b.ms);
      }
      host.close();
      return { smallfile, warm };
    }, { iterations, reps, warmReps });

    // The same program on an edge workspace (created by the browser's key on first use), with
    // the HTTP requests the runtime's worker sent, as the browser saw them.
    const edgeIterations = scaled(100, 4);
    const edgeReps = scaled(5, 2);
    let requests = 0;
    const count = (req: { url(): string }): void => void (req.url().includes("/w/bench-") && requests++);
    page.context().on("request", count);
    const edgeRuns = await page.evaluate(async ({ iterations, reps, ws }) => {
      const g = globalThis as unknown as { oanix: () => typeof import("../browser/host.ts") };
      const host = await g.oanix().createHost();
      const wasm = new Uint8Array(await (await fetch("/agents/smallfile.wasm")).arrayBuffer());
      const ms: number[] = [];
      for (let i = 0; i < 1 + reps; i++) {
        const t0 = performance.now();
        const r = await host.run(wasm, { args: ["/workspace/smallfile", String(iterations)], mounts: { "/workspace": ws } });
        if (r.code !== 0) throw new Error(`smallfile on the edge: exit ${r.code}: ${r.stderr}`);
        if (i >= 1) ms.push(performance.now() - t0);
      }
      host.close();
      return ms;
    }, { iterations: edgeIterations, reps: edgeReps, ws: `${lab.edge.url}/w/bench-${Date.now().toString(36)}` });
    page.context().off("request", count);
    const perRun = requests / (1 + edgeReps);

    const ops = (ms: number): number => (6 * iterations) / (ms / 1000);
    return [
      {
        name: "browser-smallfile",
        unit: "ops/s",
        oanix: median(r.smallfile.oanix.map(ops)),
        peers: { browser_wasi_shim: median(r.smallfile.shim.map(ops)) },
        better: "higher",
        note:
          `Chromium ${browser} (headless, playwright-core), page served by the local edge. smallfile.wasm /workspace/smallfile ${iterations} iterations × 6 ops; ` +
          `OANIX: host.run from the page (module cached in the worker, the bytes posted each run, memory mounts, the worker round trip included); ` +
          `shim: instantiate + run on the page's thread with an in-memory PreopenDirectory. Median of ${reps} interleaved runs after 2 warm-ups.`,
      },
      {
        name: "browser-fallback-smallfile",
        unit: "ops/s",
        oanix: median(r.smallfile.fallback.map(ops)),
        peers: { "oanix-jspi": median(r.smallfile.oanix.map(ops)) },
        better: "higher",
        note:
          `Chromium ${browser}. smallfile.wasm ${iterations} iterations × 6 ops on memory mounts through createHost({ jspi: false }): the guest in a worker of its own, ` +
          `each of its file calls a request/reply over a SharedArrayBuffer to the runtime worker that holds the namespace (Atomics.wait on the guest's side, ` +
          `Atomics.waitAsync on the services'); peer: the same through the JSPI path (guest and namespace in one worker). Median of ${reps} interleaved runs after 2 warm-ups.`,
      },
      {
        name: "browser-edge-ops",
        unit: "ops/s",
        oanix: median(edgeRuns.map((ms) => (6 * edgeIterations) / (ms / 1000))),
        peers: {},
        better: "higher",
        note:
          `Chromium ${browser}. smallfile.wasm ${edgeIterations} iterations × 6 ops on an edge workspace of the local edge (wrangler dev, loopback), ` +
          `mounted in the page's runtime worker through services/remote signed by the browser's key; ${perRun.toFixed(0)} HTTP requests per run ` +
          `(${(perRun / edgeIterations).toFixed(2)} per iteration), counted by the browser. Median of ${edgeReps} runs after 1 warm-up. No peer runs WASI on an edge workspace.`,
      },
      {
        name: "browser-spawn-warm",
        unit: "ms",
        oanix: median(r.warm.oanix),
        peers: { browser_wasi_shim: median(r.warm.shim) },
        better: "lower",
        note:
          `Chromium ${browser}. hello.wasm (prints hello, writes /task/result.json): host.run(bytes) to its result, the module compiled once in the worker ` +
          `(the bytes are posted and hashed each run), namespace /task /workspace /logs built per run, worker round trip included. Target < 2 ms. ` +
          `Shim: instantiate + run of the precompiled module on the page's thread (no worker, no namespace). Median of ${warmReps} interleaved runs after 10 warm-ups.`,
      },
    ];
  } finally {
    await lab.stop();
  }
}
