// Batches (edge/batch.ts, edge/workspace/answers.ts): retries by request id are idempotent, an
// answer's read data is capped and streamed, and appends from racing clients never overlap.
import { describe, expect, it } from "vitest";
import { env } from "cloudflare:workers";
import { evictDurableObject } from "cloudflare:test";
import { batch, call, createWs, json, newKey, text } from "./testing.ts";

const stub = (name: string) => env.WORKSPACE.get(env.WORKSPACE.idFromName(name));
const codes = (r: { results: Array<{ ok: boolean; error?: { code: string } }> }) => r.results.map((x) => (x.ok ? "ok" : x.error!.code));

describe("request ids (rid): a resent batch is answered, not run again", () => {
  it("a retry answers what the first run answered — no false EEXIST or ENOENT — even after eviction", async () => {
    const a = newKey();
    const ws = await createWs(a);
    const ops = [
      { op: "open" as const, path: "lock", flags: { write: true, create: true, exclusive: true } },
      { op: "mkdir" as const, path: "d" },
      { op: "write" as const, path: "lock", offset: 0, bytes: "pid 1\n" },
      { op: "rename" as const, from: "lock", to: "d/lock" },
      { op: "read" as const, path: "d/lock", offset: 0, length: 100 },
    ];
    const first = await batch(a, ws, ops, false, "rid-1");
    expect(codes(first)).toEqual(["ok", "ok", "ok", "ok", "ok"]);
    const version = (await json(call(a, "GET", `/w/${ws}`))).version;
    const again = await batch(a, ws, ops, false, "rid-1");
    expect(codes(again)).toEqual(["ok", "ok", "ok", "ok", "ok"]);
    expect(text(again.results[4]!.bytes)).toBe("pid 1\n");
    await evictDurableObject(stub(ws));
    const afterEviction = await batch(a, ws, ops, false, "rid-1");
    expect(codes(afterEviction)).toEqual(["ok", "ok", "ok", "ok", "ok"]);
    expect((await json(call(a, "GET", `/w/${ws}`))).version).toBe(version); // nothing ran again
    // Without a rid (or with a new one) the batch runs, and fails as POSIX says it must.
    expect(codes(await batch(a, ws, ops, false, "rid-2")).slice(0, 2)).toEqual(["ok", "EEXIST"]);
  });

  it("a rid reused for a different batch is EINVAL; another key's rid is its own", async () => {
    const a = newKey(), b = newKey();
    const ws = await createWs(a);
    await call(a, "POST", `/w/${ws}/grants`, { prefix: "", rights: "rw", pubkey: b.pubkey });
    expect(codes(await batch(a, ws, [{ op: "mkdir", path: "x" }], false, "same"))).toEqual(["ok"]);
    const other = await batch(a, ws, [{ op: "mkdir", path: "y" }], false, "same");
    expect(other.status).toBe(400);
    expect(other.error?.code).toBe("EINVAL");
    expect(codes(await batch(b, ws, [{ op: "mkdir", path: "x" }], false, "same"))).toEqual(["EEXIST"]);
  });
});

describe("batch answers", () => {
  it("read data in one answer is capped: a small request cannot make the edge assemble gigabytes", async () => {
    const a = newKey();
    const ws = await createWs(a);
    const MiB = 1024 * 1024;
    await batch(a, ws, [{ op: "open", path: "sparse", flags: { write: true, create: true } }, { op: "truncate", path: "sparse", size: 64 * MiB }]);
    const read = (offset: number) => ({ op: "read" as const, path: "sparse", offset, length: 16 * MiB });
    const r = await batch(a, ws, [read(0), read(16 * MiB), read(32 * MiB), read(48 * MiB), { op: "stat", path: "sparse" }]);
    expect(r.status).toBe(200);
    expect(codes(r)).toEqual(["ok", "ok", "EMSGSIZE", "EMSGSIZE", "ok"]);
    expect(r.results[0]!.bytes!.length + r.results[1]!.bytes!.length).toBe(32 * MiB);
    // readahead shrinks to what is left instead of failing the open
    const o = await batch(a, ws, [read(0), read(16 * MiB), { op: "open", path: "sparse", flags: { read: true }, readahead: MiB }]);
    expect(codes(o)).toEqual(["ok", "ok", "ok"]);
    expect(o.results[2]!.bytes?.length ?? 0).toBe(0);
  });

  it("appends from racing clients all land, none overwrites another", async () => {
    const a = newKey(), b = newKey();
    const ws = await createWs(a);
    await call(a, "POST", `/w/${ws}/grants`, { prefix: "", rights: "rw", pubkey: b.pubkey });
    await batch(a, ws, [{ op: "open", path: "log", flags: { write: true, create: true } }]);
    const appends = (who: typeof a, tag: string) => Array.from({ length: 5 }, (_, i) =>
      batch(who, ws, [{ op: "write", path: "log", offset: 0, append: true, bytes: `${tag}${i}\n` }]));
    const all = await Promise.all([...appends(a, "a"), ...appends(b, "b")]);
    expect(all.every((r) => r.results[0]!.ok)).toBe(true);
    const body = text((await batch(a, ws, [{ op: "read", path: "log", offset: 0, length: 1000 }])).results[0]!.bytes);
    expect(body.split("\n").filter(Boolean).sort()).toEqual(["a0", "a1", "a2", "a3", "a4", "b0", "b1", "b2", "b3", "b4"]);
  });
});
