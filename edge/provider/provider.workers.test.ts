// The edge provider in workerd: nostr-tools customers on the Worker's own relay (/relay, a real
// WebSocket through the Worker) ask for jobs that a bundled agent answers in a Runner Durable
// Object over the provider's workspace, with no machine of the provider's on.
import { describe, expect, inject, it } from "vitest";
import { env } from "cloudflare:workers";
import { generateSecretKey, type Event } from "nostr-tools/pure";
import type { NostrEvent } from "../../relay/event.ts";
import { relayStub } from "../../relay/http.ts";
import { keySigner } from "../../services/nip98.ts";
import type { Cred } from "../auth.ts";
import { getJob, listJobs } from "../d1.ts";
import { call, createWs, json, newKey, stub } from "../testing.ts";
import { serveJob } from "./handler.ts";
import { HANDLER } from "./relay.ts";
import { addProvider, answersTo, ask, nextKind, query, sign, sleep, status, summary } from "./testing.ts";
import { jobState } from "./store.ts";
import type { ProviderEnv } from "./config.ts";

const admin = keySigner("7e57ad31".repeat(8)); // in ADMIN_PUBKEYS (vitest.config.ts)
const providerEnv = env as unknown as ProviderEnv;


describe("edge provider: a job served at the edge", () => {
  it("announces itself (NIP-89), sends processing, runs the bundled agent over its workspace, publishes the result", async () => {
    const { owner, ws, cfg, pubkey, view } = await addProvider();
    expect(view).toMatchObject({ name: cfg.name, kind: cfg.kind, program: "jobcount", workspace: ws, owner: owner.pubkey, source: "admin", npub: expect.stringMatching(/^npub1/) });
    expect(Object.keys(view).sort()).toEqual(["kind", "name", "npub", "owner", "program", "pubkey", "source", "workspace"]);
    const [ann, ...more] = await query({ kinds: [31990], authors: [pubkey] });
    expect(more).toEqual([]);
    expect(ann!.tags).toEqual([["d", `oanix-${cfg.name}`], ["k", String(cfg.kind)]]);
    expect(JSON.parse(ann!.content)).toMatchObject({ name: cfg.name, encryptionSupported: true });

    const { req, events, result, relay } = await ask(cfg.kind, [["i", "the quick brown fox jumps", "text"], ["param", "op", "count"], ["output", "text/plain"]], pubkey);
    relay.close();
    expect(summary(events)).toEqual(["processing", String(cfg.kind + 1000)]);
    expect(result!.content).toBe("5 words");
    expect(result!.tags.map((t) => t[0])).toEqual(["request", "e", "p", "i"]);
    const plain = JSON.parse(JSON.stringify(req)) as Event;
    expect(JSON.parse(result!.tags[0]![1]!)).toEqual(plain);
    expect(result!.tags.slice(1)).toEqual([["e", req.id], ["p", req.pubkey], ["i", "the quick brown fox jumps", "text"]]);
    // The run is an edge job of the workspace, with the Node provider's spec as its task file.
    const [job, ...others] = (await listJobs(env.DB, ws)).filter((j) => j.kind === `nip90:${cfg.kind}`);
    expect(others).toEqual([]);
    expect(job).toMatchObject({ state: "succeeded", input: { request: req.id, provider: cfg.name, customer: req.pubkey } });
    const spec = await json(call(owner, "GET", `/w/${ws}/task/${job!.id}/spec.json`));
    expect(spec).toEqual({
      id: req.id, kind: cfg.kind, customer: req.pubkey, created_at: req.created_at,
      input: [{ data: "the quick brown fox jumps", type: "text" }], params: { op: "count" }, output: "text/plain", request: plain,
    });
  });

  it("encrypted requests (NIP-44) are read with the provider's key and answered encrypted, without i tags", async () => {
    const { cfg, pubkey } = await addProvider();
    const nip44 = await import("nostr-tools/nip44");
    const sk = generateSecretKey();
    const ck = nip44.getConversationKey(sk, pubkey);
    const content = nip44.encrypt(JSON.stringify([["i", "secret words here", "text"], ["param", "op", "upper"]]), ck);
    const { result, relay } = await ask(cfg.kind, [["p", pubkey], ["encrypted"]], pubkey, { sk, content });
    relay.close();
    expect(nip44.decrypt(result!.content, ck)).toBe("SECRET WORDS HERE");
    expect(result!.tags.some((t) => t[0] === "encrypted")).toBe(true);
    expect(result!.tags.some((t) => t[0] === "i")).toBe(false);
  });
});

describe("edge provider: bad input", () => {
  it("each bad request gets error feedback with the reason, and the provider keeps serving", async () => {
    const { cfg, pubkey } = await addProvider({ price: 1000 });
    const cases: Array<[string[][], RegExp]> = [
      [[["i", "some words", "text"], ["param", "op", "nope"]], /^agent exited with status 2: jobcount: unknown op "nope" \(count or upper\)$/],
      [[["param", "op", "count"]], /^no input: a job request needs at least one i tag$/],
      [[["i", "x", "text"], ["param", "op"]], /^param tags are \["param", NAME, VALUE\]/],
      [[["i", "x", "carrier-pigeon"]], /^input 1 has type "carrier-pigeon"/],
      [[["i", "b".repeat(64), "event"]], /^input event b{64} was not found on the relay$/],
      [[["i", "some words", "text"], ["bid", "10"]], /^bid of 10 msats is below the price of 1000 msats$/],
      [[["i", "some words", "text"], ["bid", "ten"]], /^bid must be a whole number of msats/],
    ];
    for (const [tags, why] of cases) {
      const { error, result, relay } = await ask(cfg.kind, tags, pubkey);
      relay.close();
      expect(result, JSON.stringify(tags)).toBeUndefined();
      expect(error?.content, JSON.stringify(tags)).toMatch(why);
      expect(error!.tags.find((t) => t[0] === "status")).toEqual(["status", "error", error!.content]);
    }
    const ok = await ask(cfg.kind, [["i", "still serving", "text"], ["bid", "1000"]], pubkey);
    ok.relay.close();
    expect(ok.result?.content).toBe("2 words");
    expect(ok.result!.tags).toContainEqual(["amount", "1000"]);
  });

  it("an agent stopped at its wall-time limit is error feedback with the exit status", async () => {
    const { cfg, pubkey } = await addProvider({ program: "busy", timeoutMs: 300 });
    const { error, relay } = await ask(cfg.kind, [["i", "spin", "text"]], pubkey);
    relay.close();
    expect(error?.content).toMatch(/^agent exited with status 124 \(.*wall.*\)/);
  });

  it("an agent stopped at its memory limit is error feedback with the exit status", async () => {
    const { cfg, pubkey } = await addProvider({ program: "membomb", memoryMb: 16 });
    const { error, relay } = await ask(cfg.kind, [["i", "grow", "text"]], pubkey);
    relay.close();
    expect(error?.content).toMatch(/^agent exited with status 13[47] /);
  });
});

/** The relay's hand-over context, for handing a request over again directly. */
const contextFor = (cfg: { name: string; kind: number }, pubkey: string) => ({ registration: { kind: cfg.kind, agent: cfg.name, handler: HANDLER, pubkey } });

describe("edge provider: once only", () => {
  it("a request handed over again (by the relay and twice more at once) is run and answered once", async () => {
    const { ws, cfg, pubkey } = await addProvider();
    const { req, result, relay } = await ask(cfg.kind, [["i", "one two three", "text"]], pubkey);
    expect(result?.content).toBe("3 words");
    const ctx = contextFor(cfg, pubkey);
    await Promise.all([serveJob(providerEnv, req as NostrEvent, ctx), serveJob(providerEnv, req as NostrEvent, ctx)]);
    // The same event sent again is a duplicate for the relay, and nothing more comes.
    expect(await relay.publish(req).catch((e: Error) => e.message)).toMatch(/duplicate/);
    await sleep(500);
    relay.close();
    const answers = (await query({ "#e": [req.id] })).filter((e) => e.pubkey === pubkey);
    expect(summary(answers).sort()).toEqual([String(cfg.kind + 1000), "processing"]);
    expect((await listJobs(env.DB, ws)).filter((j) => j.kind === `nip90:${cfg.kind}`)).toHaveLength(1);
  });

  it("two fresh hand-overs at once: one runs, the other stays silent", async () => {
    const { ws, cfg, pubkey } = await addProvider();
    const req = sign(generateSecretKey(), cfg.kind, [["i", "a b", "text"]]) as NostrEvent;
    const ctx = contextFor(cfg, pubkey);
    await Promise.all([serveJob(providerEnv, req, ctx), serveJob(providerEnv, req, ctx)]);
    const answers = await answersTo(req.id, pubkey);
    await sleep(300);
    expect(summary(answers).sort()).toEqual([String(cfg.kind + 1000), "processing"]);
    expect(summary((await query({ "#e": [req.id] })).filter((e) => e.pubkey === pubkey))).toHaveLength(2);
    expect((await listJobs(env.DB, ws)).filter((j) => j.kind === `nip90:${cfg.kind}`)).toHaveLength(1);
    expect((await jobState(env.DB, cfg.name, req.id))?.state).toBe("answered");
  });
});

describe("edge provider: cancel", () => {
  it("a request waiting for a run slot and deleted by its customer never runs; nothing more is published", async () => {
    const { owner, ws, cfg, pubkey } = await addProvider();
    // Both of the workspace's run slots are taken (two runs in progress).
    const cred: Cred = { type: "internal", principal: { kind: "owner", pubkey: owner.pubkey } };
    for (const s of ["hold-1", "hold-2"]) expect((await stub(ws).runAdmit(cred, s)).ok).toBe(true);
    const queued = (es: Event[]) => es.some((e) => status(e) === "processing" && e.content.startsWith("queued"));
    const { req, sk, relay, events } = await ask(cfg.kind, [["i", "never counted", "text"]], pubkey, { until: queued, ms: 5000 });
    expect(summary(events)).toEqual(["processing", `processing: queued: waiting for a run slot in workspace ${ws}`]);
    // A stranger's deletion changes nothing (NIP-09); the customer's ends the job.
    await relay.publish(sign(generateSecretKey(), 5, [["e", req.id]]));
    await sleep(100);
    expect((await jobState(env.DB, cfg.name, req.id))?.state).toBe("claimed");
    await relay.publish(sign(sk, 5, [["e", req.id], ["k", String(cfg.kind)]]));
    for (let i = 0; i < 50 && (await jobState(env.DB, cfg.name, req.id))?.state !== "cancelled"; i++) await sleep(20);
    expect((await jobState(env.DB, cfg.name, req.id))?.state).toBe("cancelled");
    for (const s of ["hold-1", "hold-2"]) await stub(ws).runRelease(cred, s);
    await sleep(800);
    relay.close();
    // (Sorted: the relay orders events of one second by id.)
    expect(summary((await query({ "#e": [req.id] })).filter((e) => e.pubkey === pubkey)).sort()).toEqual(["processing", `processing: queued: waiting for a run slot in workspace ${ws}`]);
    expect((await listJobs(env.DB, ws)).filter((j) => j.kind === `nip90:${cfg.kind}`)).toEqual([]);
    // The slots it never took are all there: two runs at once still go.
    for (const s of ["after-1", "after-2"]) expect((await stub(ws).runAdmit(cred, s)).ok).toBe(true);
    for (const s of ["after-1", "after-2"]) await stub(ws).runRelease(cred, s);
  });

  it("a cancel that lands while the agent runs: the run ends on its own, and no result or error is published", async () => {
    // summarize fetching a page that answers in 1.5 s: the run is in progress (and the isolate free) meanwhile.
    const host = new URL(inject("capServers").http).host;
    const { owner, ws, cfg, pubkey } = await addProvider({ program: "summarize", caps: { http: [host], llm: "offline" }, timeoutMs: 10_000 }, { http: [host] });
    const running = (es: Event[]) => es.some((e) => status(e) === "processing");
    const page = `${inject("capServers").http}/slow?ms=1500&${crypto.randomUUID()}`;
    const { req, sk, relay } = await ask(cfg.kind, [["i", page, "text"]], pubkey, { until: running, ms: 5000 });
    const job = async () => (await listJobs(env.DB, ws)).find((j) => j.kind === `nip90:${cfg.kind}`);
    for (let i = 0; i < 100 && (await job())?.state !== "running"; i++) await sleep(20);
    expect((await job())?.state).toBe("running");
    await relay.publish(sign(sk, 5, [["e", req.id], ["k", String(cfg.kind)]]));
    // The run goes on to its end, which is not told: the customer cancelled.
    for (let i = 0; i < 100 && (await job())?.state === "running"; i++) await sleep(50);
    await sleep(500);
    relay.close();
    expect(summary((await query({ "#e": [req.id] })).filter((e) => e.pubkey === pubkey))).toEqual(["processing"]);
    expect((await jobState(env.DB, cfg.name, req.id))?.state).toBe("cancelled");
    const { job: ran, events } = await getJob(env.DB, ws, (await job())!.id);
    // (It ran to its end: summarize exits 1 here, as it has no nostr to publish its note.)
    expect(ran.state).not.toBe("running");
    expect(events.map((e) => e.type), JSON.stringify(events)).toEqual(expect.arrayContaining(["cancel-requested", "exit", "cancelled"]));
    // Its run slot was given back: two runs at once still go.
    const cred: Cred = { type: "internal", principal: { kind: "owner", pubkey: owner.pubkey } };
    for (const s of ["after-1", "after-2"]) expect((await stub(ws).runAdmit(cred, s)).ok).toBe(true);
    for (const s of ["after-1", "after-2"]) await stub(ws).runRelease(cred, s);
  });
});

describe("edge provider: the admin route", () => {
  it("refuses the unsigned, tokens, keys that do not own the workspace, and bad configurations", async () => {
    const owner = newKey();
    const ws = await createWs(owner);
    const cfg = { name: `r-${crypto.randomUUID().slice(0, 8)}`, kind: nextKind(), program: "jobcount", workspace: ws };
    expect((await call(null, "POST", "/api/providers", cfg)).status).toBe(401);
    expect((await call(null, "GET", "/api/providers")).status).toBe(401);
    const stranger = newKey();
    const r = await call(stranger, "POST", "/api/providers", cfg);
    expect(r.status).toBe(403);
    // A relay admin does not serve jobs over someone else's workspace either.
    expect((await call(admin, "POST", "/api/providers", cfg)).status).toBe(403);
    const grant = await json(call(owner, "POST", `/w/${ws}/grants`, { prefix: "", rights: "rw" }));
    expect((await call(grant.token as string, "POST", "/api/providers", cfg)).status).toBe(403);
    const bad: Array<[Record<string, unknown>, number, string]> = [
      [{ ...cfg, kind: 1 }, 400, "EINVAL"],
      [{ ...cfg, program: "nope" }, 404, "ENOENT"],
      [{ ...cfg, name: "Bad Name" }, 400, "EINVAL"],
      [{ ...cfg, timeoutMs: 60_000 }, 400, "EINVAL"],
      [{ ...cfg, secret: "x" }, 400, "EINVAL"],
      [{ ...cfg, name: "cfg-count" }, 409, "EEXIST"],
    ];
    for (const [body, code, errno] of bad) {
      const res = await call(owner, "POST", "/api/providers", body);
      expect(res.status, JSON.stringify(body)).toBe(code);
      expect((await json(res)).error.code).toBe(errno);
    }
    // Nothing was added by any of them.
    expect((await json(call(owner, "GET", "/api/providers"))).providers).toEqual([]);
    expect((await relayStub(env.RELAY).listAgents(cfg.kind))).toEqual([]);
  });

  it("lists what a key owns (an admin sees all); the owner or an admin removes; a removed name stays its owner's", async () => {
    const a = await addProvider();
    const b = await addProvider();
    const mine = await json(call(a.owner, "GET", "/api/providers"));
    expect(mine.enabled).toBe(true);
    expect(mine.providers.map((p: { name: string }) => p.name)).toEqual([a.cfg.name]);
    const all = (await json(call(admin, "GET", "/api/providers"))).providers as Array<{ name: string; source: string }>;
    expect(all).toEqual(expect.arrayContaining([expect.objectContaining({ name: "cfg-count", source: "config" }), expect.objectContaining({ name: a.cfg.name }), expect.objectContaining({ name: b.cfg.name })]));
    // Only the owner or an admin removes.
    expect((await call(b.owner, "DELETE", `/api/providers/${a.cfg.name}`)).status).toBe(403);
    expect((await call(admin, "DELETE", "/api/providers/cfg-count")).status).toBe(403);
    expect(await json(call(a.owner, "DELETE", `/api/providers/${a.cfg.name}`))).toEqual({ removed: a.cfg.name });
    expect((await call(admin, "DELETE", `/api/providers/${b.cfg.name}`)).status).toBe(200);
    expect((await call(a.owner, "DELETE", `/api/providers/${a.cfg.name}`)).status).toBe(404);
    // Removed: no registration, no announcement, and a request of its kind gets no answer.
    expect(await relayStub(env.RELAY).listAgents(a.cfg.kind)).toEqual([]);
    expect(await query({ kinds: [31990], authors: [a.pubkey] })).toEqual([]);
    const silent = await ask(a.cfg.kind, [["i", "anyone?", "text"]], a.pubkey, { ms: 600 });
    silent.relay.close();
    expect(silent.events).toEqual([]);
    // The name (and its identity) stays with its owner: another key cannot take it, the owner can again.
    const otherWs = await createWs(b.owner);
    expect((await call(b.owner, "POST", "/api/providers", { ...a.cfg, workspace: otherWs })).status).toBe(403);
    const again = await call(a.owner, "POST", "/api/providers", a.cfg);
    expect(again.status).toBe(201);
    expect((await json(again)).pubkey).toBe(a.pubkey);
  });
});

describe("edge provider: configured in wrangler.toml", () => {
  it("EDGE_PROVIDERS' provider is registered when a client connects, and serves its kind", async () => {
    const owner = newKey();
    const r = await call(owner, "POST", "/w/edge-provider-cfg", {});
    expect([200, 201]).toContain(r.status);
    const cfg = (await json(call(admin, "GET", "/api/providers"))).providers.find((p: { name: string }) => p.name === "cfg-count");
    expect(cfg).toMatchObject({ kind: 5951, program: "jobcount", workspace: "edge-provider-cfg", source: "config" });
    const { result, relay } = await ask(5951, [["i", "served from the config", "text"]], cfg.pubkey);
    relay.close();
    expect(result?.content).toBe("4 words");
    expect((await relayStub(env.RELAY).listAgents(5951))).toEqual([{ kind: 5951, agent: "cfg-count", handler: HANDLER, pubkey: cfg.pubkey }]);
  });
});
