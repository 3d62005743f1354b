// End to end: the local edge (`wrangler dev`, offline, loopback) and services/remote mounting it,
// as the CLI and a browser would. Request counts, close-to-open consistency, read-only mounts,
// capability tokens, big files through R2, and a restart of the edge with writes in flight.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startEdge, type Edge } from "../edge/dev/launch.ts";
import { RemoteService } from "../services/remote.ts";
import { keySigner, newSecretKey } from "../services/nip98.ts";
import { Namespace } from "../runtime/namespace.ts";
import { isFsError } from "../runtime/errors.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

let edge: Edge;
let dir: string;
const signer = keySigner(newSecretKey());
const wsUrl = () => `${edge.url}/w/e2e-${Math.random().toString(36).slice(2, 10)}`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "oanix-edge-"));
  edge = await startEdge({ persistTo: dir });
}, 90_000);

afterAll(async () => {
  await edge?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function writeFile(fs: RemoteService, path: string, chunks: string[]): Promise<void> {
  const h = await fs.open(path, { write: true, create: true, truncate: true });
  for (const c of chunks) await h.write(enc(c));
  await h.close();
}

async function readFile(fs: RemoteService, path: string): Promise<string> {
  const h = await fs.open(path, { read: true });
  let out = "";
  for (;;) {
    const b = await h.read(4096);
    if (!b.length) break;
    out += dec(b);
  }
  await h.close();
  return out;
}

describe("remote mount of an edge workspace", () => {
  it("an agent touching N files costs O(N) requests; a naive client pays per syscall", async () => {
    const url = wsUrl();
    const fs = new RemoteService(url, { signer });
    await fs.mkdir("notes"); // creates the workspace on first use
    const base = fs.requests;
    const N = 20;
    for (let i = 0; i < N; i++) await writeFile(fs, `notes/${i}.txt`, ["line one\n", "line two\n", "line three\n", `file ${i}\n`]);
    const writeReqs = fs.requests - base;
    expect(writeReqs).toBeLessThanOrEqual(2 * N); // open + close per file, whatever the number of writes

    const reader = new RemoteService(url, { signer });
    const names = await reader.readdir("notes");
    expect(names).toHaveLength(N);
    for (let i = 0; i < N; i++) expect(await readFile(reader, `notes/${i}.txt`)).toBe(`line one\nline two\nline three\nfile ${i}\n`);
    expect(reader.requests).toBeLessThanOrEqual(N + 2); // one open per file (reads come with it) + readdir + opening the session

    const naive = new RemoteService(url, { signer, readAhead: 0, writeBehind: 0, attrCacheMs: 0, coalesce: false });
    for (let i = 0; i < N; i++) await writeFile(naive, `notes/n${i}.txt`, ["line one\n", "line two\n", "line three\n", `file ${i}\n`]);
    expect(naive.requests).toBeGreaterThanOrEqual(5 * N);
    expect(await readFile(reader, "notes/n7.txt")).toBe("line one\nline two\nline three\nfile 7\n");
  });

  it("close-to-open: a handle reads its own writes; others see them after close, not before", async () => {
    const url = wsUrl();
    const a = new RemoteService(url, { signer }), b = new RemoteService(url, { signer });
    await writeFile(a, "doc", ["old"]);
    const h = await a.open("doc", { read: true, write: true });
    await h.write(enc("NEW"), 0);
    expect(dec(await h.read(10, 0))).toBe("NEW");
    expect(await readFile(b, "doc")).toBe("old");
    await h.close();
    expect(await readFile(b, "doc")).toBe("NEW");
    // Writes at offsets from two handles both land (ranged writes, not whole-file replacement).
    await writeFile(a, "shared", ["..........", ".........."]);
    const h1 = await a.open("shared", { write: true }), h2 = await b.open("shared", { write: true });
    await h1.write(enc("AAAA"), 0);
    await h2.write(enc("BBBB"), 16);
    await Promise.all([h1.close(), h2.close()]);
    expect(await readFile(a, "shared")).toBe("AAAA............BBBB");
  });

  it("POSIX errors arrive as FsError codes", async () => {
    const fs = new RemoteService(wsUrl(), { signer });
    await fs.mkdir("d");
    await writeFile(fs, "d/f", ["x"]);
    const code = async (p: Promise<unknown>) => p.then(() => "ok", (e) => (isFsError(e) ? e.code : String(e)));
    expect(await code(fs.mkdir("d"))).toBe("EEXIST");
    expect(await code(fs.remove("d"))).toBe("ENOTEMPTY");
    expect(await code(fs.stat("nope"))).toBe("ENOENT");
    expect(await code(fs.open("d", { write: true }))).toBe("EISDIR");
    expect(await code(fs.readdir("d/f"))).toBe("ENOTDIR");
    expect(await code(fs.open("d/f", { write: true, create: true, exclusive: true }))).toBe("EEXIST");
  });

  it("read-only mounts and read-only tokens refuse writes; nothing changes", async () => {
    const url = wsUrl();
    const owner = new RemoteService(url, { signer });
    await writeFile(owner, "keep", ["kept"]);
    const ro = new RemoteService(url, { signer, readOnly: true });
    const before = ro.requests;
    await expect(ro.open("keep", { write: true })).rejects.toMatchObject({ code: "EROFS" });
    await expect(ro.mkdir("x")).rejects.toMatchObject({ code: "EROFS" });
    expect(ro.requests).toBe(before);
    expect(await readFile(ro, "keep")).toBe("kept");
    // A read-only capability token, minted by the owner.
    const gurl = `${url}/grants`;
    const body = enc(JSON.stringify({ prefix: "", rights: "r", expiresIn: 600 }));
    const g = await fetch(gurl, { method: "POST", body, headers: { authorization: signer.authorize(gurl, "POST", body) } });
    expect(g.status).toBe(201);
    const { token } = (await g.json()) as { token: string };
    const viaToken = new RemoteService(url, { token });
    expect(await readFile(viaToken, "keep")).toBe("kept");
    await expect(writeFile(viaToken, "keep", ["overwritten"])).rejects.toMatchObject({ code: "EACCES" });
    const stranger = new RemoteService(url, { signer: keySigner(newSecretKey()) });
    await expect(stranger.readdir("")).rejects.toMatchObject({ code: "EACCES" });
    expect(await readFile(owner, "keep")).toBe("kept");
  });

  it("calls made together travel in one request", async () => {
    const url = wsUrl();
    const fs = new RemoteService(url, { signer });
    for (let i = 0; i < 10; i++) await writeFile(fs, `f${i}`, [String(i)]);
    const cold = new RemoteService(url, { signer, attrCacheMs: 0 });
    await cold.stat(""); // opens the session
    const before = cold.requests;
    const stats = await Promise.all(Array.from({ length: 10 }, (_, i) => cold.stat(`f${i}`)));
    expect(cold.requests - before).toBe(1);
    expect(stats.map((s) => s.size)).toEqual(Array(10).fill(1));
  });

  it("a close that cannot reach the edge rejects and keeps the writes; a later close delivers them", async () => {
    const url = wsUrl();
    let down = false;
    const flaky: typeof fetch = (input, init) => (down ? Promise.reject(new TypeError("connect ECONNREFUSED")) : fetch(input, init));
    const fs = new RemoteService(url, { signer, fetch: flaky, retryMs: 300 });
    const h = await fs.open("kept.txt", { write: true, create: true });
    await h.write(enc("not lost"));
    down = true;
    await expect(Promise.resolve(h.close())).rejects.toMatchObject({ code: "ECONNREFUSED" });
    down = false;
    await h.close();
    expect(await readFile(new RemoteService(url, { signer }), "kept.txt")).toBe("not lost");
  });

  it("mounts in a Namespace like any other service", async () => {
    const fs = new RemoteService(wsUrl(), { signer });
    const ns = new Namespace();
    ns.mount("/workspace", fs, { access: "rw" });
    const h = await ns.open("/workspace/hello.txt", { write: true, create: true });
    await h.write(enc("through the namespace"));
    await h.close();
    expect((await ns.readdir("/workspace")).map((e) => e.name)).toEqual(["hello.txt"]);
    expect(await readFile(fs, "hello.txt")).toBe("through the namespace");
    const ro = new Namespace();
    ro.mount("/workspace", fs, { access: "ro" });
    await expect(Promise.resolve().then(() => ro.open("/workspace/hello.txt", { write: true }))).rejects.toMatchObject({ code: "EROFS" });
  });

  it("a 24 MB file streams through write-behind and R2 and reads back intact", async () => {
    const fs = new RemoteService(wsUrl(), { signer });
    const size = 24 << 20;
    const chunk = new Uint8Array(1 << 20);
    const h = await fs.open("big.bin", { write: true, create: true });
    for (let i = 0; i < size / chunk.length; i++) {
      chunk.fill(i & 0xff);
      await h.write(chunk);
    }
    await h.close();
    expect((await fs.stat("big.bin")).size).toBe(size);
    const r = await fs.open("big.bin", { read: true });
    for (let i = 0; i < size / chunk.length; i += 5) {
      const b = await r.read(chunk.length, i * chunk.length);
      expect(b.length).toBe(chunk.length);
      expect(b.every((x) => x === (i & 0xff))).toBe(true);
    }
    await r.close();
  });
});

describe("restart of the local edge", () => {
  it("acknowledged writes survive a restart; a close issued while the edge is down completes after it is back", async () => {
    const url = wsUrl();
    const fs = new RemoteService(url, { signer, retryMs: 60_000 });
    await writeFile(fs, "before.txt", ["acknowledged before the restart"]);
    const h = await fs.open("pending.txt", { write: true, create: true });
    await h.write(enc("written while the edge restarts"));
    const port = edge.port;
    await edge.stop();
    const closing = Promise.resolve(h.close()); // retries until the edge answers again
    let settled = false;
    void closing.then(() => (settled = true), () => (settled = true));
    await new Promise((r) => setTimeout(r, 500));
    expect(settled).toBe(false);
    edge = await startEdge({ port, persistTo: dir });
    await closing;
    const fresh = new RemoteService(url, { signer });
    expect(await readFile(fresh, "before.txt")).toBe("acknowledged before the restart");
    expect(await readFile(fresh, "pending.txt")).toBe("written while the edge restarts");
  }, 120_000);
});
