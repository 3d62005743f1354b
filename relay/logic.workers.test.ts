// Pure logic: filter validation and matching, limits and NIP-11, token buckets, NIP-90 routing.
import { describe, expect, it } from "vitest";
import { matchFilter, parseFilter, isEmptyFilter, type Filter } from "./filter.ts";
import { DEFAULT_CONFIG, checkConfigPatch, mergeConfig } from "./config.ts";
import { ftsQuery, matchSearch, parseSearch, searchableText, words } from "./search.ts";
import { relayInfo } from "./nip11.ts";
import { BucketMap, TokenBucket } from "./ratelimit.ts";
import { checkJobEvent, routeJob, type AgentRegistration } from "./nip90.ts";
import { checkEventShape, expirationOf, dTag, type NostrEvent } from "./event.ts";

const H = (c: string) => c.repeat(64);
const ev = (over: Partial<NostrEvent> = {}): NostrEvent => ({
  id: H("1"),
  pubkey: H("2"),
  created_at: 100,
  kind: 1,
  tags: [],
  content: "",
  sig: "3".repeat(128),
  ...over,
});
const lim = { maxFilterValues: 3, maxLimit: 50, defaultLimit: 10 };

describe("filters", () => {
  it("parses the NIP-01 fields and refuses anything else", () => {
    expect(parseFilter({ ids: [H("a")], authors: [H("b"), H("b")], kinds: [1, 1, 7], "#e": [H("c")], since: 1, until: 2, limit: 500 }, lim)).toEqual({
      ids: [H("a")],
      authors: [H("b")],
      kinds: [1, 7],
      tags: [["e", [H("c")]]],
      since: 1,
      until: 2,
      limit: 50,
    });
    for (const bad of [null, [], 5, { kinds: [1, 2, 3, 4] }, { ids: ["A".repeat(64)] }, { since: -1 }, { "#": ["x"] }, { "#ab": ["x"] }, { foo: 1 }, { limit: 1.5 }])
      expect(typeof parseFilter(bad, lim), JSON.stringify(bad)).toBe("string");
  });

  it("matches events exactly, tag conditions AND'ed, values OR'ed", () => {
    const e = ev({ tags: [["e", H("c")], ["t", "nostr"], ["t", "oanix"], ["x"]] });
    const yes: Filter[] = [{}, { ids: [H("1")] }, { kinds: [7, 1] }, { "tags": [["t", ["oanix", "zzz"]]] }, { since: 100, until: 100 }, { tags: [["e", [H("c")]], ["t", ["nostr"]]] }];
    const no: Filter[] = [{ ids: [H("9")] }, { authors: [H("9")] }, { since: 101 }, { until: 99 }, { tags: [["t", ["x"]]] }, { tags: [["e", [H("c")]], ["t", ["zzz"]]] }, { tags: [["x", [""]]] }];
    for (const f of yes) expect(matchFilter(f, e), JSON.stringify(f)).toBe(true);
    for (const f of no) expect(matchFilter(f, e), JSON.stringify(f)).toBe(false);
    expect(isEmptyFilter({ authors: [] })).toBe(true);
    expect(isEmptyFilter({ since: 5, until: 4 })).toBe(true);
    expect(isEmptyFilter({ since: 4, until: 4 })).toBe(false);
  });
});

describe("events", () => {
  it("checks shapes and reads d and expiration tags", () => {
    expect(checkEventShape(ev())).toBeNull();
    expect(checkEventShape({ ...ev(), tags: [[1]] })).toMatch(/tag/);
    expect(dTag(ev({ tags: [["d", "x"], ["d", "y"]] }))).toBe("x");
    expect(dTag(ev())).toBe("");
    expect(expirationOf(ev({ tags: [["expiration", "1700000000"]] }))).toBe(1700000000);
    expect(expirationOf(ev({ tags: [["expiration", "soon"]] }))).toBeNull();
  });
});

describe("limits", () => {
  it("merges valid overrides only, and advertises what is configured", () => {
    const cfg = mergeConfig(DEFAULT_CONFIG, { maxFilters: 3, maxSubidLength: 500, authRead: "yes", maxLimit: -1, name: "x" });
    expect(cfg.maxFilters).toBe(3);
    expect(cfg.maxSubidLength).toBe(64);
    expect(cfg.authRead).toBe(false);
    expect(cfg.maxLimit).toBe(DEFAULT_CONFIG.maxLimit);
    const doc = relayInfo(cfg) as { name: string; limitation: Record<string, unknown> };
    expect(doc.name).toBe("x");
    expect(doc.limitation.max_filters).toBe(3);
    expect(doc.limitation.max_subid_length).toBe(64);
  });

  it("token buckets allow the burst, then the rate; rate 0 disables", () => {
    const b = new TokenBucket(2, 3, 0);
    expect([b.take(0), b.take(0), b.take(0), b.take(0)]).toEqual([true, true, true, false]);
    expect(b.take(499)).toBe(false);
    expect(b.take(500)).toBe(true);
    const off = new TokenBucket(0, 1, 0);
    for (let i = 0; i < 100; i++) expect(off.take(0)).toBe(true);
    const m = new BucketMap(2);
    expect(m.take("a", 1, 1, 0)).toBe(true);
    expect(m.take("a", 1, 1, 0)).toBe(false);
    expect(m.take("b", 1, 1, 0)).toBe(true);
  });
});

describe("NIP-50 words", () => {
  it("folds case and accents, drops extensions, and quotes terms for FTS5", () => {
    expect(words("Crème BRÛLÉE, naïve-café 42!")).toEqual(["creme", "brulee", "naive", "cafe", "42"]);
    expect(parseSearch("Nostr  relay include:spam language:en nostr")).toEqual(["nostr", "relay"]);
    expect(parseSearch("include:spam")).toMatch(/at least one word/);
    expect(parseSearch(["x"])).toMatch(/must be a string/);
    expect(ftsQuery(["a", "b"])).toBe('"a" "b"');
    expect(searchableText(ev({ kind: 0, content: JSON.stringify({ name: "n", about: "a", picture: "p" }) }))).toBe("n\na");
    expect(searchableText(ev({ kind: 4, content: "secret words" }))).toBe("");
    expect(matchSearch(["relay", "nostr"], ev({ content: "A Nostr relay." }))).toBe(true);
    expect(matchSearch(["relay", "nostr"], ev({ content: "A relay." }))).toBe(false);
  });
});

describe("config patches (NIP-86 changerelaylimits)", () => {
  it("names the first bad field", () => {
    expect(checkConfigPatch({ maxFilters: 3, authRead: true, powByKind: { "1": 8 } })).toBeNull();
    expect(checkConfigPatch({ maxFilters: -1 })).toMatch(/maxFilters/);
    expect(checkConfigPatch({ powByKind: { "70000": 8 } })).toMatch(/powByKind/);
    expect(checkConfigPatch({ powByKind: { "1": 300 } })).toMatch(/powByKind/);
    expect(checkConfigPatch({ nope: 1 })).toMatch(/unknown limit "nope"/);
    expect(checkConfigPatch([1])).toMatch(/JSON object/);
    expect(mergeConfig(DEFAULT_CONFIG, { powByKind: { "5050": 12, x: 3 }, minPowDifficulty: 999 })).toMatchObject({ powByKind: { "5050": 12 }, minPowDifficulty: 256 });
  });
});

describe("NIP-90", () => {
  it("routes requests to the agents of their kind, narrowed by p tags", () => {
    const regs: AgentRegistration[] = [
      { kind: 5050, agent: "a", handler: "h", pubkey: H("a") },
      { kind: 5050, agent: "b", handler: "h" },
      { kind: 5100, agent: "c", handler: "h", pubkey: H("a") },
    ];
    expect(routeJob(ev({ kind: 5050 }), regs).map((r) => r.agent)).toEqual(["a", "b"]);
    expect(routeJob(ev({ kind: 5050, tags: [["p", H("a")]] }), regs).map((r) => r.agent)).toEqual(["a"]);
    expect(routeJob(ev({ kind: 5050, tags: [["p", H("f")]] }), regs)).toEqual([]);
    expect(routeJob(ev({ kind: 5999 }), regs)).toEqual([]);
  });

  it("checks feedback status and request references", () => {
    expect(checkJobEvent(ev({ kind: 7000, tags: [["status", "payment_required"], ["e", H("a")]] }))).toBeNull();
    expect(checkJobEvent(ev({ kind: 7000, tags: [["status", "nope"], ["e", H("a")]] }))).toMatch(/status/);
    expect(checkJobEvent(ev({ kind: 6001, tags: [] }))).toMatch(/e tag/);
    expect(checkJobEvent(ev({ kind: 5001, tags: [] }))).toBeNull();
  });
});
