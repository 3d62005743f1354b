// The workspace Durable Object through the Worker's HTTP API, inside workerd (real DO, R2, D1, KV):
// ownership, the batch operations, who may do what, sessions, bad input, faults.
import { describe, expect, it } from "vitest";
import { env } from "cloudflare:workers";
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { finalizeEvent } from "nostr-tools/pure";
import { hexToBytes } from "@noble/hashes/utils.js";
import { encodeFrame, FRAME_TYPE, INLINE_MAX, MAX_BATCH_BYTES } from "../../services/remote-wire.ts";
import { BASE, batch, call, createWs, json, newKey, text, errCode, randomBytes, readText, sha256Hex, stub } from "../testing.ts";
import { exports } from "cloudflare:workers";


describe("workspaces and ownership", () => {
  it("the first key to create a workspace owns it; others get 403, strangers 401", async () => {
    const a = newKey(), b = newKey();
    const name = await createWs(a);
    expect((await call(a, "POST", `/w/${name}`, {})).status).toBe(200);
    const r = await call(b, "POST", `/w/${name}`, {});
    expect(r.status).toBe(403);
    expect(await errCode(r)).toBe("EACCES");
    expect((await call(null, "POST", `/w/${name}`, {})).status).toBe(401);
    const info = await json(call(a, "GET", `/w/${name}`));
    expect(info.owner).toBe(a.pubkey);
    expect((await call(b, "GET", `/w/${name}`)).status).toBe(403);
    const list = await json(call(a, "GET", "/w"));
    expect(list.workspaces.map((w: { name: string }) => w.name)).toContain(name);
    expect((await json(call(b, "GET", "/w"))).workspaces.map((w: { name: string }) => w.name)).not.toContain(name);
  });

  it("refuses bad workspace names and unknown workspaces", async () => {
    const a = newKey();
    expect((await call(a, "POST", "/w/..", {})).status).toBe(404); // URL normalisation: never a workspace
    expect(await errCode(await call(a, "POST", "/w/-bad", {}))).toBe("EINVAL");
    const r = await call(a, "GET", "/w/nobody-made-this");
    expect(r.status).toBe(404);
    expect(await errCode(r)).toBe("ENOENT");
  });
});

describe("file operations (batch)", () => {
  it("answers every FileService operation with POSIX results and errors", async () => {
    const a = newKey();
    const ws = await createWs(a);
    const r = await batch(a, ws, [
      { op: "mkdir", path: "docs" },
      { op: "open", path: "docs/a.txt", flags: { write: true, create: true } },
      { op: "write", path: "docs/a.txt", offset: 0, bytes: "hello world" },
      { op: "write", path: "docs/a.txt", offset: 6, bytes: "there" },
      { op: "read", path: "docs/a.txt", offset: 0, length: 100 },
      { op: "stat", path: "docs/a.txt" },
      { op: "readdir", path: "docs" },
      { op: "mkdir", path: "docs" },
      { op: "stat", path: "nope" },
      { op: "remove", path: "docs" },
      { op: "open", path: "docs", flags: { write: true } },
      { op: "stat", path: "docs/a.txt/x" },
      { op: "open", path: "docs/a.txt", flags: { create: true, exclusive: true, write: true } },
      { op: "read", path: "docs", offset: 0, length: 1 },
    ]);
    expect(r.status).toBe(200);
    const codes = r.results.map((x) => (x.ok ? "ok" : x.error.code));
    expect(codes).toEqual(["ok", "ok", "ok", "ok", "ok", "ok", "ok", "EEXIST", "ENOENT", "ENOTEMPTY", "EISDIR", "ENOTDIR", "EEXIST", "EISDIR"]);
    expect(text(r.results[4]!.bytes)).toBe("hello there");
    const st = r.results[5]!;
    expect(st.ok && st.stat?.size).toBe(11);
    expect(st.ok && st.stat?.type).toBe("file");
    const rd = r.results[6]!;
    expect(rd.ok && rd.entries?.map((e) => [e.name, e.type])).toEqual([["a.txt", "file"]]);
  });

  it("writes past the end leave a hole of zeros; truncate shrinks and grows", async () => {
    const a = newKey();
    const ws = await createWs(a);
    const r = await batch(a, ws, [
      { op: "open", path: "h", flags: { write: true, create: true } },
      { op: "write", path: "h", offset: 4, bytes: "xy" },
      { op: "read", path: "h", offset: 0, length: 10 },
      { op: "truncate", path: "h", size: 3 },
      { op: "truncate", path: "h", size: 5 },
      { op: "read", path: "h", offset: 0, length: 10 },
      { op: "write", path: "h", offset: 0, bytes: "ab", append: true },
      { op: "read", path: "h", offset: 0, length: 10 },
    ]);
    expect(Array.from(r.results[2]!.bytes!)).toEqual([0, 0, 0, 0, 120, 121]);
    expect(Array.from(r.results[5]!.bytes!)).toEqual([0, 0, 0, 0, 0]);
    expect(Array.from(r.results[7]!.bytes!)).toEqual([0, 0, 0, 0, 0, 97, 98]);
  });

  it("many small writes stay one short list of pieces and read back exactly", async () => {
    const a = newKey();
    const ws = await createWs(a);
    await batch(a, ws, [{ op: "open", path: "log", flags: { write: true, create: true } }]);
    let expected = "";
    for (let round = 0; round < 3; round++) {
      const ops = Array.from({ length: 60 }, (_, i) => {
        const line = `r${round} line ${i}\n`;
        expected += line;
        return { op: "write" as const, path: "log", offset: 0, append: true, bytes: line };
      });
      expect((await batch(a, ws, ops)).results.every((r) => r.ok)).toBe(true);
    }
    // Overwrite in the middle too.
    const mid = expected.indexOf("r1 line 30");
    expected = expected.slice(0, mid) + "XX" + expected.slice(mid + 2);
    await batch(a, ws, [{ op: "write", path: "log", offset: mid, bytes: "XX" }]);
    expect(await readText(a, ws, "log")).toBe(expected);
    const extents = await runInDurableObject(stub(ws), (_i, state) =>
      JSON.parse(state.storage.sql.exec<{ extents: string }>("SELECT extents FROM nodes WHERE path = 'log'").one().extents).length);
    expect(extents).toBeLessThanOrEqual(64);
  });

  it("pages written all over a big file are kept as pieces, not folded back into the 128 KiB around each", async () => {
    const a = newKey();
    const ws = await createWs(a);
    const size = 8 * INLINE_MAX, page = 4096;
    const want = randomBytes(size);
    await batch(a, ws, [{ op: "open", path: "db", flags: { write: true, create: true } }]);
    await batch(a, ws, Array.from({ length: 8 }, (_, i) => ({ op: "write" as const, path: "db", offset: i * INLINE_MAX, bytes: want.slice(i * INLINE_MAX, (i + 1) * INLINE_MAX) })), true);
    let written = size;
    for (let round = 0; round < 6; round++) {
      // As a database commits: 32 pages here and there, one atomic batch.
      const ops = Array.from({ length: 32 }, (_, i) => {
        const at = ((round * 37 + i * 7919) % (size / page)) * page;
        const bytes = randomBytes(page);
        want.set(bytes, at);
        written += page;
        return { op: "write" as const, path: "db", offset: at, bytes };
      });
      expect((await batch(a, ws, ops, true)).results.every((r) => r.ok)).toBe(true);
    }
    const back = (await batch(a, ws, [{ op: "read", path: "db", offset: 0, length: size }])).results[0]!;
    expect(back.ok && back.bytes).toEqual(want);
    const stored = await runInDurableObject(stub(ws), (_i, state) => state.storage.sql.exec<{ n: number }>("SELECT sum(length(data)) AS n FROM pieces").one().n);
    expect(stored).toBeLessThanOrEqual(written);
  });

  it("renames atomically: files replace files, directories move with their contents", async () => {
    const a = newKey();
    const ws = await createWs(a);
    const r = await batch(a, ws, [
      { op: "mkdir", path: "d/e", parents: true },
      { op: "open", path: "d/e/f", flags: { write: true, create: true } },
      { op: "write", path: "d/e/f", offset: 0, bytes: "F" },
      { op: "open", path: "g", flags: { write: true, create: true } },
      { op: "write", path: "g", offset: 0, bytes: "G" },
      { op: "rename", from: "d", to: "m" },
      { op: "read", path: "m/e/f", offset: 0, length: 9 },
      { op: "stat", path: "d" },
      { op: "rename", from: "g", to: "m/e/f" },
      { op: "read", path: "m/e/f", offset: 0, length: 9 },
      { op: "rename", from: "m", to: "m/e/inside" },
      { op: "rename", from: "m/e/f", to: "m" },
      { op: "remove", path: "" },
    ]);
    expect(r.results.map((x) => (x.ok ? "ok" : x.error.code))).toEqual(
      ["ok", "ok", "ok", "ok", "ok", "ok", "ok", "ENOENT", "ok", "ok", "EINVAL", "EISDIR", "EBUSY"]);
    expect(text(r.results[6]!.bytes)).toBe("F");
    expect(text(r.results[9]!.bytes)).toBe("G");
  });

  it("an atomic batch applies all or nothing", async () => {
    const a = newKey();
    const ws = await createWs(a);
    const r = await batch(a, ws, [
      { op: "mkdir", path: "x" },
      { op: "open", path: "x/f", flags: { write: true, create: true } },
      { op: "remove", path: "missing" },
    ], true);
    expect(r.results.map((x) => (x.ok ? "ok" : x.error.code))).toEqual(["ECANCELED", "ECANCELED", "ENOENT"]);
    const s = await batch(a, ws, [{ op: "stat", path: "x" }]);
    expect(s.results[0]!.ok).toBe(false);
  });
});

describe("who may do what", () => {
  it("missing, wrong, replayed, expired or mismatched credentials get 401 and change nothing", async () => {
    const a = newKey();
    const ws = await createWs(a);
    const url = `${BASE}/w/${ws}/f/x.txt`;
    const body = new TextEncoder().encode("data");
    const put = (auth?: string) => exports.default.fetch(new Request(url, { method: "PUT", body, headers: auth ? { authorization: auth } : {} }));
    const sk = hexToBytes(a.secret);
    const bodySha = await sha256Hex(body);
    const ev = (over: { created_at?: number; u?: string; method?: string; payload?: string; kind?: number }) => "Nostr " + btoa(JSON.stringify(finalizeEvent({
      kind: over.kind ?? 27235, created_at: over.created_at ?? Math.floor(Date.now() / 1000), content: "",
      tags: [["u", over.u ?? url], ["method", over.method ?? "PUT"], ["payload", over.payload ?? bodySha]],
    }, sk)));
    const cases: Array<[string, string | undefined]> = [
      ["missing", undefined],
      ["garbage", "Nostr !!!"],
      ["unknown scheme", "Basic dXNlcjpwYXNz"],
      ["expired", ev({ created_at: Math.floor(Date.now() / 1000) - 600 })],
      ["future", ev({ created_at: Math.floor(Date.now() / 1000) + 600 })],
      ["wrong url", ev({ u: `${BASE}/w/${ws}/f/other.txt` })],
      ["wrong method", ev({ method: "GET" })],
      ["wrong payload", ev({ payload: "00".repeat(32) })],
      ["wrong kind", ev({ kind: 1 })],
      ["unknown token", "Bearer oanix_" + "A".repeat(43)],
    ];
    for (const [why, auth] of cases) {
      const r = await put(auth);
      expect(r.status, why).toBe(401);
      expect(await errCode(r), why).toBe("EACCES");
    }
    // A tampered signature.
    const good = JSON.parse(atob(a.authorize(url, "PUT", body).slice(6)));
    good.sig = good.sig.replace(/^./, (c: string) => (c === "0" ? "1" : "0"));
    expect((await put("Nostr " + btoa(JSON.stringify(good)))).status).toBe(401);
    // Replay: the same signed header twice; the second is refused.
    const once = a.authorize(url, "PUT", body);
    expect((await put(once)).status).toBe(201);
    const v1 = (await json(call(a, "GET", `/w/${ws}`))).version;
    expect((await put(once)).status).toBe(401);
    // Nothing changed by any refused request.
    expect((await json(call(a, "GET", `/w/${ws}`))).version).toBe(v1);
    const s = await batch(a, ws, [{ op: "readdir", path: "" }]);
    expect(s.results[0]!.ok && s.results[0]!.entries!.map((e) => e.name)).toEqual(["x.txt"]);
  });

  it("a key without a grant gets 403 and changes nothing, even for one op among many", async () => {
    const a = newKey(), b = newKey();
    const ws = await createWs(a);
    await batch(a, ws, [{ op: "mkdir", path: "pub" }]);
    const r = await batch(b, ws, [{ op: "stat", path: "" }]);
    expect(r.status).toBe(403);
    // Grant b read-write on pub/ only; a batch that also touches secret/ is refused whole.
    expect((await call(a, "POST", `/w/${ws}/grants`, { prefix: "pub", rights: "rw", pubkey: b.pubkey })).status).toBe(201);
    const mixed = await batch(b, ws, [{ op: "mkdir", path: "pub/ok" }, { op: "mkdir", path: "secret" }]);
    expect(mixed.status).toBe(403);
    const after = await batch(a, ws, [{ op: "readdir", path: "pub" }, { op: "stat", path: "secret" }]);
    expect(after.results[0]!.ok && after.results[0]!.entries).toEqual([]);
    expect(after.results[1]!.ok).toBe(false);
    expect((await batch(b, ws, [{ op: "mkdir", path: "pub/ok" }])).results[0]!.ok).toBe(true);
    // b may not grant, list grants, or snapshot the whole workspace.
    expect((await call(b, "POST", `/w/${ws}/grants`, { prefix: "", rights: "rw" })).status).toBe(403);
    expect((await call(b, "GET", `/w/${ws}/grants`)).status).toBe(403);
  });

  it("capability tokens: prefix, rights, expiry, revocation; path tricks cannot widen them", async () => {
    const a = newKey();
    const ws = await createWs(a);
    await batch(a, ws, [
      { op: "mkdir", path: "docs" }, { op: "mkdir", path: "secret" },
      { op: "open", path: "secret/k", flags: { write: true, create: true } }, { op: "write", path: "secret/k", offset: 0, bytes: "KEY" },
    ]);
    const ro = (await json(call(a, "POST", `/w/${ws}/grants`, { prefix: "docs", rights: "r", expiresIn: 60 }))).token as string;
    const rw = await json(call(a, "POST", `/w/${ws}/grants`, { prefix: "/docs/", rights: "rw", expiresIn: 60 }));
    expect((await batch(ro, ws, [{ op: "readdir", path: "docs" }])).status).toBe(200);
    expect((await batch(ro, ws, [{ op: "mkdir", path: "docs/x" }])).status).toBe(403);
    expect((await batch(rw.token, ws, [{ op: "mkdir", path: "docs/x" }])).results[0]!.ok).toBe(true);
    // docs/../secret is secret: refused. Climbing above the root is refused outright.
    expect((await batch(rw.token, ws, [{ op: "read", path: "docs/../secret/k", offset: 0, length: 3 }])).status).toBe(403);
    expect((await call(rw.token, "GET", `/w/${ws}/f/docs/%2e%2e/secret/k`)).status).toBe(403);
    expect((await call(rw.token, "GET", `/w/${ws}/f/docs%2f..%2fsecret%2fk`)).status).toBe(400);
    expect((await batch(rw.token, ws, [{ op: "rename", from: "docs/x", to: "secret/x" }])).status).toBe(403);
    expect((await call(rw.token, "POST", `/w/${ws}/grants`, { prefix: "docs", rights: "rw" })).status).toBe(403);
    // Revoked and expired tokens are 401.
    expect((await call(a, "DELETE", `/w/${ws}/grants/${rw.id}`)).status).toBe(200);
    expect((await batch(rw.token, ws, [{ op: "readdir", path: "docs" }])).status).toBe(401);
    const short = (await json(call(a, "POST", `/w/${ws}/grants`, { prefix: "docs", rights: "r", expires: Date.now() + 300 }))).token as string;
    await new Promise((r) => setTimeout(r, 400));
    expect((await batch(short, ws, [{ op: "readdir", path: "docs" }])).status).toBe(401);
    // A token cannot create workspaces, and a token for one workspace means nothing in another.
    const other = await createWs(a);
    expect((await batch(ro, other, [{ op: "readdir", path: "docs" }])).status).toBe(401);
    const secretAfter = await batch(a, ws, [{ op: "read", path: "secret/k", offset: 0, length: 9 }, { op: "stat", path: "secret/x" }]);
    expect(text(secretAfter.results[0]!.bytes)).toBe("KEY");
    expect(secretAfter.results[1]!.ok).toBe(false);
  });
});

describe("sessions", () => {
  it("one NIP-98 request opens a session; its token carries the key's current rights", async () => {
    const a = newKey(), b = newKey(), c = newKey();
    const ws = await createWs(a);
    await batch(a, ws, [{ op: "mkdir", path: "pub" }, { op: "mkdir", path: "priv" }]);
    const sa = await json(call(a, "POST", `/w/${ws}/session`, {}));
    expect((await batch(sa.token, ws, [{ op: "mkdir", path: "priv/x" }])).results[0]!.ok).toBe(true);
    // A key with no rights gets no session; a token cannot open one.
    expect((await call(c, "POST", `/w/${ws}/session`, {})).status).toBe(403);
    expect((await call(sa.token, "POST", `/w/${ws}/session`, {})).status).toBe(403);
    // b's session follows b's grants: a revoked grant takes the rights away from the session too.
    const g = await json(call(a, "POST", `/w/${ws}/grants`, { prefix: "pub", rights: "rw", pubkey: b.pubkey }));
    const sb = await json(call(b, "POST", `/w/${ws}/session`, {}));
    expect((await batch(sb.token, ws, [{ op: "mkdir", path: "pub/y" }])).results[0]!.ok).toBe(true);
    expect((await batch(sb.token, ws, [{ op: "mkdir", path: "priv/y" }])).status).toBe(403);
    await call(a, "DELETE", `/w/${ws}/grants/${g.id}`);
    expect((await batch(sb.token, ws, [{ op: "mkdir", path: "pub/z" }])).status).toBe(403);
    // A session is bound to its workspace.
    const other = await createWs(a);
    expect((await batch(sa.token, other, [{ op: "readdir", path: "" }])).status).toBe(401);
    const after = await batch(a, ws, [{ op: "readdir", path: "pub" }, { op: "readdir", path: "priv" }]);
    expect(after.results[0]!.ok && after.results[0]!.entries!.map((e) => e.name)).toEqual(["y"]);
    expect(after.results[1]!.ok && after.results[1]!.entries!.map((e) => e.name)).toEqual(["x"]);
  });

  it("an expired session is 401", async () => {
    const a = newKey();
    const ws = await createWs(a);
    const s = await json(call(a, "POST", `/w/${ws}/session`, {}));
    await runInDurableObject(stub(ws), (_i, state) => {
      state.storage.sql.exec("UPDATE sessions SET expires = ?", Date.now() - 1);
    });
    const r = await batch(s.token, ws, [{ op: "readdir", path: "" }]);
    expect(r.status).toBe(401);
    expect(r.error?.message).toMatch(/session expired/);
  });
});

describe("bad input", () => {
  it("paths that try to leave the workspace are refused (400 EINVAL) and change nothing", async () => {
    const a = newKey();
    const ws = await createWs(a);
    const r = await batch(a, ws, [
      { op: "mkdir", path: "../up" },
      { op: "open", path: "a/../../b", flags: { write: true, create: true } },
      { op: "rename", from: "x", to: "../../y" },
      { op: "stat", path: "nul\u0000byte" },
      { op: "mkdir", path: "n".repeat(300) },
    ]);
    expect(r.results.map((x) => (x.ok ? "ok" : x.error.code))).toEqual(["EINVAL", "EINVAL", "EINVAL", "EINVAL", "ENAMETOOLONG"]);
    const p = await call(a, "PUT", `/w/${ws}/f/a/..%2f..%2fescape`, "x");
    expect(p.status).toBe(400);
    expect(await errCode(p)).toBe("EINVAL");
    // The URL parser folds a literal or %2e-encoded `..` before the Worker sees it: it names
    // another route (404), never a file outside the workspace.
    expect((await call(a, "PUT", `/w/${ws}/f/%2e%2e/%2e%2e/escape`, "x")).status).toBe(404);
    const root = await batch(a, ws, [{ op: "readdir", path: "" }]);
    expect(root.results[0]!.ok && root.results[0]!.entries).toEqual([]);
  });

  it("malformed batches are 400 EINVAL and change nothing", async () => {
    const a = newKey();
    const ws = await createWs(a);
    const enc = (h: unknown, parts: Uint8Array[] = []) => encodeFrame(h, parts);
    const good = enc({ ops: [{ op: "mkdir", path: "made" }] });
    const bodies: Array<[string, Uint8Array]> = [
      ["empty", new Uint8Array(0)],
      ["bad magic", new Uint8Array([1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0])],
      ["header not JSON", (() => { const b = enc({ ops: [] }); b[8] = 0x7b; b[9] = 0x7b; return b; })()],
      ["truncated", good.slice(0, good.length - 3)],
      ["trailing bytes", new Uint8Array([...good, 0])],
      ["ops not array", enc({ ops: { op: "mkdir" } })],
      ["unknown op", enc({ ops: [{ op: "format", path: "" }, { op: "mkdir", path: "made" }] })],
      ["missing path", enc({ ops: [{ op: "mkdir", path: "made" }, { op: "stat" }] })],
      ["data out of range", enc({ ops: [{ op: "mkdir", path: "made" }, { op: "write", path: "f", offset: 0, data: 3 }] })],
      ["negative offset", enc({ ops: [{ op: "read", path: "f", offset: -1, length: 1 }] })],
      ["bad flag", enc({ ops: [{ op: "open", path: "f", flags: { write: "yes" } }] })],
      ["too many ops", enc({ ops: Array.from({ length: 1025 }, () => ({ op: "stat", path: "" })) })],
    ];
    for (const [why, body] of bodies) {
      const r = await call(a, "POST", `/w/${ws}/batch`, body, { "content-type": FRAME_TYPE });
      expect(r.status, why).toBe(400);
      expect(await errCode(r), why).toBe("EINVAL");
    }
    const root = await batch(a, ws, [{ op: "readdir", path: "" }]);
    expect(root.results[0]!.ok && root.results[0]!.entries).toEqual([]);
  });

  it("oversized bodies get 413 EFBIG before anything is stored", async () => {
    const a = newKey();
    const ws = await createWs(a);
    const huge = new Uint8Array(MAX_BATCH_BYTES + 1);
    const r = await call(a, "POST", `/w/${ws}/batch`, huge, { "content-type": FRAME_TYPE });
    expect(r.status).toBe(413);
    expect(await errCode(r)).toBe("EFBIG");
    const log = await call(a, "POST", `/w/${ws}/logs/out`, new Uint8Array(INLINE_MAX + 1));
    expect(log.status).toBe(413);
    const task = await call(a, "PUT", `/w/${ws}/task/t1/spec.json`, new Uint8Array(INLINE_MAX + 1));
    expect(task.status).toBe(413);
    const root = await batch(a, ws, [{ op: "readdir", path: "" }]);
    expect(root.results[0]!.ok && root.results[0]!.entries).toEqual([]);
  });
});

describe("faults", () => {
  it("racing writes on one file: every write is acknowledged, kept as a version, and the file is one of them whole", async () => {
    const a = newKey();
    const ws = await createWs(a);
    await batch(a, ws, [{ op: "open", path: "race", flags: { write: true, create: true } }]);
    const N = 16;
    const payload = (i: number) => String(i).padStart(2, "0").repeat(500);
    const rs = await Promise.all(Array.from({ length: N }, (_, i) =>
      batch(a, ws, [{ op: "truncate", path: "race", size: 0 }, { op: "write", path: "race", offset: 0, bytes: payload(i) }], true)));
    for (const r of rs) expect(r.results.every((x) => x.ok)).toBe(true);
    const final = text((await batch(a, ws, [{ op: "read", path: "race", offset: 0, length: 5000 }])).results[0]!.bytes);
    expect(Array.from({ length: N }, (_, i) => payload(i))).toContain(final);
    // Every acknowledged write is a version that can be read back.
    const hist = await json(call(a, "GET", `/w/${ws}/versions?path=race&limit=1000`));
    const writes = hist.entries.filter((e: { action: string }) => e.action === "write");
    expect(writes).toHaveLength(N);
    const seen = new Set<string>();
    for (const e of writes) seen.add(text((await batch(a, ws, [{ op: "read", path: "race", offset: 0, length: 5000, version: e.version }])).results[0]!.bytes));
    expect(seen).toEqual(new Set(Array.from({ length: N }, (_, i) => payload(i))));
  });

  it("racing creates of one name: exactly one exclusive create wins", async () => {
    const a = newKey();
    const ws = await createWs(a);
    const rs = await Promise.all(Array.from({ length: 8 }, () =>
      batch(a, ws, [{ op: "open", path: "lock", flags: { write: true, create: true, exclusive: true } }])));
    expect(rs.filter((r) => r.results[0]!.ok)).toHaveLength(1);
    expect(rs.filter((r) => !r.results[0]!.ok && r.results[0]!.error.code === "EEXIST")).toHaveLength(7);
  });

  it("an evicted Durable Object in the middle of a sequence loses nothing acknowledged", async () => {
    const a = newKey();
    const ws = await createWs(a);
    const big = randomBytes(INLINE_MAX + 100);
    await batch(a, ws, [{ op: "mkdir", path: "seq" }, { op: "open", path: "seq/f", flags: { write: true, create: true } }, { op: "write", path: "seq/f", offset: 0, bytes: "part one;" }]);
    await evictDurableObject(stub(ws));
    await batch(a, ws, [{ op: "write", path: "seq/f", offset: 0, bytes: "part two;", append: true }]);
    expect((await call(a, "PUT", `/w/${ws}/f/seq/big`, big)).status).toBe(201);
    await evictDurableObject(stub(ws));
    const tok = (await json(call(a, "POST", `/w/${ws}/grants`, { prefix: "seq", rights: "r" }))).token as string;
    await evictDurableObject(stub(ws));
    const r = await batch(tok, ws, [{ op: "read", path: "seq/f", offset: 0, length: 100 }, { op: "read", path: "seq/big", offset: 0, length: big.length }]);
    expect(text(r.results[0]!.bytes)).toBe("part one;part two;");
    expect(r.results[1]!.bytes).toEqual(big);
    // Replay protection survives eviction too.
    const url = `${BASE}/w/${ws}`;
    const h = a.authorize(url, "GET");
    expect((await exports.default.fetch(new Request(url, { headers: { authorization: h } }))).status).toBe(200);
    await evictDurableObject(stub(ws));
    expect((await exports.default.fetch(new Request(url, { headers: { authorization: h } }))).status).toBe(401);
  });
});

describe("hardening (issue 7)", () => {
  it("setTimes is a version like any other change, kept in history and audited", async () => {
    const a = newKey();
    const ws = await createWs(a);
    await batch(a, ws, [{ op: "open", path: "t", flags: { write: true, create: true } }]);
    const before = (await json(call(a, "GET", `/w/${ws}/versions`))).version as number;
    const r = await batch(a, ws, [{ op: "setTimes", path: "t", mtime: "1000000000000000000" }]);
    expect(r.results[0]!.ok).toBe(true);
    const after = await json(call(a, "GET", `/w/${ws}/versions`));
    expect(after.version).toBe(before + 1);
    expect(after.entries[0]).toMatchObject({ version: before + 1, action: "setTimes", path: "t" });
    const past = await batch(a, ws, [{ op: "stat", path: "t", version: before }, { op: "stat", path: "t", version: before + 1 }]);
    expect(past.results[0]!.ok && past.results[0]!.stat?.mtime).not.toBe("1000000000000000000");
    expect(past.results[1]!.ok && past.results[1]!.stat?.mtime).toBe("1000000000000000000");
    const audit = await json(call(a, "GET", `/w/${ws}/audit`));
    expect(audit.entries.map((e: { action: string }) => e.action)).toContain("setTimes");
  });

  it("mkdir with parents cannot create directories outside a token's prefix", async () => {
    const a = newKey();
    const ws = await createWs(a);
    const { token } = await json(call(a, "POST", `/w/${ws}/grants`, { prefix: "docs/inner", rights: "rw" }));
    // `docs` is above the prefix: mkdir -p may not create it, and creates nothing at all.
    const r = await batch(token, ws, [{ op: "mkdir", path: "docs/inner/deep", parents: true }]);
    expect(r.results[0]!.ok ? "ok" : r.results[0]!.error.code).toBe("EACCES");
    const put = await call(token, "PUT", `/w/${ws}/f/docs/inner/file?parents=1`, "x");
    expect(put.status).toBe(403);
    const ls = await batch(a, ws, [{ op: "readdir", path: "" }]);
    expect(ls.results[0]!.ok && ls.results[0]!.entries?.map((e) => e.name)).toEqual([]);
    // Once the owner has made `docs`, the token creates what its prefix covers.
    await batch(a, ws, [{ op: "mkdir", path: "docs" }]);
    const ok = await batch(token, ws, [{ op: "mkdir", path: "docs/inner/deep", parents: true }]);
    expect(ok.results[0]!.ok).toBe(true);
    expect((await call(token, "PUT", `/w/${ws}/f/docs/inner/d2/file?parents=1`, "x")).status).toBe(201);
  });

  it("a key with no rights gets 403 whether or not a snapshot exists", async () => {
    const a = newKey(), b = newKey();
    const ws = await createWs(a);
    await call(a, "PUT", `/w/${ws}/f/x`, "x");
    await call(a, "POST", `/w/${ws}/snapshots`, { name: "real" });
    for (const snap of ["real", "imaginary"]) {
      const r = await call(b, "GET", `/w/${ws}/f/x?snapshot=${snap}`);
      expect(r.status, snap).toBe(403);
    }
    for (const snap of ["real", "imaginary"]) {
      const r = await call(b, "POST", `/w/${ws}/fork`, { to: "fk-" + crypto.randomUUID().slice(0, 8), snapshot: snap });
      expect(r.status, snap).toBe(403);
    }
    expect((await call(a, "GET", `/w/${ws}/f/x?snapshot=imaginary`)).status).toBe(404);
  });

  it("an access error says whose workspace it is and how to get access", async () => {
    const a = newKey(), b = newKey();
    const ws = await createWs(a);
    const r = await batch(b, ws, [{ op: "stat", path: "" }]);
    expect(r.status).toBe(403);
    expect(r.error?.message).toContain(a.pubkey);
    expect(r.error?.message).toContain("oanix ws grant");
    const g = await call(b, "GET", `/w/${ws}/grants`);
    expect(((await g.json()) as { error: { message: string } }).error.message).toContain(a.pubkey);
  });

  it("names must be well-formed Unicode, at most 255 bytes of UTF-8, without control characters", async () => {
    const a = newKey();
    const ws = await createWs(a);
    const r = await batch(a, ws, [
      { op: "mkdir", path: "ghost" },
      { op: "mkdir", path: "ghost/g\ud800" },
      { op: "open", path: "ghost/\udc00x", flags: { write: true, create: true } },
      { op: "open", path: "ghost/" + "é".repeat(128), flags: { write: true, create: true } },
      { op: "open", path: "ghost/" + "é".repeat(127), flags: { write: true, create: true } },
      { op: "open", path: "ghost/bell\u0007", flags: { write: true, create: true } },
      { op: "open", path: "ghost/caf\u00e9", flags: { write: true, create: true } },
      { op: "open", path: "ghost/cafe\u0301", flags: { write: true, create: true } },
      { op: "remove", path: "ghost/g\ud800" },
    ]);
    expect(r.status).toBe(200);
    expect(r.results.map((x) => (x.ok ? "ok" : x.error.code))).toEqual(["ok", "EILSEQ", "EILSEQ", "ENAMETOOLONG", "ok", "EINVAL", "ok", "ok", "EILSEQ"]);
    const ls = await batch(a, ws, [{ op: "readdir", path: "ghost" }, { op: "remove", path: "ghost/" + "é".repeat(127) }, { op: "remove", path: "ghost/caf\u00e9" }, { op: "remove", path: "ghost/cafe\u0301" }, { op: "remove", path: "ghost" }]);
    // NFC and NFD spellings are two names (no normalisation), and everything created can be removed.
    expect(ls.results[0]!.ok && ls.results[0]!.entries?.length).toBe(3);
    expect(ls.results.map((x) => x.ok)).toEqual([true, true, true, true, true]);
  });
});

describe("run slots", () => {
  it("a run refused a slot may wait in line: a release names the longest waiting first, and one that gets a slot leaves the line", async () => {
    const owner = newKey();
    const ws = await createWs(owner);
    const cred = { type: "internal" as const, principal: { kind: "owner" as const, pubkey: owner.pubkey } };
    for (const j of ["a", "b"]) expect((await stub(ws).runAdmit(cred, j)).ok).toBe(true);
    for (const w of ["first", "second", "third"]) {
      const r = await stub(ws).runAdmit(cred, `job-${w}`, w);
      expect(r.ok ? null : r.error.code).toBe("EAGAIN");
    }
    // Refused again, a waiter keeps its place; the line survives the object's eviction.
    expect((await stub(ws).runAdmit(cred, "job-first", "first")).ok).toBe(false);
    await evictDurableObject(stub(ws));
    const freed = await stub(ws).runRelease(cred, "a");
    expect(freed).toEqual({ ok: true, value: ["first", "second", "third"] });
    expect((await stub(ws).runAdmit(cred, "job-second", "second")).ok).toBe(true);
    expect(await stub(ws).runRelease(cred, "b")).toEqual({ ok: true, value: ["first", "third"] });
    // A run that does not wait (POST /run) leaves no name.
    expect((await stub(ws).runAdmit(cred, "job-first", "first")).ok).toBe(true);
    expect((await stub(ws).runAdmit(cred, "no-line")).ok).toBe(false);
    expect(await stub(ws).runRelease(cred, "job-first")).toEqual({ ok: true, value: ["third"] });
  });
});
