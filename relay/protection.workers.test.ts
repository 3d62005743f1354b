// NIP-70 protected events and NIP-13 proof of work.
import { describe, expect, it } from "vitest";
import { env, exports } from "cloudflare:workers";
import { finalizeEvent, generateSecretKey, getPublicKey, type Event, type EventTemplate } from "nostr-tools/pure";
import { makeAuthEvent } from "nostr-tools/nip42";
import { minePow } from "nostr-tools/nip13";
import { RELAY_URL, RawClient } from "./testing.ts";
import { powDifficulty } from "./nip13.ts";

const now = () => Math.floor(Date.now() / 1000);
const relay = () => env.RELAY.getByName(`protect-${crypto.randomUUID()}`);
function sign(sk: Uint8Array, kind: number, tags: string[][] = [], content = ""): Event {
  return finalizeEvent({ kind, created_at: now(), tags, content }, sk);
}
async function auth(c: RawClient, sk: Uint8Array): Promise<void> {
  const ev = finalizeEvent(makeAuthEvent(RELAY_URL, c.challenge!), sk);
  c.send(["AUTH", ev]);
  expect((await c.next((m) => m[0] === "OK" && m[1] === ev.id))[2]).toBe(true);
}
/** Mines `bits` of work for the template and signs it (nostr-tools' miner, the same a client uses). */
function mined(sk: Uint8Array, t: Omit<EventTemplate, "created_at">, bits: number): Event {
  const unsigned = minePow({ ...t, created_at: now(), pubkey: getPublicKey(sk) }, bits);
  return finalizeEvent({ kind: unsigned.kind, created_at: unsigned.created_at, tags: unsigned.tags, content: unsigned.content }, sk);
}

describe("NIP-70 protected events", () => {
  it("accepts a protected event only from its authenticated author", async () => {
    const stub = relay();
    const c = await RawClient.open(stub);
    const alice = generateSecretKey();
    const mallory = generateSecretKey();
    const mine = sign(alice, 1, [["-"]], "only I may publish this");
    const [ok1, msg1] = await c.publish(mine);
    expect(ok1).toBe(false);
    expect(msg1).toMatch(/^auth-required: /);
    await auth(c, mallory);
    const [ok2, msg2] = await c.publish(mine);
    expect(ok2).toBe(false);
    expect(msg2).toMatch(/^restricted: /);
    const reader = await RawClient.open(stub);
    expect((await reader.req("r", { ids: [mine.id] })).events).toEqual([]);
    await auth(c, alice);
    expect(await c.publish(mine)).toEqual([true, ""]);
    expect((await reader.req("r2", { ids: [mine.id] })).events.map((e) => e.id)).toEqual([mine.id]);
    // Unprotected events (and a "-" with a value, which is not the NIP-70 tag) need no AUTH.
    expect(await reader.publish(sign(mallory, 1, [["-", "x"]]))).toEqual([true, ""]);
  });

  it("lets code in the Worker publish a protected event over RPC (trusted, signed by the agent)", async () => {
    const stub = relay();
    const ev = sign(generateSecretKey(), 1, [["-"]], "from an edge agent");
    expect(await stub.publish(ev)).toEqual({ ok: true, accepted: true, message: "" });
  });
});

describe("NIP-13 proof of work", () => {
  it("counts leading zero bits of the id", () => {
    expect(powDifficulty("0".repeat(64))).toBe(256);
    expect(powDifficulty("000f" + "f".repeat(60))).toBe(12);
    expect(powDifficulty("0010" + "f".repeat(60))).toBe(11);
    expect(powDifficulty("8" + "0".repeat(63))).toBe(0);
    expect(powDifficulty("1" + "0".repeat(63))).toBe(3);
  });

  it("refuses events below the minimum difficulty of their kind, and advertises the minimum", async () => {
    const stub = relay();
    await stub.configure({ minPowDifficulty: 4, powByKind: { "5050": 10 } });
    const c = await RawClient.open(stub);
    const sk = generateSecretKey();
    // A plain event has difficulty ≥ 4 with probability 1/16: make sure this one does not.
    let plain = sign(sk, 1, [], "no work");
    for (let i = 0; powDifficulty(plain.id) >= 4; i++) plain = sign(sk, 1, [], `no work ${i}`);
    const [ok, msg] = await c.publish(plain);
    expect(ok).toBe(false);
    expect(msg).toMatch(/^pow: difficulty \d is less than 4$/);
    expect(await c.publish(mined(sk, { kind: 1, tags: [], content: "some work" }, 4))).toEqual([true, ""]);
    // The job kind asks for more.
    const cheapJob = mined(sk, { kind: 5050, tags: [], content: "" }, 4);
    if (powDifficulty(cheapJob.id) < 10) {
      const [okJ, msgJ] = await c.publish(cheapJob);
      expect(okJ).toBe(false);
      expect(msgJ).toMatch(/less than 10$/);
    }
    expect(await c.publish(mined(sk, { kind: 5050, tags: [], content: "" }, 10))).toEqual([true, ""]);
    // A lucky id with a committed target below the minimum is refused (NIP-13: commit to the target).
    let lucky: Event;
    for (let n = 0; ; n++) {
      lucky = sign(sk, 1, [["nonce", String(n), "2"]], "lucky");
      if (powDifficulty(lucky.id) >= 4) break;
    }
    const [okL, msgL] = await c.publish(lucky);
    expect(okL).toBe(false);
    expect(msgL).toMatch(/^pow: committed target 2 is less than 4/);

    const main = (exports as unknown as { default: Fetcher }).default;
    const doc = (await (await stub.fetch(new Request("http://relay.test/relay", { headers: { Accept: "application/nostr+json" } }))).json()) as {
      supported_nips: number[];
      limitation: Record<string, unknown>;
    };
    expect(doc.supported_nips).toContain(13);
    expect(doc.limitation.min_pow_difficulty).toBe(4);
    expect(doc.limitation.min_pow_difficulty_by_kind).toEqual({ "5050": 10 });
    // The default relay (through the Worker) asks for none and does not claim NIP-13.
    const def = (await (await main.fetch(new Request("http://relay.test/relay", { headers: { Accept: "application/nostr+json" } }))).json()) as {
      supported_nips: number[];
      limitation: Record<string, unknown>;
    };
    expect(def.supported_nips).not.toContain(13);
    expect(def.supported_nips).toEqual(expect.arrayContaining([50, 70]));
    expect(def.limitation.min_pow_difficulty).toBe(0);
  });
});
