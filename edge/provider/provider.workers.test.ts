// The edge provider in workerd: nostr-tools customers on the Worker's own relay (/relay, a real
// WebSocket through the Worker) ask for jobs that a bundled agent answers in a Runner Durable
// Object over the provider's workspace, with no machine of the provider's on.
import { describe, expect, it } from "vitest";
import { env, exports } from "cloudflare:workers";
import { finalizeEvent, generateSecretKey, type Event } from "nostr-tools/pure";
import type { AbstractRelay } from "nostr-tools/abstract-relay";
import type { Filter } from "nostr-tools/filter";
import type { JobContext } from "../../relay/nip90.ts";
import type { NostrEvent } from "../../relay/event.ts";
import { relayStub } from "../../relay/http.ts";
import { nostrClient, type FetchTarget } from "../../relay/testing.ts";
import { keySigner } from "../../services/nip98.ts";
import type { Cred } from "../auth.ts";
import { getJob, listJobs } from "../d1.ts";
import { call, createWs, json, newKey, stub } from "../testing.ts";
import { cancelJob, serveJob } from "./handler.ts";
import { HANDLER } from "./relay.ts";
import { jobState } from "./store.ts";
import type { ProviderEnv } from "./config.ts";

const worker: FetchTarget = { fetch: (input, init) => exports.default.fetch(new Request(input as string, init)) };
const admin = keySigner("7e57ad31".repeat(8)); // in ADMIN_PUBKEYS (vitest.config.ts)
const providerEnv = env as unknown as ProviderEnv;
const now = () => Math.floor(Date.now() / 1000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const status = (e: Event) => e.tags.find((t) => t[0] === "status")?.[1];
let nextKind = 5960;

function sign(sk: Uint8Array, kind: number, tags: string[][], content = ""): Event {
  return finalizeEvent({ kind, created_at: now(), tags, content }, sk);
}

/** A provider added through the admin route over a fresh workspace of a fresh owner. */
async function addProvider(o: Record<string, unknown> = {}) {
  const owner = newKey();
  const ws = await createWs(owner);
  const cfg = { name: `p-${crypto.randomUUID().slice(0, 8)}`, kind: nextKind++, program: "jobcount", workspace: ws, ...o } as { name: string; kind: number; program: string; workspace: string };
  const r = await call(owner, "POST", "/api/providers", cfg);
  expect(r.status, await r.clone().text()).toBe(201);
  const view = await json(r);
  return { owner, ws, cfg, pubkey: view.pubkey as string, view };
}

/** Everything matching `filter` the relay holds now. */
async function query(filter: Filter): Promise<Event[]> {
  const relay = await nostrClient(worker);
  const evs: Event[] = [];
  await new Promise<void>((resolve) => {
    const sub = relay.subscribe([filter], { onevent: (e) => evs.push(e), oneose: () => (sub.close(), resolve()) });
  });
  relay.close();
  return evs;
}

/** Follows everything naming `id` (#e) until `done` holds or `ms` pass. */
function follow(relay: AbstractRelay, id: string, done: (evs: Event[]) => boolean, ms: number): Promise<Event[]> {
  return new Promise((resolve) => {
    const evs: Event[] = [];
    const finish = () => (clearTimeout(t), sub.close(), resolve(evs));
    const t = setTimeout(finish, ms);
    const sub = relay.subscribe([{ "#e": [id] }], {
      onevent(e) {
        evs.push(e);
        if (done(evs)) finish();
      },
    });
  });
}

/**
 * A customer asks for a job over the relay and follows it until a result or an error from
 * `pubkey` (only that provider's events count: NIP-90 forgery), or `ms`.
 */
async function ask(kind: number, tags: string[][], pubkey: string, o: { ms?: number; sk?: Uint8Array; content?: string; until?: (evs: Event[]) => boolean } = {}) {
  const sk = o.sk ?? generateSecretKey();
  const relay = await nostrClient(worker);
  const req = sign(sk, kind, tags, o.content);
  const mine = (es: Event[]) => es.filter((e) => e.pubkey === pubkey);
  const until = o.until ?? ((es: Event[]) => es.some((e) => e.kind === kind + 1000 || status(e) === "error"));
  const got = follow(relay, req.id, (es) => until(mine(es)), o.ms ?? 15_000);
  await sleep(20);
  await relay.publish(req);
  const events = mine(await got);
  return { req, sk, relay, events, result: events.find((e) => e.kind === kind + 1000), error: events.find((e) => status(e) === "error") };
}

const summary = (events: Event[]) => events.map((e) => (e.kind === 7000 ? `${status(e)}${e.content ? `: ${e.content}` : ""}` : String(e.kind)));

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
