// The provider against the real local relay (wrangler dev), with nostr-tools customers: the job
// life, chaining, encryption, cancellation, the queue, restart pickup, and every kind of bad input.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer } from "node:http";
import { generateSecretKey, getPublicKey } from "nostr-tools/pure";
import { submitJob } from "./job.ts";
import { Provider, type ProviderOptions } from "./serve.ts";
import { agent, collect, newPeer, sleep, startRelay, status, type TestRelay } from "./testing.ts";

let relay: TestRelay;
const providers: Provider[] = [];

beforeAll(async () => {
  relay = await startRelay();
}, 120_000);
afterAll(async () => {
  for (const p of providers) p.stop();
  await relay?.stop();
});

async function provider(o: Partial<ProviderOptions> & { programs: ProviderOptions["programs"] }): Promise<Provider> {
  const p = new Provider({ relays: [relay.url], secretKey: generateSecretKey(), concurrency: 2, timeoutMs: 10_000, ...o });
  await p.start();
  providers.push(p);
  return p;
}

/** Publishes a request from a fresh customer and collects its feedback until a result or an error. */
async function ask(kind: number, tags: string[][], o: { waitMs?: number; customer?: ReturnType<typeof newPeer> } = {}) {
  const c = o.customer ?? newPeer(relay.url);
  const req = c.sign({ kind, tags, content: "" });
  const evs = collect(c, { "#e": [req.id] }, (es) => es.some((e) => e.kind === kind + 1000 || status(e) === "error"), o.waitMs ?? 20_000);
  await sleep(50);
  await c.publish(req);
  const got = await evs;
  c.close();
  return { req, events: got, result: got.find((e) => e.kind === kind + 1000), error: got.find((e) => status(e) === "error") };
}

describe("oanix serve: a job end to end", () => {
  it("announces its kinds (NIP-89), answers with processing feedback and a result carrying request, e, p, i", async () => {
    const p = await provider({ programs: new Map([[5050, await agent("jobcount")]]), name: "counter", about: "counts words" });
    const watcher = newPeer(relay.url);
    const ann = await watcher.query({ kinds: [31990], authors: [p.pubkey] });
    watcher.close();
    expect(ann).toHaveLength(1);
    expect(ann[0]!.tags).toContainEqual(["k", "5050"]);
    expect(ann[0]!.tags).toContainEqual(["d", "oanix-counter"]);
    expect(JSON.parse(ann[0]!.content)).toEqual({ name: "counter", about: "counts words", encryptionSupported: true });

    const { req, events, result } = await ask(5050, [["i", "one two three", "text"], ["param", "op", "count"]]);
    expect(events.filter((e) => e.kind === 7000).map(status)).toContain("processing");
    expect(result?.content).toBe("3 words");
    expect(result!.pubkey).toBe(p.pubkey);
    expect(result!.tags).toContainEqual(["p", req.pubkey]);
    expect(result!.tags.find((t) => t[0] === "e")?.[1]).toBe(req.id);
    expect(result!.tags).toContainEqual(["i", "one two three", "text"]);
    expect(JSON.parse(result!.tags.find((t) => t[0] === "request")![1]!)).toEqual(JSON.parse(JSON.stringify(req)));
  });

  it("hands the agent the NIP-90 spec shape at /task/spec.json", async () => {
    // op=upper echoes the inputs back: proof that data, in order, reached the agent.
    await provider({ programs: new Map([[5051, await agent("jobcount")]]) });
    const { result } = await ask(5051, [["i", "hello", "text"], ["i", "world", "text", "", "second"], ["param", "op", "upper"]]);
    expect(result?.content).toBe("HELLO\nWORLD");
  });

  it("chains: a job input waits for that job's result and gets its content", async () => {
    await provider({ programs: new Map([[5052, await agent("jobcount")]]) });
    const c = newPeer(relay.url);
    const parent = c.sign({ kind: 5052, tags: [["i", "a b c d", "text"], ["param", "op", "upper"]], content: "" });
    // The child goes first: it must wait for its parent's result.
    const child = ask(5052, [["i", parent.id, "job"]]);
    await sleep(800);
    await c.publish(parent);
    const { result, events } = await child;
    expect(events.some((e) => status(e) === "processing" && e.content.includes(parent.id))).toBe(true);
    expect(result?.content).toBe("4 words");
    c.close();
  });

  it("a chained job waiting for its parent holds no slot: with --concurrency 1 both are answered", async () => {
    await provider({ programs: new Map([[5054, await agent("jobcount")]]), concurrency: 1, chainTimeoutMs: 4000 });
    const c = newPeer(relay.url);
    const parent = c.sign({ kind: 5054, tags: [["i", "w x y z", "text"], ["param", "op", "upper"]], content: "" });
    const child = ask(5054, [["i", parent.id, "job"]]);
    await sleep(800);
    await c.publish(parent);
    const { result, error } = await child;
    expect(error).toBeUndefined();
    expect(result?.content).toBe("4 words");
    c.close();
  });

  it("a chained job whose parent never answers gets error feedback; the provider keeps serving", async () => {
    await provider({ programs: new Map([[5053, await agent("jobcount")]]), chainTimeoutMs: 1500 });
    const ghost = "ab".repeat(32);
    const { error, result } = await ask(5053, [["i", ghost, "job"]]);
    expect(result).toBeUndefined();
    expect(error?.content).toMatch(/input job abab.* gave no result within 2 s/);
    expect((await ask(5053, [["i", "still here", "text"]])).result?.content).toBe("2 words");
  });
});

describe("bad input gets the documented feedback or is ignored, and the provider keeps serving", () => {
  it("malformed requests: no i, bad param, bad input type, oversized", async () => {
    await provider({ programs: new Map([[5060, await agent("jobcount")]]), maxRequestBytes: 4096 });
    const cases: [string[][], RegExp][] = [
      [[["param", "op", "count"]], /no input: a job request needs at least one i tag/],
      [[["i", "x", "text"], ["param", "op"]], /param tags are \["param", NAME, VALUE\]/],
      [[["i", "x", "text"], ["param", "op", "count"], ["param", "op", "upper"]], /param "op" given twice/],
      [[["i", "x", "sound"]], /input 1 has type "sound"/],
      [[["i", "x", "text"], ["i", "not-an-id", "event"]], /input 2 \(event\) must be an event id/],
      [[["i", "x".repeat(5000), "text"]], /request is \d+ bytes, over this provider's limit of 4096/],
      [[["i", "x", "text"], ["bid", "lots"]], /bid must be a whole number of msats/],
    ];
    for (const [tags, why] of cases) {
      const { error, result } = await ask(5060, tags);
      expect(result, JSON.stringify(tags).slice(0, 80)).toBeUndefined();
      expect(error?.content).toMatch(why);
    }
    expect((await ask(5060, [["i", "served after all that", "text"]])).result?.content).toBe("4 words");
  });

  it("an agent that fails, or exits 0 without result.json, is an error with the reason", async () => {
    await provider({ programs: new Map([[5061, await agent("echo")], [5062, await agent("trap")], [5063, await agent("jobcount")]]) });
    expect((await ask(5061, [["i", "x", "text"]])).error?.content).toBe("agent exited 0 without writing /task/result.json");
    expect((await ask(5062, [["i", "x", "text"]])).error?.content).toMatch(/agent exited with status 134 \(trap: .*unreachable/);
    expect((await ask(5063, [["i", "x", "text"], ["param", "op", "explode"]])).error?.content).toMatch(/status 2: jobcount: unknown op "explode"/);
    expect((await ask(5063, [["i", "x y", "text"]])).result?.content).toBe("2 words");
  });

  it("ignores requests for other providers, kinds it does not serve, and bids below its price", async () => {
    const p = await provider({ programs: new Map([[5064, await agent("jobcount")]]), price: 1000 });
    const other = getPublicKey(generateSecretKey());
    const forOther = await ask(5064, [["i", "x", "text"], ["p", other]], { waitMs: 1500 });
    expect(forOther.events).toEqual([]);
    const wrongKind = await ask(5065, [["i", "x", "text"], ["p", p.pubkey]], { waitMs: 1500 });
    expect(wrongKind.events).toEqual([]);
    const cheap = await ask(5064, [["i", "x", "text"], ["bid", "10"]]);
    expect(cheap.error?.content).toBe("bid of 10 msats is below the price of 1000 msats");
    const fair = await ask(5064, [["i", "x", "text"], ["bid", "1000"], ["p", p.pubkey]]);
    expect(fair.result?.content).toBe("1 words");
    expect(fair.result!.tags).toContainEqual(["amount", "1000"]);
  });
});

describe("cancellation and the queue", () => {
  it("the customer's kind-5 ends the agent and nothing more is published; a stranger's kind-5 is ignored", async () => {
    const p = await provider({ programs: new Map([[5070, await agent("busy")], [5071, await agent("jobcount")]]), concurrency: 1, timeoutMs: 60_000 });
    const alice = newPeer(relay.url), bob = newPeer(relay.url), mallory = newPeer(relay.url);
    const stuck = alice.sign({ kind: 5070, tags: [["i", "spin", "text"]], content: "" });
    const queued = bob.sign({ kind: 5071, tags: [["i", "after the spinner", "text"]], content: "" });
    const stuckEvents = collect(alice, { "#e": [stuck.id] }, () => false, 4000);
    const queuedEvents = collect(bob, { "#e": [queued.id] }, (es) => es.some((e) => e.kind === 6071), 20_000);
    await sleep(50);
    await alice.publish(stuck);
    await sleep(300);
    await bob.publish(queued);
    await sleep(300);
    // Mallory tries to cancel Bob's job: NIP-09 lets only the author delete, so it stays queued.
    await mallory.publish(mallory.sign({ kind: 5, tags: [["e", queued.id]], content: "" }));
    await sleep(300);
    await alice.publish(alice.sign({ kind: 5, tags: [["e", stuck.id]], content: "" }));
    const bobs = await queuedEvents;
    expect(bobs.some((e) => status(e) === "processing" && e.content.startsWith("queued"))).toBe(true);
    expect(bobs.find((e) => e.kind === 6071)?.content).toBe("3 words");
    const alices = await stuckEvents;
    expect(alices.filter((e) => e.kind === 7000 && e.pubkey === p.pubkey).map(status)).toEqual(["processing"]);
    expect(alices.some((e) => e.kind === 6070)).toBe(false);
    for (const x of [alice, bob, mallory]) x.close();
  });

  it("a provider restarted mid-job picks the job up again and answers it once; answered jobs stay answered", async () => {
    const sk = generateSecretKey();
    const first = new Provider({ relays: [relay.url], secretKey: sk, programs: new Map([[5072, await agent("jobcount")]]) });
    await first.start();
    const done = await ask(5072, [["i", "answered before the crash", "text"]]);
    expect(done.result?.content).toBe("4 words");
    first.stop();
    // The same key, serving 5072 with an agent that spins: the crash happens mid-job.
    const spinning = new Provider({ relays: [relay.url], secretKey: sk, programs: new Map([[5072, await agent("busy")]]), timeoutMs: 60_000 });
    await spinning.start();
    const c = newPeer(relay.url);
    const req = c.sign({ kind: 5072, tags: [["i", "picked up after restart", "text"]], content: "" });
    await c.publish(req);
    await sleep(800);
    spinning.stop();
    const restarted = await provider({ secretKey: sk, programs: new Map([[5072, await agent("jobcount")]]) });
    const evs = await collect(c, { "#e": [req.id, done.req.id] }, (es) => es.some((e) => e.kind === 6072 && e.tags.some((t) => t[1] === req.id)), 20_000);
    await sleep(1000);
    const all = await c.query({ kinds: [6072], "#e": [req.id, done.req.id] });
    expect(evs.find((e) => e.kind === 6072 && e.tags.some((t) => t[0] === "e" && t[1] === req.id))?.content).toBe("4 words");
    expect(all.filter((e) => e.tags.some((t) => t[0] === "e" && t[1] === req.id))).toHaveLength(1);
    expect(all.filter((e) => e.tags.some((t) => t[0] === "e" && t[1] === done.req.id))).toHaveLength(1);
    expect(restarted.answered).toBe(1);
    c.close();
  });
});

describe("encrypted requests", () => {
  for (const cipher of ["nip44", "nip04"] as const) {
    it(`${cipher}: inputs and params travel encrypted, the result comes back encrypted the same way`, async () => {
      const p = await provider({ programs: new Map([[5080, await agent("jobcount")]]) });
      const c = newPeer(relay.url);
      const job = await submitJob(c, { kind: 5080, inputs: [{ data: "secret words here", type: "text" }], params: { op: "upper" }, providers: [p.pubkey], encrypted: cipher }, { timeoutMs: 20_000 });
      expect(job.request.tags.some((t) => t[0] === "i" || t[0] === "param")).toBe(false);
      expect(job.request.content.includes("?iv=")).toBe(cipher === "nip04");
      const r = await job.result;
      expect(r.content).toBe("SECRET WORDS HERE");
      expect(r.event.content).not.toContain("SECRET");
      expect(r.event.tags).toContainEqual(["encrypted"]);
      expect(r.event.tags.some((t) => t[0] === "i")).toBe(false);
      c.close();
    });
  }

  it("an encrypted request that does not decrypt gets error feedback", async () => {
    const p = await provider({ programs: new Map([[5081, await agent("jobcount")]]) });
    const { error } = await ask(5081, [["p", p.pubkey], ["encrypted"]]);
    expect(error?.content).toMatch(/cannot decrypt the request/);
  });
});

describe("inputs the provider resolves", () => {
  it("event inputs are fetched from the relay; url inputs pass through without http", async () => {
    await provider({ programs: new Map([[5090, await agent("jobcount")]]) });
    const c = newPeer(relay.url);
    const note = c.sign({ kind: 1, tags: [], content: "a note with six words" });
    await c.publish(note);
    const fromEvent = await ask(5090, [["i", note.id, "event"], ["param", "op", "upper"]], { customer: c });
    expect(fromEvent.result?.content).toBe("A NOTE WITH SIX WORDS");
    const fromUrl = await ask(5090, [["i", "http://127.0.0.1:9/never-fetched", "url"], ["param", "op", "upper"]], { customer: c });
    expect(fromUrl.result?.content).toBe("HTTP://127.0.0.1:9/NEVER-FETCHED");
    const missing = await ask(5090, [["i", "cd".repeat(32), "event"]], { customer: c });
    expect(missing.error?.content).toMatch(/input event cdcd.* was not found/);
  });
});

/** A local HTTP server counting its hits: /doc answers a page, anything else 404. */
async function pageServer(): Promise<{ port: number; hits: string[]; close(): void }> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(req.url ?? "");
    if (req.url === "/doc") res.end("Fetched over http for the agent. It has two sentences.");
    else (res.statusCode = 404), res.end("no");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return { port: (server.address() as { port: number }).port, hits, close: () => server.close() };
}

describe("url inputs with http granted", () => {
  it("are fetched for the agent within the grant; outside it, or failing, they are error feedback", async () => {
    const web = await pageServer();
    const other = await pageServer();
    try {
      await provider({ programs: new Map([[5091, await agent("jobcount")]]), grants: { http: { hosts: `127.0.0.1:${web.port}` } } });
      const ok = await ask(5091, [["i", `http://127.0.0.1:${web.port}/doc`, "url"], ["param", "op", "upper"]]);
      expect(ok.result?.content).toBe("FETCHED OVER HTTP FOR THE AGENT. IT HAS TWO SENTENCES.");
      const missing = await ask(5091, [["i", `http://127.0.0.1:${web.port}/gone`, "url"]]);
      expect(missing.error?.content).toBe(`input url http://127.0.0.1:${web.port}/gone: HTTP 404`);
      // Another port of the same loopback address is not in the grant: refused, never fetched.
      const outside = await ask(5091, [["i", `http://127.0.0.1:${other.port}/doc`, "url"]]);
      expect(outside.error?.content).toMatch(new RegExp(`^input url http://127.0.0.1:${other.port}/doc: EACCES: 127.0.0.1:${other.port} is not in the grant`));
      expect(other.hits).toEqual([]);
      expect(web.hits).toEqual(["/doc", "/gone"]);
    } finally {
      web.close();
      other.close();
    }
  });
});

describe("capabilities for served agents", () => {
  it("a served agent gets exactly its grants: /cap/http, /cap/llm and /cap/nostr as granted, nothing else", async () => {
    const web = await pageServer();
    try {
      const summarize = await agent("summarize");
      const key = generateSecretKey();
      const full = await provider({
        secretKey: key, programs: new Map([[5301, summarize]]),
        grants: { http: { hosts: `127.0.0.1:${web.port}` }, llm: { provider: "offline" }, nostr: { secretKey: Buffer.from(key).toString("hex"), relays: [relay.url] } },
      });
      // The agent fetches the page itself (a text input naming it), summarises offline, publishes a note.
      const done = await ask(5301, [["i", `http://127.0.0.1:${web.port}/doc`, "text"]]);
      expect(done.error).toBeUndefined();
      expect(done.result?.content).toMatch(/\S/);
      expect(web.hits).toEqual(["/doc"]);
      const c = newPeer(relay.url);
      const notes = await c.query({ kinds: [1], authors: [full.pubkey] });
      c.close();
      expect(notes.map((n) => n.content)).toEqual([`${done.result!.content}\n\nhttp://127.0.0.1:${web.port}/doc`]);
      // Without http granted there is no /cap/http: the agent's fetch fails with ENOENT.
      await provider({ programs: new Map([[5302, summarize]]), grants: { llm: { provider: "offline" }, nostr: { secretKey: Buffer.from(generateSecretKey()).toString("hex"), relays: [relay.url] } } });
      const bare = await ask(5302, [["i", `http://127.0.0.1:${web.port}/doc`, "text"]]);
      expect(bare.error?.content).toMatch(/^agent exited with status 1: summarize: fetch: ENOENT/);
      expect(web.hits).toEqual(["/doc"]);
    } finally {
      web.close();
    }
  });

  it("budgets are per job: every job starts with the whole budget, and a job past it gets EDQUOT", async () => {
    const web = await pageServer();
    try {
      const summarize = await agent("summarize");
      const hosts = `127.0.0.1:${web.port}`;
      const nostr = { secretKey: Buffer.from(generateSecretKey()).toString("hex"), relays: [relay.url] };
      // One model call per job: three jobs in a row all succeed (a budget shared across jobs would not).
      await provider({ programs: new Map([[5303, summarize]]), grants: { http: { hosts }, nostr, llm: { provider: "offline", budget: { calls: 1 } } } });
      for (let i = 0; i < 3; i++) {
        const r = await ask(5303, [["i", `http://127.0.0.1:${web.port}/doc`, "url"]]);
        expect(r.error, `job ${i}`).toBeUndefined();
        expect(r.result?.content).toMatch(/\S/);
      }
      // The url input was fetched by the provider (http granted), so the agent made no fetch of its own.
      expect(web.hits).toEqual(["/doc", "/doc", "/doc"]);
      // A budget that does not fit the job's one model call: EDQUOT, and the agent says so.
      await provider({ programs: new Map([[5304, summarize]]), grants: { http: { hosts }, nostr, llm: { provider: "offline", budget: { calls: 0 } } } });
      const over = await ask(5304, [["i", `http://127.0.0.1:${web.port}/doc`, "url"]]);
      expect(over.error?.content).toMatch(/^agent exited with status 1: summarize: complete: EDQUOT/);
    } finally {
      web.close();
    }
  });
});
