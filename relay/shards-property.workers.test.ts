// One shard or four, a client sees the same relay. fast-check draws a sequence of EVENT (notes,
// reactions, replaceable and addressable versions, ephemeral events, NIP-09 deletions by the author
// and by others, NIP-40 expirations past, within the second and far, duplicates), REQ, CLOSE and
// COUNT, and runs it, step by step, against a single relay object and against a relay
// with RELAY_SHARDS=4 (four connection shards, four storage shards). Four clients on each: on the
// sharded relay client i is on connection shard i, so every fan-out crosses shards. The same
// signed events go to both. After every step both must have answered the same: each OK, each REQ's
// stored events in NIP-01 order (newest first, ties by lowest id; a search's as a set, since
// NIP-50 leaves its order to the relay) and its EOSE or CLOSED, each COUNT; and every client must
// have received the same live events, in the same order.
import { describe, expect, it } from "vitest";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { finalizeEvent, getPublicKey, type Event } from "nostr-tools/pure";
import { RawClient } from "./testing.ts";
import { connShardName } from "./shards.ts";

const SHARDS = 4;
const CLIENTS = 4;
const AUTHORS = 3;
const WORDS = ["alpha", "beta", "gamma"];
const NO_LIMITS = { messagesPerSecond: 0, eventsPerSecondPerPubkey: 0, messagesPerSecondPerIp: 0, maxConnectionsPerIp: 0 };
const keys = Array.from({ length: AUTHORS }, (_, i) => new Uint8Array(32).fill(i + 1));
const pubkeys = keys.map((k) => getPublicKey(k));

// ---------------------------------------------------------------- the steps, as data

type Expiry = "none" | "past" | "near" | "far";
type Publish = {
  op: "publish";
  client: number;
  author: number;
  kind: "note" | "reaction" | "profile" | "article" | "ephemeral" | "deletion" | "again";
  /** created_at = t0 + offset. */
  offset: number;
  t: string | null;
  word: number;
  d: string;
  expiry: Expiry;
  /** deletion: which earlier event (index mod count), and whether by address; again: which event to send again. */
  target: number;
  byAddress: boolean;
};
type FilterSpec = {
  kinds: number[] | null;
  authors: number[] | null;
  t: string | null;
  since: number | null;
  until: number | null;
  limit: number | null;
  ids: number[] | null;
  search: number | null;
};
type Req = { op: "req"; client: number; sub: string; filters: FilterSpec[] };
type Step = Publish | Req | { op: "close"; client: number; sub: string } | { op: "count"; client: number; filters: FilterSpec[] };

const KIND = { note: 1, reaction: 7, profile: 0, article: 30023, ephemeral: 20001, deletion: 5 } as const;

const client = fc.integer({ min: 0, max: CLIENTS - 1 });
const publish: fc.Arbitrary<Step> = fc.record({
  op: fc.constant("publish" as const),
  client,
  author: fc.integer({ min: 0, max: AUTHORS - 1 }),
  kind: fc.constantFrom("note", "note", "reaction", "profile", "article", "ephemeral", "deletion", "deletion", "again"),
  offset: fc.integer({ min: 0, max: 20 }),
  t: fc.constantFrom(null, "x", "y"),
  word: fc.integer({ min: 0, max: WORDS.length - 1 }),
  d: fc.constantFrom("", "a", "b"),
  expiry: fc.constantFrom<Expiry>("none", "none", "none", "past", "near", "far"),
  target: fc.nat(),
  byAddress: fc.boolean(),
});
/** A filter field that is usually absent, so that filters match something. */
const sometimes = <T>(arb: fc.Arbitrary<T>, percent: number): fc.Arbitrary<T | null> =>
  fc.oneof({ arbitrary: fc.constant(null), weight: 100 - percent }, { arbitrary: arb, weight: percent });
const filter: fc.Arbitrary<FilterSpec> = fc.record({
  kinds: sometimes(fc.subarray([0, 1, 5, 7, 30023, 20001], { minLength: 1 }), 40),
  authors: sometimes(fc.subarray([0, 1, 2], { minLength: 1 }), 30),
  t: sometimes(fc.constantFrom("x", "y"), 20),
  since: sometimes(fc.integer({ min: 0, max: 20 }), 20),
  until: sometimes(fc.integer({ min: 0, max: 20 }), 20),
  limit: sometimes(fc.integer({ min: 0, max: 6 }), 40),
  ids: sometimes(fc.array(fc.nat(), { minLength: 1, maxLength: 3 }), 10),
  search: sometimes(fc.integer({ min: 0, max: WORDS.length - 1 }), 15),
});
const filters = fc.array(filter, { minLength: 1, maxLength: 3 });
const sub = fc.constantFrom("s0", "s1", "s2");
const step: fc.Arbitrary<Step> = fc.oneof(
  { arbitrary: publish, weight: 10 },
  { arbitrary: fc.record({ op: fc.constant("req" as const), client, sub, filters }), weight: 5 },
  { arbitrary: fc.record({ op: fc.constant("close" as const), client, sub }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant("count" as const), client, filters }), weight: 3 },
);

// ---------------------------------------------------------------- running them

type Msg = [string, ...unknown[]];

/** The four clients of one relay, with what each received live (EVENT after EOSE) so far. */
class Side {
  live: string[][] = Array.from({ length: CLIENTS }, () => []);
  readonly clients: RawClient[];
  constructor(clients: RawClient[]) {
    this.clients = clients;
  }

  static async single(): Promise<Side> {
    const stub = env.RELAY.getByName(`prop-1-${crypto.randomUUID()}`);
    await stub.configure(NO_LIMITS);
    return new Side(await Promise.all(Array.from({ length: CLIENTS }, () => RawClient.open(stub))));
  }

  static async sharded(): Promise<Side> {
    const base = `prop-${crypto.randomUUID()}`;
    const conn = (i: number) => env.RELAY.getByName(connShardName(base, i, SHARDS));
    await conn(0).configure(NO_LIMITS); // reaches every connection shard
    return new Side(await Promise.all(Array.from({ length: CLIENTS }, (_, i) => RawClient.open(conn(i % SHARDS)))));
  }

  /** Waits until each client has everything sent to it so far, and files its live events. */
  async settle(): Promise<void> {
    await Promise.all(
      this.clients.map(async (c, i) => {
        c.send(["BARRIER"]);
        await c.next((m) => m[0] === "NOTICE" && String(m[1]).includes("BARRIER"));
        for (const m of c.pending()) if (m[0] === "EVENT") this.live[i]!.push(`${m[1] as string}:${(m[2] as Event).id}`);
        c.drain();
      }),
    );
  }

  close(): void {
    for (const c of this.clients) c.close();
  }
}

/** Signs a step's event; the same object goes to both relays. null when the step has nothing to act on. */
function eventOf(s: Publish, t0: number, now: number, sent: Event[]): Event | null {
  if (s.kind === "again") return sent.length === 0 ? null : sent[s.target % sent.length]!;
  const tags: string[][] = [];
  if (s.t) tags.push(["t", s.t]);
  if (s.kind === "article") tags.push(["d", s.d]);
  if (s.expiry !== "none") tags.push(["expiration", String(s.expiry === "past" ? now - 5 : s.expiry === "near" ? now + 1 : now + 3600)]);
  if (s.kind === "deletion") {
    const targets = sent.filter((e) => e.kind !== 20001);
    if (targets.length === 0) return null;
    const target = targets[s.target % targets.length]!;
    const d = target.tags.find((x) => x[0] === "d")?.[1] ?? "";
    if (s.byAddress && (target.kind === 0 || target.kind === 30023)) tags.push(["a", `${target.kind}:${target.pubkey}:${target.kind === 0 ? "" : d}`]);
    else tags.push(["e", target.id]);
  }
  const content = s.kind === "profile" ? JSON.stringify({ name: `${WORDS[s.word]} ${s.offset}` }) : s.kind === "deletion" ? "" : `${WORDS[s.word]} note ${s.offset}`;
  return finalizeEvent({ kind: KIND[s.kind], created_at: t0 + s.offset, tags, content }, keys[s.author]!);
}

function filterOf(f: FilterSpec, t0: number, sent: Event[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (f.kinds) out.kinds = f.kinds;
  if (f.authors) out.authors = f.authors.map((a) => pubkeys[a]);
  if (f.t) out["#t"] = [f.t];
  if (f.since !== null) out.since = t0 + f.since;
  if (f.until !== null) out.until = t0 + f.until;
  if (f.ids) out.ids = sent.length === 0 ? ["0".repeat(64)] : [...new Set(f.ids.map((i) => sent[i % sent.length]!.id))];
  if (f.search !== null) out.search = WORDS[f.search];
  else if (f.limit !== null) out.limit = f.limit; // a search's limit would pick by rank, which NIP-50 leaves to the relay
  return out;
}

/** What a client is answered for one step, as comparable data. */
async function answer(side: Side, s: Step, event: Event | null, filters: Record<string, unknown>[]): Promise<unknown> {
  switch (s.op) {
    case "publish":
      return event === null ? null : side.clients[s.client]!.publish(event);
    case "req": {
      const r = await side.clients[s.client]!.req(s.sub, ...filters);
      const ids = r.events.map((e) => e.id as string);
      return { ids: filters.some((f) => f.search) ? ids.sort() : ids, closed: r.closed ?? null };
    }
    case "close":
      side.clients[s.client]!.send(["CLOSE", s.sub]);
      return null;
    case "count": {
      const c = side.clients[s.client]!;
      c.send(["COUNT", "n", ...filters]);
      return (await c.next((m: Msg) => (m[0] === "COUNT" || m[0] === "CLOSED") && m[1] === "n")).slice(2);
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe(`RELAY_SHARDS=${SHARDS} answers what one object answers`, () => {
  it("for random sequences of EVENT, REQ, CLOSE, COUNT, deletions, replaceables and expirations", { timeout: 300_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 4, maxLength: 16 }), async (steps) => {
        const [one, four] = await Promise.all([Side.single(), Side.sharded()]);
        const t0 = Math.floor(Date.now() / 1000) - 30;
        const sent: Event[] = [];
        try {
          for (const s of steps) {
            // An event expiring "near" is signed at the start of a second and expires at its end: both
            // relays take it within that second, and the next step waits until it has expired for both.
            const near = s.op === "publish" && s.expiry === "near";
            if (near) await sleep(1005 - (Date.now() % 1000));
            const now = Math.floor(Date.now() / 1000);
            const event = s.op === "publish" ? eventOf(s, t0, now, sent) : null;
            const fs = s.op === "req" || s.op === "count" ? s.filters.map((f) => filterOf(f, t0, sent)) : [];
            const a = await answer(one, s, event, fs);
            const b = await answer(four, s, event, fs);
            expect(b, `step ${JSON.stringify(s)}`).toEqual(a);
            if (event && s.op === "publish" && s.kind !== "again") sent.push(event);
            await Promise.all([one.settle(), four.settle()]);
            expect(four.live, `live events after ${JSON.stringify(s)}`).toEqual(one.live);
            if (near) await sleep((now + 1) * 1000 + 20 - Date.now());
          }
        } finally {
          one.close();
          four.close();
        }
      }),
      { numRuns: 25, endOnFailure: true },
    );
  });
});
