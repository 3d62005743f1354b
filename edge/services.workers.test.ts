// Versions, snapshots and forks; D1 jobs and the audit chain; KV task files and the registry;
// logs in R2 with a live tail — inside workerd with real bindings.
import { describe, expect, it } from "vitest";
import { env } from "cloudflare:workers";
import { evictDurableObject } from "cloudflare:test";
import migration from "./migrations/0001_init.sql?raw";
import { SCHEMA_STATEMENTS } from "./d1.ts";
import { INLINE_MAX } from "../services/remote-wire.ts";
import { batch, call, createWs, json, newKey, text } from "./testing.ts";

const stub = (name: string) => env.WORKSPACE.get(env.WORKSPACE.idFromName(name));
const read = async (who: Parameters<typeof batch>[0], ws: string, path: string, version?: number) =>
  text((await batch(who, ws, [{ op: "read", path, offset: 0, length: 1 << 20, ...(version !== undefined ? { version } : {}) }])).results[0]!.bytes);

describe("versions, snapshots, forks", () => {
  it("every committed write is a version and any file reads as of a version", async () => {
    const a = newKey();
    const ws = await createWs(a);
    await call(a, "PUT", `/w/${ws}/f/doc`, "one");
    const v1 = (await json(call(a, "GET", `/w/${ws}`))).version as number;
    await call(a, "PUT", `/w/${ws}/f/doc`, "two");
    await batch(a, ws, [{ op: "remove", path: "doc" }]);
    expect(await read(a, ws, "doc", v1)).toBe("one");
    expect(text(new Uint8Array(await (await call(a, "GET", `/w/${ws}/f/doc?v=${v1}`)).arrayBuffer()))).toBe("one");
    expect((await call(a, "GET", `/w/${ws}/f/doc`)).status).toBe(404);
    const hist = await json(call(a, "GET", `/w/${ws}/versions?path=doc`));
    expect(hist.entries.map((e: { action: string }) => e.action)).toEqual(["remove", "put", "put", "create"]);
    expect((await batch(a, ws, [{ op: "readdir", path: "", version: v1 }])).results[0]).toMatchObject({ ok: true, entries: [{ name: "doc", type: "file" }] });
    expect((await batch(a, ws, [{ op: "read", path: "doc", offset: 0, length: 1, version: 10_000 }])).results[0]).toMatchObject({ ok: false, error: { code: "EINVAL" } });
  });

  it("snapshots name a version; a fork starts from it, shares R2 pieces, and changes independently", async () => {
    const a = newKey(), b = newKey();
    const ws = await createWs(a);
    const big = new Uint8Array(INLINE_MAX * 2).fill(7);
    await call(a, "PUT", `/w/${ws}/f/src/big.bin?parents=1`, big);
    await call(a, "PUT", `/w/${ws}/f/src/small.txt`, "v1");
    expect((await call(a, "POST", `/w/${ws}/snapshots`, { name: "release" })).status).toBe(201);
    expect((await call(a, "POST", `/w/${ws}/snapshots`, { name: "release" })).status).toBe(409);
    await call(a, "PUT", `/w/${ws}/f/src/small.txt`, "v2 after snapshot");
    expect(text(new Uint8Array(await (await call(a, "GET", `/w/${ws}/f/src/small.txt?snapshot=release`)).arrayBuffer()))).toBe("v1");
    // b cannot fork what it cannot read.
    expect((await call(b, "POST", `/w/${ws}/fork`, { to: ws + "-b" })).status).toBe(403);
    const objectsBefore = (await env.BLOBS.list({ prefix: "blobs/" })).objects.length;
    const f = await call(a, "POST", `/w/${ws}/fork`, { to: ws + "-fork", snapshot: "release" });
    expect(f.status).toBe(201);
    expect((await env.BLOBS.list({ prefix: "blobs/" })).objects.length).toBe(objectsBefore); // nothing copied
    const fork = ws + "-fork";
    expect(await read(a, fork, "src/small.txt")).toBe("v1");
    expect((await batch(a, fork, [{ op: "read", path: "src/big.bin", offset: 0, length: big.length }])).results[0]!.bytes).toEqual(big);
    await call(a, "PUT", `/w/${fork}/f/src/small.txt`, "fork's own");
    expect(await read(a, ws, "src/small.txt")).toBe("v2 after snapshot");
    expect(await read(a, fork, "src/small.txt")).toBe("fork's own");
    expect((await json(call(a, "GET", `/w/${fork}`))).forkedFrom).toMatch(new RegExp(`^${ws}@\\d+$`));
    // A fork target that exists is refused.
    expect((await call(a, "POST", `/w/${ws}/fork`, { to: fork })).status).toBe(409);
  });
});

describe("D1: jobs and the audit log", () => {
  it("the D1 migration file and the schema the Worker applies are the same statements", () => {
    const norm = (s: string) => s.replace(/\s+/g, " ").trim();
    const fromFile = migration.replace(/--[^\n]*\n/g, "\n").split(";").map(norm).filter(Boolean);
    expect(fromFile).toEqual(SCHEMA_STATEMENTS.map(norm));
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

describe("KV: task files and the namespace registry", () => {
  it("task writes go through the DO and are read back from KV", async () => {
    const a = newKey(), b = newKey();
    const ws = await createWs(a);
    const spec = JSON.stringify({ prompt: "count words" });
    expect((await call(a, "PUT", `/w/${ws}/task/job1/spec.json`, spec)).status).toBe(201);
    const r = await call(a, "GET", `/w/${ws}/task/job1/spec.json`);
    expect(await r.text()).toBe(spec);
    expect(r.headers.get("x-oanix-source")).toBe("kv");
    expect(await env.KV.get(`task:${ws}:job1:spec.json`)).toBe(spec);
    // The DO is the authority: with the KV copy gone, the read still answers.
    await env.KV.delete(`task:${ws}:job1:spec.json`);
    const r2 = await call(a, "GET", `/w/${ws}/task/job1/spec.json`);
    expect(await r2.text()).toBe(spec);
    expect(r2.headers.get("x-oanix-source")).toBe("do");
    expect((await call(b, "GET", `/w/${ws}/task/job1/spec.json`)).status).toBe(403);
    expect((await call(b, "PUT", `/w/${ws}/task/job1/spec.json`, "{}")).status).toBe(403);
    expect((await call(a, "GET", `/w/${ws}/task/job1/missing`)).status).toBe(404);
  });

  it("the registry maps an agent id to its mounts; the first key owns the id", async () => {
    const a = newKey(), b = newKey();
    const id = "agent-" + crypto.randomUUID().slice(0, 8);
    const mounts = { "/workspace": "http://127.0.0.1:8787/w/demo", "/task": "task:spec.json" };
    expect((await call(a, "PUT", `/registry/${id}`, { mounts })).status).toBe(201);
    expect((await json(call(a, "GET", `/registry/${id}`))).mounts).toEqual(mounts);
    expect((await call(b, "PUT", `/registry/${id}`, { mounts: {} })).status).toBe(403);
    expect((await call(b, "GET", `/registry/${id}`)).status).toBe(403);
    expect((await call(a, "PUT", `/registry/${id}`, { mounts: { workspace: 1 } })).status).toBe(400);
    expect((await json(call(a, "GET", `/registry/${id}`))).mounts).toEqual(mounts);
  });
});

describe("logs: R2 segments and a live tail", () => {
  it("appends are readable at once, flushed to R2 segments, and survive eviction", async () => {
    const a = newKey();
    const ws = await createWs(a);
    const chunk = "x".repeat(100 * 1024) + "\n";
    let expected = "";
    for (let i = 0; i < 4; i++) {
      const line = `${i}:${chunk}`;
      expected += line;
      expect((await call(a, "POST", `/w/${ws}/logs/stdout`, line)).status).toBe(200);
    }
    await call(a, "POST", `/w/${ws}/logs/stdout`, "tail\n");
    expected += "tail\n";
    const segs = await env.BLOBS.list({ prefix: `logs/${ws}/stdout/` });
    expect(segs.objects.length).toBeGreaterThan(0); // ≥ 256 KiB was flushed to R2
    await evictDurableObject(stub(ws));
    expect(await (await call(a, "GET", `/w/${ws}/logs/stdout`)).text()).toBe(expected);
    expect(await (await call(a, "GET", `/w/${ws}/logs/stdout?from=${expected.length - 5}`)).text()).toBe("tail\n");
    expect((await call(a, "GET", `/w/${ws}/logs/nothing`)).status).toBe(404);
  });

  it("a follower gets the backlog and then every append, in order", async () => {
    const a = newKey();
    const ws = await createWs(a);
    await call(a, "POST", `/w/${ws}/logs/events`, "one\n");
    const r = await call(a, "GET", `/w/${ws}/logs/events?follow=1`);
    expect(r.status).toBe(200);
    const reader = r.body!.getReader();
    let got = "";
    const until = async (s: string) => {
      while (!got.includes(s)) {
        const { value, done } = await reader.read();
        if (done) throw new Error("tail ended");
        got += new TextDecoder().decode(value);
      }
    };
    await until("one\n");
    await call(a, "POST", `/w/${ws}/logs/events`, "two\n");
    await call(a, "POST", `/w/${ws}/logs/events`, "three\n");
    await until("three\n");
    expect(got).toBe("one\ntwo\nthree\n");
    await reader.cancel();
  });
});
