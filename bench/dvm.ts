// Marketplace benchmarks on the local edge's relay (`wrangler dev`, rate limits off for the run):
// - dvm-latency-1, dvm-latency-20 (ms, lower): request published → result received (p50), for a
//   trivial agent (agents/build/jobcount.wasm) behind `oanix serve` (default --concurrency, the
//   CPU count), vs a hand-written nostr-tools provider answering the same job in plain JavaScript
//   (bench/dvm-peer.mjs, no sandbox). 1 job at a time, and 20 published at once.
// - dvm-edge-latency-1, dvm-edge-latency-20 (ms, lower): the same, for the same agent served by the
//   edge itself (edge/provider/: a ProviderJob object per request, the agent in a Runner object,
//   the workspace's two run slots), against the same peer.
// - dvm-throughput-cN (jobs/s, higher): 60 jobs published at once, until the last result, with
//   `oanix serve --concurrency N` for N = 1, 2, 8; the same peer as the reference.
// Each provider runs in its own process (as a user would run it); the customer is this process.
// Runnable alone: node bench/dvm.ts (prints JSON).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bytesToHex } from "@noble/hashes/utils.js";
import { generateSecretKey } from "nostr-tools/pure";
import { ROOT, startEdge } from "../edge/dev/launch.ts";
import { keySigner, newSecretKey } from "../services/nip98.ts";
import { Peer, type Event } from "../agents/host/nostr.ts";
import type { BenchResult } from "./types.ts";
import { NO_RATE_LIMITS } from "./relay-workerd.ts";

const OURS = 5050, PEER = 5051, EDGE = 5052;
const log = (...a: unknown[]) => console.error("[bench/dvm]", ...a);
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

interface Provider {
  pubkey: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

function startProvider(args: string[], ready: RegExp, stream: "stdout" | "stderr"): Promise<Provider> {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, OANIX_KEY: bytesToHex(generateSecretKey()) } });
  let out = "";
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`provider not ready: ${out}`)), 30_000);
    const on = (d: Buffer) => {
      out += d;
      const m = ready.exec(out);
      if (m) {
        clearTimeout(t);
        resolve({
          pubkey: m[1]!, child,
          stop: () => new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : (child.once("exit", () => r()), child.kill("SIGTERM")))),
        });
      }
    };
    child[stream]!.on("data", on);
    if (process.env.DVM_DEBUG) child.stderr!.on("data", (d) => process.stderr.write(d));
    child.stderr!.on("data", (d) => stream === "stdout" && (out += d));
    child.once("exit", (c) => reject(new Error(`provider exited ${c}: ${out}`)));
  });
}

const oanixServe = (concurrency?: number) =>
  startProvider([join(ROOT, "cli/oanix.ts"), "serve", "--relay", relayUrl, "--kind", `${OURS}=${join(ROOT, "agents/build/jobcount.wasm")}`,
    ...(concurrency ? ["--concurrency", String(concurrency)] : [])], /serving kinds \d+ as ([0-9a-f]{64})/, "stderr");
const plainPeer = () => startProvider([join(ROOT, "bench/dvm-peer.mjs"), relayUrl, String(PEER)], /READY ([0-9a-f]{64})/, "stdout");

let relayUrl = "";

/** A provider hosted by the edge (edge/provider/), serving jobcount for EDGE over a fresh workspace: its pubkey. */
async function edgeProvider(edgeUrl: string): Promise<string> {
  const owner = keySigner(newSecretKey());
  const call = async (method: string, path: string, body: unknown) => {
    const url = `${edgeUrl}${path}`;
    const text = JSON.stringify(body);
    const r = await fetch(url, { method, headers: { authorization: await owner.authorize(url, method, new TextEncoder().encode(text)), "content-type": "application/json" }, body: text });
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
    return (await r.json()) as Record<string, unknown>;
  };
  await call("POST", "/w/bench-dvm", {});
  return (await call("POST", "/api/providers", { name: "bench-count", kind: EDGE, program: "jobcount", workspace: "bench-dvm" })).pubkey as string;
}

/** The customer: one connection, results matched to requests by their e tag. */
class Customer {
  readonly peer: Peer;
  readonly #waiting = new Map<string, (t: number | Error) => void>();
  /** Makes every request unique (same text, same second would be the same event id). */
  #seq = 0;
  constructor() {
    this.peer = new Peer([relayUrl], generateSecretKey());
  }
  async start(): Promise<void> {
    await this.peer.subscribe({ kinds: [OURS + 1000, PEER + 1000, EDGE + 1000, 7000], "#p": [this.peer.pubkey] }, (e: Event) => {
      const id = e.tags.find((t) => t[0] === "e")?.[1];
      const failed = e.kind === 7000 && e.tags.some((t) => t[0] === "status" && t[1] === "error");
      if (e.kind === 7000 && !failed) return;
      if (id) this.#waiting.get(id)?.(failed ? new Error(`job ${id} failed: ${e.content}`) : performance.now());
    });
  }
  /** Publishes n jobs at once; answers each one's latency (ms) and the time to the last result. */
  async batch(kind: number, provider: string, n: number): Promise<{ latencies: number[]; totalMs: number }> {
    const reqs = Array.from({ length: n }, () => this.peer.sign({ kind, tags: [["i", `job ${this.#seq++} of a benchmark batch`, "text"], ["p", provider]], content: "" }));
    const t0 = performance.now();
    const done = reqs.map((r) => {
      const sent = performance.now();
      return new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no result for ${r.id} in 60 s`)), 60_000);
        this.#waiting.set(r.id, (t) => (clearTimeout(timer), this.#waiting.delete(r.id), t instanceof Error ? reject(t) : resolve(t - sent)));
      });
    });
    for (const r of reqs) void this.peer.publish(r);
    const latencies = await Promise.all(done);
    return { latencies, totalMs: performance.now() - t0 };
  }
}

export async function run(): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), "oanix-bench-dvm-"));
  const dev = await startEdge({ persistTo: dir, vars: { RELAY_CONFIG: JSON.stringify(NO_RATE_LIMITS) } });
  relayUrl = `${dev.url.replace(/^http/, "ws")}/relay`;
  const customer = new Customer();
  const results: BenchResult[] = [];
  // Every provider process started here is stopped at the end, whatever happens in between.
  const started: Provider[] = [];
  const track = async (p: Promise<Provider>) => {
    const x = await p;
    started.push(x);
    return x;
  };
  try {
    await customer.start();
    const peer = await track(plainPeer());
    let ours = await track(oanixServe());
    // Warm-up: connections, the compiled module's first instantiation, workerd's JIT.
    for (let i = 0; i < 3; i++) {
      await customer.batch(OURS, ours.pubkey, 4);
      await customer.batch(PEER, peer.pubkey, 4);
    }
    const edge = await edgeProvider(dev.url);
    for (let i = 0; i < 3; i++) await customer.batch(EDGE, edge, 4);
    for (const [conc, rounds] of [[1, 60], [20, 8]] as const) {
      const a: number[] = [], b: number[] = [], e: number[] = [];
      for (let r = 0; r < rounds; r++) {
        a.push(...(await customer.batch(OURS, ours.pubkey, conc)).latencies);
        b.push(...(await customer.batch(PEER, peer.pubkey, conc)).latencies);
        e.push(...(await customer.batch(EDGE, edge, conc)).latencies);
      }
      log(`latency at ${conc}: oanix p50 ${round(pct(a, 0.5))} p90 ${round(pct(a, 0.9))}; peer p50 ${round(pct(b, 0.5))} p90 ${round(pct(b, 0.9))}`);
      results.push({
        name: `dvm-latency-${conc}`, unit: "ms", better: "lower", oanix: round(pct(a, 0.5)), peers: { "nostr-tools provider": round(pct(b, 0.5)) },
        note: `p50 of ${a.length} jobs, ${conc} published at once; p90 oanix ${round(pct(a, 0.9))}, peer ${round(pct(b, 0.9))}. oanix serve at its default --concurrency (CPU count); both send processing feedback, then the result.`,
      });
      log(`edge latency at ${conc}: p50 ${round(pct(e, 0.5))} p90 ${round(pct(e, 0.9))}`);
      results.push({
        name: `dvm-edge-latency-${conc}`, unit: "ms", better: "lower", oanix: round(pct(e, 0.5)), peers: { "nostr-tools provider": round(pct(b, 0.5)) },
        note: `p50 of ${e.length} jobs, ${conc} published at once; p90 ${round(pct(e, 0.9))}. The provider is the edge's own (edge/provider/): per request a ProviderJob Durable Object, its alarm, the agent in a Runner object, the workspace's 2 run slots; the peer is the same process as in dvm-latency-${conc}, interleaved.`,
      });
    }
    await ours.stop();
    const N = 60;
    const peerRates: number[] = [];
    for (const conc of [1, 2, 8]) {
      ours = await track(oanixServe(conc));
      await customer.batch(OURS, ours.pubkey, 4);
      const rates: number[] = [];
      for (let r = 0; r < 3; r++) {
        rates.push(N / ((await customer.batch(OURS, ours.pubkey, N)).totalMs / 1000));
        peerRates.push(N / ((await customer.batch(PEER, peer.pubkey, N)).totalMs / 1000));
      }
      await ours.stop();
      const peerMedian = pct(peerRates, 0.5);
      log(`throughput at --concurrency ${conc}: oanix ${round(pct(rates, 0.5), 1)} jobs/s; peer ${round(peerMedian, 1)}`);
      results.push({
        name: `dvm-throughput-c${conc}`, unit: "jobs/s", better: "higher", oanix: round(pct(rates, 0.5), 1), peers: { "nostr-tools provider": round(peerMedian, 1) },
        note: `${N} jobs published at once, until the last result; median of 3; oanix serve --concurrency ${conc}. The peer has no concurrency limit (plain JS, no sandbox).`,
      });
    }
  } finally {
    await Promise.all(started.map((p) => p.stop()));
    customer.peer.close();
    await dev.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(JSON.stringify(await run(), null, 2));
