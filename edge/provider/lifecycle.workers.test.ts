// An edge job's life across time and restarts: `job` inputs that wait for their parent's result,
// `event` inputs read from the relay, the job's own object aborted while it waits and while its
// agent runs, and the relay object aborted mid-run. Real relay (nostr-tools customers through the
// Worker), real Runner, real local servers (a page that takes its time: edge/dev/cap-servers.ts).
import { describe, expect, inject, it } from "vitest";
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { generateSecretKey, type Event } from "nostr-tools/pure";
import { relayStub } from "../../relay/http.ts";
import type { Cred } from "../auth.ts";
import { listJobs } from "../d1.ts";
import { stub } from "../testing.ts";
import type { ProviderEnv } from "./config.ts";
import { jobObjectName } from "./job.ts";
import { nostrClient } from "../../relay/testing.ts";
import { addProvider, answersTo, ask, kindsFrom, sign, sleep, status, summary, worker } from "./testing.ts";

kindsFrom(5800); // apart from the other provider suites' kinds: the relay is one

const servers = inject("capServers");
const host = new URL(servers.http).host;
const providerEnv = env as unknown as ProviderEnv;
const jobObject = (provider: string, request: string) => providerEnv.PROVIDER_JOBS.get(providerEnv.PROVIDER_JOBS.idFromName(jobObjectName(provider, request)));
const abort = (s: DurableObjectStub) => runInDurableObject(s, (_, state) => state.abort("test: evicted")).catch(() => {});

/** A provider running `summarize` on a page of the local server, granted http there, the offline model and the edge's relay. */
const summarizer = (o: Record<string, unknown> = {}) =>
  addProvider({ program: "summarize", caps: { http: [host], llm: "offline", nostr: true }, timeoutMs: 15_000, ...o }, { http: [host], nostr: true });
const slowPage = (ms: number) => `${servers.http}/slow?ms=${ms}&${crypto.randomUUID()}`;

describe("edge provider: chained inputs", () => {
  it("a job input waits for its parent's result (told once), then the agent gets the parent's content", async () => {
    const upper = await addProvider({ price: undefined });
    const count = await addProvider();
    const customer = generateSecretKey();
    // The parent is signed now but published later: the child is asked for first.
    const parent = sign(customer, upper.cfg.kind, [["i", "one two three four", "text"], ["param", "op", "upper"]]);
    const waiting = (es: Event[]) => es.some((e) => e.content.startsWith("waiting"));
    const child = await ask(count.cfg.kind, [["i", parent.id, "job"]], count.pubkey, { sk: customer, until: waiting, ms: 5000 });
    expect(summary(child.events)).toEqual(["processing", `processing: waiting for job ${parent.id}`]);
    await child.relay.publish(parent);
    const answers = await answersTo(child.req.id, count.pubkey);
    child.relay.close();
    expect(summary(answers).sort()).toEqual([String(count.cfg.kind + 1000), "processing", `processing: waiting for job ${parent.id}`]);
    expect(answers.find((e) => e.kind === count.cfg.kind + 1000)!.content).toBe("4 words");
    // The spec the agent saw: the parent's content in data, its id in ref, the type kept.
    const [job] = (await listJobs(env.DB, count.ws)).filter((j) => j.kind === `nip90:${count.cfg.kind}`);
    const spec = JSON.parse(new TextDecoder().decode((await stub(count.ws).taskGet({ type: "internal", principal: { kind: "owner", pubkey: count.owner.pubkey } }, job!.id, "spec.json") as { value: Uint8Array }).value));
    expect(spec.input).toEqual([{ data: "ONE TWO THREE FOUR", type: "job", ref: parent.id }]);
  });

  it("a parent that never answers: error feedback when the chain's time is up, and nothing runs", async () => {
    const { ws, cfg, pubkey } = await addProvider({ chainTimeoutMs: 1500 });
    const never = "c".repeat(64);
    const { error, events, relay } = await ask(cfg.kind, [["i", never, "job"]], pubkey, { ms: 10_000 });
    relay.close();
    expect(summary(events)).toEqual(["processing", `processing: waiting for job ${never}`, `error: input job ${never} gave no result within 2 s`]);
    expect(error).toBeDefined();
    expect((await listJobs(env.DB, ws)).filter((j) => j.kind === `nip90:${cfg.kind}`)).toEqual([]);
  });

  it("an event input is the event's content, read from the edge's relay", async () => {
    const { cfg, pubkey } = await addProvider();
    const relay = await nostrClient(worker);
    const note = sign(generateSecretKey(), 1, [], "notes from the field, five words");
    await relay.publish(note);
    relay.close();
    const { result, relay: r2 } = await ask(cfg.kind, [["i", note.id, "event"]], pubkey);
    r2.close();
    expect(result?.content).toBe("6 words");
  });
});

describe("edge provider: restarts", () => {
  it("the job's object aborted while it waits for a run slot: it goes on from its record (queued told once), answered once", async () => {
    const { owner, ws, cfg, pubkey } = await addProvider();
    const cred: Cred = { type: "internal", principal: { kind: "owner", pubkey: owner.pubkey } };
    for (const s of ["hold-1", "hold-2"]) expect((await stub(ws).runAdmit(cred, s)).ok).toBe(true);
    const queued = (es: Event[]) => es.some((e) => e.content.startsWith("queued"));
    const { req, relay } = await ask(cfg.kind, [["i", "patience is a virtue", "text"]], pubkey, { until: queued, ms: 5000 });
    await abort(jobObject(cfg.name, req.id));
    await abort(jobObject(cfg.name, req.id));
    for (const s of ["hold-1", "hold-2"]) await stub(ws).runRelease(cred, s);
    const answers = await answersTo(req.id, pubkey);
    relay.close();
    expect(summary(answers).sort()).toEqual([String(cfg.kind + 1000), "processing", `processing: queued: waiting for a run slot in workspace ${ws}`]);
    expect(answers.find((e) => e.kind === cfg.kind + 1000)!.content).toBe("4 words");
  });

  it("the job's object aborted while its agent runs: the run is not started again, its outcome is read back and answered once", async () => {
    const { ws, cfg, pubkey } = await summarizer();
    const running = (es: Event[]) => es.some((e) => status(e) === "processing");
    const { req, relay } = await ask(cfg.kind, [["i", slowPage(1500), "text"]], pubkey, { until: running, ms: 5000 });
    const jobs = async () => (await listJobs(env.DB, ws)).filter((j) => j.kind === `nip90:${cfg.kind}`);
    for (let i = 0; i < 100 && (await jobs())[0]?.state !== "running"; i++) await sleep(20);
    expect((await jobs())[0]?.state).toBe("running");
    await abort(jobObject(cfg.name, req.id));
    const answers = await answersTo(req.id, pubkey, 25_000);
    relay.close();
    expect(summary(answers).map((s) => s.replace(/^processing.*/, "processing")).sort()).toEqual([String(cfg.kind + 1000), "processing"]);
    expect(answers.find((e) => e.kind === cfg.kind + 1000)!.content).toContain("SUMMARY:");
    expect((await jobs()).map((j) => j.state)).toEqual(["succeeded"]);
  });

  it("the relay object aborted while the agent runs: the job still answers, through the relay as it is after the restart", async () => {
    const { ws, cfg, pubkey } = await summarizer();
    const running = (es: Event[]) => es.some((e) => status(e) === "processing");
    const { req, relay } = await ask(cfg.kind, [["i", slowPage(1500), "text"]], pubkey, { until: running, ms: 5000 });
    relay.close();
    const jobs = async () => (await listJobs(env.DB, ws)).filter((j) => j.kind === `nip90:${cfg.kind}`);
    for (let i = 0; i < 100 && (await jobs())[0]?.state !== "running"; i++) await sleep(20);
    expect((await jobs())[0]?.state).toBe("running");
    await abort(relayStub(env.RELAY) as unknown as DurableObjectStub);
    const answers = await answersTo(req.id, pubkey, 25_000);
    expect(answers.filter((e) => e.kind === cfg.kind + 1000)).toHaveLength(1);
    expect(answers.find((e) => e.kind === cfg.kind + 1000)!.content).toContain("SUMMARY:");
    expect((await jobs()).map((j) => j.state)).toEqual(["succeeded"]);
  });
});
