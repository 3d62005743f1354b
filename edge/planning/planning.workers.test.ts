// Planning runs at the edge, in workerd with real bindings: the API (NIP-98), each run driven by
// its Durable Object's alarm one agent at a time, D1 rows, artifacts in the workspace, the package
// in R2, events into the audit chain and to a real webhook receiver (edge/dev/test-servers.ts),
// SSRF and auth refusals, a paused run resumed, an object aborted mid-run, and the run lock.
import { runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, expect, inject, it } from "vitest";
import { PHASES } from "../../agents/planning/phases.ts";
import { RunLock } from "../../agents/host/planning/lock.ts";
import { RemoteService } from "../../services/remote.ts";
import type { WireOp } from "../../services/remote-wire.ts";
import { runBatch } from "../batch.ts";
import { packageKey } from "./outbox.ts";
import { allowedPrivate, checkOutbound } from "./outbound.ts";
import { call, createWs, errCode, json, newKey, readText, stub } from "../testing.ts";

declare module "vitest" {
  export interface ProvidedContext {
    testServer: string;
    llmUrl: string;
  }
}

const server = inject("testServer");
const llm = `openai:${inject("llmUrl")}#stub`;
const REVIEWED = PHASES.filter((p) => p.review).length;
const AGENTS = PHASES.length + REVIEWED;

type Run = Record<string, any>;

/** Polls the run until `done` says so (or the time is up: the last answer is returned). */
async function until(who: ReturnType<typeof newKey>, id: string, done: (r: Run) => boolean, ms = 90_000): Promise<Run> {
  const end = Date.now() + ms;
  for (;;) {
    const r = await json<Run>(call(who, "GET", `/api/planning/runs/${id}`));
    if (done(r) || Date.now() > end) return r;
    await new Promise((res) => setTimeout(res, 250));
  }
}

const hook = async (name: string): Promise<Array<{ headers: Record<string, string>; body: string; status: number }>> =>
  (await fetch(`${server}/hooks/${name}`)).json();

async function hmac(secret: string, body: string): Promise<string> {
  const enc = new TextEncoder();
  const key = await crypto.subtle.importKey("raw", enc.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return "sha256=" + [...new Uint8Array(await crypto.subtle.sign("HMAC", key, enc.encode(body)))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

describe("planning runs at the edge", { timeout: 180_000 }, () => {
  it("a whole offline run through the API: artifacts in the workspace, package in R2, events signed to a webhook and retried", async () => {
    const a = newKey();
    const name = `h-${crypto.randomUUID().slice(0, 8)}`;
    const secret = "s3cret-" + name;
    const wh = await call(a, "POST", "/api/webhooks", { url: `${server}/hook/${name}?fail=1`, secret });
    expect(wh.status).toBe(201);
    const dest = await json(wh);
    expect(dest).toEqual({ id: expect.any(String), url: `${server}/hook/${name}?fail=1`, events: "*", createdAt: expect.any(String) });
    expect(JSON.stringify(await json(call(a, "GET", "/api/webhooks")))).not.toContain(secret);

    const r = await call(a, "POST", "/api/planning/runs", { idea: "  A bakery that delivers bread by drone " });
    expect(r.status).toBe(202);
    const started = await json(r);
    expect(started).toEqual({ id: expect.stringMatching(/^\d{8}-\d{6}-[0-9a-f]{6}$/), status: "running", workspace: `plan-${started.id}`, idea: "A bakery that delivers bread by drone", createdAt: expect.any(String) });
    const list = await json(call(a, "GET", "/api/planning/runs"));
    expect(list.runs).toEqual([{ id: started.id, idea: started.idea, status: "running", phase: "intake", workspace: started.workspace, createdAt: started.createdAt, updatedAt: expect.any(String) }]);

    const run = await until(a, started.id, (x) => x.status !== "running");
    expect(run).toMatchObject({ status: "completed", verdict: "GO", pivots: 0, calls: AGENTS, error: null, llm: "offline" });
    expect(run.phases.map((p: Run) => p.phase)).toEqual(PHASES.map((p) => p.name));
    const ws = started.workspace;
    for (const p of run.phases) {
      expect(p.artifact).toMatch(new RegExp(`^plans/${started.id}/\\d\\d-${p.phase}\\.md$`));
      expect(await readText(a, ws, p.artifact)).toContain("A bakery that delivers bread by drone");
      expect(p.iterations.length).toBe(1);
      expect(await readText(a, ws, p.iterations[0].artifact)).toBe(await readText(a, ws, p.artifact));
      if (PHASES.find((d) => d.name === p.phase)!.review) expect(p).toMatchObject({ review: "ACCEPT", score: expect.any(Number) });
    }
    expect(run.phases.find((p: Run) => p.phase === "kill-test").verdict).toBe("GO");

    // The package: in the workspace, in R2, and at /package.
    expect(run.package).toEqual({ path: `plans/${started.id}/package.md`, key: packageKey(started.id) });
    const pkg = await readText(a, ws, run.package.path);
    expect(pkg).toContain("# Plan: A bakery that delivers bread by drone");
    expect(await (await env.BLOBS.get(run.package.key))!.text()).toBe(pkg);
    expect(await (await call(a, "GET", `/api/planning/runs/${started.id}/package`)).text()).toBe(pkg);

    // Events: one per finished phase, the verdict, the end; each into the workspace's audit chain.
    const types = run.events.map((e: Run) => e.type);
    expect(types.filter((t: string) => t === "phase_completed")).toHaveLength(PHASES.length);
    expect(types.slice(-1)).toEqual(["run_completed"]);
    expect(run.events.find((e: Run) => e.type === "verdict").data).toMatchObject({ verdict: "GO", pass: 0 });
    const entries: Run[] = [];
    for (let after = 0; ;) {
      const page = (await json(call(a, "GET", `/w/${ws}/audit?after=${after}`))).entries as Run[];
      if (!page.length) break;
      entries.push(...page);
      after = page.at(-1)!.seq;
    }
    const planned = entries.filter((e) => e.action.startsWith("plan."));
    expect(planned.map((e: Run) => e.action)).toEqual(types.map((t: string) => `plan.${t}`));
    expect((await json(call(a, "GET", `/w/${ws}/audit/verify`))).ok).toBe(true);

    // Webhooks: every event, signed; the first delivery answered 500 and came again, the same bytes.
    let got = await hook(name);
    for (let i = 0; i < 100 && got.filter((g) => g.status === 200).length < run.events.length; i++) {
      await new Promise((res) => setTimeout(res, 200));
      got = await hook(name);
    }
    const ok = got.filter((g) => g.status === 200);
    expect(ok.map((g) => JSON.parse(g.body).type).sort()).toEqual([...types].sort());
    for (const g of got) {
      expect(g.headers["x-oanix-signature"]).toBe(await hmac(secret, g.body));
      expect(JSON.parse(g.body)).toMatchObject({ run: started.id, workspace: ws, type: g.headers["x-oanix-event"] });
    }
    expect(got[0]!.status).toBe(500);
    const again = got.find((g, i) => i > 0 && g.headers["x-oanix-delivery"] === got[0]!.headers["x-oanix-delivery"])!;
    expect(again).toMatchObject({ status: 200, body: got[0]!.body });
    const final = await json(call(a, "GET", `/api/planning/runs/${started.id}`));
    expect(final.deliveries.find((d: Run) => d.id === got[0]!.headers["x-oanix-delivery"])).toMatchObject({ attempts: 2, state: "delivered" });
  });

  it("refuses webhook destinations and models inside a network (SSRF), creating nothing", async () => {
    const a = newKey();
    const bad: Array<[string, string]> = [
      ["ftp://example.com/x", "EINVAL"], ["http://user:pw@example.com/", "EINVAL"], ["not a url", "EINVAL"],
      ["http://10.0.0.1/hook", "EACCES"], ["http://[::1]:8080/", "EACCES"], ["http://169.254.169.254/latest/meta-data", "EACCES"],
      ["http://0x7f.2/", "EACCES"], ["http://2130706434/", "EACCES"], ["http://017700000002/", "EACCES"], ["http://[::ffff:127.0.0.1]/", "EACCES"], ["https://8.8.8.8/", "EACCES"], ["http://localhost:9/", "EACCES"],
      ["http://localhost./", "EACCES"], ["http://api.localhost/", "EACCES"], ["http://metadata.google.internal/", "EACCES"], ["http://intranet/", "EACCES"],
      ["http://printer.local/", "EACCES"], ["http://127.0.0.2/", "EACCES"],
    ];
    for (const [url, code] of bad) {
      const r = await call(a, "POST", "/api/webhooks", { url });
      expect([url, r.status, ((await r.json()) as Run).error?.code]).toEqual([url, code === "EINVAL" ? 400 : 403, code]);
    }
    expect((await json(call(a, "GET", "/api/webhooks"))).webhooks).toEqual([]);
    const m = await call(a, "POST", "/api/planning/runs", { idea: "x", llm: "openai:http://192.168.1.10:11434/v1" });
    expect([m.status, await errCode(m)]).toEqual([403, "EACCES"]);
    // Without the development var (a deployed edge) the loopback is refused too, in every spelling.
    for (const url of [`${server}/hook/x`, "http://0x7f.1/", "http://2130706433/", "http://localhost/"]) {
      expect(() => checkOutbound(url, [], "webhook")).toThrow(expect.objectContaining({ code: "EACCES" }));
    }
    expect(() => allowedPrivate("*")).toThrow(/no wildcards/);
    // The local edge lets its own loopback through (ALLOW_PRIVATE_HOSTS), by exact host.
    expect((await call(a, "POST", "/api/webhooks", { url: `${server}/hook/x`, events: ["run_completed", "verdict"] })).status).toBe(201);
    expect((await call(a, "POST", "/api/webhooks", { url: `${server}/hook/x`, events: ["nope"] })).status).toBe(400);
    expect((await json(call(a, "GET", "/api/planning/runs"))).runs).toEqual([]);
  });

  it("refuses missing, bad, replayed or token credentials, other keys' runs and bad input, creating nothing", async () => {
    const a = newKey(), b = newKey();
    const url = "http://edge.test/api/planning/runs";
    expect((await call(null, "GET", "/api/planning/runs")).status).toBe(401);
    expect((await call(null, "GET", "/api/webhooks")).status).toBe(401);
    const signed = a.authorize(url, "GET");
    const once = await exports.default.fetch(new Request(url, { headers: { authorization: signed } }));
    expect(once.status).toBe(200);
    expect((await exports.default.fetch(new Request(url, { headers: { authorization: signed } }))).status).toBe(401); // replayed
    expect((await exports.default.fetch(new Request(url, { method: "POST", headers: { authorization: a.authorize(url, "GET") }, body: "{}" }))).status).toBe(401); // wrong method
    const ws = await createWs(a);
    const tok = (await json(call(a, "POST", `/w/${ws}/grants`, { prefix: "", rights: "rw" }))).token as string;
    expect((await call(tok, "GET", "/api/planning/runs")).status).toBe(403);

    for (const body of [{}, { idea: " " }, { idea: "x".repeat(4001) }, { idea: 3 }, { idea: "x", llm: "gpt" }, { idea: "x", reviewIterations: 0 },
      { idea: "x", maxPivots: -1 }, { idea: "x", budgetTokens: "lots" }, { idea: "x", workspace: "../etc" }]) {
      const r = await call(a, "POST", "/api/planning/runs", body);
      expect([JSON.stringify(body).slice(0, 40), r.status, await errCode(r)]).toEqual([JSON.stringify(body).slice(0, 40), 400, "EINVAL"]);
    }
    const ai = await call(a, "POST", "/api/planning/runs", { idea: "x", llm: "workers-ai" });
    expect([ai.status, await errCode(ai)]).toEqual([501, "ENOTSUP"]);
    // Another key's workspace: not yours to plan in (403); another key's run does not exist for you (404).
    expect((await call(b, "POST", "/api/planning/runs", { idea: "x", workspace: ws })).status).toBe(403);
    expect((await json(call(a, "GET", "/api/planning/runs"))).runs).toEqual([]);
    const mine = await json(call(a, "POST", "/api/planning/runs", { idea: "Bread by bike", workspace: ws, budgetTokens: 1 }));
    expect(mine.workspace).toBe(ws);
    expect((await call(b, "GET", `/api/planning/runs/${mine.id}`)).status).toBe(404);
    expect((await call(b, "POST", `/api/planning/runs/${mine.id}/resume`, {})).status).toBe(404);
    expect((await call(b, "GET", `/api/planning/runs/${mine.id}/package`)).status).toBe(404);
    expect((await json(call(b, "GET", "/api/planning/runs"))).runs).toEqual([]);
    const hookId = (await json(call(a, "POST", "/api/webhooks", { url: `${server}/hook/auth` }))).id;
    expect((await call(b, "DELETE", `/api/webhooks/${hookId}`)).status).toBe(404);
    expect((await call(a, "DELETE", `/api/webhooks/${hookId}`)).status).toBe(204);
    expect((await json(call(a, "GET", "/api/webhooks"))).webhooks).toEqual([]);
    await until(a, mine.id, (x) => x.status !== "running");
  });

  it("a run out of budget pauses (having spent no more than it was given) and resumes when given more", async () => {
    const a = newKey();
    const started = await json(call(a, "POST", "/api/planning/runs", { idea: "Bread subscriptions by bike", budgetTokens: 700 }));
    const paused = await until(a, started.id, (x) => x.status !== "running");
    expect(paused).toMatchObject({ status: "paused", error: { code: "EDQUOT" } });
    expect(paused.tokens).toBeLessThanOrEqual(700);
    expect(paused.events.at(-1)).toMatchObject({ type: "run_paused" });
    const done = paused.phases.filter((p: Run) => p.artifact).length;
    expect(done).toBeGreaterThan(0);
    // Resumed with the same budget it pauses again at once; with more it finishes.
    expect(await json(call(a, "POST", `/api/planning/runs/${started.id}/resume`, {}))).toEqual({ id: started.id, status: "running" });
    const again = await until(a, started.id, (x) => x.status !== "running");
    expect(again).toMatchObject({ status: "paused", calls: paused.calls });
    expect(await json(call(a, "POST", `/api/planning/runs/${started.id}/resume`, { budgetTokens: 100_000 }))).toEqual({ id: started.id, status: "running" });
    const finished = await until(a, started.id, (x) => x.status !== "running");
    expect(finished).toMatchObject({ status: "completed", calls: AGENTS, error: null });
    expect(finished.events.map((e: Run) => e.type).filter((t: string) => t.startsWith("run_"))).toEqual(["run_paused", "run_paused", "run_completed"]);
    expect(await json(call(a, "POST", `/api/planning/runs/${started.id}/resume`, {}))).toEqual({ id: started.id, status: "completed" });
  });

  it("a PIVOT restarts the phases with the refined idea; a KILL parks it (D1, /parked, events, no package)", async () => {
    const a = newKey();
    const idea = "Bread by drone (pivot-then-kill)";
    const started = await json(call(a, "POST", "/api/planning/runs", { idea, llm, reviewIterations: 1 }));
    const run = await until(a, started.id, (x) => x.status !== "running");
    const kill = PHASES.findIndex((p) => p.name === "kill-test") + 1;
    expect(run).toMatchObject({ status: "killed", verdict: "KILL", pivots: 1, refinedIdea: "bread subscriptions by bike", package: null });
    // Both passes: the first under pivot-1/, the second in the run's directory, each file there.
    const passes = [0, 1].map((pass) => run.phases.filter((p: Run) => p.pass === pass));
    expect(passes.map((ps) => ps.length)).toEqual([kill, kill]);
    expect(passes[0]![0].artifact).toBe(`plans/${started.id}/pivot-1/01-intake.md`);
    expect(passes[1]![0].artifact).toBe(`plans/${started.id}/01-intake.md`);
    expect(passes.map((ps) => ps.at(-1).verdict)).toEqual(["PIVOT", "KILL"]);
    for (const p of [...passes[0]!, ...passes[1]!]) expect((await readText(a, started.workspace, p.artifact)).length).toBeGreaterThan(0);
    expect(await readText(a, started.workspace, passes[1]![0].artifact)).toContain("bread subscriptions by bike");
    const parked = { run: started.id, workspace: started.workspace, idea, refinedIdea: "bread subscriptions by bike", phase: "kill-test", reason: "margins too thin for a local bakery", revisitMonths: 12, parkedAt: expect.any(String) };
    expect(run.parked).toEqual(parked);
    expect((await json(call(a, "GET", "/api/planning/parked"))).parked).toEqual([parked]);
    const verdicts = run.events.filter((e: Run) => e.type === "verdict").map((e: Run) => e.data);
    expect(verdicts).toEqual([expect.objectContaining({ verdict: "PIVOT", pass: 0, refinedIdea: "bread subscriptions by bike" }), expect.objectContaining({ verdict: "KILL", pass: 1, reason: "margins too thin for a local bakery" })]);
    expect(run.events.at(-1)).toMatchObject({ type: "run_parked", data: { parked: expect.objectContaining({ reason: "margins too thin for a local bakery" }) } });
    expect((await call(a, "GET", `/api/planning/runs/${started.id}/package`)).status).toBe(404);
  });

  it("an object aborted mid-run resumes from its checkpoint and repeats no finished agent", async () => {
    const a = newKey();
    const idea = `Drone bread ${crypto.randomUUID().slice(0, 8)}`;
    await fetch(`${server}/llm/delay?ms=150`);
    try {
      const started = await json(call(a, "POST", "/api/planning/runs", { idea, llm }));
      expect(started.status).toBe("running");
      const mine = async () => ((await (await fetch(`${server}/llm/requests`)).json()) as Array<{ body: { messages: Array<{ content: string }> } }>)
        .filter((r) => JSON.stringify(r.body.messages).includes(idea));
      // Abort the run's object twice while it is in the middle of an agent (its model call in flight).
      const obj = env.PLANNING.get(env.PLANNING.idFromName(started.id));
      for (const at of [5, 12]) {
        for (let i = 0; i < 400 && (await mine()).length < at; i++) await new Promise((res) => setTimeout(res, 50));
        await runInDurableObject(obj, (_, state) => state.abort("test: evicted mid-run")).catch(() => {});
      }
      const run = await until(a, started.id, (x) => x.status !== "running");
      expect(run).toMatchObject({ status: "completed", calls: AGENTS, llm });
      const asked = (await mine()).map((r) => JSON.stringify(r.body.messages));
      // Each agent's call was made once; only a call in flight at an abort may have been asked again.
      expect(new Set(asked).size).toBe(AGENTS);
      expect(asked.length).toBeLessThanOrEqual(AGENTS + 2);
    } finally {
      await fetch(`${server}/llm/delay?ms=0`);
    }
  });

  it("waits while another driver (a CLI resuming the same run) holds the run's lock", async () => {
    const a = newKey();
    const ws = await createWs(a);
    const started = await json(call(a, "POST", "/api/planning/runs", { idea: "Bread by boat", workspace: ws }));
    // A second driver takes the run's lock in its workspace, as `oanix plan --resume` does.
    const st = stub(ws);
    const cred = { type: "internal" as const, principal: { kind: "owner" as const, pubkey: a.pubkey } };
    const fs = new RemoteService(`edge://test/w/${ws}`, { transport: (ops: WireOp[], parts: Uint8Array[], atomic: boolean) => runBatch(env, st, cred, ops, parts, atomic), attrCacheMs: 0 });
    let lock: RunLock | undefined;
    for (let i = 0; i < 200 && !lock; i++) {
      lock = await RunLock.acquire(fs, started.id, { owner: "cli:someone-else", ttlMs: 60_000 }).catch(() => undefined); // busy while a slice runs
    }
    if (!lock) throw new Error("never got the lock");
    const held = (await json(call(a, "GET", `/api/planning/runs/${started.id}`))).calls;
    await new Promise((res) => setTimeout(res, 1500));
    expect((await json(call(a, "GET", `/api/planning/runs/${started.id}`))).calls).toBe(held);
    await lock.release();
    const run = await until(a, started.id, (x) => x.calls > held + 2);
    expect(run.calls).toBeGreaterThan(held + 2);
  });
});
