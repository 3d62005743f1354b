// NIP-09 deletion, NIP-11 information document (through the Worker's /relay route), NIP-40
// expiration, NIP-42 AUTH, NIP-45 COUNT.
import { describe, expect, it } from "vitest";
import { env, exports } from "cloudflare:workers";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { finalizeEvent, generateSecretKey, getPublicKey, type Event } from "nostr-tools/pure";
import { makeAuthEvent } from "nostr-tools/nip42";
import { RELAY_URL, RawClient, nostrClient } from "./testing.ts";

const now = () => Math.floor(Date.now() / 1000);
const relay = () => env.RELAY.getByName(`nips-${crypto.randomUUID()}`);
function sign(sk: Uint8Array, kind: number, opts: { created_at?: number; tags?: string[][]; content?: string } = {}): Event {
  return finalizeEvent({ kind, created_at: opts.created_at ?? now(), tags: opts.tags ?? [], content: opts.content ?? "" }, sk);
}
// The Worker itself (edge/worker.ts), through its loopback binding: the real /relay route.
const main = (exports as unknown as { default: Fetcher }).default;
const worker = { fetch: (input: RequestInfo | URL, init?: RequestInit) => main.fetch(new Request(input, init)) };

describe("NIP-09 deletion", () => {
  it("deletes the author's own events by e tag, keeps the deletion, refuses the event again", async () => {
    const c = await RawClient.open(relay());
    const sk = generateSecretKey();
    const ev = sign(sk, 1, { content: "regret" });
    const keep = sign(sk, 1, { content: "keep" });
    expect(await c.publish(ev)).toEqual([true, ""]);
    expect(await c.publish(keep)).toEqual([true, ""]);
    const del = sign(sk, 5, { tags: [["e", ev.id], ["k", "1"]], content: "oops" });
    expect(await c.publish(del)).toEqual([true, ""]);
    expect((await c.req("gone", { ids: [ev.id] })).events).toEqual([]);
    expect((await c.req("kept", { kinds: [1] })).events.map((e) => e.id)).toEqual([keep.id]);
    expect((await c.req("dels", { kinds: [5] })).events.map((e) => e.id)).toEqual([del.id]);
    const [ok, msg] = await c.publish(ev);
    expect(ok).toBe(false);
    expect(msg).toMatch(/^blocked: /);
  });

  it("does not delete other authors' events, nor block them", async () => {
    const c = await RawClient.open(relay());
    const alice = generateSecretKey();
    const mallory = generateSecretKey();
    const ev = sign(alice, 1, { content: "mine" });
    const future = sign(alice, 1, { content: "not yet published" });
    expect(await c.publish(ev)).toEqual([true, ""]);
    expect(await c.publish(sign(mallory, 5, { tags: [["e", ev.id], ["e", future.id], ["a", `30023:${getPublicKey(alice)}:x`]] }))).toEqual([true, ""]);
    expect((await c.req("still", { ids: [ev.id] })).events).toHaveLength(1);
    expect(await c.publish(future)).toEqual([true, ""]);
    expect(await c.publish(sign(alice, 30023, { tags: [["d", "x"]], content: "article" }))).toEqual([true, ""]);
  });

  it("deletes addressable events by a tag up to the deletion's created_at; newer versions are accepted", async () => {
    const c = await RawClient.open(relay());
    const sk = generateSecretKey();
    const pk = getPublicKey(sk);
    const t = now() - 100;
    const v1 = sign(sk, 30023, { created_at: t, tags: [["d", "post"]], content: "v1" });
    const other = sign(sk, 30023, { created_at: t, tags: [["d", "other"]], content: "other" });
    expect(await c.publish(v1)).toEqual([true, ""]);
    expect(await c.publish(other)).toEqual([true, ""]);
    expect(await c.publish(sign(sk, 5, { created_at: t + 10, tags: [["a", `30023:${pk}:post`]] }))).toEqual([true, ""]);
    expect((await c.req("a", { kinds: [30023] })).events.map((e) => e.content)).toEqual(["other"]);
    const [ok, msg] = await c.publish(sign(sk, 30023, { created_at: t + 5, tags: [["d", "post"]], content: "older than deletion" }));
    expect(ok).toBe(false);
    expect(msg).toMatch(/^blocked: /);
    expect(await c.publish(sign(sk, 30023, { created_at: t + 20, tags: [["d", "post"]], content: "v2" }))).toEqual([true, ""]);
    expect((await c.req("b", { kinds: [30023] })).events.map((e) => e.content).sort()).toEqual(["other", "v2"]);
  });

  it("a deletion of a deletion has no effect", async () => {
    const c = await RawClient.open(relay());
    const sk = generateSecretKey();
    const ev = sign(sk, 1);
    expect(await c.publish(ev)).toEqual([true, ""]);
    const del = sign(sk, 5, { tags: [["e", ev.id]] });
    expect(await c.publish(del)).toEqual([true, ""]);
    expect(await c.publish(sign(sk, 5, { tags: [["e", del.id]] }))).toEqual([true, ""]);
    expect((await c.req("d", { ids: [del.id] })).events).toHaveLength(1);
    expect((await c.publish(ev))[0]).toBe(false);
  });
});

describe("NIP-11 and the /relay route", () => {
  it("serves the information document with CORS and the limits actually enforced", async () => {
    const res = await worker.fetch("http://relay.test/relay", { headers: { Accept: "application/nostr+json" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toBe("application/nostr+json");
    expect(res.headers.get("Access-Control-Allow-Origin")).toBe("*");
    expect(res.headers.get("Access-Control-Allow-Headers")).toBeTruthy();
    expect(res.headers.get("Access-Control-Allow-Methods")).toMatch(/GET/);
    const doc = (await res.json()) as { supported_nips: number[]; software: string; limitation: Record<string, unknown> };
    expect(doc.supported_nips).toEqual(expect.arrayContaining([1, 9, 11, 40, 42, 45, 90]));
    expect(doc.software).toBeTruthy();
    const lim = doc.limitation;
    // The advertised limits are the ones enforced on this same object.
    const c = await RawClient.open(worker);
    const many = Array.from({ length: (lim.max_filters as number) + 1 }, () => ({}));
    expect((await c.req("f", ...many)).closed).toMatch(/^invalid: more than/);
    expect((await c.req("x".repeat((lim.max_subid_length as number) + 1), {})).closed).toMatch(/^invalid:/);
    c.send("y".repeat((lim.max_message_length as number) + 1));
    expect((await c.next((m) => m[0] === "NOTICE"))[1]).toMatch(/^invalid: message is larger/);
    expect(lim.auth_required).toBe(false);
    expect(typeof lim.created_at_upper_limit).toBe("number");
  });

  it("answers CORS preflight and plain GETs; upgrades on the same URL", async () => {
    const pre = await worker.fetch("http://relay.test/relay", { method: "OPTIONS", headers: { Origin: "https://app.example", "Access-Control-Request-Method": "GET" } });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("Access-Control-Allow-Origin")).toBe("*");
    const plain = await worker.fetch("http://relay.test/relay");
    expect(plain.status).toBe(200);
    expect(await plain.text()).toMatch(/Nostr/);
    const client = await nostrClient(worker);
    const ev = sign(generateSecretKey(), 1, { content: "through the worker" });
    await expect(client.publish(ev)).resolves.toBe("");
    client.close();
  });

  it("reflects configuration changes in the document", async () => {
    const stub = relay();
    await stub.configure({ authRead: true, maxSubscriptions: 7 });
    const res = await stub.fetch("http://relay.test/relay", { headers: { Accept: "application/nostr+json" } });
    const doc = (await res.json()) as { limitation: Record<string, unknown> };
    expect(doc.limitation.auth_required).toBe(true);
    expect(doc.limitation.max_subscriptions).toBe(7);
  });
});

describe("NIP-40 expiration", () => {
  it("refuses expired events and stops serving events once they expire", async () => {
    const stub = relay();
    const c = await RawClient.open(stub);
    const sk = generateSecretKey();
    const [ok, msg] = await c.publish(sign(sk, 1, { tags: [["expiration", String(now() - 1)]] }));
    expect(ok).toBe(false);
    expect(msg).toMatch(/^invalid: .*expired/);
    const soon = sign(sk, 1, { tags: [["expiration", String(now() + 3)]], content: "soon gone" });
    const lasting = sign(sk, 1, { tags: [["expiration", String(now() + 3600)]], content: "lasting" });
    expect(await c.publish(soon)).toEqual([true, ""]);
    expect(await c.publish(lasting)).toEqual([true, ""]);
    expect((await c.req("a", { kinds: [1] })).events).toHaveLength(2);
    await new Promise((r) => setTimeout(r, 3200));
    expect((await c.req("b", { kinds: [1] })).events.map((e) => e.id)).toEqual([lasting.id]);
    c.send(["COUNT", "c", { kinds: [1] }]);
    expect((await c.next((m) => m[0] === "COUNT"))[2]).toEqual({ count: 1 });
    // The alarm removes expired rows from storage.
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const rows = await runInDurableObject(stub, (_i, state) => state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM events WHERE id = ?", soon.id).one().n);
    expect(rows).toBe(0);
  });
});

describe("NIP-42 AUTH", () => {
  it("sends a challenge per connection and accepts a valid AUTH", async () => {
    const stub = relay();
    const a = await RawClient.open(stub);
    const b = await RawClient.open(stub);
    expect(a.challenge).toBeTruthy();
    expect(a.challenge).not.toBe(b.challenge);
    const sk = generateSecretKey();
    const good = finalizeEvent(makeAuthEvent(RELAY_URL, a.challenge!), sk);
    a.send(["AUTH", good]);
    expect((await a.next((m) => m[0] === "OK" && m[1] === good.id)).slice(2)).toEqual([true, ""]);
    // The same event does not authenticate another connection (different challenge).
    b.send(["AUTH", good]);
    const r = await b.next((m) => m[0] === "OK" && m[1] === good.id);
    expect(r[2]).toBe(false);
    expect(r[3]).toMatch(/^invalid: .*challenge/);
  });

  it("refuses AUTH with the wrong kind, relay, age or signature", async () => {
    const c = await RawClient.open(relay());
    const sk = generateSecretKey();
    const ch = c.challenge!;
    const cases: Array<[Event, RegExp]> = [
      [finalizeEvent({ ...makeAuthEvent(RELAY_URL, ch), kind: 1 }, sk), /kind 22242/],
      [finalizeEvent(makeAuthEvent("wss://elsewhere.example/relay", ch), sk), /relay tag/],
      [finalizeEvent({ ...makeAuthEvent(RELAY_URL, ch), created_at: now() - 3600 }, sk), /10 minutes/],
      [{ ...finalizeEvent(makeAuthEvent(RELAY_URL, ch), sk), sig: "0".repeat(128) }, /signature/],
    ];
    for (const [ev, re] of cases) {
      c.send(["AUTH", ev]);
      const m = await c.next((m) => m[0] === "OK" && m[1] === ev.id);
      expect(m[2]).toBe(false);
      expect(m[3]).toMatch(/^invalid: /);
      expect(m[3]).toMatch(re);
    }
  });

  it("kind 22242 is never stored or broadcast", async () => {
    const stub = relay();
    const watcher = await RawClient.open(stub);
    await watcher.req("auths", { kinds: [22242] });
    const c = await RawClient.open(stub);
    const ev = finalizeEvent(makeAuthEvent(RELAY_URL, c.challenge!), generateSecretKey());
    const [ok, msg] = await c.publish(ev);
    expect(ok).toBe(false);
    expect(msg).toMatch(/^invalid: /);
    c.send(["AUTH", ev]);
    expect((await c.next((m) => m[0] === "OK" && m[1] === ev.id))[2]).toBe(true);
    expect(await watcher.silent((m) => m[0] === "EVENT")).toBe(true);
    expect((await watcher.req("again", { kinds: [22242] })).events).toEqual([]);
  });

  it("can require AUTH for writes (author must be authenticated) and for reads", async () => {
    const stub = relay();
    await stub.configure({ authWrite: true, authRead: true });
    const c = await RawClient.open(stub);
    const sk = generateSecretKey();
    const ev = sign(sk, 1, { content: "members only" });
    const [ok, msg] = await c.publish(ev);
    expect(ok).toBe(false);
    expect(msg).toMatch(/^auth-required: /);
    expect((await c.req("r", { kinds: [1] })).closed).toMatch(/^auth-required: /);
    c.send(["COUNT", "n", { kinds: [1] }]);
    expect((await c.next((m) => m[0] === "CLOSED" && m[1] === "n"))[2]).toMatch(/^auth-required: /);
    const auth = finalizeEvent(makeAuthEvent(RELAY_URL, c.challenge!), sk);
    c.send(["AUTH", auth]);
    expect((await c.next((m) => m[0] === "OK" && m[1] === auth.id))[2]).toBe(true);
    expect(await c.publish(ev)).toEqual([true, ""]);
    const [ok2, msg2] = await c.publish(sign(generateSecretKey(), 1, { content: "someone else" }));
    expect(ok2).toBe(false);
    expect(msg2).toMatch(/^restricted: /);
    expect((await c.req("r2", { kinds: [1] })).events.map((e) => e.id)).toEqual([ev.id]);
  });

  it("works with nostr-tools' auth flow", async () => {
    const stub = relay();
    await stub.configure({ authWrite: true });
    const client = await nostrClient(stub);
    const sk = generateSecretKey();
    await new Promise((r) => setTimeout(r, 20));
    await expect(client.auth(async (t) => finalizeEvent(t, sk))).resolves.toBe("");
    await expect(client.publish(sign(sk, 1, { content: "authed" }))).resolves.toBe("");
    client.close();
  });
});

describe("NIP-45 COUNT", () => {
  it("counts distinct matching events across filters", async () => {
    const stub = relay();
    const c = await RawClient.open(stub);
    const sk = generateSecretKey();
    const pk = getPublicKey(sk);
    for (let i = 0; i < 5; i++) expect((await c.publish(sign(sk, 1, { content: `n${i}`, tags: i < 2 ? [["t", "x"]] : [] })))[0]).toBe(true);
    expect((await c.publish(sign(sk, 7)))[0]).toBe(true);
    c.send(["COUNT", "a", { kinds: [1] }]);
    expect(await c.next((m) => m[0] === "COUNT" && m[1] === "a")).toEqual(["COUNT", "a", { count: 5 }]);
    c.send(["COUNT", "b", { "#t": ["x"] }, { kinds: [7] }, { authors: [pk], kinds: [1], limit: 1 }]);
    expect((await c.next((m) => m[0] === "COUNT" && m[1] === "b"))[2]).toEqual({ count: 6 });
    const client = await nostrClient(stub);
    await expect(client.count([{ kinds: [7] }], {})).resolves.toBe(1);
    client.close();
  });
});
