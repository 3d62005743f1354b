// NIP-77 in workerd: a client (negentropy.ts through nip77.ts's negentropySync) syncs with the relay
// over a real WebSocket and finds exactly what each side lacks; bad NEG messages get NEG-ERR and the
// socket keeps working; the limits are advertised in NIP-11 and enforced.
import { describe, expect, it } from "vitest";
import { env } from "cloudflare:workers";
import { evictDurableObject } from "cloudflare:test";
import { finalizeEvent, generateSecretKey, getPublicKey, type Event } from "nostr-tools/pure";
import { NegentropyStorage, toHex } from "./negentropy.ts";
import { negentropySync, type NegTransport } from "./nip77.ts";
import { nip77 } from "nostr-tools";
import { RawClient, nostrClient } from "./testing.ts";

const now = () => Math.floor(Date.now() / 1000);
const relay = () => env.RELAY.getByName(`nip77-${crypto.randomUUID()}`);
function sign(sk: Uint8Array, kind: number, created_at: number, content = ""): Event {
  return finalizeEvent({ kind, created_at, tags: [], content }, sk);
}
function transport(c: RawClient): NegTransport {
  return { send: (m) => c.send(m), next: (sub) => c.next((m) => (m[0] === "NEG-MSG" || m[0] === "NEG-ERR") && m[1] === sub) };
}
function storageOf(records: Array<{ created_at: number; id: string }>): NegentropyStorage {
  const s = new NegentropyStorage();
  for (const r of records) s.insert(r.created_at, r.id);
  return s.seal();
}
const randomId = () => toHex(crypto.getRandomValues(new Uint8Array(32)));

/** Publishes `n` kind-1 events from `keys` authors, a few seconds apart (several share a second). */
async function seed(c: RawClient, n: number, keys = 4, kind = 1): Promise<Event[]> {
  const sks = Array.from({ length: keys }, () => generateSecretKey());
  const base = now() - n;
  const events: Event[] = [];
  for (let i = 0; i < n; i++) {
    const e = sign(sks[i % keys]!, kind, base + Math.floor(i / 3), `note ${i}`);
    expect(await c.publish(e)).toEqual([true, ""]);
    events.push(e);
  }
  return events;
}

describe("NIP-77 sync over a WebSocket", () => {
  it("finds exactly the ids each side lacks, in default frames and in 4 KB frames", async () => {
    const stub = relay();
    await stub.configure({ eventsPerSecondPerPubkey: 0, messagesPerSecond: 0 });
    const c = await RawClient.open(stub);
    const events = await seed(c, 400);
    // The client holds 320 of the relay's events and 50 the relay has never seen.
    const shared = events.filter((_, i) => i % 5 !== 0);
    const mine = Array.from({ length: 50 }, (_, i) => ({ created_at: now() - 1000 + i * 7, id: randomId() }));
    const local = [...shared, ...mine];
    const expectNeed = events.filter((_, i) => i % 5 === 0).map((e) => e.id).sort();
    const expectHave = mine.map((r) => r.id).sort();

    const r = await negentropySync(transport(c), "s1", { kinds: [1] }, storageOf(local));
    expect(r.need.sort()).toEqual(expectNeed);
    expect(r.have.sort()).toEqual(expectHave);

    await stub.configure({ negentropyFrameSize: 4096 });
    const small = await negentropySync(transport(c), "s2", { kinds: [1] }, storageOf(local), 4096);
    expect(small.need.sort()).toEqual(expectNeed);
    expect(small.have.sort()).toEqual(expectHave);
    expect(small.rounds).toBeGreaterThan(r.rounds);

    // The filter scopes the relay's set: one author's notes, of which the client has none.
    const author = events[1]!.pubkey;
    const one = await negentropySync(transport(c), "s3", { authors: [author] }, storageOf([]));
    expect(one.need.sort()).toEqual(events.filter((e) => e.pubkey === author).map((e) => e.id).sort());
    expect(one.have).toEqual([]);
    // In sync: one round, nothing to move.
    const same = await negentropySync(transport(c), "s4", { kinds: [1] }, storageOf(events));
    expect(same).toMatchObject({ have: [], need: [], rounds: 1 });
    // The socket still serves NIP-01.
    expect((await c.req("after", { ids: [events[0]!.id] })).events).toHaveLength(1);
  });

  it("nostr-tools' NegentropySync (an independent client) gets exactly the ids each side lacks", async () => {
    const stub = relay();
    await stub.configure({ eventsPerSecondPerPubkey: 0, messagesPerSecond: 0 });
    const c = await RawClient.open(stub);
    const events = await seed(c, 150, 3);
    const mine = Array.from({ length: 20 }, (_, i) => ({ created_at: now() - 500 + i, id: randomId() }));
    const local = [...events.filter((_, i) => i % 4 !== 0), ...mine];
    const storage = new nip77.NegentropyStorageVector();
    for (const r of local) storage.insert(r.created_at, r.id);
    storage.seal();
    const tools = await nostrClient(stub);
    const have: string[] = [];
    const need: string[] = [];
    const closed = new Promise<string | undefined>((resolve) => {
      const sync = new nip77.NegentropySync(tools, storage, { kinds: [1] }, { onhave: (id) => have.push(id), onneed: (id) => need.push(id), onclose: resolve });
      void sync.start();
    });
    expect(await closed).toBeUndefined(); // no reconcile error (a NEG-ERR would leave the lists below empty)
    expect(need.sort()).toEqual(events.filter((_, i) => i % 4 === 0).map((e) => e.id).sort());
    expect(have.sort()).toEqual(mine.map((r) => r.id).sort());
    tools.close();
  });

  it("excludes expired and deleted events from the relay's set", async () => {
    const stub = relay();
    const c = await RawClient.open(stub);
    const sk = generateSecretKey();
    const keep = sign(sk, 1, now() - 10, "keep");
    const gone = sign(sk, 1, now() - 9, "gone");
    expect(await c.publish(keep)).toEqual([true, ""]);
    expect(await c.publish(gone)).toEqual([true, ""]);
    const del = finalizeEvent({ kind: 5, created_at: now(), tags: [["e", gone.id]], content: "" }, sk);
    expect(await c.publish(del)).toEqual([true, ""]);
    const r = await negentropySync(transport(c), "d", { kinds: [1] }, storageOf([]));
    expect(r.need).toEqual([keep.id]);
  });
});

describe("NIP-77 bad input: NEG-ERR, and the socket keeps working", () => {
  it("answers every malformed NEG message and keeps serving", async () => {
    const c = await RawClient.open(relay());
    const sk = generateSecretKey();
    const err = async (msg: unknown[], sub: string) => {
      c.send(msg);
      const m = await c.next((m) => m[0] === "NEG-ERR" && m[1] === sub);
      return m[2] as string;
    };
    expect(await err(["NEG-MSG", "nope", "6100000200"], "nope")).toMatch(/^closed: /);
    expect(await err(["NEG-OPEN", "a", { kinds: [1] }, "zz"], "a")).toMatch(/^invalid: .*hex/);
    expect(await err(["NEG-OPEN", "b", { kinds: [1], foo: 1 }, "6100000200"], "b")).toMatch(/^invalid: unsupported filter field/);
    expect(await err(["NEG-OPEN", "b", { search: "x" }, "6100000200"], "b")).toMatch(/^invalid: NEG-OPEN does not take a NIP-50 search/);
    expect(await err(["NEG-OPEN", "c", {}, "61000003"], "c")).toMatch(/^invalid: unknown range mode/);
    expect(await err(["NEG-OPEN", "d", {}, "610000"], "d")).toMatch(/^invalid: message ends/);
    expect(await err(["NEG-OPEN", "e", {}], "e")).toMatch(/^invalid: NEG-OPEN takes/);
    expect(await err(["NEG-OPEN", "f", {}, "00"], "f")).toMatch(/^invalid: not a negentropy message/);
    // After NEG-ERR the session is gone.
    expect(await err(["NEG-MSG", "c", "6100000200"], "c")).toMatch(/^closed: /);
    c.send(["NEG-OPEN", 7, {}, "61"]);
    expect((await c.next((m) => m[0] === "NOTICE"))[1]).toMatch(/^invalid: NEG-OPEN needs a subscription id/);
    // A newer protocol version is answered with ours, so the client can retry (not an error).
    c.send(["NEG-OPEN", "v", {}, "62aabbccddeeff"]);
    expect(await c.next((m) => m[1] === "v")).toEqual(["NEG-MSG", "v", "61"]);
    // NEG-CLOSE ends a session; later NEG-MSGs for it are refused.
    c.send(["NEG-CLOSE", "v"]);
    expect(await err(["NEG-MSG", "v", "6100000200"], "v")).toMatch(/^closed: /);
    // The socket still works for everything else.
    const ev = sign(sk, 1, now(), "still here");
    expect(await c.publish(ev)).toEqual([true, ""]);
    expect((await c.req("q", { ids: [ev.id] })).events).toHaveLength(1);
    expect((await negentropySync(transport(c), "ok", { ids: [ev.id] }, storageOf([]))).need).toEqual([ev.id]);
  });

  it("a session does not survive eviction: NEG-MSG gets NEG-ERR closed, a new NEG-OPEN works", async () => {
    const stub = relay();
    const c = await RawClient.open(stub);
    c.send(["NEG-OPEN", "s", {}, "6100000200"]);
    expect((await c.next((m) => m[1] === "s"))[0]).toBe("NEG-MSG");
    await evictDurableObject(stub);
    c.send(["NEG-MSG", "s", "6100000200"]);
    const m = await c.next((m) => m[1] === "s");
    expect(m[0]).toBe("NEG-ERR");
    expect(m[2]).toMatch(/^closed: /);
    c.send(["NEG-OPEN", "s", {}, "6100000200"]);
    expect(await c.next((m) => m[1] === "s")).toEqual(["NEG-MSG", "s", "6100000200"]);
  });
});

describe("NIP-77 limits: advertised and enforced", () => {
  it("NIP-11 lists NIP-77 and its limits", async () => {
    const stub = relay();
    await stub.configure({ negentropyMaxRecords: 50, negentropyMaxSessions: 2 });
    const res = await stub.fetch("http://relay.test/relay", { headers: { Accept: "application/nostr+json" } });
    const doc = (await res.json()) as { supported_nips: number[]; limitation: Record<string, unknown> };
    expect(doc.supported_nips).toContain(77);
    expect(doc.limitation).toMatchObject({ max_negentropy_records: 50, max_negentropy_sessions: 2, negentropy_frame_size: 200_000 });
  });

  it("a filter matching more than max records is blocked; one matching exactly max syncs", async () => {
    const stub = relay();
    await stub.configure({ negentropyMaxRecords: 48, eventsPerSecondPerPubkey: 0, messagesPerSecond: 0 });
    const c = await RawClient.open(stub);
    const events = await seed(c, 60, 3);
    c.send(["NEG-OPEN", "big", { kinds: [1] }, "6100000200"]);
    const m = await c.next((m) => m[1] === "big");
    expect(m[0]).toBe("NEG-ERR");
    expect(m[2]).toMatch(/^blocked: .*more than 48 events/);
    // Events 12..59: exactly 48 (three per second, so the cut falls between seconds).
    const since = events[12]!.created_at;
    const expected = events.filter((e) => e.created_at >= since).map((e) => e.id).sort();
    expect(expected).toHaveLength(48);
    const r = await negentropySync(transport(c), "narrow", { kinds: [1], since }, storageOf([]));
    expect(r.need.sort()).toEqual(expected);
  });

  it("open sessions per connection are capped; closing one frees a slot", async () => {
    const stub = relay();
    await stub.configure({ negentropyMaxSessions: 2 });
    const c = await RawClient.open(stub);
    for (const sub of ["a", "b"]) {
      c.send(["NEG-OPEN", sub, {}, "6100000200"]);
      expect((await c.next((m) => m[1] === sub))[0]).toBe("NEG-MSG");
    }
    c.send(["NEG-OPEN", "c", {}, "6100000200"]);
    const m = await c.next((m) => m[1] === "c");
    expect(m[0]).toBe("NEG-ERR");
    expect(m[2]).toMatch(/^blocked: more than 2 open negentropy sessions/);
    // Re-opening an open id replaces it rather than taking a new slot.
    c.send(["NEG-OPEN", "a", {}, "6100000200"]);
    expect((await c.next((m) => m[1] === "a"))[0]).toBe("NEG-MSG");
    c.send(["NEG-CLOSE", "b"]);
    c.send(["NEG-OPEN", "c", {}, "6100000200"]);
    expect((await c.next((m) => m[1] === "c"))[0]).toBe("NEG-MSG");
    // Another connection has its own slots.
    const d = await RawClient.open(stub);
    d.send(["NEG-OPEN", "a", {}, "6100000200"]);
    expect((await d.next((m) => m[1] === "a"))[0]).toBe("NEG-MSG");
  });

  it("idle sessions are closed; authRead applies to NEG-OPEN", async () => {
    const stub = relay();
    await stub.configure({ negentropyIdleSeconds: 0 });
    const c = await RawClient.open(stub);
    c.send(["NEG-OPEN", "i", {}, "6100000200"]);
    await c.next((m) => m[1] === "i");
    await new Promise((r) => setTimeout(r, 20));
    c.send(["NEG-MSG", "i", "6100000200"]);
    expect((await c.next((m) => m[1] === "i"))[2]).toMatch(/^closed: .*idle/);
    await stub.configure({ authRead: true });
    c.send(["NEG-OPEN", "r", {}, "6100000200"]);
    expect((await c.next((m) => m[1] === "r"))[2]).toMatch(/^auth-required: /);
    expect(getPublicKey(generateSecretKey())).toHaveLength(64);
  });
});
