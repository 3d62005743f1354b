// NIP-86 relay management over HTTP with NIP-98 auth: the admin key is ADMIN_PUBKEYS (set for the
// tests in vitest.config.ts to the pubkey of ADMIN_SK below). Good, bad and missing auth; bans,
// allow lists, event bans, IP blocks, name and limits, each seen by real clients.
import { describe, expect, it } from "vitest";
import { env, exports } from "cloudflare:workers";
import { evictDurableObject } from "cloudflare:test";
import { finalizeEvent, generateSecretKey, getPublicKey, type Event } from "nostr-tools/pure";
import { keySigner } from "../services/nip98.ts";
import { RELAY_URL, RawClient, type FetchTarget } from "./testing.ts";

const ADMIN_SK = "7e57ad31".repeat(8);
const admin = keySigner(ADMIN_SK);
const HTTP_URL = RELAY_URL.replace(/^ws/, "http");
const now = () => Math.floor(Date.now() / 1000);
const relay = () => env.RELAY.getByName(`nip86-${crypto.randomUUID()}`);
const note = (sk: Uint8Array, content: string): Event => finalizeEvent({ kind: 1, created_at: now(), tags: [], content }, sk);
const main = (exports as unknown as { default: Fetcher }).default;
const worker: FetchTarget = { fetch: (input, init) => main.fetch(new Request(input, init)) };

interface Rpc {
  status: number;
  body: { result?: unknown; error?: string };
}

/** A NIP-86 call: `sign` makes the Authorization header (admin by default; null sends none). */
async function call(target: FetchTarget, method: string, params: unknown[] = [], sign: ((body: Uint8Array) => string) | null = (b) => admin.authorize(HTTP_URL, "POST", b)): Promise<Rpc> {
  const body = new TextEncoder().encode(JSON.stringify({ method, params }));
  const headers: Record<string, string> = { "Content-Type": "application/nostr+json+rpc" };
  if (sign) headers.Authorization = sign(body);
  const res = await target.fetch(HTTP_URL, { method: "POST", headers, body });
  return { status: res.status, body: (await res.json()) as Rpc["body"] };
}

describe("NIP-86 authorisation", () => {
  it("answers an admin, and refuses missing, malformed, foreign, stale, replayed and mismatched auth", async () => {
    const stub = relay();
    const ok = await call(stub, "supportedmethods");
    expect(ok.status).toBe(200);
    expect(ok.body.result).toEqual(expect.arrayContaining(["banpubkey", "listbannedevents", "banevent", "changerelayname", "changerelaylimits"]));

    expect(await call(stub, "banpubkey", ["a".repeat(64)], null)).toEqual({ status: 401, body: { error: expect.stringMatching(/^auth-required:/) } });
    expect((await call(stub, "banpubkey", ["a".repeat(64)], () => "Nostr !!!")).status).toBe(401);
    expect((await call(stub, "banpubkey", ["a".repeat(64)], () => "Bearer oanix_abc")).status).toBe(401);
    const stranger = keySigner(generateSecretKey());
    const notAdmin = await call(stub, "banpubkey", ["a".repeat(64)], (b) => stranger.authorize(HTTP_URL, "POST", b));
    expect(notAdmin).toEqual({ status: 403, body: { error: expect.stringMatching(/^restricted: .*not an admin/) } });
    // Signed for another URL, another method, another body.
    expect((await call(stub, "banpubkey", ["a".repeat(64)], (b) => admin.authorize("http://other.test/relay", "POST", b))).body.error).toMatch(/u tag/);
    expect((await call(stub, "banpubkey", ["a".repeat(64)], (b) => admin.authorize(HTTP_URL, "GET", b))).body.error).toMatch(/method tag/);
    expect((await call(stub, "banpubkey", ["a".repeat(64)], () => admin.authorize(HTTP_URL, "POST", new TextEncoder().encode("{}")))).body.error).toMatch(/payload/);
    // A tampered event (valid shape, wrong signature) and a replayed one.
    const tampered = (b: Uint8Array) => {
      const ev = JSON.parse(atob(admin.authorize(HTTP_URL, "POST", b).slice(6))) as Event;
      return "Nostr " + btoa(JSON.stringify({ ...ev, sig: "00".repeat(64) }));
    };
    expect((await call(stub, "banpubkey", ["a".repeat(64)], tampered)).body.error).toMatch(/bad signature/);
    const body = new TextEncoder().encode(JSON.stringify({ method: "listbannedpubkeys", params: [] }));
    const auth = admin.authorize(HTTP_URL, "POST", body);
    const send = () => stub.fetch(HTTP_URL, { method: "POST", headers: { "Content-Type": "application/nostr+json+rpc", Authorization: auth }, body });
    expect((await send()).status).toBe(200);
    const replay = await send();
    expect(replay.status).toBe(401);
    expect(((await replay.json()) as Rpc["body"]).error).toMatch(/already used/);
    // Nothing was banned by the refused calls.
    expect((await call(stub, "listbannedpubkeys")).body.result).toEqual([]);
    // Wrong content type, bad JSON-RPC shapes, unknown methods, bad parameters.
    const plain = await stub.fetch(HTTP_URL, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
    expect(plain.status).toBe(415);
    expect(await call(stub, "nosuchmethod")).toEqual({ status: 400, body: { error: expect.stringMatching(/unsupported method/) } });
    expect((await call(stub, "banpubkey", ["npub1notahexkey"])).body.error).toMatch(/^invalid: .*hex pubkey/);
    expect((await call(stub, "changerelaylimits", [{ maxFilters: "ten" }])).body.error).toMatch(/maxFilters must be a non-negative number/);
    expect((await call(stub, "changerelaylimits", [{ maxFilterz: 3 }])).body.error).toMatch(/unknown limit "maxFilterz"/);
  });

  it("is served on the Worker's /relay route, and the NIP-11 document lists NIP-86", async () => {
    expect((await call(worker, "supportedmethods")).status).toBe(200);
    expect((await call(worker, "supportedmethods", [], null)).status).toBe(401);
    const doc = (await (await worker.fetch(HTTP_URL, { headers: { Accept: "application/nostr+json" } })).json()) as { supported_nips: number[] };
    expect(doc.supported_nips).toContain(86);
  });
});

describe("NIP-86 methods", () => {
  it("bans and unbans pubkeys, with reasons, across eviction", async () => {
    const stub = relay();
    const c = await RawClient.open(stub);
    const spammer = generateSecretKey();
    const pk = getPublicKey(spammer);
    expect(await c.publish(note(spammer, "before the ban"))).toEqual([true, ""]);
    expect((await call(stub, "banpubkey", [pk, "spam"])).body).toEqual({ result: true });
    const [ok, msg] = await c.publish(note(spammer, "after the ban"));
    expect(ok).toBe(false);
    expect(msg).toMatch(/^blocked: this pubkey is banned/);
    await evictDurableObject(stub);
    expect((await call(stub, "listbannedpubkeys")).body.result).toEqual([{ pubkey: pk, reason: "spam" }]);
    const d = await RawClient.open(stub);
    expect((await d.publish(note(spammer, "still banned")))[0]).toBe(false);
    expect(await d.publish(note(generateSecretKey(), "others are fine"))).toEqual([true, ""]);
    expect((await call(stub, "unbanpubkey", [pk])).body).toEqual({ result: true });
    expect(await d.publish(note(spammer, "forgiven"))).toEqual([true, ""]);
    expect((await call(stub, "listbannedpubkeys")).body.result).toEqual([]);
  });

  it("with an allow list, accepts only the allowed pubkeys", async () => {
    const stub = relay();
    const c = await RawClient.open(stub);
    const member = generateSecretKey();
    expect((await call(stub, "allowpubkey", [getPublicKey(member), "member"])).body).toEqual({ result: true });
    expect(await c.publish(note(member, "member"))).toEqual([true, ""]);
    const [ok, msg] = await c.publish(note(generateSecretKey(), "outsider"));
    expect(ok).toBe(false);
    expect(msg).toMatch(/^blocked: .*allowed/);
    expect((await call(stub, "listallowedpubkeys")).body.result).toEqual([{ pubkey: getPublicKey(member), reason: "member" }]);
    expect((await call(stub, "unallowpubkey", [getPublicKey(member)])).body).toEqual({ result: true });
    expect(await c.publish(note(generateSecretKey(), "open again"))).toEqual([true, ""]);
  });

  it("bans an event: removed, refused again, listed; allowevent lifts the ban", async () => {
    const stub = relay();
    const c = await RawClient.open(stub);
    const sk = generateSecretKey();
    const bad = note(sk, "illegal content");
    const good = note(sk, "fine content");
    for (const e of [bad, good]) expect(await c.publish(e)).toEqual([true, ""]);
    expect((await call(stub, "banevent", [bad.id, "illegal"])).body).toEqual({ result: true });
    expect((await c.req("all", { authors: [getPublicKey(sk)] })).events.map((e) => e.id)).toEqual([good.id]);
    expect((await c.req("s", { search: "illegal" })).events).toEqual([]);
    const [ok, msg] = await c.publish(bad);
    expect(ok).toBe(false);
    expect(msg).toMatch(/^blocked: this event is banned/);
    expect((await call(stub, "listbannedevents")).body.result).toEqual([{ id: bad.id, reason: "illegal" }]);
    expect((await call(stub, "allowevent", [bad.id])).body).toEqual({ result: true });
    expect(await c.publish(bad)).toEqual([true, ""]);
  });

  it("blocks client addresses at upgrade", async () => {
    const stub = relay();
    expect((await call(stub, "blockip", ["198.51.100.66", "abuse"])).body).toEqual({ result: true });
    const res = await stub.fetch(HTTP_URL, { headers: { Upgrade: "websocket", "CF-Connecting-IP": "198.51.100.66" } });
    expect(res.status).toBe(403);
    expect((await call(stub, "listblockedips")).body.result).toEqual([{ ip: "198.51.100.66", reason: "abuse" }]);
    expect((await call(stub, "unblockip", ["198.51.100.66"])).body).toEqual({ result: true });
    await RawClient.open(stub, RELAY_URL, { "CF-Connecting-IP": "198.51.100.66" });
  });

  it("changes the name, description and limits, enforced at once and advertised", async () => {
    const stub = relay();
    expect((await call(stub, "changerelayname", ["Agents' relay"])).body).toEqual({ result: true });
    expect((await call(stub, "changerelaydescription", ["for agents"])).body).toEqual({ result: true });
    const limits = await call(stub, "changerelaylimits", [{ maxFilters: 2, powByKind: { "5050": 16 } }]);
    expect(limits.status).toBe(200);
    expect(limits.body.result).toMatchObject({ name: "Agents' relay", limitation: { max_filters: 2, min_pow_difficulty_by_kind: { "5050": 16 } } });
    const doc = (await (await stub.fetch(HTTP_URL, { headers: { Accept: "application/nostr+json" } })).json()) as Record<string, unknown>;
    expect(doc).toMatchObject({ name: "Agents' relay", description: "for agents", limitation: { max_filters: 2 } });
    expect(doc.supported_nips).toContain(13);
    const c = await RawClient.open(stub);
    expect((await c.req("three", { kinds: [1] }, { kinds: [2] }, { kinds: [3] })).closed).toMatch(/^invalid: more than 2 filters/);
    expect((await c.publish(finalizeEvent({ kind: 5050, created_at: now(), tags: [], content: "job" }, generateSecretKey())))[1]).toMatch(/^pow: /);
  });
});
