// Task files and the namespace registry in KV (edge/http/tasks.ts, edge/http/registry.ts).
import { describe, expect, it } from "vitest";
import { env } from "cloudflare:workers";
import { evictDurableObject } from "cloudflare:test";
import { INLINE_MAX } from "../../services/remote-wire.ts";
import { batch, call, createWs, json, newKey, text } from "../testing.ts";

const stub = (name: string) => env.WORKSPACE.get(env.WORKSPACE.idFromName(name));
const read = async (who: Parameters<typeof batch>[0], ws: string, path: string, version?: number) =>
  text((await batch(who, ws, [{ op: "read", path, offset: 0, length: 1 << 20, ...(version !== undefined ? { version } : {}) }])).results[0]!.bytes);

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
