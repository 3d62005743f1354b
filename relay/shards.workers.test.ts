// A sharded relay (RELAY_SHARDS > 1) in workerd: the Worker's choice of connection shard, events on
// their authors' storage shards, NIP-77 over several shards, NIP-40 expiry on a storage shard's
// alarm, REQs racing a flood of events, NIP-86 and edge agents across shards, and the pure layout
// functions. The random comparison with one object is shards-property.workers.test.ts.
import { describe, expect, it } from "vitest";
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { finalizeEvent, generateSecretKey, getPublicKey, type Event } from "nostr-tools/pure";
import { keySigner } from "../services/nip98.ts";
import { handleRelayRequest, relayStub } from "./http.ts";
import { NegentropyStorage } from "./negentropy.ts";
import { defineEdgeAgent } from "./nip90.ts";
import { negentropySync, type NegTransport } from "./nip77.ts";
import { connShardFor, connShardName, mergeItems, mergeQuery, parseConnShardName, parseShardCount, shardOfAuthor, storageShardName } from "./shards.ts";
import type { NostrEvent } from "./event.ts";
import type { EventStore } from "./store.ts";
import { RelayStorageShard } from "./shard.ts";
import { RELAY_URL, RawClient, type FetchTarget } from "./testing.ts";

const K = 4;
const NO_LIMITS = { messagesPerSecond: 0, eventsPerSecondPerPubkey: 0, messagesPerSecondPerIp: 0 };
const now = () => Math.floor(Date.now() / 1000);
const sign = (sk: Uint8Array, kind: number, opts: { created_at?: number; tags?: string[][]; content?: string } = {}): Event =>
  finalizeEvent({ kind, created_at: opts.created_at ?? now(), tags: opts.tags ?? [], content: opts.content ?? "" }, sk);

/** A fresh sharded relay: its connection shards, storage shards, and the Worker's route to it. */
function sharded() {
  const base = `shards-${crypto.randomUUID()}`;
  return {
    base,
    conn: (i: number) => env.RELAY.getByName(connShardName(base, i, K)),
    storage: (j: number) => env.RELAY_STORAGE.getByName(storageShardName(base, j, K)),
    /** The Worker's /relay route with RELAY_SHARDS=4. */
    worker: { fetch: (input: RequestInfo | URL, init?: RequestInit) => handleRelayRequest(new Request(input, init), env.RELAY, { shards: K, name: base }) } as FetchTarget,
  };
}

/** Secret keys whose authors land on storage shard j. */
function keyOnShard(j: number): Uint8Array {
  for (;;) {
    const sk = generateSecretKey();
    if (shardOfAuthor(getPublicKey(sk), K) === j) return sk;
  }
}

const storedOn = (stub: DurableObjectStub, ids: string[]) =>
  runInDurableObject(stub, (instance) => {
    const store = (instance as unknown as { store: EventStore }).store;
    return ids.filter((id) => store.sql.exec("SELECT 1 FROM events WHERE id = ?", id).toArray().length > 0);
  });

describe("the layout (pure)", () => {
  it("reads RELAY_SHARDS, names shards, and refuses what is not a count", () => {
    expect(parseShardCount(undefined)).toBe(1);
    expect(parseShardCount(" ")).toBe(1);
    expect(parseShardCount("4")).toBe(4);
    for (const bad of ["0", "-2", "2.5", "four", "65"]) expect(parseShardCount(bad)).toMatch(/^RELAY_SHARDS must be an integer from 1 to 64/);
    expect(connShardName("main", 0, 1)).toBe("main");
    expect(parseConnShardName("main")).toBeNull();
    expect(parseConnShardName(connShardName("a/b", 3, 4))).toEqual({ base: "a/b", shards: 4, index: 3 });
    expect(parseConnShardName("x/4/conn-4")).toBeNull();
    expect(parseConnShardName("x/1/conn-0")).toBeNull();
    for (let i = 0; i < 50; i++) expect(connShardFor("203.0.113.7", 4)).toBe(connShardFor("203.0.113.7", 4));
    const spread = new Set(Array.from({ length: 64 }, (_, i) => connShardFor(`198.51.100.${i}`, 4)));
    expect(spread.size).toBe(4);
  });

  it("merges per-shard answers into the single object's order, and one shard's answer is left as it is", () => {
    const row = (t: number, id: string, rank?: number) => ({ created_at: t, id: id.repeat(64), raw: `${t}${id}`, ...(rank === undefined ? {} : { rank }) });
    const a = [[row(9, "a"), row(5, "c")], [row(3, "e", -2)]];
    const b = [[row(9, "b"), row(7, "d"), row(1, "f")], [row(4, "g", -3), row(8, "h", -1)]];
    const filters = [{ limit: 3 }, { search: ["w"] }];
    expect(mergeQuery(filters, [a, b], 500)).toEqual(["4g", "3e", "8h", "9a", "9b", "7d"]);
    expect(mergeQuery(filters, [a], 500)).toEqual(["3e", "9a", "5c"]);
    expect(mergeItems([{ timestamps: [1, 3], ids: ["b", "a"] }, { timestamps: [1, 2], ids: ["a", "z"] }], 3)).toEqual({ timestamps: [1, 1, 2], ids: ["a", "b", "z"] });
  });
});

describe("RELAY_SHARDS=4", () => {
  it("keeps each author's events on one storage shard and serves them from every connection shard", async () => {
    const r = sharded();
    const sks = [0, 1, 2, 3].map(keyOnShard);
    const clients = await Promise.all([0, 1, 2, 3].map((i) => RawClient.open(r.conn(i))));
    const events = sks.map((sk, j) => sign(sk, 1, { created_at: now() - 10 + j, content: `from shard ${j}` }));
    for (const [j, e] of events.entries()) expect(await clients[(j + 1) % 4]!.publish(e)).toEqual([true, ""]);
    for (const [j, e] of events.entries()) expect(await storedOn(r.storage(j), events.map((x) => x.id))).toEqual([e.id]);
    for (const c of clients) expect((await c.req("all", { kinds: [1] })).events.map((e) => e.id)).toEqual(events.map((e) => e.id).reverse());
    const author = getPublicKey(sks[2]!);
    expect((await clients[0]!.req("one", { authors: [author] })).events.map((e) => e.id)).toEqual([events[2]!.id]);
    clients[3]!.send(["COUNT", "n", { kinds: [1] }, { authors: [author] }]);
    expect((await clients[3]!.next((m) => m[0] === "COUNT"))[2]).toEqual({ count: 4 });
  });

  it("the Worker puts every connection from one address on one shard, where the per-address limit holds", async () => {
    const r = sharded();
    await r.conn(0).configure({ maxConnectionsPerIp: 2 });
    const ip = "192.0.2.44";
    const a = await RawClient.open(r.worker, RELAY_URL, { "CF-Connecting-IP": ip });
    const b = await RawClient.open(r.worker, RELAY_URL, { "CF-Connecting-IP": ip });
    const third = await r.worker.fetch(RELAY_URL.replace(/^ws/, "http"), { headers: { Upgrade: "websocket", "CF-Connecting-IP": ip } });
    expect(third.status).toBe(429);
    expect(await third.text()).toMatch(/^rate-limited: more than 2 connections from this address/);
    const shard = connShardFor(ip, K);
    const perShard = await Promise.all([0, 1, 2, 3].map((i) => runInDurableObject(r.conn(i), (inst) => (inst as unknown as { conns: { connectionsFrom(ip: string): number } }).conns.connectionsFrom(ip))));
    expect(perShard).toEqual([0, 1, 2, 3].map((i) => (i === shard ? 2 : 0)));
    // NIP-11 comes from shard 0, with the configuration every shard shares.
    const info = (await (await r.worker.fetch(RELAY_URL.replace(/^ws/, "http"), { headers: { Accept: "application/nostr+json" } })).json()) as { limitation: Record<string, unknown> };
    expect(info.limitation.max_subscriptions).toBe(50);
    a.close();
    b.close();
  });

  it("sends live events across connection shards before the publisher's OK, and ephemeral ones too", async () => {
    const r = sharded();
    const subs = await Promise.all([1, 2, 3].map((i) => RawClient.open(r.conn(i))));
    for (const s of subs) await s.req("live", { kinds: [1, 20001] });
    const pub = await RawClient.open(r.conn(0));
    const sk = generateSecretKey();
    for (const e of [sign(sk, 1, { content: "stored" }), sign(sk, 20001, { content: "ephemeral" })]) {
      expect(await pub.publish(e)).toEqual([true, ""]);
      // Already sent by every shard: each socket has it before the answer to a later message.
      for (const s of subs) {
        s.send(["PING"]);
        await s.next((m) => m[0] === "NOTICE");
        expect(s.pending().filter((m) => m[0] === "EVENT").map((m) => (m[2] as Event).id)).toEqual([e.id]);
        s.drain();
      }
    }
  });

  it("REQs racing a flood from other shards get every event exactly once, stored or live", async () => {
    const r = sharded();
    await r.conn(0).configure(NO_LIMITS);
    const pubs = await Promise.all([0, 1, 3].map((i) => RawClient.open(r.conn(i))));
    const sub = await RawClient.open(r.conn(2));
    const sks = [0, 1, 2, 3].map(keyOnShard);
    const events = Array.from({ length: 240 }, (_, i) => sign(sks[i % 4]!, 1, { created_at: now() - 300 + i, content: `flood ${i}` }));
    const oks = events.map((e, i) => pubs[i % 3]!.next((m) => m[0] === "OK" && m[1] === e.id, 30_000));
    const subs = ["r0", "r1", "r2", "r3", "r4", "r5"];
    const answers: Array<Promise<{ events: Array<Record<string, unknown>> }>> = [];
    for (let i = 0; i < events.length; i++) {
      pubs[i % 3]!.send(["EVENT", events[i]]);
      // A REQ every 40 events, while the earlier ones are still being stored and fanned out.
      if (i % 40 === 20) {
        await oks[i - 10];
        answers.push(sub.req(subs[answers.length]!, { kinds: [1] }));
      }
    }
    const stored = await Promise.all(answers);
    expect((await Promise.all(oks)).every((m) => m[2] === true)).toBe(true);
    sub.send(["PING"]);
    await sub.next((m) => m[0] === "NOTICE");
    const live = sub.pending().filter((m) => m[0] === "EVENT");
    for (const [k, id] of subs.entries()) {
      const got = [...stored[k]!.events.map((e) => e.id as string), ...live.filter((m) => m[1] === id).map((m) => (m[2] as Event).id)];
      expect(got.length, `subscription ${id}`).toBe(events.length);
      expect(new Set(got)).toEqual(new Set(events.map((e) => e.id)));
    }
  });

  it("a REQ answered slowly by one storage shard still gets what the others stored meanwhile, once", async () => {
    const r = sharded();
    await r.conn(0).configure(NO_LIMITS);
    // Storage shard 3 of this relay answers queries 300 ms late (as a busy or distant object would):
    // meanwhile events stored on shard 0 are fanned out to the REQ's connection shard.
    const slow = storageShardName(r.base, 3, K);
    const rows = RelayStorageShard.prototype.rows;
    RelayStorageShard.prototype.rows = async function (this: RelayStorageShard, ...args: Parameters<typeof rows>) {
      if ((this as unknown as { ctx: DurableObjectState }).ctx.id.name === slow) await new Promise((res) => setTimeout(res, 300));
      return rows.apply(this, args);
    } as unknown as typeof rows;
    try {
      const pub = await RawClient.open(r.conn(1));
      const sub = await RawClient.open(r.conn(2));
      const sk = keyOnShard(0);
      const events = Array.from({ length: 150 }, (_, i) => sign(sk, 1, { created_at: now() - 200 + i, content: `new ${i}` }));
      const oks = events.map((e) => pub.next((m) => m[0] === "OK" && m[1] === e.id, 30_000));
      for (const e of events.slice(0, 30)) pub.send(["EVENT", e]);
      await oks[5];
      const answer = sub.req("slow", { kinds: [1] });
      for (const e of events.slice(30)) pub.send(["EVENT", e]);
      const stored = await answer;
      expect((await Promise.all(oks)).every((m) => m[2] === true)).toBe(true);
      sub.send(["PING"]);
      await sub.next((m) => m[0] === "NOTICE");
      const live = sub.pending().filter((m) => m[0] === "EVENT").map((m) => (m[2] as Event).id);
      expect(stored.events.length).toBeLessThan(150); // the flood went on while the REQ waited
      const got = [...stored.events.map((e) => e.id as string), ...live];
      expect(got.length).toBe(events.length);
      expect(new Set(got)).toEqual(new Set(events.map((e) => e.id)));
    } finally {
      RelayStorageShard.prototype.rows = rows;
    }
  });

  it("syncs with NIP-77 over events of several storage shards", async () => {
    const r = sharded();
    await r.conn(0).configure(NO_LIMITS);
    const c = await RawClient.open(r.conn(3));
    const sks = [0, 1, 2, 3].map(keyOnShard);
    const events = Array.from({ length: 80 }, (_, i) => sign(sks[i % 4]!, 1, { created_at: now() - 100 + Math.floor(i / 3), content: `n${i}` }));
    for (const e of events) expect(await c.publish(e)).toEqual([true, ""]);
    const local = new NegentropyStorage();
    const have = events.filter((_, i) => i % 5 !== 0);
    for (const e of have) local.insert(e.created_at, e.id);
    const extra = sign(generateSecretKey(), 1, { content: "only the client has it" });
    local.insert(extra.created_at, extra.id);
    const io: NegTransport = { send: (m) => c.send(m), next: (sub) => c.next((m) => (m[0] === "NEG-MSG" || m[0] === "NEG-ERR") && m[1] === sub) };
    const result = await negentropySync(io, "n", { kinds: [1] }, local.seal());
    expect(result.need.sort()).toEqual(events.filter((_, i) => i % 5 === 0).map((e) => e.id).sort());
    expect(result.have).toEqual([extra.id]);
  });

  it("expires events on their storage shard's alarm (NIP-40)", async () => {
    const r = sharded();
    const c = await RawClient.open(r.conn(1));
    const sk = keyOnShard(2);
    const brief = sign(sk, 1, { tags: [["expiration", String(now() + 1)]], content: "soon gone" });
    const lasting = sign(sk, 1, { content: "stays" });
    for (const e of [brief, lasting]) expect(await c.publish(e)).toEqual([true, ""]);
    expect((await c.req("a", { kinds: [1] })).events.map((e) => e.id).sort()).toEqual([brief.id, lasting.id].sort());
    let left = [brief.id];
    for (let i = 0; i < 40 && left.length > 0; i++) {
      await new Promise((res) => setTimeout(res, 100));
      left = await storedOn(r.storage(2), [brief.id]);
    }
    expect(left).toEqual([]);
    expect((await c.req("b", { kinds: [1] })).events.map((e) => e.id)).toEqual([lasting.id]);
  });

  it("NIP-86 on shard 0 reaches every shard: bans, event removal, the relay's name", async () => {
    const r = sharded();
    const httpUrl = RELAY_URL.replace(/^ws/, "http");
    const admin = keySigner("7e57ad31".repeat(8));
    const call = async (method: string, params: unknown[]) => {
      const body = new TextEncoder().encode(JSON.stringify({ method, params }));
      const res = await r.worker.fetch(httpUrl, { method: "POST", headers: { "Content-Type": "application/nostr+json+rpc", Authorization: admin.authorize(httpUrl, "POST", body) }, body });
      return { status: res.status, body: (await res.json()) as { result?: unknown } };
    };
    const spammer = generateSecretKey();
    const victim = keyOnShard(3);
    const c = await RawClient.open(r.conn(2));
    const bad = sign(victim, 1, { content: "to be banned" });
    expect(await c.publish(bad)).toEqual([true, ""]);
    expect(await call("banpubkey", [getPublicKey(spammer), "spam"])).toEqual({ status: 200, body: { result: true } });
    expect(await call("banevent", [bad.id, "abuse"])).toEqual({ status: 200, body: { result: true } });
    expect(await call("changerelayname", ["sharded relay"])).toEqual({ status: 200, body: { result: true } });
    expect(await storedOn(r.storage(3), [bad.id])).toEqual([]);
    for (const i of [1, 2, 3]) {
      const other = await RawClient.open(r.conn(i));
      expect((await other.publish(sign(spammer, 1, { content: "spam" })))[1]).toMatch(/^blocked: this pubkey is banned/);
      expect((await other.publish(bad))[1]).toMatch(/^blocked: this event is banned/);
      expect(((await r.conn(i).info()) as { name: string }).name).toBe("sharded relay");
    }
  });

  it("edge agents registered through relayStub run on shard 0 for requests accepted by any shard", async () => {
    const r = sharded();
    const jobs: string[] = [];
    defineEdgeAgent("shard-test-agent", { onJob: (job) => void jobs.push(job.id) });
    const stub = relayStub(env.RELAY, r.base, K);
    expect(await stub.registerAgent({ kind: 5123, agent: "sharded", handler: "shard-test-agent" })).toEqual({ ok: true });
    expect(await r.conn(3).listAgents(5123)).toEqual([{ kind: 5123, agent: "sharded", handler: "shard-test-agent" }]);
    const c = await RawClient.open(r.conn(2));
    const job = sign(generateSecretKey(), 5123, { tags: [["i", "hello", "text"]] });
    expect(await c.publish(job)).toEqual([true, ""]);
    for (let i = 0; i < 50 && jobs.length === 0; i++) await new Promise((res) => setTimeout(res, 20));
    expect(jobs).toEqual([job.id]);
    // publish() through the stub goes to the author's storage shard and to subscribers everywhere.
    const watcher = await RawClient.open(r.conn(1));
    await watcher.req("w", { kinds: [1] });
    const sk = keyOnShard(0);
    const note = sign(sk, 1, { content: "via rpc" }) as NostrEvent;
    expect(await stub.publish(note)).toEqual({ ok: true, accepted: true, message: "" });
    expect((await r.conn(2).query({ ids: [note.id] })).map((e) => e.id)).toEqual([note.id]); // RPC query reads the storage shards too
    expect((await watcher.next((m) => m[0] === "EVENT" && m[1] === "w"))[2]).toMatchObject({ id: note.id });
    expect(await storedOn(r.storage(0), [note.id])).toEqual([note.id]);
  });
});
