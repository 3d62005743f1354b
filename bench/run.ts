// npm run bench: runs the benchmark modules of bench/ in one process and writes bench/results.json.
//
//   node bench/run.ts                 every module (wasi, relay, relay-sync, relay-shards, edge, sqlite-edge, caps, cold-run, dvm, plan, browser)
//   node bench/run.ts --only wasi     a subset (comma-separated, or --only repeated)
//
// Each module exports `run(): Promise<BenchResult[]>`. A module that is missing or throws is
// skipped with a message and recorded under `errors`; the others still run. With --only, results
// of modules that were not run are kept from the existing results.json (each result records its
// `module`), so a partial run refreshes its part without losing the rest.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import { fileURLToPath } from "node:url";
import type { BenchModule, BenchResult } from "./types.ts";

const MODULES = ["wasi", "relay", "relay-sync", "relay-shards", "edge", "sqlite-edge", "caps", "cold-run", "dvm", "plan", "browser"] as const;
const OUT = new URL("./results.json", import.meta.url);

interface StoredResult extends BenchResult {
  module: string;
}

interface Results {
  machine: { cpu: string; cores: number; memory: string; node: string; os: string };
  date: string;
  results: StoredResult[];
  errors?: { module: string; error: string }[];
}

function parseOnly(argv: string[]): Set<string> | null {
  const picked: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--only") picked.push(...(argv[++i] ?? "").split(","));
    else if (a.startsWith("--only=")) picked.push(...a.slice(7).split(","));
    else if (a === "--help" || a === "-h") {
      console.log(`usage: node bench/run.ts [--only ${MODULES.join(",")}]`);
      process.exit(0);
    } else {
      console.error(`bench: unknown argument ${a}`);
      process.exit(2);
    }
  }
  const names = picked.map((s) => s.trim()).filter(Boolean);
  if (!picked.length) return null;
  for (const n of names) {
    if (!(MODULES as readonly string[]).includes(n)) {
      console.error(`bench: unknown module ${n} (known: ${MODULES.join(", ")})`);
      process.exit(2);
    }
  }
  return new Set(names);
}

function machine(): Results["machine"] {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? "unknown",
    cores: typeof os.availableParallelism === "function" ? os.availableParallelism() : cpus.length,
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
  };
}

/** oanix/peer (higher is better) or peer/oanix (lower is better): > 1 means OANIX is better. */
function ratios(r: BenchResult): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [peer, v] of Object.entries(r.peers)) {
    const x = r.better === "higher" ? r.oanix / v : v / r.oanix;
    if (Number.isFinite(x)) out[peer] = round(x, 3);
  }
  return out;
}

function round(x: number, digits: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const mag = Math.floor(Math.log10(Math.abs(x)));
  const p = 10 ** Math.max(0, digits - 1 - mag);
  return Math.round(x * p) / p;
}

function fmt(x: number): string {
  const r = round(x, 4);
  return Math.abs(r) >= 1000 ? Math.round(r).toLocaleString("en-US") : String(r);
}

function table(rows: StoredResult[]): string {
  const head = ["benchmark", "unit", "better", "OANIX", "peers", "OANIX vs peer (>1 = OANIX better)"];
  const body = rows.map((r) => [
    r.name,
    r.unit,
    r.better,
    fmt(r.oanix),
    Object.entries(r.peers).map(([k, v]) => `${k} ${fmt(v)}`).join(", "),
    Object.entries(r.ratio ?? {}).map(([k, v]) => `${k} ${v.toFixed(2)}×`).join(", "),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

async function main(): Promise<void> {
  const only = parseOnly(process.argv.slice(2));
  const selected = MODULES.filter((m) => !only || only.has(m));
  const results: StoredResult[] = [];
  const errors: { module: string; error: string }[] = [];
  const started = performance.now();

  for (const name of selected) {
    const url = new URL(`./${name}.ts`, import.meta.url);
    if (!existsSync(fileURLToPath(url))) {
      console.error(`bench: ${name}: bench/${name}.ts not found, skipped`);
      errors.push({ module: name, error: `bench/${name}.ts not found` });
      continue;
    }
    console.error(`bench: ${name} …`);
    const t0 = performance.now();
    try {
      const mod = (await import(url.href)) as Partial<BenchModule>;
      if (typeof mod.run !== "function") throw new Error(`bench/${name}.ts exports no run()`);
      const got = await mod.run();
      for (const r of got) results.push({ ...r, ratio: r.ratio ?? ratios(r), module: name });
      console.error(`bench: ${name}: ${got.length} results in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    } catch (e) {
      const msg = e instanceof Error ? (e.stack ?? e.message) : String(e);
      console.error(`bench: ${name} failed, skipped: ${msg}`);
      errors.push({ module: name, error: e instanceof Error ? e.message : String(e) });
    }
  }

  // Keep what other modules measured earlier when only some ran.
  let kept: StoredResult[] = [];
  let keptErrors: { module: string; error: string }[] = [];
  if (only && existsSync(fileURLToPath(OUT))) {
    try {
      const prev = JSON.parse(readFileSync(OUT, "utf8")) as Partial<Results>;
      kept = (prev.results ?? []).filter((r) => r.module && !only.has(r.module));
      keptErrors = (prev.errors ?? []).filter((e) => !only.has(e.module));
    } catch {
      console.error("bench: existing results.json unreadable, overwritten");
    }
  }
  const order = (m: string): number => (MODULES as readonly string[]).indexOf(m);
  const all = [...kept, ...results].sort((a, b) => order(a.module) - order(b.module));
  const allErrors = [...keptErrors, ...errors];
  const out: Results = { machine: machine(), date: new Date().toISOString(), results: all };
  if (allErrors.length) out.errors = allErrors;
  writeFileSync(OUT, JSON.stringify(out, null, 2) + "\n");

  const m = out.machine;
  console.log(`\n${m.cpu}, ${m.cores} cores, ${m.memory}, Node ${m.node}, ${m.os}`);
  if (!results.length && all.length) console.log("(nothing new measured; results kept from the previous results.json:)");
  console.log(table(results.length ? results : all) + "\n");
  for (const r of results) if (r.note) console.log(`${r.name}: ${r.note}\n`);
  console.log(`bench: wrote ${fileURLToPath(OUT)} (${((performance.now() - started) / 1000).toFixed(1)} s)`);
  if (errors.length) process.exitCode = selected.length === errors.length ? 1 : 0;
}

await main();
