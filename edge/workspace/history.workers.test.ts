// Versions, snapshots and forks (edge/workspace/history.ts), inside workerd with real bindings.
import { describe, expect, it } from "vitest";
import { env } from "cloudflare:workers";
import { evictDurableObject } from "cloudflare:test";
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

  it("an atomic batch of writes to one file is one version: its content the last state, one history row, one audit entry", async () => {
    const a = newKey();
    const ws = await createWs(a);
    await batch(a, ws, [{ op: "open", path: "db", flags: { write: true, create: true } }]);
    const info = async () => json(call(a, "GET", `/w/${ws}`));
    const v0 = (await info()).version as number;
    const r = await batch(a, ws, [
      { op: "write", path: "db", offset: 0, bytes: "aaaa" },
      { op: "write", path: "db", offset: 2, bytes: "BB" },
      { op: "truncate", path: "db", size: 3 },
      { op: "write", path: "db", offset: 6, bytes: "z" },
      { op: "write", path: "db", offset: 0, bytes: "!", append: true },
    ], true);
    // Each answer is the file after its op, all of them at the one version committed.
    expect(r.results.map((x) => x.ok && [x.stat?.size, x.stat?.version])).toEqual([[4, v0 + 1], [4, v0 + 1], [3, v0 + 1], [7, v0 + 1], [8, v0 + 1]]);
    expect((await info()).version).toBe(v0 + 1);
    const last = new Uint8Array([97, 97, 66, 0, 0, 0, 122, 33]); // "aaB", a hole, "z", the append
    const at = (await batch(a, ws, [{ op: "read", path: "db", offset: 0, length: 100, version: v0 + 1 }])).results[0]!;
    expect(at.ok && at.bytes).toEqual(last);
    const now = (await batch(a, ws, [{ op: "read", path: "db", offset: 0, length: 100 }])).results[0]!;
    expect(now.ok && now.bytes).toEqual(last);
    const hist = await json(call(a, "GET", `/w/${ws}/versions?path=db`));
    expect(hist.entries.map((e: { version: number; action: string; size: number }) => [e.version, e.action, e.size])).toEqual([[v0 + 1, "write", 8], [v0, "create", 0]]);
    expect(hist.entries[0].detail).toEqual({ size: 8, ops: 5, bytes: 8 });
    const audit = await json(call(a, "GET", `/w/${ws}/audit`));
    const mine = audit.entries.filter((e: { detail: { path?: string } | string }) => (typeof e.detail === "string" ? JSON.parse(e.detail) : e.detail).path === "db");
    expect(mine.map((e: { action: string }) => e.action)).toEqual(["create", "write"]);
    expect((await json(call(a, "GET", `/w/${ws}/audit/verify`))).ok).toBe(true);
  });

  it("a gathered change ends at any other op; outside an atomic batch every write is its own version; a failed batch commits nothing", async () => {
    const a = newKey();
    const ws = await createWs(a);
    await batch(a, ws, [{ op: "open", path: "f", flags: { write: true, create: true } }, { op: "open", path: "g", flags: { write: true, create: true } }]);
    const version = async () => (await json(call(a, "GET", `/w/${ws}`))).version as number;
    const v0 = await version();
    // A read in the middle sees the first writes, and history keeps exactly what it answered.
    const r = await batch(a, ws, [
      { op: "write", path: "f", offset: 0, bytes: "one" },
      { op: "write", path: "f", offset: 3, bytes: "+" },
      { op: "read", path: "f", offset: 0, length: 10 },
      { op: "write", path: "g", offset: 0, bytes: "gee" },
      { op: "write", path: "f", offset: 0, bytes: "two" },
    ], true);
    expect(r.results.every((x) => x.ok)).toBe(true);
    expect(text(r.results[2]!.bytes)).toBe("one+");
    expect(await version()).toBe(v0 + 3);
    expect(await read(a, ws, "f", v0 + 1)).toBe("one+");
    expect(await read(a, ws, "g", v0 + 2)).toBe("gee");
    expect(await read(a, ws, "f", v0 + 3)).toBe("two+");
    // Not atomic: each op stands alone, so each is a version.
    await batch(a, ws, [{ op: "write", path: "g", offset: 0, bytes: "G" }, { op: "write", path: "g", offset: 1, bytes: "E" }]);
    expect(await version()).toBe(v0 + 5);
    // An atomic batch that fails rolls its gathered writes back: no version, the old content.
    const bad = await batch(a, ws, [{ op: "write", path: "f", offset: 0, bytes: "lost" }, { op: "remove", path: "missing" }], true);
    expect(bad.results.map((x) => (x.ok ? "ok" : x.error.code))).toEqual(["ECANCELED", "ENOENT"]);
    expect(await version()).toBe(v0 + 5);
    expect(await read(a, ws, "f")).toBe("two+");
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
