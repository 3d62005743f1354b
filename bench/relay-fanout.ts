// relay-fanout before/after: the latency from publishing one event to its delivery on 100 subscribed
// sockets, for this checkout's relay, for an older build of it (default: `main`), and for the peer
// of bench/relay.ts (@nostr-relay/core + SQLite under the system Node), measured interleaved, round
// after round, so that load from other processes hits all three alike. Each relay first stores the
// 10,000 events of bench/relay.ts. Both of ours are the relay alone in workerd (relay-workerd.ts);
// for them the CPU time of their workerd (which waiting on a loaded machine does not inflate) is
// also given, per stored event during that ingest and per fan-out round.
//
//   node bench/relay-fanout.ts [--before REF] [--rounds N] [--words N]   prints the medians as JSON
// (--words: words in each fanned-out note, default 60; long notes are what the index costs most on)
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initNostrWasm } from "nostr-wasm";
import { Client, ingest, makeWorkload, median, startPeer, withTimeout, type Peer } from "./relay.ts";
import { cpuBetween, startRelayWorkerd, threadCpu, unpackCommit, type RelayWorkerd } from "./relay-workerd.ts";
import type { NostrEvent } from "../relay/event.ts";

const SOCKETS = 100;
const log = (...a: unknown[]) => console.error("[bench/relay-fanout]", ...a);
const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1]! : dflt;
};

/** 100 subscribers of {kinds:[1], #t:[fanout]} and one publisher on `url`. */
async function subscribers(url: string): Promise<{ publish(e: NostrEvent): Promise<number>; close(): void }> {
  const subs = await Promise.all(Array.from({ length: SOCKETS }, () => Client.open(url)));
  await Promise.all(subs.map((s, i) => s.req(`f${i}`, { kinds: [1], "#t": ["fanout"], limit: 0 })));
  const pub = await Client.open(url);
  return {
    async publish(e) {
      let left = subs.length;
      const all = new Promise<void>((resolve) => {
        for (const s of subs) s.onEvent = (_sub, id) => id === e.id && --left === 0 && resolve();
      });
      const t0 = performance.now();
      await pub.publish(e);
      await withTimeout(all, "fan-out delivery", 10_000);
      return performance.now() - t0;
    },
    close: () => [...subs, pub].forEach((c) => c.close()),
  };
}

export async function run(before = arg("--before", "main"), rounds = Number(arg("--rounds", "60")), words = Number(arg("--words", "60"))) {
  const dir = mkdtempSync(join(tmpdir(), "oanix-relay-fanout-"));
  const started: RelayWorkerd[] = [];
  let peer: Peer | undefined;
  try {
    const w = await makeWorkload();
    const nw = await initNostrWasm();
    const sk = nw.generateSecretKey();
    const now = Math.floor(Date.now() / 1000);
    const events = Array.from({ length: rounds }, (_, r) => {
      // What the full-text index has to tokenize: `words` words.
      const content = `fanout round ${r}: ` + Array.from({ length: words }, (_, i) => `word${(i * 7 + r) % 997}`).join(" ");
      const e = { kind: 1, created_at: now, tags: [["t", "fanout"]], content } as NostrEvent;
      nw.finalizeEvent(e, sk);
      return e;
    });
    log(`bundling ${before} and this checkout`);
    const old = await startRelayWorkerd({ tree: unpackCommit(before, join(dir, "before")), dir });
    started.push(old);
    const cur = await startRelayWorkerd({ dir });
    started.push(cur);
    peer = await startPeer(dir);
    const targets = [
      { name: `oanix ${before}`, url: old.relayUrl, pids: old.pids },
      { name: "oanix (this checkout)", url: cur.relayUrl, pids: cur.pids },
      { name: "@nostr-relay/core", url: peer.url, pids: [] as number[] },
    ];
    const cpu: Record<string, { perStoredEventMs?: number; perFanoutMs?: number }> = {};
    for (const t of targets) {
      const c0 = threadCpu(t.pids);
      const r = await ingest(t.url, w.events);
      const ms = (cpuBetween(c0, threadCpu(t.pids)).total * 1000) / r.accepted;
      if (t.pids.length > 0) cpu[t.name] = { perStoredEventMs: Math.round(ms * 1000) / 1000 };
      log(`${t.name}: stored ${r.accepted} events (${Math.round(r.perSecond)}/s${t.pids.length > 0 ? `, ${ms.toFixed(3)} ms of workerd CPU each` : ""})`);
    }
    const rigs = await Promise.all(targets.map((t) => subscribers(t.url)));
    const times: number[][] = targets.map(() => []);
    const c0 = targets.map((t) => threadCpu(t.pids));
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < rigs.length; k++) {
        const i = (r + k) % rigs.length; // rotate who goes first
        times[i]!.push(await rigs[i]!.publish(events[r]!));
      }
    }
    for (const rig of rigs) rig.close();
    targets.forEach((t, i) => {
      if (cpu[t.name]) cpu[t.name]!.perFanoutMs = Math.round(((cpuBetween(c0[i]!, threadCpu(t.pids)).total * 1000) / rounds) * 100) / 100;
    });
    const out = { medianMs: Object.fromEntries(targets.map((t, i) => [t.name, Math.round(median(times[i]!) * 100) / 100])), workerdCpu: cpu, rounds, words };
    log(JSON.stringify(out));
    return out;
  } finally {
    for (const s of started) await s.stop();
    await peer?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1]?.endsWith("relay-fanout.ts")) console.log(JSON.stringify(await run(), null, 2));
