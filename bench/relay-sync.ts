// relay-sync: a client that already holds 99% of a relay's 100,000 events catches up.
//   NIP-77 (ours): negentropy over NEG-OPEN/NEG-MSG finds the 1,000 missing ids, then one REQ by
//                  ids (in chunks of 1,000) fetches them.
//   REQ download:  the way a client without NIP-77 does it, every event again, paged with
//                  `until` (5,000 per REQ, the relay's max_limit).
// Both against the same relay (the bundled Worker in workerd through Miniflare, as bench/relay.ts
// runs it), on loopback; ms is wall time on the client, bytes are the WebSocket text frames in
// both directions. No npm relay implements NIP-77, so the peer is the download it replaces.
//
//   node bench/relay-sync.ts        prints the results as JSON
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { initNostrWasm } from "nostr-wasm";
import { NegentropyStorage } from "../relay/negentropy.ts";
import { negentropySync, type NegTransport } from "../relay/nip77.ts";
import type { NostrEvent } from "../relay/event.ts";
import { startMiniflare } from "./relay.ts";
import type { BenchResult } from "./types.ts";

/** Events on the relay (RELAY_SYNC_EVENTS overrides, for a quick run). */
const N = Number(process.env.RELAY_SYNC_EVENTS ?? 100_000);
const MISSING_EVERY = 100; // the client lacks every 100th event: 1%
const AUTHORS = 200;
const ROUNDS = 3;
const PAGE = 5000;
const IDS_PER_REQ = 1000;
const REQ_PEER = "REQ download (same relay)";

const log = (...a: unknown[]) => console.error("[bench/relay-sync]", ...a);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

/** A WebSocket client that counts the bytes of every frame and hands messages to waiters. */
class Conn {
  sent = 0;
  received = 0;
  private waiters: Array<{ pred: (m: unknown[]) => boolean; resolve: (m: unknown[]) => void }> = [];
  private queue: unknown[][] = [];
  /** Sees every message first; returns true to consume it (REQ uses it to collect EVENTs). */
  private tap: ((m: unknown[]) => boolean) | null = null;
  private ws: WebSocket;
  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on("message", (data: Buffer) => {
      this.received += data.length;
      const m = JSON.parse(data.toString()) as unknown[];
      if (this.tap?.(m)) return;
      const i = this.waiters.findIndex((w) => w.pred(m));
      if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(m);
      else this.queue.push(m);
    });
  }
  static open(url: string): Promise<Conn> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
      ws.once("open", () => resolve(new Conn(ws)));
      ws.once("error", reject);
    });
  }
  send(msg: unknown[]): void {
    const text = JSON.stringify(msg);
    this.sent += Buffer.byteLength(text);
    this.ws.send(text);
  }
  next(pred: (m: unknown[]) => boolean): Promise<unknown[]> {
    const i = this.queue.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.queue.splice(i, 1)[0]!);
    return new Promise((resolve) => this.waiters.push({ pred, resolve }));
  }
  /** REQ until EOSE: the events. */
  async req(sub: string, filter: Record<string, unknown>): Promise<NostrEvent[]> {
    const events: NostrEvent[] = [];
    const done = this.next((m) => (m[0] === "EOSE" || m[0] === "CLOSED") && m[1] === sub);
    this.tap = (m) => {
      if (m[0] !== "EVENT" || m[1] !== sub) return false;
      events.push(m[2] as NostrEvent);
      return true;
    };
    this.send(["REQ", sub, filter]);
    const end = await done;
    this.tap = null;
    if (end[0] === "CLOSED") throw new Error(`REQ refused: ${String(end[2])}`);
    this.send(["CLOSE", sub]);
    return events;
  }
  close(): void {
    this.ws.close();
  }
}

async function seed(url: string, events: NostrEvent[]): Promise<void> {
  const conns = await Promise.all([0, 1, 2, 3].map(() => Conn.open(url)));
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    conns.flatMap((c) =>
      Array.from({ length: 100 }, async () => {
        while (next < events.length) {
          const e = events[next++]!;
          c.send(["EVENT", e]);
          const ok = await c.next((m) => m[0] === "OK" && m[1] === e.id);
          if (ok[2] !== true) throw new Error(`seed: ${String(ok[3])}`);
        }
      }),
    ),
  );
  log(`seeded ${events.length} events in ${round((performance.now() - t0) / 1000)} s`);
  for (const c of conns) c.close();
}

interface Measured {
  ms: number;
  bytes: number;
}

async function viaNegentropy(url: string, local: NostrEvent[], expectMissing: Set<string>, round_: number): Promise<Measured & { negMs: number; rounds: number }> {
  const c = await Conn.open(url);
  const t0 = performance.now();
  const storage = new NegentropyStorage();
  for (const e of local) storage.insert(e.created_at, e.id);
  storage.seal();
  const io: NegTransport = { send: (m) => c.send(m), next: (sub) => c.next((m) => (m[0] === "NEG-MSG" || m[0] === "NEG-ERR") && m[1] === sub) };
  const r = await negentropySync(io, `neg${round_}`, { kinds: [1] }, storage);
  const negMs = performance.now() - t0;
  if (r.have.length !== 0 || r.need.length !== expectMissing.size || !r.need.every((id) => expectMissing.has(id)))
    throw new Error(`negentropy found have=${r.have.length} need=${r.need.length}, expected need=${expectMissing.size}`);
  let fetched = 0;
  for (let i = 0; i < r.need.length; i += IDS_PER_REQ) fetched += (await c.req(`get${round_}-${i}`, { ids: r.need.slice(i, i + IDS_PER_REQ), limit: IDS_PER_REQ })).length;
  const ms = performance.now() - t0;
  if (fetched !== expectMissing.size) throw new Error(`fetched ${fetched} of ${expectMissing.size}`);
  c.close();
  return { ms, negMs, rounds: r.rounds, bytes: c.sent + c.received };
}

async function viaReq(url: string, total: number, round_: number): Promise<Measured> {
  const c = await Conn.open(url);
  const t0 = performance.now();
  let got = 0;
  let until: number | undefined;
  for (let page = 0; ; page++) {
    const filter: Record<string, unknown> = { kinds: [1], limit: PAGE };
    if (until !== undefined) filter.until = until;
    const events = await c.req(`all${round_}-${page}`, filter);
    got += events.length;
    if (events.length < PAGE) break;
    until = events.at(-1)!.created_at - 1; // every event has its own second, so paging is exact
  }
  const ms = performance.now() - t0;
  if (got !== total) throw new Error(`REQ download got ${got} of ${total}`);
  c.close();
  return { ms, bytes: c.sent + c.received };
}

export async function run(): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), "oanix-relay-sync-"));
  try {
    log(`signing ${N} events`);
    const nw = await initNostrWasm();
    const keys = Array.from({ length: AUTHORS }, () => nw.generateSecretKey());
    const start = Math.floor(Date.now() / 1000) - N - 60;
    const events: NostrEvent[] = [];
    for (let i = 0; i < N; i++) {
      const e = { kind: 1, created_at: start + i, tags: [["t", "sync"]], content: `sync bench ${i}: ${"lorem ipsum dolor sit amet ".repeat(3)}` } as NostrEvent;
      nw.finalizeEvent(e, keys[i % AUTHORS]!);
      events.push(e);
    }
    const local = events.filter((_, i) => i % MISSING_EVERY !== 0);
    const missing = new Set(events.filter((_, i) => i % MISSING_EVERY === 0).map((e) => e.id));

    const mf = await startMiniflare(dir);
    try {
      const t0 = performance.now();
      await seed(mf.relayUrl, events);
      const seedSecs = (performance.now() - t0) / 1000;
      const neg: Array<Awaited<ReturnType<typeof viaNegentropy>>> = [];
      const req: Measured[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        neg.push(await viaNegentropy(mf.relayUrl, local, missing, r));
        req.push(await viaReq(mf.relayUrl, N, r));
        log(`round ${r}: negentropy ${round(neg[r]!.negMs)} ms (+ fetch ${round(neg[r]!.ms - neg[r]!.negMs)} ms, ${neg[r]!.rounds} rounds, ${neg[r]!.bytes} B); REQ ${round(req[r]!.ms)} ms, ${req[r]!.bytes} B`);
      }
      const negMs = median(neg.map((x) => x.ms));
      const reqMs = median(req.map((x) => x.ms));
      const note = `${N} events, client lacks ${missing.size} (1%), relay seeded in ${round(seedSecs)} s. Ours: NIP-77 sync (median ${round(median(neg.map((x) => x.negMs)))} ms, ${neg[0]!.rounds} round trips) plus fetching the ${missing.size} missing events by id; peer: downloading all ${N} with REQ paged by until (${PAGE}/REQ). Same relay (workerd via Miniflare), loopback, median of ${ROUNDS}; bytes = WebSocket text frames both ways.`;
      return [
        { name: "relay-sync", unit: "ms", oanix: round(negMs), peers: { [REQ_PEER]: round(reqMs) }, better: "lower", note },
        { name: "relay-sync-bytes", unit: "bytes", oanix: neg[0]!.bytes, peers: { [REQ_PEER]: req[0]!.bytes }, better: "lower", note: "see relay-sync" },
      ];
    } finally {
      await mf.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const results = await run();
  console.log(JSON.stringify(results, null, 2));
}
