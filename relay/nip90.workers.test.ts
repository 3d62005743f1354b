// NIP-90 job routing: the NIP-89 provider registry, requests reaching subscribed providers and
// registered edge agents, feedback and results flowing back, cancellation by kind 5.
import { describe, expect, it } from "vitest";
import { env } from "cloudflare:workers";
import { evictDurableObject } from "cloudflare:test";
import { finalizeEvent, generateSecretKey, getPublicKey, type Event } from "nostr-tools/pure";
import { defineEdgeAgent, type JobContext } from "./nip90.ts";
import type { NostrEvent } from "./event.ts";
import { RawClient, nostrClient } from "./testing.ts";

const now = () => Math.floor(Date.now() / 1000);
const relay = () => env.RELAY.getByName(`nip90-${crypto.randomUUID()}`);
function sign(sk: Uint8Array, kind: number, opts: { created_at?: number; tags?: string[][]; content?: string } = {}): Event {
  return finalizeEvent({ kind, created_at: opts.created_at ?? now(), tags: opts.tags ?? [], content: opts.content ?? "" }, sk);
}

// Edge agents defined in this isolate, as the agents issue will do in the Worker bundle.
const agentKey = generateSecretKey();
const seen: Array<{ agent: string; job: string }> = [];
const cancelled: Array<{ agent: string; job: string; deletion: string }> = [];
defineEdgeAgent("test-echo", {
  async onJob(job: NostrEvent, ctx: JobContext) {
    seen.push({ agent: ctx.registration.agent, job: job.id });
    const base = [["e", job.id], ["p", job.pubkey]];
    await ctx.publish(finalizeEvent({ kind: 7000, created_at: now(), tags: [["status", "processing"], ...base], content: "" }, agentKey) as NostrEvent);
    const input = job.tags.find((t) => t[0] === "i")?.[1] ?? "";
    await ctx.publish(
      finalizeEvent(
        { kind: job.kind + 1000, created_at: now(), tags: [["request", JSON.stringify(job)], ...base, ["amount", "0"]], content: input.toUpperCase() },
        agentKey,
      ) as NostrEvent,
    );
  },
  onCancel(job, deletion, ctx) {
    cancelled.push({ agent: ctx.registration.agent, job: job.id, deletion: deletion.id });
  },
});

describe("NIP-89 provider registry", () => {
  it("finds the providers of a kind with {kinds:[31990], #k:[...]}", async () => {
    const stub = relay();
    const c = await RawClient.open(stub);
    const p1 = generateSecretKey();
    const p2 = generateSecretKey();
    const a1 = sign(p1, 31990, { tags: [["d", "summarizer"], ["k", "5050"], ["k", "5001"]], content: JSON.stringify({ name: "sum" }) });
    const a2 = sign(p2, 31990, { tags: [["d", "translator"], ["k", "5002"]], content: JSON.stringify({ name: "tr" }) });
    expect(await c.publish(a1)).toEqual([true, ""]);
    expect(await c.publish(a2)).toEqual([true, ""]);
    expect((await c.req("p", { kinds: [31990], "#k": ["5050"] })).events.map((e) => e.id)).toEqual([a1.id]);
    expect((await c.req("q", { kinds: [31990], "#k": ["5002", "5001"] })).events.map((e) => e.id).sort()).toEqual([a1.id, a2.id].sort());
    // An updated announcement replaces the old one (addressable), and drops the kind it no longer serves.
    const a1b = sign(p1, 31990, { created_at: now() + 1, tags: [["d", "summarizer"], ["k", "5001"]] });
    expect(await c.publish(a1b)).toEqual([true, ""]);
    expect((await c.req("r", { kinds: [31990], "#k": ["5050"] })).events).toEqual([]);
    const rpc = await stub.providers(5001);
    expect(rpc.announcements.map((e) => e.id)).toEqual([a1b.id]);
  });
});

describe("job requests", () => {
  it("reach every subscribed provider of the kind, and only those", async () => {
    const stub = relay();
    const prov1 = await RawClient.open(stub);
    const prov2 = await RawClient.open(stub);
    const other = await RawClient.open(stub);
    await prov1.req("jobs", { kinds: [5050] });
    await prov2.req("jobs", { kinds: [5050, 5100], since: now() - 10 });
    await other.req("jobs", { kinds: [5100] });
    const customer = await RawClient.open(stub);
    const job = sign(generateSecretKey(), 5050, { tags: [["i", "hello", "text"]] });
    expect(await customer.publish(job)).toEqual([true, ""]);
    for (const p of [prov1, prov2]) expect(((await p.next((m) => m[0] === "EVENT"))[2] as Event).id).toBe(job.id);
    expect(await other.silent((m) => m[0] === "EVENT")).toBe(true);
  });

  it("are handed to the edge agents registered for the kind; results and feedback flow back to #e followers", async () => {
    const stub = relay();
    await stub.registerAgent({ kind: 5050, agent: "echo-1", handler: "test-echo", pubkey: getPublicKey(agentKey) });
    expect(await stub.listAgents(5050)).toEqual([{ kind: 5050, agent: "echo-1", handler: "test-echo", pubkey: getPublicKey(agentKey) }]);
    const customerKey = generateSecretKey();
    const customer = await nostrClient(stub);
    const job = sign(customerKey, 5050, { tags: [["i", "shout this", "text"], ["output", "text/plain"]] });
    const got: Event[] = [];
    const done = new Promise<void>((resolve) => {
      customer.subscribe([{ "#e": [job.id] }], {
        onevent: (e) => {
          got.push(e);
          if (e.kind === 6050) resolve();
        },
      });
    });
    await new Promise((r) => setTimeout(r, 20));
    await customer.publish(job);
    await done;
    expect(got.map((e) => e.kind)).toEqual([7000, 6050]);
    const result = got[1]!;
    expect(result.content).toBe("SHOUT THIS");
    expect(result.pubkey).toBe(getPublicKey(agentKey));
    expect(result.tags).toEqual(expect.arrayContaining([["e", job.id], ["p", job.pubkey], ["amount", "0"]]));
    expect(JSON.parse(result.tags.find((t) => t[0] === "request")![1]!).id).toBe(job.id);
    expect(seen.filter((s) => s.job === job.id)).toEqual([{ agent: "echo-1", job: job.id }]);
    // Results are stored: a late customer finds them with #e alone.
    const late = await RawClient.open(stub);
    expect((await late.req("late", { "#e": [job.id] })).events.map((e) => e.kind).sort()).toEqual([6050, 7000]);
    customer.close();
  });

  it("p-tagged requests go only to the named providers' edge agents", async () => {
    const stub = relay();
    const other = generateSecretKey();
    await stub.registerAgent({ kind: 5100, agent: "named", handler: "test-echo", pubkey: getPublicKey(agentKey) });
    await stub.registerAgent({ kind: 5100, agent: "someone-else", handler: "test-echo", pubkey: getPublicKey(other) });
    await stub.registerAgent({ kind: 5100, agent: "anonymous", handler: "test-echo" });
    const c = await RawClient.open(stub);
    await c.req("results", { kinds: [6100] });
    const job = sign(generateSecretKey(), 5100, { tags: [["i", "x", "text"], ["p", getPublicKey(agentKey)]] });
    expect(await c.publish(job)).toEqual([true, ""]);
    await c.next((m) => m[0] === "EVENT" && (m[2] as Event).kind === 6100);
    expect(seen.filter((s) => s.job === job.id).map((s) => s.agent)).toEqual(["named"]);
    const open = sign(generateSecretKey(), 5100, { tags: [["i", "y", "text"]] });
    expect(await c.publish(open)).toEqual([true, ""]);
    // The three agents share a key here, so their identical results are one event: wait on the handlers.
    for (let i = 0; i < 100 && seen.filter((s) => s.job === open.id).length < 3; i++) await new Promise((r) => setTimeout(r, 10));
    expect(seen.filter((s) => s.job === open.id).map((s) => s.agent).sort()).toEqual(["anonymous", "named", "someone-else"]);
    expect(await stub.unregisterAgent(5100, "anonymous")).toBe(true);
    expect((await stub.listAgents(5100)).map((r) => r.agent)).toEqual(["named", "someone-else"]);
  });

  it("registrations are checked and survive eviction", async () => {
    const stub = relay();
    expect(await stub.registerAgent({ kind: 1, agent: "x", handler: "test-echo" })).toEqual({ ok: false, error: expect.stringMatching(/5000-5999/) });
    expect(await stub.registerAgent({ kind: 5000, agent: "x", handler: "test-echo", pubkey: "nope" })).toEqual({ ok: false, error: expect.stringMatching(/pubkey/) });
    expect(await stub.listAgents()).toEqual([]);
    expect(await stub.registerAgent({ kind: 5300, agent: "durable", handler: "test-echo" })).toEqual({ ok: true });
    const c = await RawClient.open(stub);
    await c.req("r", { kinds: [6300] });
    await evictDurableObject(stub);
    const job = sign(generateSecretKey(), 5300, { tags: [["i", "after eviction", "text"]] });
    expect(await c.publish(job)).toEqual([true, ""]);
    const res = await c.next((m) => m[0] === "EVENT" && m[1] === "r");
    expect((res[2] as Event).content).toBe("AFTER EVICTION");
  });
});

describe("feedback and results", () => {
  it("accept every NIP-90 status, including payment_required, and refuse malformed ones", async () => {
    const c = await RawClient.open(relay());
    const prov = generateSecretKey();
    const job = sign(generateSecretKey(), 5050);
    expect(await c.publish(job)).toEqual([true, ""]);
    for (const status of ["payment-required", "payment_required", "processing", "error", "success", "partial"]) {
      const fb = sign(prov, 7000, { tags: [["status", status], ["e", job.id], ["p", job.pubkey], ["amount", "1000"]] });
      expect(await c.publish(fb), status).toEqual([true, ""]);
    }
    const bad: Array<[Event, RegExp]> = [
      [sign(prov, 7000, { tags: [["status", "done"], ["e", job.id]] }), /unknown job status/],
      [sign(prov, 7000, { tags: [["e", job.id]] }), /status tag/],
      [sign(prov, 7000, { tags: [["status", "success"]] }), /e tag/],
      [sign(prov, 6050, { tags: [["p", job.pubkey]], content: "result without request" }), /e tag/],
    ];
    for (const [ev, re] of bad) {
      const [ok, msg] = await c.publish(ev);
      expect(ok).toBe(false);
      expect(msg).toMatch(/^invalid: /);
      expect(msg).toMatch(re);
    }
    expect((await c.req("fb", { kinds: [7000], "#e": [job.id] })).events).toHaveLength(6);
  });
});

describe("cancellation", () => {
  it("a kind-5 deletion of a request removes it, tells subscribed providers and edge agents", async () => {
    const stub = relay();
    await stub.registerAgent({ kind: 5400, agent: "canceller", handler: "test-echo" });
    const provider = await RawClient.open(stub);
    await provider.req("jobs", { kinds: [5400] });
    const bystander = await RawClient.open(stub);
    await bystander.req("notes", { kinds: [1] });
    const customerKey = generateSecretKey();
    const customer = await RawClient.open(stub);
    const job = sign(customerKey, 5400, { tags: [["i", "long work", "text"]] });
    expect(await customer.publish(job)).toEqual([true, ""]);
    expect(((await provider.next((m) => m[0] === "EVENT"))[2] as Event).id).toBe(job.id);
    // Someone else cannot cancel it.
    expect(await customer.publish(sign(generateSecretKey(), 5, { tags: [["e", job.id]] }))).toEqual([true, ""]);
    expect(await provider.silent((m) => m[0] === "EVENT")).toBe(true);
    const del = sign(customerKey, 5, { tags: [["e", job.id], ["k", "5400"]], content: "never mind" });
    expect(await customer.publish(del)).toEqual([true, ""]);
    const told = await provider.next((m) => m[0] === "EVENT");
    expect(told[1]).toBe("jobs");
    expect((told[2] as Event).id).toBe(del.id);
    expect(await bystander.silent((m) => m[0] === "EVENT")).toBe(true);
    expect((await customer.req("gone", { ids: [job.id] })).events).toEqual([]);
    await new Promise((r) => setTimeout(r, 20));
    expect(cancelled.filter((x) => x.job === job.id)).toEqual([{ agent: "canceller", job: job.id, deletion: del.id }]);
  });
});
