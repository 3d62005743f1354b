// One client must not stall everyone (issue 7): per-address connection and message limits applied
// before parsing and verification, connections that keep flooding closed, rate-limit buckets that
// survive eviction, and COUNT with as many filters as NIP-11 advertises.
import { describe, expect, it } from "vitest";
import { env, exports } from "cloudflare:workers";
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { finalizeEvent, generateSecretKey, type Event } from "nostr-tools/pure";
import { RELAY_URL, RawClient } from "./testing.ts";
import { FLUSH_MS } from "./ratelimit.ts";
import type { NostrRelay } from "./relay.ts";

const now = () => Math.floor(Date.now() / 1000);
const relay = () => env.RELAY.getByName(`abuse-${crypto.randomUUID()}`);
const note = (sk: Uint8Array, content: string): Event => finalizeEvent({ kind: 1, created_at: now(), tags: [], content }, sk);
const from = (ip: string) => ({ "CF-Connecting-IP": ip });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Counts the verifications the object performs (to show that refused floods cost none). */
async function countVerifications(stub: DurableObjectStub<NostrRelay>): Promise<() => Promise<number>> {
  await runInDurableObject(stub, (instance) => {
    const v = (instance as unknown as { verifier: { verify: (e: unknown) => string; calls?: number } }).verifier;
    const inner = v.verify.bind(v);
    const counting = { name: "counting", calls: 0, verify: (e: unknown) => (counting.calls++, inner(e)) };
    (instance as unknown as { verifier: unknown }).verifier = counting;
  });
  return () => runInDurableObject(stub, (instance) => (instance as unknown as { verifier: { calls: number } }).verifier.calls);
}

describe("per-address limits", () => {
  it("refuses a connection beyond the per-address cap with 429 at upgrade; other addresses still connect", async () => {
    const stub = relay();
    await stub.configure({ maxConnectionsPerIp: 3 });
    const mine = await Promise.all([1, 2, 3].map(() => RawClient.open(stub, RELAY_URL, from("198.51.100.7"))));
    const res = await stub.fetch("http://relay.test/relay", { headers: { Upgrade: "websocket", ...from("198.51.100.7") } });
    expect(res.status).toBe(429);
    expect(res.headers.get("Retry-After")).toBe("10");
    expect(await res.text()).toMatch(/^rate-limited: more than 3 connections/);
    const other = await RawClient.open(stub, RELAY_URL, from("203.0.113.9"));
    expect((await other.req("x", { kinds: [1] })).closed).toBeUndefined();
    // Closing one makes room again.
    mine[0]!.close();
    for (let i = 0; i < 50; i++) {
      const r = await stub.fetch("http://relay.test/relay", { headers: { Upgrade: "websocket", ...from("198.51.100.7") } });
      if (r.status === 101) {
        r.webSocket!.accept();
        r.webSocket!.close();
        return;
      }
      await sleep(10);
    }
    throw new Error("no room after a connection closed");
  });

  it("also applies through the Worker's /relay route, keyed by CF-Connecting-IP", async () => {
    const main = (exports as unknown as { default: Fetcher }).default;
    const worker = { fetch: (input: RequestInfo | URL, init?: RequestInit) => main.fetch(new Request(input, init)) };
    const ip = `192.0.2.${Math.floor(Math.random() * 250)}`;
    const held: WebSocket[] = [];
    let refused: Response | undefined;
    for (let i = 0; i < 40 && !refused; i++) {
      const r = await worker.fetch("http://relay.test/relay", { headers: { Upgrade: "websocket", ...from(ip) } });
      if (r.status === 429) refused = r;
      else {
        r.webSocket!.accept();
        held.push(r.webSocket!);
      }
    }
    expect(refused?.status).toBe(429);
    expect(held.length).toBe(32); // the default cap
    for (const ws of held) ws.close();
  });

  it("limits messages per address across its connections before verifying anything, then closes a flooder", async () => {
    const stub = relay();
    await stub.configure({ messagesPerSecond: 0, messagesPerSecondPerIp: 0.001, messageBurstPerIp: 10, closeAfterRefusals: 20 });
    const verifications = await countVerifications(stub);
    const a = await RawClient.open(stub, RELAY_URL, from("198.51.100.1"));
    const b = await RawClient.open(stub, RELAY_URL, from("198.51.100.1"));
    const bystander = await RawClient.open(stub, RELAY_URL, from("198.51.100.2"));
    const sk = generateSecretKey();
    // 10 bad-signature events spend the address's burst (and are verified: they were admitted).
    const forged = Array.from({ length: 40 }, (_, i) => ({ ...note(sk, `forged ${i}`), sig: "ab".repeat(64) }));
    for (const e of forged.slice(0, 5)) a.send(["EVENT", e]);
    for (const e of forged.slice(5, 10)) b.send(["EVENT", e]);
    for (const e of forged.slice(0, 5)) expect((await a.next((m) => m[0] === "OK" && m[1] === e.id))[3]).toBe("invalid: bad signature");
    for (const e of forged.slice(5, 10)) expect((await b.next((m) => m[0] === "OK" && m[1] === e.id))[3]).toBe("invalid: bad signature");
    expect(await verifications()).toBe(10);
    // The rest is refused on both connections without verification.
    for (const e of forged.slice(10, 15)) {
      const [ok, msg] = await b.publish(e);
      expect(ok).toBe(false);
      expect(msg).toMatch(/^rate-limited: .* from this address/);
    }
    expect(await verifications()).toBe(10);
    // The other address is untouched.
    expect(await bystander.publish(note(sk, "hello"))).toEqual([true, ""]);
    // A connection that keeps flooding is told and closed.
    for (const e of forged.slice(15, 40)) a.send(["EVENT", e]);
    expect((await a.next((m) => m[0] === "NOTICE"))[1]).toMatch(/^rate-limited: 20 messages refused in a row; closing/);
    for (let i = 0; i < 50 && !a.closed; i++) await sleep(10);
    expect(a.closed).toBe(true);
    expect(await verifications()).toBe(11);
  });

  it("leaves requests without a client address (made inside the Worker) to the per-connection limits", async () => {
    const stub = relay();
    await stub.configure({ messagesPerSecondPerIp: 0.001, messageBurstPerIp: 1, maxConnectionsPerIp: 1 });
    const a = await RawClient.open(stub);
    const b = await RawClient.open(stub);
    for (const c of [a, b]) for (let i = 0; i < 3; i++) expect((await c.req(`s${i}`, { kinds: [1] })).closed).toBeUndefined();
  });
});

describe("rate limits survive eviction", () => {
  it("keeps an author's, a connection's and an address's spent buckets across eviction", async () => {
    const stub = relay();
    await stub.configure({ eventsPerSecondPerPubkey: 0.001, eventBurstPerPubkey: 2, messagesPerSecond: 0.001, messageBurst: 5, messagesPerSecondPerIp: 0.001, messageBurstPerIp: 6 });
    const sk = generateSecretKey();
    const c = await RawClient.open(stub, RELAY_URL, from("198.51.100.3"));
    expect(await c.publish(note(sk, "one"))).toEqual([true, ""]);
    expect(await c.publish(note(sk, "two"))).toEqual([true, ""]);
    expect((await c.publish(note(sk, "three")))[1]).toMatch(/^rate-limited: .*author/);
    // 3 of the connection's 5 messages are spent (more than half: kept).
    await sleep(FLUSH_MS + 200);
    await evictDurableObject(stub);
    const d = await RawClient.open(stub, RELAY_URL, from("198.51.100.4"));
    expect((await d.publish(note(sk, "after eviction")))[1], "author").toMatch(/^rate-limited: .*author/);
    // The old connection still has 2 messages, then is refused.
    for (let i = 0; i < 2; i++) expect((await c.req(`r${i}`, { kinds: [1] })).closed).toBeUndefined();
    expect((await c.req("r2", { kinds: [1] })).closed, "connection").toMatch(/^rate-limited: more than 0.001 messages\/s; slow down/);
    // An address that spent more than half its burst (6): a new connection after eviction gets only the rest.
    const e = await RawClient.open(stub, RELAY_URL, from("198.51.100.5"));
    for (let i = 0; i < 4; i++) expect((await e.req(`e${i}`, { kinds: [1] })).closed).toBeUndefined();
    await sleep(FLUSH_MS + 200);
    await evictDurableObject(stub);
    const f = await RawClient.open(stub, RELAY_URL, from("198.51.100.5"));
    for (let i = 0; i < 2; i++) expect((await f.req(`f${i}`, { kinds: [1] })).closed).toBeUndefined();
    expect((await f.req("f2", { kinds: [1] })).closed, "address").toMatch(/from this address/);
  });
});

describe("COUNT with many filters", () => {
  it("counts with 1 to 10 filters (NIP-11 advertises 10), distinct events", async () => {
    const c = await RawClient.open(relay());
    const sk = generateSecretKey();
    const events = Array.from({ length: 10 }, (_, i) => finalizeEvent({ kind: 1000 + i, created_at: now(), tags: [["t", `t${i}`]], content: "" }, sk));
    for (const e of events) expect(await c.publish(e)).toEqual([true, ""]);
    for (let n = 1; n <= 10; n++) {
      const filters = Array.from({ length: n }, (_, i) => (i % 2 ? { "#t": [`t${i}`] } : { kinds: [1000 + i] }));
      c.send(["COUNT", `c${n}`, ...filters, { kinds: [1000] }]);
      const m = await c.next((m) => m[1] === `c${n}`);
      if (n === 10) {
        expect(m[0]).toBe("CLOSED"); // 11 filters: over the limit
        continue;
      }
      expect(m).toEqual(["COUNT", `c${n}`, { count: n }]);
    }
    c.send(["COUNT", "all", ...events.map((e) => ({ ids: [e.id] }))]);
    expect(await c.next((m) => m[1] === "all")).toEqual(["COUNT", "all", { count: 10 }]);
  });
});
