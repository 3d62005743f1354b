// Live subscriptions survive hibernation and eviction; nothing acknowledged with OK true is lost.
import { describe, expect, it } from "vitest";
import { env } from "cloudflare:workers";
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { finalizeEvent, generateSecretKey, getPublicKey, type Event } from "nostr-tools/pure";
import { makeAuthEvent } from "nostr-tools/nip42";
import { RELAY_URL, RawClient, nostrClient } from "./testing.ts";
import type { NostrRelay } from "./relay.ts";

const now = () => Math.floor(Date.now() / 1000);
const relay = () => env.RELAY.getByName(`hib-${crypto.randomUUID()}`);
function sign(sk: Uint8Array, kind: number, opts: { tags?: string[][]; content?: string } = {}): Event {
  return finalizeEvent({ kind, created_at: now(), tags: opts.tags ?? [], content: opts.content ?? "" }, sk);
}

/** Marks the running instance, evicts it, and checks that a fresh instance answers afterwards. */
async function evict(stub: DurableObjectStub<NostrRelay>): Promise<void> {
  await runInDurableObject(stub, (instance) => {
    (instance as unknown as { marker?: number }).marker = 1;
  });
  await evictDurableObject(stub);
  const marker = await runInDurableObject(stub, (instance) => (instance as unknown as { marker?: number }).marker);
  expect(marker).toBeUndefined();
}

describe("eviction and hibernation", () => {
  it("subscribed clients keep receiving matching events after the object is evicted", async () => {
    const stub = relay();
    const sk = generateSecretKey();
    const stored = sign(sk, 1, { content: "before eviction", tags: [["t", "x"]] });
    const raw = await RawClient.open(stub);
    expect(await raw.publish(stored)).toEqual([true, ""]);
    await raw.req("notes", { kinds: [1] });
    await raw.req("tagged", { "#t": ["x"] });
    const tools = await nostrClient(stub);
    const toolsGot: string[] = [];
    let toolsEose = false;
    const toolsLive = new Promise<void>((resolve) =>
      tools.subscribe([{ authors: [getPublicKey(sk)] }], {
        onevent: (e) => {
          toolsGot.push(e.content);
          if (toolsEose) resolve();
        },
        oneose: () => {
          toolsEose = true;
        },
      }),
    );
    const bystander = await RawClient.open(stub);
    await bystander.req("reactions", { kinds: [7] });
    await new Promise((r) => setTimeout(r, 20));

    await evict(stub);

    const publisher = await RawClient.open(stub);
    const after = sign(sk, 1, { content: "after eviction", tags: [["t", "x"]] });
    expect(await publisher.publish(after)).toEqual([true, ""]);
    const subs = [await raw.next((m) => m[0] === "EVENT"), await raw.next((m) => m[0] === "EVENT")];
    expect(subs.map((m) => m[1]).sort()).toEqual(["notes", "tagged"]);
    for (const m of subs) expect((m[2] as Event).id).toBe(after.id);
    await toolsLive;
    expect(toolsGot).toEqual(["before eviction", "after eviction"]);
    expect(await bystander.silent((m) => m[0] === "EVENT")).toBe(true);
    // What was acknowledged before eviction is still served.
    expect((await publisher.req("old", { ids: [stored.id] })).events.map((e) => e.id)).toEqual([stored.id]);
    tools.close();
  });

  it("CLOSE and REQ replacement keep working across evictions, and subscriptions are per socket", async () => {
    const stub = relay();
    const a = await RawClient.open(stub);
    const b = await RawClient.open(stub);
    await a.req("s", { kinds: [1] });
    await b.req("s", { kinds: [7] });
    await evict(stub);
    a.send(["CLOSE", "s"]);
    await b.req("s", { kinds: [1] });
    await evict(stub);
    const pub = await RawClient.open(stub);
    const ev = sign(generateSecretKey(), 1, { content: "who gets this" });
    expect(await pub.publish(ev)).toEqual([true, ""]);
    expect(((await b.next((m) => m[0] === "EVENT" && m[1] === "s"))[2] as Event).id).toBe(ev.id);
    expect(await a.silent((m) => m[0] === "EVENT")).toBe(true);
  });

  it("authentication and configuration survive eviction", async () => {
    const stub = relay();
    await stub.configure({ authWrite: true });
    const c = await RawClient.open(stub);
    const sk = generateSecretKey();
    const auth = finalizeEvent(makeAuthEvent(RELAY_URL, c.challenge!), sk);
    c.send(["AUTH", auth]);
    expect((await c.next((m) => m[0] === "OK" && m[1] === auth.id))[2]).toBe(true);
    await evict(stub);
    expect(await c.publish(sign(sk, 1, { content: "still authenticated" }))).toEqual([true, ""]);
    const stranger = await RawClient.open(stub);
    expect((await stranger.publish(sign(generateSecretKey(), 1)))[1]).toMatch(/^auth-required:/);
  });

  it("subscription sets too large for the attachment move to SQLite and survive eviction too", async () => {
    const stub = relay();
    const c = await RawClient.open(stub);
    const sk = generateSecretKey();
    // 40 authors of 64 hex characters: far more than a 2 KB attachment holds.
    const authors = [...Array.from({ length: 39 }, () => getPublicKey(generateSecretKey())), getPublicKey(sk)];
    await c.req("small", { kinds: [7] });
    await c.req("big", { authors, kinds: [1] });
    const rows = () => runInDurableObject(stub, (_i, state) => state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM subs").one().n);
    expect(await rows()).toBe(2);
    await evict(stub);
    const pub = await RawClient.open(stub);
    const note = sign(sk, 1, { content: "for the big filter" });
    const reaction = sign(generateSecretKey(), 7, { content: "+" });
    expect(await pub.publish(note)).toEqual([true, ""]);
    expect(await pub.publish(reaction)).toEqual([true, ""]);
    const got = [await c.next((m) => m[0] === "EVENT"), await c.next((m) => m[0] === "EVENT")];
    expect(got.map((m) => `${m[1]}:${(m[2] as Event).id}`).sort()).toEqual([`big:${note.id}`, `small:${reaction.id}`].sort());
    c.send(["CLOSE", "big"]);
    await c.req("probe", { ids: [note.id] });
    expect(await rows()).toBe(2); // "small" and "probe" (the connection stays in SQLite mode)
  });

  it("small subscription sets cost no storage write", async () => {
    const stub = relay();
    const c = await RawClient.open(stub);
    await c.req("a", { kinds: [1] });
    await c.req("b", { "#t": ["x"], limit: 0 });
    const n = await runInDurableObject(stub, (_i, state) => state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM subs").one().n);
    expect(n).toBe(0);
  });

  it("subscriptions of sockets closed during eviction or by the client are forgotten", async () => {
    const stub = relay();
    const big = { authors: Array.from({ length: 40 }, () => getPublicKey(generateSecretKey())) };
    const c = await RawClient.open(stub);
    await c.req("a", big);
    await c.req("b", { kinds: [2] });
    const d = await RawClient.open(stub);
    await d.req("a", big);
    const count = () => runInDurableObject(stub, (_i, state) => state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM subs").one().n);
    expect(await count()).toBe(3);
    d.close();
    for (let i = 0; i < 50 && (await count()) !== 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(await count()).toBe(2);
    await evictDurableObject(stub, { webSockets: "close" });
    expect(await count()).toBe(0);
    const fresh = await RawClient.open(stub);
    expect(await fresh.publish(sign(generateSecretKey(), 1))).toEqual([true, ""]);
  });
});
