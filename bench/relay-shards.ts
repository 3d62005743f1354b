// relay-shards: the relay with RELAY_SHARDS = 1, 2 and 4 in the local edge (the relay alone in
// workerd through Miniflare, relay-workerd.ts), through the Worker's /relay route, each client with
// its own address so that the Worker spreads them over the connection shards:
//   relay-shards-ingest   signed events/s accepted (OK true), 8 connections, 100 in flight each
//   relay-shards-req      ms from REQ {kinds:[1], limit:50} (every storage shard asked) to EOSE
//   relay-shards-fanout   ms from publishing one event to its delivery on 100 sockets
// The caveat, measured and printed: here every Durable Object runs in one local workerd process on a
// machine of 2 shared cores, so shards add RPC hops but no machines; workerd's CPU time during ingest
// (in all, and on its busiest thread) says what it had to work with. On Cloudflare each object runs
// on its own.
//
//   node bench/relay-shards.ts            prints the results as JSON
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { initNostrWasm } from "nostr-wasm";
import { median, withTimeout } from "./relay.ts";
import { cpuBetween, startRelayWorkerd, threadCpu } from "./relay-workerd.ts";
import type { NostrEvent } from "../relay/event.ts";
import type { BenchResult } from "./types.ts";

const LAYOUTS = process.env.RELAY_SHARDS_LAYOUTS ? process.env.RELAY_SHARDS_LAYOUTS.split(",").map(Number) : [1, 2, 4];
const N_EVENTS = Number(process.env.RELAY_SHARDS_EVENTS ?? 10_000);
const AUTHORS = 100;
const CONNS = 8;
const WINDOW = 100;
const REQ_ROUNDS = 100;
const FANOUT_SOCKETS = 100;
const FANOUT_ROUNDS = 30;

const log = (...a: unknown[]) => console.error("[bench/relay-shards]", ...a);
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

/** A client whose upgrade carries its own CF-Connecting-IP (Miniflare keeps a header the client sets). */
class Client {
  private waiting = new Map<string, () => void>();
  onEvent: ((id: string) => void) | null = null;
  private ws: WebSocket;
  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on("message", (data) => {
      const m = JSON.parse(data.toString()) as unknown[];
      const key = m[0] === "OK" || m[0] === "EOSE" ? `${m[0]}:${m[1] as string}` : null;
      if (key) {
        this.waiting.get(key)?.();
        this.waiting.delete(key);
      } else if (m[0] === "EVENT") this.onEvent?.((m[2] as { id: string }).id);
    });
  }
  static open(url: string, ip: string): Promise<Client> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false, headers: { "CF-Connecting-IP": ip } });
      ws.once("open", () => resolve(new Client(ws)));
      ws.once("error", reject);
    });
  }
  private wait(key: string, send: unknown[]): Promise<void> {
    return new Promise((resolve) => {
      this.waiting.set(key, resolve);
      this.ws.send(JSON.stringify(send));
    });
  }
  publish(e: NostrEvent): Promise<void> {
    return this.wait(`OK:${e.id}`, ["EVENT", e]);
  }
  req(sub: string, filter: Record<string, unknown>): Promise<void> {
    return this.wait(`EOSE:${sub}`, ["REQ", sub, filter]);
  }
  close(): void {
    this.ws.close();
  }
}

async function signAll() {
  const nw = await initNostrWasm();
  const keys = Array.from({ length: AUTHORS }, () => nw.generateSecretKey());
  const now = Math.floor(Date.now() / 1000);
  const events: NostrEvent[] = [];
  for (let i = 0; i < N_EVENTS; i++) {
    const e = { kind: 1, created_at: now - 3600 + Math.floor(i / 10), tags: [["t", "bench"]], content: `shard bench ${i}` } as unknown as NostrEvent;
    nw.finalizeEvent(e, keys[i % AUTHORS]!);
    events.push(e);
  }
  const fanout = Array.from({ length: FANOUT_ROUNDS }, (_, r) => {
    const e = { kind: 1, created_at: now, tags: [["t", "fanout"]], content: `fanout ${r}` } as unknown as NostrEvent;
    nw.finalizeEvent(e, keys[r % AUTHORS]!);
    return e;
  });
  return { events, fanout };
}

interface Figures {
  ingest: number;
  /** workerd's CPU during ingest, in cores. */
  cpuShare: number;
  /** The share of it on workerd's busiest thread. */
  busiestShare: number;
  req: number;
  fanout: number;
}

async function measure(shards: number, url: string, pids: number[], w: Awaited<ReturnType<typeof signAll>>): Promise<Figures> {
  const ip = (i: number) => `10.${shards}.${Math.floor(i / 250)}.${i % 250}`;
  const clients = await Promise.all(Array.from({ length: CONNS }, (_, i) => Client.open(url, ip(i))));
  const cpu0 = threadCpu(pids);
  const t0 = performance.now();
  await Promise.all(
    clients.map(async (c, k) => {
      const share = w.events.filter((_, i) => i % CONNS === k);
      let next = 0;
      const lane = async () => {
        while (next < share.length) await c.publish(share[next++]!);
      };
      await Promise.all(Array.from({ length: WINDOW }, lane));
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  const cpu = cpuBetween(cpu0, threadCpu(pids));
  const cpuShare = cpu.total / secs;
  const busiestShare = cpu.total > 0 ? cpu.busiest / cpu.total : 0;
  const ingest = w.events.length / secs;
  log(`${shards} shard(s): ingest ${Math.round(ingest)} events/s; workerd used ${round(cpuShare * 100, 0)}% of one core (${round((cpu.total * 1000) / w.events.length, 3)} ms per event), ${round(busiestShare * 100, 0)}% of it on one thread`);

  const reqTimes: number[] = [];
  for (let r = 0; r < REQ_ROUNDS; r++) {
    const t = performance.now();
    await clients[r % CONNS]!.req(`q${r}`, { kinds: [1], limit: 50 });
    reqTimes.push(performance.now() - t);
  }
  for (const c of clients) c.close();

  const subs = await Promise.all(Array.from({ length: FANOUT_SOCKETS }, (_, i) => Client.open(url, ip(1000 + i))));
  await Promise.all(subs.map((s, i) => s.req(`f${i}`, { kinds: [1], "#t": ["fanout"], limit: 0 })));
  const pub = await Client.open(url, ip(5000));
  const fanTimes: number[] = [];
  for (const e of w.fanout) {
    let left = subs.length;
    const all = new Promise<void>((resolve) => {
      for (const s of subs) s.onEvent = (id) => id === e.id && --left === 0 && resolve();
    });
    const t = performance.now();
    await pub.publish(e);
    await withTimeout(all, "fan-out", 10_000);
    fanTimes.push(performance.now() - t);
  }
  for (const s of [...subs, pub]) s.close();
  const f = { ingest, cpuShare, busiestShare, req: median(reqTimes), fanout: median(fanTimes) };
  log(`${shards} shard(s): REQ→EOSE ${round(f.req)} ms, fan-out to ${FANOUT_SOCKETS} ${round(f.fanout)} ms`);
  return f;
}

export async function run(): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), "oanix-relay-shards-"));
  try {
    log(`signing ${N_EVENTS} events`);
    const w = await signAll();
    const figures = new Map<number, Figures>();
    for (const shards of LAYOUTS) {
      const relay = await startRelayWorkerd({ dir, storageShards: true, vars: { RELAY_SHARDS: String(shards) } });
      try {
        figures.set(shards, await withTimeout(measure(shards, relay.relayUrl, relay.pids, w), `${shards} shards`, 600_000));
      } finally {
        await relay.stop();
      }
    }
    const last = LAYOUTS[LAYOUTS.length - 1]!;
    const others = (pick: (f: Figures) => number, d = 2) =>
      Object.fromEntries(LAYOUTS.slice(0, -1).map((k) => [`RELAY_SHARDS=${k}`, round(pick(figures.get(k)!), d)]));
    const cpu = LAYOUTS.map((k) => {
      const f = figures.get(k)!;
      return `${k} shard(s): ${round(f.cpuShare * 100, 0)}% of a core, ${round((f.cpuShare / f.ingest) * 1000, 3)} ms per event, ${round(f.busiestShare * 100, 0)}% of it on one thread`;
    }).join("; ");
    const caveat = `every object runs in one local workerd process on a shared 2-core machine, so shards add RPC hops here but not machines (workerd CPU during ingest: ${cpu})`;
    return [
      { name: "relay-shards-ingest", unit: "events/s", oanix: round(figures.get(last)!.ingest, 0), peers: others((f) => f.ingest, 0), better: "higher", note: `RELAY_SHARDS=${last} vs fewer, ${N_EVENTS} signed events, ${CONNS} connections × ${WINDOW} in flight; ${caveat}` },
      { name: "relay-shards-req", unit: "ms", oanix: round(figures.get(last)!.req), peers: others((f) => f.req), better: "lower", note: `REQ {kinds:[1], limit:50} to EOSE over ${N_EVENTS} events, median of ${REQ_ROUNDS}; every storage shard is asked` },
      { name: "relay-shards-fanout", unit: "ms", oanix: round(figures.get(last)!.fanout), peers: others((f) => f.fanout), better: "lower", note: `publish to delivery on ${FANOUT_SOCKETS} sockets spread over the connection shards, median of ${FANOUT_ROUNDS}` },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) console.log(JSON.stringify(await run(), null, 2));
