// NIP-50 search over the FTS5 index: content and kind-0 profiles, ranked, limits honoured, live
// subscriptions matched the same way, COUNT, deletion, and refusals of malformed queries.
import { describe, expect, it } from "vitest";
import { env } from "cloudflare:workers";
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { finalizeEvent, generateSecretKey, type Event } from "nostr-tools/pure";
import { RawClient, nostrClient } from "./testing.ts";
import type { EventStore } from "./store.ts";
import type { NostrEvent } from "./event.ts";

const now = () => Math.floor(Date.now() / 1000);
const relay = () => env.RELAY.getByName(`nip50-${crypto.randomUUID()}`);
function sign(sk: Uint8Array, kind: number, content: string, opts: { created_at?: number; tags?: string[][] } = {}): Event {
  return finalizeEvent({ kind, created_at: opts.created_at ?? now(), tags: opts.tags ?? [], content }, sk);
}

describe("NIP-50 search", () => {
  it("finds events by words of their content, best match first, with the filter's other conditions", async () => {
    const c = await RawClient.open(relay());
    const sk = generateSecretKey();
    const t = now() - 100;
    const weak = sign(sk, 1, "A note that mentions durable objects once, among many other words about cooking pasta and gardening", { created_at: t + 3 });
    const strong = sign(sk, 1, "Durable objects! Durable objects everywhere: durable objects", { created_at: t + 1 });
    const accented = sign(sk, 1, "Crème brûlée with DURABLE Objects", { created_at: t + 2 });
    const other = sign(sk, 1, "nothing to see here", { created_at: t + 4 });
    const reaction = sign(sk, 7, "durable objects", { created_at: t + 5 });
    for (const e of [weak, strong, accented, other, reaction]) expect(await c.publish(e)).toEqual([true, ""]);

    const all = await c.req("s", { kinds: [1], search: "durable objects" });
    expect(all.events.map((e) => e.id)).toEqual([strong.id, accented.id, weak.id]);
    // Case and accents are folded; limit keeps the best ones.
    expect((await c.req("s2", { search: "CREME brulee" })).events.map((e) => e.id)).toEqual([accented.id]);
    expect((await c.req("s3", { kinds: [1], search: "durable", limit: 1 })).events.map((e) => e.id)).toEqual([strong.id]);
    expect((await c.req("s4", { search: "durable objects", kinds: [7] })).events.map((e) => e.id)).toEqual([reaction.id]);
    expect((await c.req("s5", { search: "durable", until: t + 2 })).events.map((e) => e.id)).toEqual([strong.id, accented.id]);
    // Every word is required; unknown NIP-50 extensions are ignored.
    expect((await c.req("s6", { search: "durable pasta include:spam language:en" })).events.map((e) => e.id)).toEqual([weak.id]);
    expect((await c.req("s7", { search: "durable zebra" })).events).toEqual([]);
    c.send(["COUNT", "n", { search: "durable" }, { search: "nothing" }]);
    expect((await c.next((m) => m[0] === "COUNT"))[2]).toEqual({ count: 5 });
  });

  it("searches the name and about of kind-0 profiles, not their other fields", async () => {
    const c = await RawClient.open(relay());
    const alice = sign(generateSecretKey(), 0, JSON.stringify({ name: "alice", about: "builds relays on workers", picture: "https://x/zebra.png" }));
    const bob = sign(generateSecretKey(), 0, JSON.stringify({ display_name: "Bob", about: "writes about zebras" }));
    const broken = sign(generateSecretKey(), 0, "not json but mentions relays");
    for (const e of [alice, bob, broken]) expect(await c.publish(e)).toEqual([true, ""]);
    expect((await c.req("a", { kinds: [0], search: "relays" })).events.map((e) => e.id)).toEqual([alice.id]);
    expect((await c.req("z", { kinds: [0], search: "zebra" })).events).toEqual([]);
    expect((await c.req("b", { search: "bob" })).events.map((e) => e.id)).toEqual([bob.id]);
  });

  it("keeps a search subscription live, and a deleted or replaced event leaves the index", async () => {
    const stub = relay();
    const tools = await nostrClient(stub);
    const got: string[] = [];
    let eose = false;
    tools.subscribe([{ search: "nostr relay", kinds: [1, 0] } as never], { onevent: (e) => eose && got.push(e.content), oneose: () => (eose = true) });
    const c = await RawClient.open(stub);
    const sk = generateSecretKey();
    const hit = sign(sk, 1, "my nostr relay runs in a durable object");
    const miss = sign(sk, 1, "my relay, no n-word");
    for (const e of [hit, miss]) expect(await c.publish(e)).toEqual([true, ""]);
    for (let i = 0; i < 50 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(got).toEqual([hit.content]);
    expect(await c.publish(sign(sk, 5, "", { tags: [["e", hit.id]] }))).toEqual([true, ""]);
    expect((await c.req("gone", { search: "nostr" })).events).toEqual([]);
    const v1 = sign(sk, 0, JSON.stringify({ name: "first relay name" }), { created_at: now() - 10 });
    const v2 = sign(sk, 0, JSON.stringify({ name: "second" }));
    expect(await c.publish(v1)).toEqual([true, ""]);
    expect(await c.publish(v2)).toEqual([true, ""]);
    expect((await c.req("old", { search: "first" })).events).toEqual([]);
    expect((await c.req("new", { search: "second" })).events.map((e) => e.id)).toEqual([v2.id]);
    tools.close();
  });

  it("refuses malformed searches and still refuses unsupported filter keys", async () => {
    const c = await RawClient.open(relay());
    expect((await c.req("a", { search: 5 })).closed).toMatch(/^invalid: search must be a string/);
    expect((await c.req("b", { search: "  !!! include:spam " })).closed).toMatch(/^invalid: search needs at least one word/);
    expect((await c.req("c", { search: "x".repeat(1001) })).closed).toMatch(/^invalid: search is longer/);
    expect((await c.req("d", { search: 'a" OR "b NEAR(x y) *' })).closed).toBeUndefined(); // FTS5 syntax is just words
    expect((await c.req("e", { search: "ok", sort: "new" })).closed).toMatch(/^invalid: unsupported filter field "sort"/);
    c.send(["COUNT", "f", { search: "" }]);
    expect((await c.next((m) => m[0] === "CLOSED" && m[1] === "f"))[2]).toMatch(/^invalid: search needs/);
  });

  describe("the index is written in batches, off the reply path", () => {
    const storeOf = (instance: unknown) => (instance as { store: EventStore }).store;
    const indexed = (store: EventStore, word: string) => store.sql.exec<{ n: number }>("SELECT count(*) AS n FROM events_fts WHERE events_fts MATCH ?", word).one().n;
    const save = (store: EventStore, e: Event) => store.save(e as NostrEvent, JSON.stringify(e));

    it("a stored event waits in fts_pending, and a search indexes what waits before it reads", async () => {
      const stub = relay();
      const sk = generateSecretKey();
      const e = sign(sk, 1, "pending pelican note");
      const r = await runInDurableObject(stub, (instance) => {
        const store = storeOf(instance);
        save(store, e);
        const before = { pending: store.pendingIndex, indexed: indexed(store, "pelican") };
        const found = store.query([{ search: ["pelican"] }], now(), 10).map((raw) => (JSON.parse(raw) as NostrEvent).id);
        return { before, found, after: { pending: store.pendingIndex, indexed: indexed(store, "pelican") } };
      });
      expect(r).toEqual({ before: { pending: 1, indexed: 0 }, found: [e.id], after: { pending: 0, indexed: 1 } });
    });

    it("an event deleted or replaced before it was indexed never reaches the index", async () => {
      const stub = relay();
      const sk = generateSecretKey();
      const note = sign(sk, 1, "ephemeral walrus thought");
      const deletion = sign(sk, 5, "", { tags: [["e", note.id]] });
      const v1 = sign(sk, 0, JSON.stringify({ name: "walrus one" }), { created_at: now() - 5 });
      const v2 = sign(sk, 0, JSON.stringify({ name: "narwhal two" }));
      const r = await runInDurableObject(stub, (instance) => {
        const store = storeOf(instance);
        for (const e of [note, deletion, v1, v2]) save(store, e);
        const pending = store.pendingIndex;
        store.indexPending();
        const count = store.count([{ search: ["walrus"] }], now());
        return { pending, walrus: indexed(store, "walrus"), narwhal: indexed(store, "narwhal"), count, left: store.pendingIndex };
      });
      expect(r).toEqual({ pending: 1, walrus: 0, narwhal: 1, count: 0, left: 0 });
    });

    it("pending events survive eviction and are found by the next search", async () => {
      const stub = relay();
      const e = sign(generateSecretKey(), 1, "a quokka survives eviction");
      await runInDurableObject(stub, (instance) => void save(storeOf(instance), e));
      await evictDurableObject(stub);
      const c = await RawClient.open(stub);
      expect((await c.req("q", { search: "quokka" })).events.map((x) => x.id)).toEqual([e.id]);
      c.send(["COUNT", "n", { search: "quokka survives" }]);
      expect((await c.next((m) => m[0] === "COUNT"))[2]).toEqual({ count: 1 });
    });

    it("a search right after OK finds the event; the background indexer empties the queue", async () => {
      const stub = relay();
      await stub.configure({ messagesPerSecond: 0, eventsPerSecondPerPubkey: 0 });
      const c = await RawClient.open(stub);
      const sk = generateSecretKey();
      const events = Array.from({ length: 300 }, (_, i) => sign(sk, 1, `batch ${i} ${i % 2 ? "odd" : "even"} axolotl`, { created_at: now() - 300 + i }));
      for (const e of events.slice(0, 299)) c.send(["EVENT", e]);
      expect(await c.publish(events[299]!)).toEqual([true, ""]);
      const found = await c.req("a", { search: "axolotl odd", limit: 500 });
      expect(found.events.length).toBe(150);
      c.send(["COUNT", "n", { search: "axolotl" }]);
      expect((await c.next((m) => m[0] === "COUNT"))[2]).toEqual({ count: 300 });
      const late = sign(sk, 1, "late capybara");
      expect(await c.publish(late)).toEqual([true, ""]);
      let pending = -1;
      for (let i = 0; i < 100 && pending !== 0; i++) {
        await new Promise((r) => setTimeout(r, 20));
        pending = await runInDurableObject(stub, (instance) => storeOf(instance).pendingIndex);
      }
      expect(pending).toBe(0);
      expect((await c.req("b", { search: "capybara" })).events.map((x) => x.id)).toEqual([late.id]);
    });
  });
});
