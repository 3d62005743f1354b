// WASI benchmarks: the same guest binaries (agents/build/*.wasm) run by OANIX's WASI host over a
// Namespace, by @bjorn3/browser_wasi_shim over its in-memory fs, and by node:wasi over a real temp
// directory, side by side in one process. Every measurement warms up first, then interleaves the
// peers round-robin (rotating who goes first) so that drift on a shared machine hits all of them
// alike, and reports the median of the repetitions.
//
// What is timed is one "run": host setup + instantiate + _start to exit (spawn() for OANIX). The
// file tree each run works on (MemService / shim Directory / temp dir) is made before the clock
// starts. OANIX runs the Program loadProgram() gives it (instrumented with fuel checks for wall-time
// limits and memory.grow interception); the peers run the original, uninstrumented module, as their
// users would.
//
// Sizes can be scaled with BENCH_SCALE (e.g. 0.2 for a quick smoke run).
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WASI as NodeWASI } from "node:wasi";
import { ConsoleStdout, Directory as ShimDirectory, File as ShimFile, OpenFile, PreopenDirectory, WASI as ShimWASI } from "@bjorn3/browser_wasi_shim";
import type { Inode } from "@bjorn3/browser_wasi_shim";
import { loadProgram } from "../runtime/modules.ts";
import type { Program } from "../runtime/modules.ts";
import { Namespace } from "../runtime/namespace.ts";
import { spawn } from "../runtime/process.ts";
import type { DirEntry, FileHandle, FileService, FileType, OpenFlags, Stat } from "../runtime/types.ts";
import { MemService } from "../services/mem.ts";
import type { BenchResult } from "./types.ts";

const SCALE = Number(process.env.BENCH_SCALE ?? "1") || 1;
const scaled = (n: number, min = 1): number => Math.max(min, Math.round(n * SCALE));

const BUILD = new URL("../agents/build/", import.meta.url);
const dec = new TextDecoder();

/** One timed run of a guest: wall time and what it printed. */
interface Run {
  ms: number;
  stdout: string;
}
type Runner = () => Promise<Run>;

// ---------------------------------------------------------------------------------------------
// The three hosts

function concat(chunks: Uint8Array[]): string {
  return chunks.map((c) => dec.decode(c, { stream: true })).join("") + dec.decode();
}

/** OANIX: spawn() over a namespace (the program is already loaded and cached). */
async function runOanix(program: Program, namespace: FileService, name: string, args: string[]): Promise<Run> {
  const out: Uint8Array[] = [];
  const err: Uint8Array[] = [];
  const t0 = performance.now();
  const st = await spawn(program, { namespace, name, args, onStdout: (b) => out.push(b), onStderr: (b) => err.push(b) });
  const ms = performance.now() - t0;
  if (st.code !== 0) throw new Error(`oanix: ${name} exited ${st.code} (${st.reason}${st.message ? `: ${st.message}` : ""}) ${concat(err)}`);
  return { ms, stdout: concat(out) };
}

/** browser_wasi_shim: its WASI class over an in-memory PreopenDirectory named "/". */
function runShim(module: WebAssembly.Module, root: Map<string, Inode>, name: string, args: string[]): Run {
  const out: Uint8Array[] = [];
  const err: Uint8Array[] = [];
  const t0 = performance.now();
  const fds = [
    new OpenFile(new ShimFile([])),
    new ConsoleStdout((b) => out.push(b)),
    new ConsoleStdout((b) => err.push(b)),
    new PreopenDirectory("/", root),
  ];
  const wasi = new ShimWASI([name, ...args], [], fds, { debug: false });
  const instance = new WebAssembly.Instance(module, { wasi_snapshot_preview1: wasi.wasiImport });
  const code = wasi.start(instance as unknown as Parameters<ShimWASI["start"]>[0]);
  const ms = performance.now() - t0;
  if (code !== 0) throw new Error(`browser_wasi_shim: ${name} exited ${code}: ${concat(err)}`);
  return { ms, stdout: concat(out) };
}

/** node:wasi (uvwasi): a real directory preopened as "/"; stdout/stderr go to temp files. */
function runNode(module: WebAssembly.Module, dir: string, name: string, args: string[], capture: { out: string; err: string }): Run {
  const outFd = openSync(capture.out, "w+");
  const errFd = openSync(capture.err, "w+");
  let ms: number;
  let code: number;
  try {
    const t0 = performance.now();
    const wasi = new NodeWASI({ version: "preview1", args: [name, ...args], env: {}, preopens: { "/": dir }, returnOnExit: true, stdout: outFd, stderr: errFd });
    const instance = new WebAssembly.Instance(module, wasi.getImportObject() as WebAssembly.Imports);
    code = wasi.start(instance);
    ms = performance.now() - t0;
  } finally {
    closeSync(outFd);
    closeSync(errFd);
  }
  if (code !== 0) throw new Error(`node:wasi: ${name} exited ${code}: ${readFileSync(capture.err, "utf8")}`);
  return { ms, stdout: readFileSync(capture.out, "utf8") };
}

// ---------------------------------------------------------------------------------------------
// A FileService that answers every call with a Promise (resolved at once): what a remote service
// looks like to the WASI host, without the network. Used to price JSPI suspension.

class PromiseHandle implements FileHandle {
  #h: FileHandle;
  readonly type?: FileType;
  constructor(h: FileHandle) {
    this.#h = h;
    this.type = h.type;
  }
  get position(): number { return this.#h.position; }
  set position(p: number) { this.#h.position = p; }
  async read(length: number, offset?: number): Promise<Uint8Array> { return this.#h.read(length, offset); }
  async write(data: Uint8Array, offset?: number): Promise<number> { return this.#h.write(data, offset); }
  async stat(): Promise<Stat> { return this.#h.stat(); }
  async truncate(size: number): Promise<void> { return this.#h.truncate(size); }
  async sync(): Promise<void> { return this.#h.sync(); }
  async close(): Promise<void> { return this.#h.close(); }
  async setTimes(a: bigint | undefined, m: bigint | undefined): Promise<void> { await this.#h.setTimes?.(a, m); }
}

export class PromiseService implements FileService {
  #s: MemService;
  constructor(s: MemService) {
    this.#s = s;
  }
  async open(path: string, flags: OpenFlags): Promise<FileHandle> { return new PromiseHandle(this.#s.open(path, flags)); }
  async stat(path: string): Promise<Stat> { return this.#s.stat(path); }
  async lstat(path: string): Promise<Stat> { return this.#s.lstat(path); }
  async readdir(path: string): Promise<DirEntry[]> { return this.#s.readdir(path); }
  async mkdir(path: string): Promise<void> { return this.#s.mkdir(path); }
  async remove(path: string): Promise<void> { return this.#s.remove(path); }
  async rename(from: string, to: string): Promise<void> { return this.#s.rename(from, to); }
  async symlink(target: string, path: string): Promise<void> { return this.#s.symlink(target, path); }
  async readlink(path: string): Promise<string> { return this.#s.readlink(path); }
  async link(existing: string, path: string): Promise<void> { return this.#s.link(existing, path); }
  async setTimes(path: string, a: bigint | undefined, m: bigint | undefined, o?: { nofollow?: boolean }): Promise<void> {
    return this.#s.setTimes(path, a, m, o);
  }
}

// ---------------------------------------------------------------------------------------------
// Measurement

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.round(q * (s.length - 1))))]!;
}

/**
 * Runs every runner `warmup` times, then `reps` rounds in which each runs once, the order rotating
 * each round. Returns the runs per runner (warm-up excluded).
 */
async function interleave(runners: Record<string, Runner>, warmup: number, reps: number): Promise<Record<string, Run[]>> {
  const names = Object.keys(runners);
  const out: Record<string, Run[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let w = 0; w < warmup; w++) for (const n of names) await runners[n]!();
  for (let r = 0; r < reps; r++) {
    for (let i = 0; i < names.length; i++) {
      const n = names[(r + i) % names.length]!;
      out[n]!.push(await runners[n]!());
    }
  }
  return out;
}

const fmt = (x: number, digits = 3): string => Number(x.toPrecision(digits)).toLocaleString("en-US");

/** Interquartile range and best run, for the note (the machine is shared: medians move). */
function spread(values: number[], better: "higher" | "lower"): string {
  const best = better === "higher" ? Math.max(...values) : Math.min(...values);
  return `${fmt(quantile(values, 0.25))}–${fmt(quantile(values, 0.75))} (best ${fmt(best)})`;
}

async function wasm(name: string): Promise<Uint8Array> {
  return new Uint8Array(await readFile(new URL(name, BUILD)));
}

// ---------------------------------------------------------------------------------------------
// The benchmarks

interface Ctx {
  tmp: string;
  capture: { out: string; err: string };
}

/** smallfile.wasm on OANIX (sync MemService at /), browser_wasi_shim and node:wasi. */
async function smallfile(ctx: Ctx): Promise<BenchResult> {
  const bytes = await wasm("smallfile.wasm");
  const program = await loadProgram(bytes);
  const module = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
  const iterations = scaled(10000, 16);
  const args = ["/tmp/smallfile", String(iterations)];
  const expect = `ops=${6 * iterations}`;
  const nodeDir = mkdtempSync(join(ctx.tmp, "smallfile-"));

  const check = (r: Run, who: string): Run => {
    if (r.stdout.trim() !== expect) throw new Error(`${who}: smallfile printed ${JSON.stringify(r.stdout)}, expected ${expect}`);
    return r;
  };
  const runs = await interleave({
    oanix: async () => check(await runOanix(program, new Namespace().mount("/", new MemService()), "smallfile", args), "oanix"),
    browser_wasi_shim: async () => check(runShim(module, new Map(), "smallfile", args), "browser_wasi_shim"),
    "node:wasi": async () => check(runNode(module, nodeDir, "smallfile", args, ctx.capture), "node:wasi"),
  }, 2, scaled(15, 3));

  const opsPerSec = (r: Run): number => (6 * iterations) / (r.ms / 1000);
  const v = Object.fromEntries(Object.entries(runs).map(([k, rs]) => [k, rs.map(opsPerSec)]));
  const { oanix, ...peers } = v;
  return {
    name: "wasi-smallfile-ops",
    unit: "ops/s",
    oanix: median(oanix!),
    peers: Object.fromEntries(Object.entries(peers).map(([k, xs]) => [k, median(xs)])),
    better: "higher",
    note:
      `smallfile.wasm DIR=/tmp/smallfile, ${iterations} iterations × 6 ops (create, write 100 B, read, stat, readdir, unlink), ` +
      `ops / wall time of setup+instantiate+run; median of ${oanix!.length} interleaved runs after 2 warm-ups. ` +
      `OANIX: Namespace with a MemService at / (answers synchronously); shim: in-memory PreopenDirectory "/"; node:wasi: real temp dir on ${tmpdir()}. ` +
      `Interquartile range (best run): ${Object.entries(v).map(([k, xs]) => `${k} ${spread(xs, "higher")}`).join("; ")}.`,
  };
}

/** bigread.wasm reading a 64 MiB file in 64 KiB chunks. */
async function bigfile(ctx: Ctx): Promise<BenchResult> {
  const bytes = await wasm("bigread.wasm");
  const program = await loadProgram(bytes);
  const module = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
  const size = 64 << 20;
  const data = new Uint8Array(size);
  for (let o = 0; o < size; o += 65536) crypto.getRandomValues(data.subarray(o, o + 65536));

  const mem = new MemService();
  mem.writeFile("/data/big.bin", data, { parents: true });
  const ns = new Namespace().mount("/", mem, { access: "ro" });
  const shimRoot = new Map<string, Inode>([["data", new ShimDirectory(new Map([["big.bin", new ShimFile(data)]]))]]);
  const nodeDir = mkdtempSync(join(ctx.tmp, "bigread-"));
  mkdirSync(join(nodeDir, "data"));
  writeFileSync(join(nodeDir, "data", "big.bin"), data);

  const args = ["/data/big.bin"];
  const expect = `bytes=${size}`;
  const check = (r: Run, who: string): Run => {
    if (r.stdout.trim() !== expect) throw new Error(`${who}: bigread printed ${JSON.stringify(r.stdout)}, expected ${expect}`);
    return r;
  };
  const runs = await interleave({
    oanix: async () => check(await runOanix(program, ns, "bigread", args), "oanix"),
    browser_wasi_shim: async () => check(runShim(module, shimRoot, "bigread", args), "browser_wasi_shim"),
    "node:wasi": async () => check(runNode(module, nodeDir, "bigread", args, ctx.capture), "node:wasi"),
  }, 2, scaled(21, 3));

  const mbps = (r: Run): number => size / 1e6 / (r.ms / 1000);
  const v = Object.fromEntries(Object.entries(runs).map(([k, rs]) => [k, rs.map(mbps)]));
  const { oanix, ...peers } = v;
  return {
    name: "wasi-bigfile-read",
    unit: "MB/s",
    oanix: median(oanix!),
    peers: Object.fromEntries(Object.entries(peers).map(([k, xs]) => [k, median(xs)])),
    better: "higher",
    note:
      `bigread.wasm reading a 64 MiB file in 64 KiB fd_read calls; MB = 10^6 bytes; median of ${oanix!.length} interleaved runs after 2 warm-ups. ` +
      `OANIX: MemService mounted read-only at /; shim: in-memory File; node:wasi: real file (in the page cache after the warm-up). ` +
      `Interquartile range (best run): ${Object.entries(v).map(([k, xs]) => `${k} ${spread(xs, "higher")}`).join("; ")}.`,
  };
}

/** hello.wasm, program/module already compiled: time from spawn to exit. */
async function spawnWarm(ctx: Ctx): Promise<BenchResult> {
  const bytes = await wasm("hello.wasm");
  const program = await loadProgram(bytes);
  const module = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
  const ns = new Namespace().mount("/", new MemService());
  const nodeDir = mkdtempSync(join(ctx.tmp, "hello-"));
  const devnull = openSync("/dev/null", "w");
  const n = scaled(200, 20);
  const times: Record<string, number[]> = { oanix: [], "node:wasi": [], browser_wasi_shim: [] };
  const runners: Record<string, () => Promise<void>> = {
    oanix: async () => {
      const t0 = performance.now();
      const st = await spawn(program, { namespace: ns, name: "hello" });
      times.oanix!.push(performance.now() - t0);
      if (st.code !== 0) throw new Error(`oanix: hello exited ${st.code}: ${st.message ?? ""}`);
    },
    "node:wasi": async () => {
      const t0 = performance.now();
      const wasi = new NodeWASI({ version: "preview1", args: ["hello"], env: {}, preopens: { "/": nodeDir }, returnOnExit: true, stdout: devnull, stderr: devnull });
      const instance = new WebAssembly.Instance(module, wasi.getImportObject() as WebAssembly.Imports);
      const code = wasi.start(instance);
      times["node:wasi"]!.push(performance.now() - t0);
      if (code !== 0) throw new Error(`node:wasi: hello exited ${code}`);
    },
    browser_wasi_shim: async () => {
      const t0 = performance.now();
      const wasi = new ShimWASI(["hello"], [], [new OpenFile(new ShimFile([])), new ConsoleStdout(() => {}), new ConsoleStdout(() => {}), new PreopenDirectory("/", new Map())], { debug: false });
      const instance = new WebAssembly.Instance(module, { wasi_snapshot_preview1: wasi.wasiImport });
      const code = wasi.start(instance as unknown as Parameters<ShimWASI["start"]>[0]);
      times.browser_wasi_shim!.push(performance.now() - t0);
      if (code !== 0) throw new Error(`browser_wasi_shim: hello exited ${code}`);
    },
  };
  const names = Object.keys(runners);
  try {
    for (let w = 0; w < 20; w++) for (const k of names) await runners[k]!();
    for (const k of names) times[k]!.length = 0;
    for (let i = 0; i < n; i++) for (let j = 0; j < names.length; j++) await runners[names[(i + j) % names.length]!]!();
  } finally {
    closeSync(devnull);
  }
  const { oanix, ...peers } = times;
  return {
    name: "spawn-warm",
    unit: "ms",
    oanix: median(oanix!),
    peers: Object.fromEntries(Object.entries(peers).map(([k, xs]) => [k, median(xs)])),
    better: "lower",
    note:
      `hello.wasm (${(bytes.length / 1024).toFixed(1)} KiB) from spawn to exit, module already compiled (OANIX: cached Program; ` +
      `peers: precompiled WebAssembly.Module, new WASI + instantiate + start per run); median of ${n} interleaved spawns after 20 warm-ups. ` +
      `OANIX spawns over a Namespace with a MemService at / (no /task, no /logs). ` +
      `p10–p90: ${Object.entries(times).map(([k, xs]) => `${k} ${fmt(quantile(xs, 0.1))}–${fmt(quantile(xs, 0.9))} ms`).join("; ")}.`,
  };
}

/** smallfile.wasm on OANIX, MemService answering synchronously vs answering with Promises. */
async function jspiOverhead(): Promise<BenchResult> {
  const bytes = await wasm("smallfile.wasm");
  const program = await loadProgram(bytes);
  const iterations = scaled(10000, 16);
  const args = ["/tmp/smallfile", String(iterations)];
  const expect = `ops=${6 * iterations}`;
  const check = (r: Run, who: string): Run => {
    if (r.stdout.trim() !== expect) throw new Error(`${who}: smallfile printed ${JSON.stringify(r.stdout)}, expected ${expect}`);
    return r;
  };
  const runs = await interleave({
    sync: async () => check(await runOanix(program, new Namespace().mount("/", new MemService()), "smallfile", args), "sync"),
    promise: async () => check(await runOanix(program, new Namespace().mount("/", new PromiseService(new MemService())), "smallfile", args), "promise"),
  }, 2, scaled(15, 3));
  const ops = (r: Run): number => (6 * iterations) / (r.ms / 1000);
  const sync = median(runs.sync!.map(ops));
  const promise = median(runs.promise!.map(ops));
  const slowdown = sync / promise;
  return {
    name: "jspi-overhead",
    unit: "×",
    oanix: slowdown,
    peers: { sync: 1 },
    better: "lower",
    note:
      `Slowdown of smallfile.wasm (${iterations} iterations) when the same MemService answers every call with an already-resolved ` +
      `Promise (each syscall then suspends the guest through JSPI and resumes it from a microtask) instead of synchronously: ` +
      `oanix = sync ops/s ÷ promise ops/s; the "sync" peer is the baseline 1×. ` +
      `sync ${fmt(sync)} ops/s, promise ${fmt(promise)} ops/s (medians of ${runs.sync!.length} interleaved runs each after 2 warm-ups; ` +
      `interquartile sync ${spread(runs.sync!.map(ops), "higher")}, promise ${spread(runs.promise!.map(ops), "higher")}). ` +
      `Measured in the same process after the other WASI benchmarks, with sync and Promise runs interleaved (so the host's JIT has seen both kinds of answers); its sync figure can therefore differ from wasi-smallfile-ops'.`,
  };
}

export async function run(): Promise<BenchResult[]> {
  const tmp = mkdtempSync(join(tmpdir(), "oanix-bench-"));
  const ctx: Ctx = { tmp, capture: { out: join(tmp, "stdout"), err: join(tmp, "stderr") } };
  const results: BenchResult[] = [];
  const step = async (name: string, f: () => Promise<BenchResult>): Promise<void> => {
    const t0 = performance.now();
    results.push(await f());
    process.stderr.write(`  ${name}: ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  };
  try {
    await step("wasi-smallfile-ops", () => smallfile(ctx));
    await step("wasi-bigfile-read", () => bigfile(ctx));
    await step("spawn-warm", () => spawnWarm(ctx));
    await step("jspi-overhead", () => jspiOverhead());
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return results;
}
