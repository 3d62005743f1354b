// The job outbox (job-outbox.ts): a NIP-90 hand-over the relay object did not finish (reset while its
// hook ran) is run again by the next instance, on the next use or on the alarm, until it settles once;
// the same for cancellations and across connection shards; NIP-40 expiry shares the object's alarm.
import { describe, expect, it } from "vitest";
import { env } from "cloudflare:workers";
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { finalizeEvent, generateSecretKey, type Event } from "nostr-tools/pure";
import { defineEdgeAgent } from "./nip90.ts";
import type { NostrEvent } from "./event.ts";
import { MAX_RERUNS, RERUN_AFTER_MS } from "./job-outbox.ts";
import { NostrRelay } from "./relay.ts";
import { connShardName } from "./shards.ts";
import { RawClient } from "./testing.ts";

const now = () => Math.floor(Date.now() / 1000);
const sign = (sk: Uint8Array, kind: number, opts: { tags?: string[][]; content?: string } = {}): Event =>
  finalizeEvent({ kind, created_at: now(), tags: opts.tags ?? [], content: opts.content ?? "" }, sk);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// How each hook behaves is in the request's content: "hang-once" (the first call never settles),
// "hang" (no call ever settles), anything else settles at once. Calls are counted per request.
const jobCalls = new Map<string, number>();
const cancelCalls = new Map<string, string[]>();
const bump = (id: string) => {
  const n = (jobCalls.get(id) ?? 0) + 1;
  jobCalls.set(id, n);
  return n;
};
const never = () => new Promise<void>(() => {});
defineEdgeAgent("outbox-test", {
  onJob(job: NostrEvent) {
    const n = bump(job.id);
    if (job.content === "hang" || (job.content === "hang-once" && n === 1)) return never();
  },
  onCancel(job: NostrEvent, deletion: NostrEvent) {
    const seen = [...(cancelCalls.get(job.id) ?? []), deletion.id];
    cancelCalls.set(job.id, seen);
    if (deletion.content === "hang-once" && seen.length === 1) return never();
  },
});

type Stub = DurableObjectStub<NostrRelay>;

/** The outbox rows of an object (starting it if needed). */
const rows = (stub: Stub) =>
  runInDurableObject(stub, (_, state) => state.storage.sql.exec<{ id: number; agent: string | null; attempts: number }>("SELECT id, agent, attempts FROM job_outbox").toArray());
const alarmOf = (stub: Stub) => runInDurableObject(stub, (_, state) => state.storage.getAlarm());

/** Resets the running instance of an object, as a crash would (its pending hooks die with it); a fresh stub. */
async function reset(name: string): Promise<Stub> {
  await expect(runInDurableObject(env.RELAY.getByName(name), (_, state) => state.abort("reset by the test"))).rejects.toThrow(/reset by the test/);
  return env.RELAY.getByName(name);
}

async function until(done: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 250; i++) {
    if (await done()) return;
    await sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function relayWithAgent(kind: number): Promise<{ name: string; stub: Stub }> {
  const name = `outbox-${crypto.randomUUID()}`;
  const stub = env.RELAY.getByName(name);
  expect(await stub.registerAgent({ kind, agent: "outboxed", handler: "outbox-test" })).toEqual({ ok: true });
  return { name, stub };
}

describe("job hand-overs survive a reset of the relay object", () => {
  it("a request whose hook was cut off is handed over again on the next use, then never again", async () => {
    let { name, stub } = await relayWithAgent(5610);
    const c = await RawClient.open(stub);
    const job = sign(generateSecretKey(), 5610, { content: "hang-once" });
    const before = Date.now();
    expect(await c.publish(job)).toEqual([true, ""]);
    await until(() => jobCalls.get(job.id) === 1, "the first call");
    expect(await rows(stub)).toEqual([{ id: expect.any(Number), agent: "outboxed", attempts: 0 }]);
    // The alarm will look again within RERUN_AFTER_MS, should nobody come back.
    const alarm = await alarmOf(stub);
    expect(alarm).not.toBeNull();
    expect(alarm!).toBeLessThanOrEqual(Date.now() + RERUN_AFTER_MS);
    expect(alarm!).toBeGreaterThanOrEqual(before);
    c.close();

    stub = await reset(name);
    expect(await stub.listAgents(5610)).toHaveLength(1); // the next use starts a new instance
    await until(() => jobCalls.get(job.id) === 2, "the re-run");
    await until(async () => (await rows(stub)).length === 0, "the row to go");
    // Done means done: neither the alarm nor another restart runs it again.
    await runDurableObjectAlarm(stub);
    stub = await reset(name);
    expect(await rows(stub)).toEqual([]);
    await sleep(50);
    expect(jobCalls.get(job.id)).toBe(2);
  });

  it("a relay nobody uses after the reset hands the request over when its alarm fires", async () => {
    let { name, stub } = await relayWithAgent(5611);
    const job = sign(generateSecretKey(), 5611, { content: "hang-once" });
    expect(await stub.publish(job as NostrEvent)).toMatchObject({ ok: true, accepted: true });
    await until(() => jobCalls.get(job.id) === 1, "the first call");
    stub = await reset(name);
    // The predecessor's alarm wakes the object: the hook runs once more (the constructor takes the
    // row, so the alarm handler that follows does not run it a second time).
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    await until(() => jobCalls.get(job.id) === 2, "the re-run");
    await until(async () => (await rows(stub)).length === 0, "the row to go");
    await sleep(50);
    expect(jobCalls.get(job.id)).toBe(2);
  });

  it("the alarm re-runs a leftover row of a live instance, and skips rows whose hook is still running here", async () => {
    const { stub } = await relayWithAgent(5612);
    const running = sign(generateSecretKey(), 5612, { content: "hang" });
    expect(await stub.publish(running as NostrEvent)).toMatchObject({ ok: true });
    await until(() => jobCalls.get(running.id) === 1, "the first call");
    // A row as a predecessor would have left it (its instance gone before the hook settled).
    const leftover = sign(generateSecretKey(), 5612, { content: "settles" });
    await runInDurableObject(stub, (_, state) => {
      state.storage.sql.exec("INSERT INTO job_outbox (job, agent, created_at) VALUES (?, 'outboxed', ?)", JSON.stringify(leftover), Date.now());
    });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    await until(() => jobCalls.get(leftover.id) === 1, "the leftover's run");
    await until(async () => (await rows(stub)).length === 1, "the leftover's row to go");
    expect(jobCalls.get(running.id)).toBe(1); // still running in this instance: not run twice
    expect(await rows(stub)).toEqual([{ id: expect.any(Number), agent: "outboxed", attempts: 0 }]);
    expect(await alarmOf(stub)).not.toBeNull(); // and looked at again later, while its row is there
  });

  it("a cancellation whose onCancel was cut off is told again, once", async () => {
    let { name, stub } = await relayWithAgent(5613);
    const customer = generateSecretKey();
    const job = sign(customer, 5613, { content: "settles" });
    const c = await RawClient.open(stub);
    expect(await c.publish(job)).toEqual([true, ""]);
    await until(async () => jobCalls.get(job.id) === 1 && (await rows(stub)).length === 0, "the request's hand-over");
    const deletion = sign(customer, 5, { tags: [["e", job.id]], content: "hang-once" });
    expect(await c.publish(deletion)).toEqual([true, ""]);
    await until(() => cancelCalls.get(job.id)?.length === 1, "the first onCancel");
    expect(await rows(stub)).toHaveLength(1);
    c.close();
    stub = await reset(name);
    await stub.listAgents();
    await until(() => cancelCalls.get(job.id)?.length === 2, "onCancel again");
    expect(cancelCalls.get(job.id)).toEqual([deletion.id, deletion.id]);
    await until(async () => (await rows(stub)).length === 0, "the row to go");
    stub = await reset(name);
    expect(await rows(stub)).toEqual([]);
    expect(cancelCalls.get(job.id)).toHaveLength(2);
    expect(jobCalls.get(job.id)).toBe(1); // the request itself was handed over once
  });

  it(`gives a hand-over up after ${MAX_RERUNS} re-runs`, async () => {
    let { name, stub } = await relayWithAgent(5614);
    const job = sign(generateSecretKey(), 5614, { content: "hang" });
    expect(await stub.publish(job as NostrEvent)).toMatchObject({ ok: true });
    await until(() => jobCalls.get(job.id) === 1, "the first call");
    for (let k = 1; k <= MAX_RERUNS; k++) {
      stub = await reset(name);
      expect(await rows(stub)).toEqual([{ id: expect.any(Number), agent: "outboxed", attempts: k }]);
      await until(() => jobCalls.get(job.id) === k + 1, `re-run ${k}`);
    }
    stub = await reset(name);
    expect(await rows(stub)).toEqual([]);
    await sleep(50);
    expect(jobCalls.get(job.id)).toBe(MAX_RERUNS + 1);
  });
});

describe("the outbox with connection shards", () => {
  const K = 4;
  const conn = (base: string, i: number) => env.RELAY.getByName(connShardName(base, i, K));

  it("a request accepted on connection shard 2 runs shard 0's hook exactly once, and no row is left on either", async () => {
    const base = `outbox-shards-${crypto.randomUUID()}`;
    expect(await conn(base, 0).registerAgent({ kind: 5620, agent: "outboxed", handler: "outbox-test" })).toEqual({ ok: true });
    const c = await RawClient.open(conn(base, 2));
    const job = sign(generateSecretKey(), 5620, { content: "settles" });
    expect(await c.publish(job)).toEqual([true, ""]);
    await until(() => jobCalls.get(job.id) === 1, "shard 0's hook");
    await until(async () => (await rows(conn(base, 2))).length === 0 && (await rows(conn(base, 0))).length === 0, "the rows to go");
    await sleep(100);
    expect(jobCalls.get(job.id)).toBe(1);
  });

  it("a forward shard 0 did not take stays on the connection shard and its alarm sends it again", async () => {
    const base = `outbox-shards-${crypto.randomUUID()}`;
    expect(await conn(base, 0).registerAgent({ kind: 5621, agent: "outboxed", handler: "outbox-test" })).toEqual({ ok: true });
    const shardCall = NostrRelay.prototype.shardCall;
    let refused = 0;
    NostrRelay.prototype.shardCall = function (this: NostrRelay, msg) {
      if ("jobs" in msg && refused++ === 0) throw new Error("shard 0 is unavailable (test)");
      return shardCall.call(this, msg);
    };
    try {
      const c = await RawClient.open(conn(base, 3));
      const job = sign(generateSecretKey(), 5621, { content: "settles" });
      expect(await c.publish(job)).toEqual([true, ""]);
      await until(() => refused === 1, "the refused forward");
      await sleep(20);
      expect(jobCalls.get(job.id)).toBeUndefined();
      expect(await rows(conn(base, 3))).toEqual([{ id: expect.any(Number), agent: null, attempts: 0 }]);
      expect(await runDurableObjectAlarm(conn(base, 3))).toBe(true);
      await until(() => jobCalls.get(job.id) === 1, "shard 0's hook");
      await until(async () => (await rows(conn(base, 3))).length === 0 && (await rows(conn(base, 0))).length === 0, "the rows to go");
      expect(jobCalls.get(job.id)).toBe(1);
    } finally {
      NostrRelay.prototype.shardCall = shardCall;
    }
  });
});

describe("one alarm for NIP-40 expiry and the outbox", () => {
  const storedIds = (stub: Stub) => runInDurableObject(stub, (_, state) => state.storage.sql.exec<{ id: string }>("SELECT id FROM events").toArray().map((r) => r.id));

  it("the outbox never pushes back an expiration, an expiration brings the outbox's look forward, and expiry fires with a row in the outbox", async () => {
    const { stub } = await relayWithAgent(5630);
    const c = await RawClient.open(stub);
    const expiresAt = (e: Event) => Number(e.tags[0]![1]) * 1000;
    // An expiration first, then a hand-over that stays in the outbox: the alarm stays at the expiration.
    // (Two seconds ahead: one may already have passed when the relay checks it, on a loaded machine.)
    const first = sign(generateSecretKey(), 1, { tags: [["expiration", String(now() + 2)]], content: "soon gone" });
    expect(await c.publish(first)).toEqual([true, ""]);
    const job = sign(generateSecretKey(), 5630, { content: "hang" });
    expect(await c.publish(job)).toEqual([true, ""]);
    await until(() => jobCalls.get(job.id) === 1, "the hook");
    expect(await alarmOf(stub)).toBe(expiresAt(first));
    // The alarm fires on its own (no runDurableObjectAlarm): the event goes, the row stays and is looked at again.
    await until(async () => !(await storedIds(stub)).includes(first.id), "the first expired event to go");
    expect(await rows(stub)).toHaveLength(1);
    const look = (await alarmOf(stub))!;
    expect(look).toBeGreaterThan(Date.now() + 2_000);
    expect(look).toBeLessThanOrEqual(Date.now() + RERUN_AFTER_MS);
    // The other way round: an expiration sooner than the outbox's look brings the alarm forward.
    const second = sign(generateSecretKey(), 1, { tags: [["expiration", String(now() + 2)]], content: "gone too" });
    expect(await c.publish(second)).toEqual([true, ""]);
    expect(await alarmOf(stub)).toBe(expiresAt(second));
    await until(async () => !(await storedIds(stub)).includes(second.id), "the second expired event to go");
    expect(await rows(stub)).toHaveLength(1);
    expect((await alarmOf(stub))!).toBeLessThanOrEqual(Date.now() + RERUN_AFTER_MS);
  });

  it("a later need never pushes back an earlier alarm, even one set by an evicted instance", async () => {
    const stub = env.RELAY.getByName(`outbox-${crypto.randomUUID()}`);
    const c = await RawClient.open(stub);
    const sk = generateSecretKey();
    const soon = sign(sk, 1, { tags: [["expiration", String(now() + 3600)]] });
    expect(await c.publish(soon)).toEqual([true, ""]);
    expect(await alarmOf(stub)).toBe(Number(soon.tags[0]![1]) * 1000);
    await evictDurableObject(stub);
    const later = sign(sk, 1, { tags: [["expiration", String(now() + 7200)]] });
    expect(await c.publish(later)).toEqual([true, ""]);
    expect(await alarmOf(stub)).toBe(Number(soon.tags[0]![1]) * 1000);
  });

  it("once the outbox is empty, its alarm gives way to the next expiration", async () => {
    const { stub } = await relayWithAgent(5631);
    const c = await RawClient.open(stub);
    const far = sign(generateSecretKey(), 1, { tags: [["expiration", String(now() + 3600)]] });
    expect(await c.publish(far)).toEqual([true, ""]);
    const job = sign(generateSecretKey(), 5631, { content: "settles" });
    expect(await c.publish(job)).toEqual([true, ""]);
    expect((await alarmOf(stub))!).toBeLessThanOrEqual(Date.now() + RERUN_AFTER_MS);
    await until(async () => (await rows(stub)).length === 0, "the hand-over");
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await alarmOf(stub)).toBe(Number(far.tags[0]![1]) * 1000);
    expect(await storedIds(stub)).toContain(far.id);
  });
});
