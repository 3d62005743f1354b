// Every bad input gets a clear OK false / CLOSED / NOTICE, nothing is stored, and the socket keeps working.
import { describe, expect, it } from "vitest";
import { env } from "cloudflare:workers";
import { finalizeEvent, generateSecretKey, getPublicKey, type Event } from "nostr-tools/pure";
import { RawClient } from "./testing.ts";

const now = () => Math.floor(Date.now() / 1000);
const relay = () => env.RELAY.getByName(`bad-${crypto.randomUUID()}`);
const note = (sk: Uint8Array, content = "x", kind = 1) => finalizeEvent({ kind, created_at: now(), tags: [], content }, sk);

/** The socket still publishes and queries after the bad input. */
async function stillWorks(c: RawClient): Promise<void> {
  const ev = note(generateSecretKey(), "still alive");
  expect(await c.publish(ev)).toEqual([true, ""]);
  expect((await c.req(`alive-${crypto.randomUUID().slice(0, 8)}`, { ids: [ev.id] })).events.map((e) => e.id)).toEqual([ev.id]);
  expect(c.closed).toBe(false);
}

async function storedCount(c: RawClient): Promise<number> {
  return (await c.req(`count-${crypto.randomUUID().slice(0, 8)}`, { since: 0 })).events.length;
}

describe("malformed messages", () => {
  it("answers malformed JSON, wrong shapes and unknown verbs with NOTICE and lives on", async () => {
    const c = await RawClient.open(relay());
    const cases: Array<[string, RegExp]> = [
      ["not json", /^invalid: .*JSON/],
      ['["EVENT", {"id": ', /^invalid: .*JSON/],
      ["{}", /^invalid: .*array/],
      ["[]", /^invalid: .*array/],
      ["[1, 2]", /^invalid: .*array/],
      ['"REQ"', /^invalid: .*array/],
      ['["HELLO", "x"]', /^invalid: unknown message type/],
      ['["req", "x", {}]', /^invalid: unknown message type/],
      ['["EVENT"]', /^invalid: /],
      ['["EVENT", 42]', /^invalid: event must be a JSON object/],
      ['["EVENT", {"kind": 1}]', /^invalid: id must be/],
      ['["REQ", 5, {}]', /^invalid: REQ needs a subscription id/],
      ['["CLOSE"]', /^invalid: CLOSE/],
      ['["COUNT", null, {}]', /^invalid: COUNT needs a subscription id/],
      ['["AUTH", "challenge?"]', /^invalid: /],
    ];
    for (const [text, re] of cases) {
      c.send(text);
      const m = await c.next((m) => m[0] === "NOTICE");
      expect(m[1], text).toMatch(re);
    }
    c.ws.send(new Uint8Array([1, 2, 3]));
    expect((await c.next((m) => m[0] === "NOTICE"))[1]).toMatch(/^invalid: binary/);
    expect(await storedCount(c)).toBe(0);
    await stillWorks(c);
  });

  it("refuses events of the wrong shape with OK false invalid:, storing nothing", async () => {
    const c = await RawClient.open(relay());
    const sk = generateSecretKey();
    const good = note(sk, "template");
    const mutants: Array<[Record<string, unknown>, RegExp]> = [
      [{ ...good, kind: "1" }, /kind/],
      [{ ...good, kind: 1.5 }, /kind/],
      [{ ...good, kind: 70000 }, /kind/],
      [{ ...good, created_at: "now" }, /created_at/],
      [{ ...good, created_at: -5 }, /created_at/],
      [{ ...good, tags: "t" }, /tags/],
      [{ ...good, tags: [["t", 1]] }, /tag/],
      [{ ...good, tags: ["t"] }, /tag/],
      [{ ...good, content: 7 }, /content/],
      [{ ...good, pubkey: good.pubkey.toUpperCase() }, /pubkey/],
      [{ ...good, pubkey: "ab" }, /pubkey/],
      [{ ...good, sig: "00" }, /sig/],
      [{ ...good, sig: undefined }, /sig/],
    ];
    for (const [ev, re] of mutants) {
      const [ok, msg] = await c.publish(ev as { id: string });
      expect(ok).toBe(false);
      expect(msg).toMatch(/^invalid: /);
      expect(msg).toMatch(re);
    }
    // An id that is not 64 hex cannot be answered with OK: NOTICE.
    c.send(["EVENT", { ...good, id: "xyz" }]);
    expect((await c.next((m) => m[0] === "NOTICE"))[1]).toMatch(/^invalid: id/);
    expect(await storedCount(c)).toBe(0);
    await stillWorks(c);
  });

  it("refuses a bad id or a bad signature before anything else", async () => {
    const stub = relay();
    const c = await RawClient.open(stub);
    const watcher = await RawClient.open(stub);
    await watcher.req("all", { since: 0 });
    const sk = generateSecretKey();
    const ev = note(sk, "original");
    const tampered = { ...ev, content: "tampered" };
    const [ok1, msg1] = await c.publish(tampered);
    expect(ok1).toBe(false);
    expect(msg1).toMatch(/^invalid: event id/);
    const other = note(generateSecretKey(), "other");
    const badSig = { ...ev, sig: other.sig };
    const [ok2, msg2] = await c.publish(badSig);
    expect(ok2).toBe(false);
    expect(msg2).toMatch(/^invalid: bad signature/);
    // A pubkey that is not on the curve.
    const offCurve = { ...ev, pubkey: "f".repeat(64) };
    expect((await c.publish(offCurve))[0]).toBe(false);
    // Nothing stored, nothing broadcast.
    expect(await storedCount(c)).toBe(0);
    expect(await watcher.silent((m) => m[0] === "EVENT")).toBe(true);
    expect(await c.publish(ev)).toEqual([true, ""]);
    await stillWorks(c);
  });

  it("refuses oversized messages, content and tag lists", async () => {
    const stub = relay();
    await stub.configure({ maxMessageLength: 64 * 1024, maxContentLength: 1000, maxEventTags: 5 });
    const c = await RawClient.open(stub);
    const sk = generateSecretKey();
    // An oversized EVENT still gets its OK (even with a decoy "id" inside its content).
    const huge = note(sk, 'decoy "id":"' + "b".repeat(64) + '" ' + "x".repeat(70 * 1024));
    const [okHuge, msgHuge] = await c.publish(huge);
    expect(okHuge).toBe(false);
    expect(msgHuge).toMatch(/^invalid: message is larger than 65536 bytes/);
    // Multi-byte characters count as bytes, not characters.
    const wide = note(sk, "🦩".repeat(20 * 1024));
    expect((await c.publish(wide))[1]).toMatch(/^invalid: message is larger/);
    // Anything else oversized gets a NOTICE.
    c.send(["REQ", "big", { "#t": ["y".repeat(70 * 1024)] }]);
    expect((await c.next((m) => m[0] === "NOTICE"))[1]).toMatch(/^invalid: message is larger/);
    const [ok1, msg1] = await c.publish(note(sk, "y".repeat(1001)));
    expect(ok1).toBe(false);
    expect(msg1).toMatch(/^invalid: content is longer than 1000/);
    const manyTags = finalizeEvent({ kind: 1, created_at: now(), tags: Array.from({ length: 6 }, (_, i) => ["t", String(i)]), content: "" }, sk);
    const [ok2, msg2] = await c.publish(manyTags);
    expect(ok2).toBe(false);
    expect(msg2).toMatch(/^invalid: more than 5 tags/);
    expect(await storedCount(c)).toBe(0);
    await stillWorks(c);
  });
});

describe("bad subscriptions", () => {
  it("closes REQs with bad ids, too many or bad filters, with CLOSED invalid:", async () => {
    const c = await RawClient.open(relay());
    const pk = getPublicKey(generateSecretKey());
    const bad: Array<[unknown[], RegExp]> = [
      [["REQ", "x".repeat(65), {}], /subscription id must be 1 to 64/],
      [["REQ", "", {}], /subscription id/],
      [["REQ", "nofilter"], /at least one filter/],
      [["REQ", "many", ...Array.from({ length: 11 }, () => ({}))], /more than 10 filters/],
      [["REQ", "big", { authors: Array.from({ length: 1001 }, () => pk) }], /more than 1000/],
      [["REQ", "kinds", { kinds: ["1"] }], /kinds/],
      [["REQ", "neg", { limit: -1 }], /limit/],
      [["REQ", "float", { since: 1.5 }], /since/],
      [["REQ", "unknown", { kinds: [1], lang: "en" }], /unsupported filter field "lang"/],
      [["REQ", "longtag", { "#tag": ["x"] }], /single letter/],
      [["REQ", "tagval", { "#t": [1] }], /#t must hold strings/],
      [["REQ", "notobj", [1]], /filter must be a JSON object/],
      [["REQ", "prefix", { authors: [pk.slice(0, 8)] }], /64-character lowercase hex/],
      [["COUNT", "cnt", { ids: "x" }], /ids must be an array/],
    ];
    for (const [msg, re] of bad) {
      c.send(msg);
      const m = await c.next((m) => m[0] === "CLOSED" && m[1] === msg[1]);
      expect(m[2], JSON.stringify(msg).slice(0, 80)).toMatch(/^invalid: /);
      expect(m[2]).toMatch(re);
    }
    // 64 characters is fine.
    expect((await c.req("y".repeat(64), { kinds: [1] })).closed).toBeUndefined();
    await stillWorks(c);
  });

  it("refusing a REQ that reuses an id also ends the old subscription", async () => {
    const stub = relay();
    const c = await RawClient.open(stub);
    await c.req("s", { kinds: [1] });
    expect((await c.req("s", { kinds: ["bad"] })).closed).toMatch(/^invalid:/);
    const pub = await RawClient.open(stub);
    expect(await pub.publish(note(generateSecretKey()))).toEqual([true, ""]);
    expect(await c.silent((m) => m[0] === "EVENT")).toBe(true);
  });

  it("limits open subscriptions per connection", async () => {
    const stub = relay();
    await stub.configure({ maxSubscriptions: 3 });
    const c = await RawClient.open(stub);
    for (const s of ["a", "b", "c"]) expect((await c.req(s, { kinds: [1] })).closed).toBeUndefined();
    expect((await c.req("d", { kinds: [1] })).closed).toMatch(/^rate-limited: more than 3 open subscriptions/);
    // Replacing an open one is fine, and closing one makes room.
    expect((await c.req("a", { kinds: [2] })).closed).toBeUndefined();
    c.send(["CLOSE", "b"]);
    expect((await c.req("d", { kinds: [1] })).closed).toBeUndefined();
    c.send(["CLOSE", "a"]);
    await stillWorks(c);
  });
});

describe("rate limits", () => {
  it("limits messages per connection, answering each verb in kind, then recovers", async () => {
    const stub = relay();
    await stub.configure({ messagesPerSecond: 1, messageBurst: 4 });
    const c = await RawClient.open(stub);
    const sk = generateSecretKey();
    const evs = Array.from({ length: 4 }, (_, i) => note(sk, `burst ${i}`));
    for (const e of evs) c.send(["EVENT", e]);
    for (const e of evs) expect((await c.next((m) => m[0] === "OK" && m[1] === e.id))[2]).toBe(true);
    const over = note(sk, "over");
    c.send(["EVENT", over]);
    const ok = await c.next((m) => m[0] === "OK" && m[1] === over.id);
    expect(ok[2]).toBe(false);
    expect(ok[3]).toMatch(/^rate-limited:/);
    c.send(["REQ", "r", {}]);
    expect((await c.next((m) => m[0] === "CLOSED" && m[1] === "r"))[2]).toMatch(/^rate-limited:/);
    c.send(["CLOSE", "r"]);
    expect((await c.next((m) => m[0] === "NOTICE"))[1]).toMatch(/^rate-limited:/);
    await new Promise((r) => setTimeout(r, 1200));
    const other = await RawClient.open(stub);
    expect((await other.req("x", { ids: [over.id] })).events).toEqual([]);
    expect(await c.publish(over)).toEqual([true, ""]);
  });

  it("limits events per author, whatever the connection", async () => {
    const stub = relay();
    await stub.configure({ eventsPerSecondPerPubkey: 0.001, eventBurstPerPubkey: 3 });
    const a = await RawClient.open(stub);
    const b = await RawClient.open(stub);
    const sk = generateSecretKey();
    for (let i = 0; i < 3; i++) expect(await (i % 2 ? b : a).publish(note(sk, `n${i}`))).toEqual([true, ""]);
    const [ok, msg] = await b.publish(note(sk, "one too many"));
    expect(ok).toBe(false);
    expect(msg).toMatch(/^rate-limited: .*author/);
    // Another author on the same socket is unaffected.
    await stillWorks(b);
    expect((await a.req("mine", { authors: [getPublicKey(sk)] })).events).toHaveLength(3);
  });
});

export type { Event };
