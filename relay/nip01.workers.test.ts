// NIP-01 behaviour, spoken to by nostr-tools clients and raw sockets inside workerd.
import { describe, expect, it } from "vitest";
import { env } from "cloudflare:workers";
import { finalizeEvent, generateSecretKey, getPublicKey, verifyEvent, type Event } from "nostr-tools/pure";
import { RawClient, nostrClient } from "./testing.ts";

const now = () => Math.floor(Date.now() / 1000);
const relay = () => env.RELAY.getByName(`nip01-${crypto.randomUUID()}`);

function sign(sk: Uint8Array, kind: number, opts: { created_at?: number; tags?: string[][]; content?: string } = {}): Event {
  return finalizeEvent({ kind, created_at: opts.created_at ?? now(), tags: opts.tags ?? [], content: opts.content ?? "" }, sk);
}

describe("EVENT and OK", () => {
  it("accepts a signed event, answers OK true, and serves it back exactly", async () => {
    const stub = relay();
    const client = await nostrClient(stub);
    const sk = generateSecretKey();
    const ev = sign(sk, 1, { content: "hello", tags: [["t", "greeting"]] });
    await expect(client.publish(ev)).resolves.toBe("");
    const got: Event[] = [];
    await new Promise<void>((resolve) => client.subscribe([{ ids: [ev.id] }], { onevent: (e) => got.push(e), oneose: resolve }));
    expect(got).toHaveLength(1);
    expect(JSON.parse(JSON.stringify(got[0]))).toEqual({ id: ev.id, pubkey: ev.pubkey, created_at: ev.created_at, kind: 1, tags: [["t", "greeting"]], content: "hello", sig: ev.sig });
    client.close();
  });

  it("answers a duplicate with OK true and the duplicate: prefix, storing it once", async () => {
    const c = await RawClient.open(relay());
    const ev = sign(generateSecretKey(), 1, { content: "once" });
    expect(await c.publish(ev)).toEqual([true, ""]);
    const [ok, msg] = await c.publish(ev);
    expect(ok).toBe(true);
    expect(msg).toMatch(/^duplicate:/);
    expect((await c.req("s", { ids: [ev.id] })).events).toHaveLength(1);
  });

  it("drops fields that are not part of the event", async () => {
    const c = await RawClient.open(relay());
    const ev = sign(generateSecretKey(), 1, { content: "x" });
    expect(await c.publish({ ...ev, extra: "field", seenOn: ["a"] } as Event)).toEqual([true, ""]);
    const [stored] = (await c.req("s", { ids: [ev.id] })).events;
    expect(Object.keys(stored!).sort()).toEqual(["content", "created_at", "id", "kind", "pubkey", "sig", "tags"]);
  });

  it("keeps JSON escapes and unicode intact (id still verifies)", async () => {
    const c = await RawClient.open(relay());
    const content = 'quote " backslash \\ newline \n tab \t cr \r bs \b ff \f nul-ish \u0001 \u001f slash / emoji 🦩 ünïcödé \u2028 \u{10FFFF}';
    const ev = sign(generateSecretKey(), 1, { content, tags: [["t", 'a"b\\c\n']] });
    expect(await c.publish(ev)).toEqual([true, ""]);
    const [stored] = (await c.req("s", { ids: [ev.id] })).events;
    expect(stored!.content).toBe(content);
    expect(stored!.tags).toEqual([["t", 'a"b\\c\n']]);
    expect(verifyEvent(stored as unknown as Event)).toBe(true);
    expect((await c.req("t", { "#t": ['a"b\\c\n'] })).events.map((e) => e.id)).toEqual([ev.id]);
  });

  it("refuses created_at too far in the future or the past, accepts inside the window", async () => {
    const c = await RawClient.open(relay());
    const sk = generateSecretKey();
    const future = sign(sk, 1, { created_at: now() + 3600, content: "future" });
    const past = sign(sk, 1, { created_at: 1000, content: "1970" });
    const zero = sign(sk, 1, { created_at: 0, content: "epoch" });
    const nearFuture = sign(sk, 1, { created_at: now() + 60, content: "soon" });
    const oldButFine = sign(sk, 1, { created_at: now() - 3 * 365 * 86400, content: "three years ago" });
    for (const bad of [future, past, zero]) {
      const [ok, msg] = await c.publish(bad);
      expect(ok).toBe(false);
      expect(msg).toMatch(/^invalid: created_at/);
    }
    expect(await c.publish(nearFuture)).toEqual([true, ""]);
    expect(await c.publish(oldButFine)).toEqual([true, ""]);
    const ids = (await c.req("s", { authors: [getPublicKey(sk)] })).events.map((e) => e.id);
    expect(ids.sort()).toEqual([nearFuture.id, oldButFine.id].sort());
  });
});

describe("filters", () => {
  async function seeded() {
    const c = await RawClient.open(relay());
    const alice = generateSecretKey();
    const bob = generateSecretKey();
    const t0 = now() - 1000;
    const evs = {
      a1: sign(alice, 1, { created_at: t0 + 1, tags: [["t", "nostr"]], content: "a1" }),
      a2: sign(alice, 1, { created_at: t0 + 2, tags: [["t", "oanix"], ["p", getPublicKey(bob)]], content: "a2" }),
      a7: sign(alice, 7, { created_at: t0 + 3, tags: [["e", "f".repeat(64)]], content: "+" }),
      b1: sign(bob, 1, { created_at: t0 + 4, tags: [["t", "nostr"], ["t", "oanix"]], content: "b1" }),
      b30: sign(bob, 30023, { created_at: t0 + 5, tags: [["d", "post"], ["t", "long"]], content: "article" }),
    };
    for (const e of Object.values(evs)) expect(await c.publish(e)).toEqual([true, ""]);
    return { c, evs, alice: getPublicKey(alice), bob: getPublicKey(bob), t0 };
  }

  it("match ids, authors, kinds and #x tags exactly", async () => {
    const { c, evs, alice, bob } = await seeded();
    const ids = async (...f: unknown[]) => (await c.req(crypto.randomUUID(), ...f)).events.map((e) => e.content);
    expect(await ids({ ids: [evs.a2.id, evs.b1.id] })).toEqual(["b1", "a2"]);
    expect(await ids({ authors: [alice] })).toEqual(["+", "a2", "a1"]);
    expect(await ids({ kinds: [7, 30023] })).toEqual(["article", "+"]);
    expect(await ids({ authors: [bob], kinds: [1] })).toEqual(["b1"]);
    expect(await ids({ "#t": ["oanix"] })).toEqual(["b1", "a2"]);
    expect(await ids({ "#t": ["nostr", "long"] })).toEqual(["article", "b1", "a1"]);
    // Two tag conditions must both hold.
    expect(await ids({ "#t": ["oanix"], "#p": [bob] })).toEqual(["a2"]);
    expect(await ids({ "#e": ["f".repeat(64)] })).toEqual(["+"]);
    expect(await ids({ "#d": ["post"] })).toEqual(["article"]);
    // Tag names are case-sensitive; multi-letter tags are not indexed.
    expect(await ids({ "#T": ["oanix"] })).toEqual([]);
    // Prefixes are not ids.
    expect((await c.req("p", { ids: [evs.a1.id.slice(0, 10)] })).closed).toMatch(/^invalid:/);
    // Empty lists match nothing.
    expect(await ids({ authors: [] })).toEqual([]);
  });

  it("since and until are inclusive; since after until matches nothing", async () => {
    const { c, t0 } = await seeded();
    const ids = async (f: unknown) => (await c.req(crypto.randomUUID(), f)).events.map((e) => e.content);
    expect(await ids({ since: t0 + 2, until: t0 + 4 })).toEqual(["b1", "+", "a2"]);
    expect(await ids({ since: t0 + 5 })).toEqual(["article"]);
    expect(await ids({ until: t0 + 1 })).toEqual(["a1"]);
    expect(await ids({ since: t0 + 4, until: t0 + 2 })).toEqual([]);
  });

  it("several filters are OR'd, deduplicated, newest first", async () => {
    const { c, alice } = await seeded();
    const r = await c.req("or", { authors: [alice], kinds: [1] }, { "#t": ["oanix"] }, { kinds: [7] });
    expect(r.events.map((e) => e.content)).toEqual(["b1", "+", "a2", "a1"]);
  });

  it("limit returns the newest, ties broken by lowest id; limit 0 gives only EOSE but stays live", async () => {
    const c = await RawClient.open(relay());
    const sk = generateSecretKey();
    const t = now() - 100;
    const same = [0, 1, 2, 3].map((i) => sign(sk, 1, { created_at: t, content: `same ${i}` }));
    const older = sign(sk, 1, { created_at: t - 10, content: "older" });
    const newest = sign(sk, 1, { created_at: t + 10, content: "newest" });
    for (const e of [...same, older, newest]) expect((await c.publish(e))[0]).toBe(true);
    const byId = [...same].sort((a, b) => (a.id < b.id ? -1 : 1));
    const r = await c.req("lim", { kinds: [1], limit: 3 });
    expect(r.events.map((e) => e.id)).toEqual([newest.id, byId[0]!.id, byId[1]!.id]);
    const all = await c.req("all", { kinds: [1] });
    expect(all.events.map((e) => e.id)).toEqual([newest.id, ...byId.map((e) => e.id), older.id]);

    const zero = await c.req("zero", { kinds: [1], limit: 0 });
    expect(zero.events).toEqual([]);
    expect(zero.closed).toBeUndefined();
    const live = sign(sk, 1, { content: "live" });
    expect((await c.publish(live))[0]).toBe(true);
    const m = await c.next((m) => m[0] === "EVENT" && m[1] === "zero");
    expect((m[2] as Event).id).toBe(live.id);
  });

  it("clamps limit to max_limit", async () => {
    const stub = relay();
    await stub.configure({ maxLimit: 2 });
    const c = await RawClient.open(stub);
    const sk = generateSecretKey();
    for (let i = 0; i < 4; i++) expect((await c.publish(sign(sk, 1, { created_at: now() - i, content: String(i) })))[0]).toBe(true);
    expect((await c.req("s", { kinds: [1], limit: 100 })).events.map((e) => e.content)).toEqual(["0", "1"]);
  });
});

describe("subscriptions", () => {
  it("fans out only to matching subscriptions, on the sockets that own them", async () => {
    const stub = relay();
    const a = await RawClient.open(stub);
    const b = await RawClient.open(stub);
    const pub = await RawClient.open(stub);
    await a.req("s", { kinds: [1] });
    await b.req("s", { kinds: [7] });
    await b.req("t", { "#t": ["x"] });
    const ev = sign(generateSecretKey(), 1, { tags: [["t", "y"]], content: "note" });
    expect(await pub.publish(ev)).toEqual([true, ""]);
    const got = await a.next((m) => m[0] === "EVENT");
    expect(got[1]).toBe("s");
    expect((got[2] as Event).id).toBe(ev.id);
    expect(await b.silent((m) => m[0] === "EVENT")).toBe(true);
    expect(await pub.silent((m) => m[0] === "EVENT")).toBe(true);
    // An event matching two subscriptions of one socket arrives once per subscription.
    const both = sign(generateSecretKey(), 7, { tags: [["t", "x"]], content: "+" });
    expect(await pub.publish(both)).toEqual([true, ""]);
    const subs = [(await b.next((m) => m[0] === "EVENT"))[1], (await b.next((m) => m[0] === "EVENT"))[1]];
    expect(subs.sort()).toEqual(["s", "t"]);
  });

  it("a REQ with an existing id replaces it; CLOSE ends it", async () => {
    const stub = relay();
    const c = await RawClient.open(stub);
    const pub = await RawClient.open(stub);
    const sk = generateSecretKey();
    await c.req("s", { kinds: [1] });
    await c.req("s", { kinds: [7] });
    expect(await pub.publish(sign(sk, 1, { content: "kind 1" }))).toEqual([true, ""]);
    const r7 = sign(sk, 7, { content: "+" });
    expect(await pub.publish(r7)).toEqual([true, ""]);
    const m = await c.next((m) => m[0] === "EVENT");
    expect((m[2] as Event).id).toBe(r7.id);
    expect(await c.silent((m) => m[0] === "EVENT")).toBe(true);
    c.send(["CLOSE", "s"]);
    expect(await pub.publish(sign(sk, 7, { content: "again" }))).toEqual([true, ""]);
    expect(await c.silent((m) => m[0] === "EVENT")).toBe(true);
  });

  it("nostr-tools subscriptions receive live events after EOSE", async () => {
    const stub = relay();
    const client = await nostrClient(stub);
    const pub = await nostrClient(stub);
    const sk = generateSecretKey();
    const got: string[] = [];
    let eose = false;
    const live = new Promise<void>((resolve) => {
      client.subscribe([{ authors: [getPublicKey(sk)] }], {
        onevent: (e) => {
          got.push(e.content);
          if (eose) resolve();
        },
        oneose: () => {
          eose = true;
        },
      });
    });
    await new Promise((r) => setTimeout(r, 50));
    await pub.publish(sign(sk, 1, { content: "live" }));
    await live;
    expect(got).toEqual(["live"]);
    client.close();
    pub.close();
  });
});

describe("kinds", () => {
  it("replaceable kinds keep only the latest per pubkey+kind and refuse older versions", async () => {
    const c = await RawClient.open(relay());
    const sk = generateSecretKey();
    const pk = getPublicKey(sk);
    const t = now() - 100;
    for (const kind of [0, 3, 10002]) {
      const v1 = sign(sk, kind, { created_at: t, content: `${kind} v1` });
      const v2 = sign(sk, kind, { created_at: t + 10, content: `${kind} v2` });
      const old = sign(sk, kind, { created_at: t - 10, content: `${kind} old` });
      expect(await c.publish(v1)).toEqual([true, ""]);
      expect(await c.publish(v2)).toEqual([true, ""]);
      const [ok, msg] = await c.publish(old);
      expect(ok).toBe(false);
      expect(msg).toMatch(/^duplicate:/);
      expect((await c.req(`k${kind}`, { authors: [pk], kinds: [kind] })).events.map((e) => e.content)).toEqual([`${kind} v2`]);
    }
    // Another author's replaceable event is independent.
    const other = sign(generateSecretKey(), 0, { created_at: t - 50, content: "other" });
    expect(await c.publish(other)).toEqual([true, ""]);
    expect((await c.req("k0all", { kinds: [0] })).events.map((e) => e.content)).toEqual(["0 v2", "other"]);
  });

  it("equal created_at: the lowest id is kept", async () => {
    const c = await RawClient.open(relay());
    const sk = generateSecretKey();
    const t = now() - 10;
    const pair = [sign(sk, 10000, { created_at: t, content: "x" }), sign(sk, 10000, { created_at: t, content: "y" })].sort((a, b) => (a.id < b.id ? -1 : 1));
    const [low, high] = pair as [Event, Event];
    expect(await c.publish(high)).toEqual([true, ""]);
    expect(await c.publish(low)).toEqual([true, ""]);
    expect((await c.publish(high))[0]).toBe(false);
    expect((await c.req("s", { kinds: [10000] })).events.map((e) => e.id)).toEqual([low.id]);
  });

  it("addressable kinds are kept per kind+pubkey+d", async () => {
    const c = await RawClient.open(relay());
    const sk = generateSecretKey();
    const t = now() - 100;
    const a1 = sign(sk, 30023, { created_at: t, tags: [["d", "a"]], content: "a v1" });
    const a2 = sign(sk, 30023, { created_at: t + 1, tags: [["d", "a"]], content: "a v2" });
    const b1 = sign(sk, 30023, { created_at: t, tags: [["d", "b"]], content: "b v1" });
    const noD = sign(sk, 30023, { created_at: t, content: "no d" });
    const emptyD = sign(sk, 30023, { created_at: t + 1, tags: [["d", ""]], content: "empty d" });
    const other = sign(sk, 30024, { created_at: t, tags: [["d", "a"]], content: "other kind" });
    for (const e of [a1, a2, b1, noD, emptyD, other]) expect((await c.publish(e))[0]).toBe(true);
    expect((await c.publish(sign(sk, 30023, { created_at: t - 1, tags: [["d", "a"]], content: "a old" })))[0]).toBe(false);
    const got = (await c.req("s", { kinds: [30023, 30024] })).events.map((e) => e.content).sort();
    expect(got).toEqual(["a v2", "b v1", "empty d", "other kind"]);
  });

  it("ephemeral events are fanned out live and never stored", async () => {
    const stub = relay();
    const sub = await RawClient.open(stub);
    const pub = await RawClient.open(stub);
    await sub.req("eph", { kinds: [20001] });
    const ev = sign(generateSecretKey(), 20001, { content: "now or never" });
    expect(await pub.publish(ev)).toEqual([true, ""]);
    const m = await sub.next((m) => m[0] === "EVENT");
    expect((m[2] as Event).id).toBe(ev.id);
    expect((await pub.req("later", { kinds: [20001] })).events).toEqual([]);
    expect((await pub.req("byid", { ids: [ev.id] })).events).toEqual([]);
  });
});
