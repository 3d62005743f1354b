// Versions, snapshots and forks (edge/workspace/history.ts), inside workerd with real bindings.
import { describe, expect, it } from "vitest";
import { env } from "cloudflare:workers";
import { evictDurableObject } from "cloudflare:test";
import migration from "../migrations/0001_init.sql?raw";
import { SCHEMA_STATEMENTS } from "../d1.ts";
import { INLINE_MAX } from "../../services/remote-wire.ts";
import { batch, call, createWs, json, newKey, text } from "../testing.ts";

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
