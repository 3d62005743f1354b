// D1 (edge/d1.ts): jobs and the hash-chained audit log, inside workerd with real bindings.
import { describe, expect, it } from "vitest";
import { env } from "cloudflare:workers";
import { evictDurableObject } from "cloudflare:test";
import init from "./migrations/0001_init.sql";
import providers from "./migrations/0002_edge_providers.sql";
import planning from "./migrations/0003_planning.sql";
import { ensureSchema, statementsOf } from "./d1.ts";
import { storedProviders } from "./provider/store.ts";
import { ensurePlanningSchema } from "./planning/schema.ts";
import { INLINE_MAX } from "../services/remote-wire.ts";
import { batch, call, createWs, json, newKey, text } from "./testing.ts";

const stub = (name: string) => env.WORKSPACE.get(env.WORKSPACE.idFromName(name));
const read = async (who: Parameters<typeof batch>[0], ws: string, path: string, version?: number) =>
  text((await batch(who, ws, [{ op: "read", path, offset: 0, length: 1 << 20, ...(version !== undefined ? { version } : {}) }])).results[0]!.bytes);

describe("D1: jobs and the audit log", () => {
  it("the Worker applies each migration file on first use: every table and index it names is in D1", async () => {
    await ensureSchema(env.DB);
    await storedProviders(env.DB);
    await ensurePlanningSchema(env.DB);
    const have = new Set((await env.DB.prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')").all<{ name: string }>()).results.map((r) => r.name));
    for (const file of [init, providers, planning]) {
      // Read from the file's text, not through statementsOf: a statement it lost or split is missed here.
      const named = [...file.matchAll(/CREATE (?:TABLE|INDEX) IF NOT EXISTS (\w+)/g)].map((m) => m[1]!);
      expect(named.length).toBeGreaterThan(1);
      expect(statementsOf(file)).toHaveLength(named.length);
      for (const name of named) expect(have.has(name), name).toBe(true);
    }
  });

  it("jobs move queued → running → succeeded|failed, with events, per workspace", async () => {
    const a = newKey(), b = newKey();
    const ws = await createWs(a);
    const job = await json(call(a, "POST", `/w/${ws}/jobs`, { kind: "summarize", input: { file: "/workspace/a" } }));
    expect(job.state).toBe("queued");
    expect((await call(a, "POST", `/w/${ws}/jobs/${job.id}/state`, { state: "succeeded" })).status).toBe(400);
    expect((await json(call(a, "POST", `/w/${ws}/jobs/${job.id}/state`, { state: "running" }))).state).toBe("running");
    expect((await call(a, "POST", `/w/${ws}/jobs/${job.id}/events`, { type: "progress", data: { pct: 50 } })).status).toBe(201);
    const done = await json(call(a, "POST", `/w/${ws}/jobs/${job.id}/state`, { state: "succeeded", result: { words: 3 } }));
    expect(done.state).toBe("succeeded");
    expect((await call(a, "POST", `/w/${ws}/jobs/${job.id}/state`, { state: "failed", error: "late" })).status).toBe(400);
    const got = await json(call(a, "GET", `/w/${ws}/jobs/${job.id}`));
    expect(got.job.result).toEqual({ words: 3 });
    expect(got.events.map((e: { type: string }) => e.type)).toEqual(["queued", "running", "progress", "succeeded"]);
    // Racing transitions: exactly one wins.
    const j2 = await json(call(a, "POST", `/w/${ws}/jobs`, { kind: "x" }));
    const rs = await Promise.all([0, 1, 2, 3].map(() => call(a, "POST", `/w/${ws}/jobs/${j2.id}/state`, { state: "running" })));
    expect(rs.filter((r) => r.status === 200)).toHaveLength(1);
    // Other workspaces and other keys see nothing.
    const other = await createWs(a);
    expect((await call(a, "GET", `/w/${other}/jobs/${job.id}`)).status).toBe(404);
    expect((await call(b, "GET", `/w/${ws}/jobs`)).status).toBe(403);
    expect((await json(call(a, "GET", `/w/${ws}/jobs`))).jobs).toHaveLength(2);
  });

  it("every write and grant is in a hash chain; verify detects tampering, deletion and truncation", async () => {
    const a = newKey();
    const ws = await createWs(a);
    await call(a, "PUT", `/w/${ws}/f/a`, "1");
    await batch(a, ws, [{ op: "mkdir", path: "d" }, { op: "rename", from: "a", to: "d/a" }]);
    await call(a, "POST", `/w/${ws}/grants`, { prefix: "d", rights: "r" });
    await evictDurableObject(stub(ws)); // the outbox is durable: nothing is lost across eviction
    const v = await json(call(a, "GET", `/w/${ws}/audit/verify`));
    expect(v.ok).toBe(true);
    const log = await json(call(a, "GET", `/w/${ws}/audit`));
    const actions = log.entries.map((e: { action: string }) => e.action);
    expect(actions).toEqual(["create", "create", "put", "mkdir", "rename", "grant"]);
    expect(v.entries).toBe(6);
    // Tamper with one entry's detail.
    await env.DB.prepare("UPDATE audit SET detail = ? WHERE workspace = ? AND seq = 3").bind('{"path":"evil"}', ws).run();
    const t = await json(call(a, "GET", `/w/${ws}/audit/verify`));
    expect(t).toMatchObject({ ok: false, brokenAt: 3 });
    // Restore, then delete the newest entry: the head held by the DO catches the truncation.
    const ws2 = await createWs(a);
    await call(a, "PUT", `/w/${ws2}/f/a`, "1");
    expect((await json(call(a, "GET", `/w/${ws2}/audit/verify`))).ok).toBe(true);
    await env.DB.prepare("DELETE FROM audit WHERE workspace = ? AND seq = (SELECT max(seq) FROM audit WHERE workspace = ?)").bind(ws2, ws2).run();
    expect((await json(call(a, "GET", `/w/${ws2}/audit/verify`))).ok).toBe(false);
  });
});
