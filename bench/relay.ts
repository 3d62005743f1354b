// Relay benchmarks, side by side with a peer JS relay (@nostr-relay/core + its SQLite repository,
// in its own process under the system Node), all on loopback:
//   relay-ingest    signed events/s accepted (OK true), 4 connections, 100 in flight each
//   relay-req-eose  ms from REQ {kinds:[1], authors:[a]} to EOSE over 10,000 stored events (median)
//   relay-fanout    ms from publishing one event to its delivery on 100 subscribed sockets (median)
//   sig-verify      verifications/s of the verifier alone (ours inside workerd, the peer's in Node)
//   relay-search    ms from a NIP-50 REQ {search: "word", limit: 50} to EOSE over 100,000 stored
//                   events (median over SEARCH_ROUNDS word pairs). Ours loads them through the
//                   relay (signed, verified, indexed); the peer's repository takes them directly.
// Ours is the Worker bundled by wrangler (`wrangler deploy --dry-run`) running in workerd through
// Miniflare with the wrangler.toml bindings (local SQLite Durable Object on disk, fresh temporary
// state): the relay as the edge runs it, without `wrangler dev`'s extra proxy hop. The same three
// measurements under `wrangler dev` (what `npm start` serves) are printed on stderr too.
// Rate limits are switched off on ours for the run (the peer has none), through RELAY_CONFIG.
//
//   node bench/relay.ts            prints the results as JSON
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { Miniflare, convertV4MiniflareOptions, type V4MiniflareOptions } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { initNostrWasm } from "nostr-wasm";
import { OFFLINE_ENV, startDev, type DevServer } from "../relay/dev.ts";
import type { BenchResult } from "./types.ts";
import { NO_RATE_LIMITS as RATE_LIMITS_OFF, freePort } from "./relay-workerd.ts";
import type { NostrEvent } from "../relay/event.ts";


const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const PEER = "@nostr-relay/core";
const SYSTEM_NODE = "/usr/bin/node";

const N_EVENTS = 10_000;
const AUTHORS = 100;
const CONNS = 4;
const WINDOW = 100;
const REQ_ROUNDS = 30;
const FANOUT_SOCKETS = 100;
const FANOUT_ROUNDS = 20;
const VERIFY_N = 3000;
const SEARCH_EVENTS = 90_000; // with the 10,000 above: 100,000 stored
const SEARCH_VOCABULARY = 3000;
const SEARCH_ROUNDS = 20;
const STEP_TIMEOUT = 120_000;


const log = (...a: unknown[]) => console.error("[bench/relay]", ...a);
export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

export function withTimeout<T>(p: Promise<T>, what: string, ms = STEP_TIMEOUT): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, reject) => (t = setTimeout(() => reject(new Error(`${what}: timed out`)), ms)))]).finally(() => clearTimeout(t));
}

// ------------------------------------------------------------------ a minimal client

export class Client {
  ws: WebSocket;
  private oks = new Map<string, (ok: boolean) => void>();
  private eoses = new Map<string, () => void>();
  onEvent: ((sub: string, id: string) => void) | null = null;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on("message", (data) => {
      const text = data.toString();
      // Parse only what is needed: the verb and ids (EVENT payloads are not inspected further).
      const m = JSON.parse(text) as unknown[];
      if (m[0] === "OK") {
        const f = this.oks.get(m[1] as string);
        if (f) {
          this.oks.delete(m[1] as string);
          f(m[2] as boolean);
        }
      } else if (m[0] === "EOSE") {
        const f = this.eoses.get(m[1] as string);
        if (f) {
          this.eoses.delete(m[1] as string);
          f();
        }
      } else if (m[0] === "EVENT") {
        this.onEvent?.(m[1] as string, (m[2] as { id: string }).id);
      }
    });
  }

  static open(url: string): Promise<Client> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false });
      ws.once("open", () => resolve(new Client(ws)));
      ws.once("error", reject);
    });
  }

  publish(e: NostrEvent): Promise<boolean> {
    return new Promise((resolve) => {
      this.oks.set(e.id, resolve);
      this.ws.send(JSON.stringify(["EVENT", e]));
    });
  }

  /** REQ until EOSE; resolves with the number of events received for it. */
  req(sub: string, filter: Record<string, unknown>): Promise<number> {
    let n = 0;
    const prev = this.onEvent;
    this.onEvent = (s, id) => (s === sub ? n++ : prev?.(s, id));
    return new Promise((resolve) => {
      this.eoses.set(sub, () => {
        this.onEvent = prev;
        resolve(n);
      });
      this.ws.send(JSON.stringify(["REQ", sub, filter]));
    });
  }

  close(): void {
    this.ws.close();
  }
}

// ------------------------------------------------------------------ workload

interface Workload {
  events: NostrEvent[];
  authors: string[];
  fanout: NostrEvent[];
}

export async function makeWorkload(): Promise<Workload> {
  const nw = await initNostrWasm();
  const keys = Array.from({ length: AUTHORS }, () => nw.generateSecretKey());
  const authors = keys.map((k) => Buffer.from(nw.getPublicKey(k)).toString("hex"));
  const now = Math.floor(Date.now() / 1000);
  const events: NostrEvent[] = [];
  for (let i = 0; i < N_EVENTS; i++) {
    const e = {
      // Each author gets half kind 1, half kind 7 (events i, i+AUTHORS, ... alternate).
      kind: Math.floor(i / AUTHORS) % 2 === 0 ? 1 : 7,
      created_at: now - 3600 + Math.floor(i / 10),
      tags: [["t", "bench"], ["client", "oanix-bench"]],
      content: `bench event ${i}: ${"lorem ipsum dolor sit amet ".repeat(3)}`,
    } as NostrEvent;
    nw.finalizeEvent(e, keys[i % AUTHORS]!);
    events.push(e);
  }
  const fanout: NostrEvent[] = [];
  for (let r = 0; r < FANOUT_ROUNDS * 2; r++) {
    const e = { kind: 1, created_at: now, tags: [["t", "fanout"]], content: `fanout ${r}` } as NostrEvent;
    nw.finalizeEvent(e, keys[r % AUTHORS]!);
    fanout.push(e);
  }
  return { events, authors, fanout };
}

/** A seeded generator, so that both relays get the same corpus and queries. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x80000000;
  };
}

/** Six-letter words (so that no word is a substring of another: the peer's index is trigram). */
function vocabulary(n: number, rand: () => number): string[] {
  const words = new Set<string>();
  while (words.size < n) words.add(Array.from({ length: 6 }, () => String.fromCharCode(97 + Math.floor(rand() * 26))).join(""));
  return [...words];
}

/** Notes of 12 words each, the words drawn with a skew (a few common, most rare), and the queries. */
export async function makeSearchWorkload(): Promise<{ events: NostrEvent[]; queries: string[] }> {
  const nw = await initNostrWasm();
  const rand = prng(50);
  const words = vocabulary(SEARCH_VOCABULARY, rand);
  const pick = () => words[Math.floor(words.length * rand() ** 2)]!;
  const keys = Array.from({ length: AUTHORS }, () => nw.generateSecretKey());
  const now = Math.floor(Date.now() / 1000);
  const events: NostrEvent[] = [];
  for (let i = 0; i < SEARCH_EVENTS; i++) {
    const e = { kind: 1, created_at: now - 7200 + Math.floor(i / 20), tags: [], content: Array.from({ length: 12 }, pick).join(" ") } as unknown as NostrEvent;
    nw.finalizeEvent(e, keys[i % AUTHORS]!);
    events.push(e);
  }
  // Words of middling frequency: each query matches ~600-1,400 events, of which 50 are served.
  const queries = Array.from({ length: SEARCH_ROUNDS }, (_, i) => words[50 + 10 * i]!);
  return { events, queries };
}

export async function search(url: string, queries: string[]): Promise<{ ms: number; counts: number[] }> {
  const client = await Client.open(url);
  const times: number[] = [];
  const counts: number[] = [];
  await client.req("warm", { search: queries[0], limit: 50 });
  for (let i = 0; i < queries.length; i++) {
    const t0 = performance.now();
    counts.push(await client.req(`s${i}`, { search: queries[i], limit: 50 }));
    times.push(performance.now() - t0);
  }
  client.close();
  return { ms: median(times), counts };
}

// ------------------------------------------------------------------ the three relay measurements

export async function ingest(url: string, events: NostrEvent[]): Promise<{ perSecond: number; accepted: number }> {
  const clients = await Promise.all(Array.from({ length: CONNS }, () => Client.open(url)));
  const shares = clients.map((_, c) => events.filter((_, i) => i % CONNS === c));
  let accepted = 0;
  const t0 = performance.now();
  await Promise.all(
    clients.map(async (client, c) => {
      const share = shares[c]!;
      let next = 0;
      const lane = async () => {
        while (next < share.length) {
          const e = share[next++]!;
          if (await client.publish(e)) accepted++;
        }
      };
      await Promise.all(Array.from({ length: WINDOW }, lane));
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  for (const c of clients) c.close();
  return { perSecond: accepted / secs, accepted };
}

async function reqEose(url: string, authors: string[]): Promise<{ ms: number; counts: number[] }> {
  const client = await Client.open(url);
  const times: number[] = [];
  const counts: number[] = [];
  await client.req("warm", { kinds: [1], authors: [authors[0]!] });
  for (let i = 0; i < REQ_ROUNDS; i++) {
    const t0 = performance.now();
    counts.push(await client.req(`q${i}`, { kinds: [1], authors: [authors[(i + 1) % authors.length]!] }));
    times.push(performance.now() - t0);
  }
  client.close();
  return { ms: median(times), counts };
}

async function fanout(url: string, events: NostrEvent[]): Promise<number> {
  const subs = await Promise.all(Array.from({ length: FANOUT_SOCKETS }, () => Client.open(url)));
  await Promise.all(subs.map((s, i) => s.req(`f${i}`, { kinds: [1], "#t": ["fanout"], limit: 0 })));
  const pub = await Client.open(url);
  const times: number[] = [];
  for (let r = 0; r < FANOUT_ROUNDS; r++) {
    const e = events[r]!;
    let left = subs.length;
    const t0 = performance.now();
    const all = new Promise<void>((resolve) => {
      for (const s of subs) {
        s.onEvent = (_sub, id) => {
          if (id === e.id && --left === 0) resolve();
        };
      }
    });
    await pub.publish(e);
    await withTimeout(all, "fanout delivery", 10_000);
    times.push(performance.now() - t0);
  }
  for (const s of [...subs, pub]) s.close();
  return median(times);
}

interface RelayNumbers {
  ingest: number;
  accepted: number;
  reqEose: number;
  reqCounts: number[];
  fanout: number;
}

async function measureRelay(label: string, url: string, w: Workload): Promise<RelayNumbers> {
  log(`${label}: ingest ${w.events.length} events`);
  const ing = await withTimeout(ingest(url, w.events), `${label} ingest`);
  log(`${label}: ${Math.round(ing.perSecond)} events/s, ${ing.accepted} accepted`);
  const req = await withTimeout(reqEose(url, w.authors), `${label} req`);
  log(`${label}: REQ→EOSE median ${round(req.ms)} ms, events per REQ ${[...new Set(req.counts)].join(",")}`);
  const fo = await withTimeout(fanout(url, w.fanout), `${label} fanout`);
  log(`${label}: fan-out to ${FANOUT_SOCKETS} sockets median ${round(fo)} ms`);
  return { ingest: ing.perSecond, accepted: ing.accepted, reqEose: req.ms, reqCounts: req.counts, fanout: fo };
}

// ------------------------------------------------------------------ processes

export interface Peer {
  url: string;
  child: ChildProcess;
  command(line: string, reply: string, ms?: number): Promise<string>;
  stop(): Promise<void>;
}

export async function startPeer(dir: string): Promise<Peer> {
  const port = await freePort();
  const child = spawn(SYSTEM_NODE, [join(ROOT, "bench/relay-peer.mjs"), String(port), join(dir, "peer.sqlite")], {
    cwd: ROOT,
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  const waiters: Array<{ prefix: string; resolve: (line: string) => void }> = [];
  child.stdout!.on("data", (d: Buffer) => {
    out += d.toString();
    let nl: number;
    while ((nl = out.indexOf("\n")) >= 0) {
      const line = out.slice(0, nl);
      out = out.slice(nl + 1);
      const i = waiters.findIndex((w) => line.startsWith(w.prefix));
      if (i >= 0) waiters.splice(i, 1)[0]!.resolve(line);
    }
  });
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const wait = (prefix: string, ms = STEP_TIMEOUT) =>
    withTimeout(
      new Promise<string>((resolve, reject) => {
        waiters.push({ prefix, resolve });
        child.once("exit", (code) => reject(new Error(`peer exited ${code}: ${err}`)));
      }),
      `peer ${prefix}`,
      ms,
    );
  await wait("READY");
  return {
    url: `ws://127.0.0.1:${port}`,
    child,
    command: async (line, reply, ms) => {
      const p = wait(reply, ms);
      child.stdin!.write(line + "\n");
      return p;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.stdin!.write("EXIT\n");
        setTimeout(() => child.exitCode === null && child.kill("SIGKILL"), 5000).unref();
      }),
  };
}

export async function verifyInWorkerd(events: NostrEvent[], dir: string): Promise<{ wasm: number; noble: number }> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      join(ROOT, "node_modules/wrangler/bin/wrangler.js"),
      "dev",
      "-c",
      join(ROOT, "relay/verify-bench.wrangler.toml"),
      "--ip",
      "127.0.0.1",
      "--port",
      String(port),
      "--persist-to",
      join(dir, "verify-state"),
      "--show-interactive-dev-session=false",
      "--log-level",
      "warn",
    ],
    { cwd: ROOT, env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_HIDE_BANNER: "true" }, stdio: "ignore" },
  );
  try {
    const body = JSON.stringify(events);
    const call = async (verifier: string) => {
      const deadline = Date.now() + 60_000;
      for (;;) {
        try {
          const t0 = performance.now();
          const res = await fetch(`http://127.0.0.1:${port}/?verifier=${verifier}`, { method: "POST", body });
          const wall = performance.now() - t0;
          if (!res.ok) throw new Error(`verify bench: ${res.status} ${await res.text()}`);
          const j = (await res.json()) as { ok: number; perSecond: number | null };
          if (j.ok !== events.length) throw new Error(`verify bench: ${j.ok} of ${events.length} verified`);
          // workerd may not advance its clock during pure computation; then use the wall time.
          return j.perSecond ?? events.length / (wall / 1000);
        } catch (e) {
          if (Date.now() > deadline || (e instanceof Error && e.message.startsWith("verify bench"))) throw e;
          await new Promise((r) => setTimeout(r, 300));
        }
      }
    };
    await call("wasm"); // warm-up (and wait for the server)
    await call("noble");
    // Alternate rounds so that load from other processes hits both alike; keep the best of each.
    let wasm = 0;
    let noble = 0;
    for (let r = 0; r < 3; r++) {
      wasm = Math.max(wasm, await call("wasm"));
      noble = Math.max(noble, await call("noble"));
    }
    return { wasm, noble };
  } finally {
    child.kill("SIGTERM");
  }
}

// ------------------------------------------------------------------ our relay in workerd

const NO_RATE_LIMITS = JSON.stringify(RATE_LIMITS_OFF);

function runQuiet(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...OFFLINE_ENV }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`${args.join(" ")} failed (${code}):\n${out}`))));
  });
}

export async function startMiniflare(dir: string): Promise<{ relayUrl: string; stop(): Promise<void> }> {
  const dist = join(dir, "dist");
  await withTimeout(runQuiet([join(ROOT, "node_modules/wrangler/bin/wrangler.js"), "deploy", "--dry-run", "--outdir", dist]), "bundle");
  const { workerOptions } = unstable_getMiniflareWorkerOptions(join(ROOT, "wrangler.toml"));
  const port = await freePort();
  // Miniflare 5 takes a new option shape; wrangler still hands out the v4 one: convert.
  const v4 = {
    ...workerOptions,
    name: "oanix",
    // The bundle: worker.js plus the .wasm modules it imports (relay verifier, edge agents).
    modules: [
      { type: "ESModule", path: join(dist, "worker.js") },
      ...readdirSync(dist)
        .filter((f) => f.endsWith(".wasm"))
        .map((f) => ({ type: "CompiledWasm", path: join(dist, f) })),
    ],
    modulesRoot: dist,
    modulesRules: undefined,
    bindings: { ...(workerOptions.bindings ?? {}), RELAY_CONFIG: NO_RATE_LIMITS },
    host: "127.0.0.1",
    port,
    defaultPersistRoot: join(dir, "miniflare-state"),
  } as unknown as V4MiniflareOptions;
  const mf = new Miniflare(convertV4MiniflareOptions(v4));
  await mf.ready;
  return { relayUrl: `ws://127.0.0.1:${port}/relay`, stop: () => mf.dispose() };
}

// ------------------------------------------------------------------ run

export async function run(): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), "oanix-relay-bench-"));
  let dev: DevServer | undefined;
  let peer: Peer | undefined;
  try {
    log("signing workload");
    const w = await makeWorkload();

    log("signing the search corpus");
    const sw = await makeSearchWorkload();

    const mf = await startMiniflare(dir);
    let ours: RelayNumbers;
    let ourSearch: { ms: number; counts: number[] };
    try {
      ours = await measureRelay("oanix (workerd)", mf.relayUrl, w);
      log(`oanix (workerd): storing ${sw.events.length} more events for search`);
      const loaded = await withTimeout(ingest(mf.relayUrl, sw.events), "search corpus", 900_000);
      if (loaded.accepted !== sw.events.length) throw new Error(`search corpus: ${loaded.accepted} of ${sw.events.length} accepted`);
      ourSearch = await withTimeout(search(mf.relayUrl, sw.queries), "oanix search");
      log(`oanix (workerd): search median ${round(ourSearch.ms)} ms, events per query ${ourSearch.counts.join(",")}`);
    } finally {
      await mf.stop();
    }

    dev = await startDev({ port: await freePort(), persistTo: join(dir, "wrangler-state"), vars: { RELAY_CONFIG: NO_RATE_LIMITS } });
    await measureRelay("oanix (wrangler dev)", dev.relayUrl, w);
    await dev.stop();
    dev = undefined;

    peer = await startPeer(dir);
    const theirs = await measureRelay(PEER, peer.url, w);
    const corpus = join(dir, "search-corpus.json");
    writeFileSync(corpus, JSON.stringify(sw.events));
    await peer.command(`LOAD ${corpus}`, "LOAD", 900_000);
    const theirSearch = await withTimeout(search(peer.url, sw.queries), "peer search");
    log(`${PEER}: search median ${round(theirSearch.ms)} ms, events per query ${theirSearch.counts.join(",")}`);

    const verifyEvents = w.events.slice(0, VERIFY_N);
    await peer.command("EVENTS " + Buffer.from(JSON.stringify(verifyEvents)).toString("base64"), "EVENTS");
    const peerVerify = Number((await peer.command("VERIFY", "VERIFY")).split(" ")[1]);
    await peer.stop();
    peer = undefined;
    const ourVerify = await verifyInWorkerd(verifyEvents, dir);
    log(`sig-verify: workerd wasm ${Math.round(ourVerify.wasm)}/s, workerd noble ${Math.round(ourVerify.noble)}/s, peer ${peerVerify}/s`);

    return [
      { name: "relay-ingest", unit: "events/s", oanix: round(ours.ingest, 0), peers: { [PEER]: round(theirs.ingest, 0) }, better: "higher" },
      { name: "relay-req-eose", unit: "ms", oanix: round(ours.reqEose), peers: { [PEER]: round(theirs.reqEose) }, better: "lower" },
      { name: "relay-fanout", unit: "ms", oanix: round(ours.fanout), peers: { [PEER]: round(theirs.fanout) }, better: "lower" },
      { name: "sig-verify", unit: "verifications/s", oanix: round(ourVerify.wasm, 0), peers: { [PEER]: peerVerify }, better: "higher" },
      {
        name: "relay-search",
        unit: "ms",
        oanix: round(ourSearch.ms),
        peers: { [PEER]: round(theirSearch.ms) },
        better: "lower",
        note: `NIP-50 {search: one word matching ~600-1,400 events, limit: 50} over ${N_EVENTS + FANOUT_ROUNDS + SEARCH_EVENTS} stored events, median of ${SEARCH_ROUNDS}; ours ranked by bm25 (FTS5 unicode61), the peer's newest first (FTS5 trigram); events per query: ours ${ourSearch.counts.join("/")}, peer ${theirSearch.counts.join("/")}`,
      },
    ];
  } finally {
    await dev?.stop();
    await peer?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const results = await run();
  console.log(JSON.stringify(results, null, 2));
}
