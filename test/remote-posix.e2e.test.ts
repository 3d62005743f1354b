// The remote mount keeps POSIX promises, against a real local edge (`wrangler dev`, offline):
// big scattered flushes, files unlinked while open, handles of one client seeing each other,
// one request per open-write-close, retries that resend the same request id, O_APPEND from two
// clients, write-only handles, and read-only mounts that create nothing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startEdge, ROOT, type Edge } from "../edge/dev/launch.ts";
import { HIDDEN_PREFIX, RemoteService } from "../services/remote.ts";
import { keySigner, newSecretKey } from "../services/nip98.ts";
import { decodeFrame, MAX_BATCH_OPS } from "../services/remote-wire.ts";
import { GAP_FILL } from "../services/remote-flush.ts";
import { loadProgram } from "../runtime/modules.ts";
import { Namespace } from "../runtime/namespace.ts";
import { spawn } from "../runtime/process.ts";
import { MemService } from "../services/mem.ts";
import { TaskService } from "../services/task.ts";
import { code, dec, enc } from "./helpers.ts";
import type { FileHandle } from "../runtime/types.ts";

let edge: Edge;
let dir: string;
const signer = keySigner(newSecretKey());
const wsUrl = () => `${edge.url}/w/posix-${Math.random().toString(36).slice(2, 10)}`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "oanix-posix-"));
  edge = await startEdge({ persistTo: dir });
}, 90_000);

afterAll(async () => {
  await edge?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function fresh(): Promise<{ url: string; fs: RemoteService }> {
  const url = wsUrl();
  const fs = new RemoteService(url, { signer });
  await fs.mkdir("d");
  return { url, fs };
}

async function readAll(fs: RemoteService, path: string): Promise<Uint8Array> {
  const h = await fs.open(path, { read: true });
  const out = new Uint8Array((await h.stat()).size);
  for (let at = 0; at < out.length;) {
    const b = await h.read(out.length - at);
    if (!b.length) break;
    out.set(b, at);
    at += b.length;
  }
  await h.close();
  return out;
}

/** What the edge lists, hidden names included. */
async function rawNames(fs: RemoteService, path: string): Promise<string[]> {
  const [r] = await fs.batch([{ op: "readdir", path }]);
  return r!.ok ? (r!.entries ?? []).map((e) => e.name) : [];
}

describe("flushes of any size", () => {
  // Writes further apart than GAP_FILL cannot be joined: each is one op at the edge.
  const SPACING = GAP_FILL + 8;
  const N = MAX_BATCH_OPS + 100;

  it("more than MAX_BATCH_OPS scattered writes land on one sync, byte for byte", async () => {
    const { url, fs } = await fresh();
    const h = await fs.open("d/scattered", { read: true, write: true, create: true });
    const want = new Uint8Array(N * SPACING);
    // Scattered writes in a shuffled order.
    const order = Array.from({ length: N }, (_, i) => i).sort((a, b) => ((a * 7919) % 1031) - ((b * 7919) % 1031));
    for (const i of order) {
      const bytes = enc(`<${String(i).padStart(6, "0")}>`);
      want.set(bytes, i * SPACING);
      await h.write(bytes, i * SPACING);
    }
    await h.write(new Uint8Array(8), want.length - 8); // the tail, so the sizes match
    await h.sync();
    await h.close();
    const got = await readAll(new RemoteService(url, { signer }), "d/scattered");
    expect(got.length).toBe(want.length);
    expect(Buffer.compare(got, want)).toBe(0); // (a diff of 18 MB would not help anyone)
  }, 120_000);

  it("a sync that lands only in part answers EIO, keeps the rest, and a later sync completes it", async () => {
    const url = wsUrl();
    let batchesSeen = 0, failFrom = Infinity;
    const flaky: typeof fetch = (input, init) => {
      if (String(input).endsWith("/batch") && ++batchesSeen >= failFrom) return Promise.reject(new TypeError("connect ECONNREFUSED"));
      return fetch(input, init);
    };
    const fs = new RemoteService(url, { signer, fetch: flaky, retryMs: 200 });
    await fs.mkdir("d");
    const h = await fs.open("d/f", { write: true, create: true });
    for (let i = 0; i < N; i++) await h.write(enc("x"), i * SPACING);
    failFrom = batchesSeen + 2; // the first batch of this sync lands, the second cannot
    const e = await Promise.resolve(h.sync()).then(() => undefined, (x: unknown) => x);
    expect(e).toMatchObject({ code: "EIO" });
    failFrom = Infinity;
    await h.close();
    const got = await readAll(new RemoteService(url, { signer }), "d/f");
    expect(got.length).toBe((N - 1) * SPACING + 1);
    expect([...got].filter((b) => b === 0x78).length).toBe(N);
  }, 120_000);

  it("thousands of calls made together travel in batches the edge accepts", async () => {
    const { fs } = await fresh();
    const stats = await Promise.allSettled(Array.from({ length: MAX_BATCH_OPS + 500 }, (_, i) => fs.stat(`d/none-${i}`)));
    expect(stats.every((s) => s.status === "rejected" && (s.reason as { code?: string }).code === "ENOENT")).toBe(true);
  });
});

describe("reading all over a file", () => {
  it("pages read here and there in a file bigger than the read-ahead cost one request, not one per window", async () => {
    const { url, fs } = await fresh();
    const size = 6 << 20, page = 4096;
    const want = new Uint8Array(size);
    for (let i = 0; i < size; i += page) want.fill((i / page) % 251, i, i + page);
    const w = await fs.open("d/db", { write: true, create: true, truncate: true });
    await w.write(want);
    await w.close();
    const reader = new RemoteService(url, { signer });
    const h = await reader.open("d/db", { read: true, write: true });
    const opened = reader.requests;
    for (let i = 0; i < 300; i++) {
      const at = ((i * 7919) % (size / page)) * page;
      expect(await h.read(page, at)).toEqual(want.subarray(at, at + page));
      if (i % 50 === 0) await h.write(new Uint8Array(page).fill(7), at); // pages change too, as a database's do
      if (i % 50 === 0) want.fill(7, at, at + page);
    }
    expect(reader.requests - opened).toBeLessThanOrEqual(2);
    await h.close();
    expect(await readAll(new RemoteService(url, { signer }), "d/db")).toEqual(want);
  }, 120_000);
});

describe("answers of any size", () => {
  it("reads made together that exceed one batch answer travel in several batches", async () => {
    const { url, fs } = await fresh();
    const w = await fs.open("d/big", { write: true, create: true, truncate: true });
    const mib = new Uint8Array(1 << 20);
    for (let i = 0; i < 36; i++) await w.write(mib.fill(i));
    await w.close();
    const reader = new RemoteService(url, { signer, readAhead: 0 });
    const hs = await Promise.all([0, 1, 2].map(() => reader.open("d/big", { read: true })));
    const parts = await Promise.all(hs.map((h, i) => h.read(12 << 20, i * (12 << 20))));
    for (const [i, p] of parts.entries()) {
      expect(p.length).toBe(12 << 20);
      expect(p[0]).toBe(i * 12);
      expect(p[p.length - 1]).toBe(i * 12 + 11);
    }
    await Promise.all(hs.map((h) => h.close()));
  }, 120_000);
});

describe("open files are addressed by identity", () => {
  it("a file unlinked while open keeps being read and written; it is gone at the last close", async () => {
    const url = wsUrl();
    const fs = new RemoteService(url, { signer, writeBehind: 64 });
    await fs.mkdir("t");
    const h = await fs.open("t/tmp", { read: true, write: true, create: true, exclusive: true });
    await h.write(enc("before unlink;"));
    await fs.remove("t/tmp");
    await expect(fs.stat("t/tmp")).rejects.toMatchObject({ code: "ENOENT" });
    expect(await fs.readdir("t")).toEqual([]);
    const more = "after unlink, past the write-behind window: ".repeat(8);
    await h.write(enc(more));
    await h.sync();
    expect(dec(await h.read(4096, 0))).toBe("before unlink;" + more);
    expect((await h.stat()).size).toBe(14 + more.length);
    // Another handle may open the name again: a new, empty file.
    const h2 = await fs.open("t/tmp", { read: true, write: true, create: true });
    expect((await h2.stat()).size).toBe(0);
    await h2.close();
    await h.close();
    expect(await rawNames(new RemoteService(url, { signer }), "t")).toEqual(["tmp"]);
  });

  it("a file replaced by rename while open keeps its old content for its handle", async () => {
    const url = wsUrl();
    const fs = new RemoteService(url, { signer, readAhead: 0 }); // every read asks the edge
    await fs.mkdir("d");
    const w = await fs.open("d/a", { write: true, create: true, truncate: true });
    await w.write(enc("old"));
    await w.close();
    const h = await fs.open("d/a", { read: true });
    const n = await fs.open("d/b", { write: true, create: true, truncate: true });
    await n.write(enc("new"));
    await n.close();
    await fs.rename("d/b", "d/a");
    expect(dec(await h.read(10, 0))).toBe("old");
    expect(dec(await readAll(fs, "d/a"))).toBe("new");
    await h.close();
    expect((await rawNames(fs, "d")).filter((x) => x.startsWith(HIDDEN_PREFIX))).toEqual([]);
  });

  it("handles of one client see each other's writes: open, stat and read", async () => {
    const { fs } = await fresh();
    const early = await fs.open("d/shared", { read: true, write: true, create: true });
    const w = await fs.open("d/shared", { write: true });
    await w.write(enc("written by w"));
    const later = await fs.open("d/shared", { read: true });
    expect(dec(await later.read(100))).toBe("written by w");
    expect((await fs.stat("d/shared")).size).toBe(12);
    expect(dec(await early.read(100, 0))).toBe("written by w");
    await early.write(enc("EARLY"), 0);
    expect(dec(await later.read(100, 0))).toBe("EARLYen by w");
    await Promise.all([early.close(), w.close(), later.close()]);
    expect(dec(await readAll(new RemoteService(fs.url, { signer }), "d/shared"))).toBe("EARLYen by w");
  });
});

describe("requests", () => {
  it("open-write-close is one request, fsync one request, and creates still fail where they must", async () => {
    const url = wsUrl();
    // Attributes stay fresh for the whole test however slow the machine (the directory is known).
    const fs = new RemoteService(url, { signer, attrCacheMs: 60_000 });
    await fs.mkdir("d");
    await fs.readdir("d");
    const before = fs.requests;
    for (let i = 0; i < 10; i++) {
      const h = await fs.open(`d/f${i}`, { write: true, create: true, truncate: true });
      await h.write(enc("one "));
      await h.write(enc(`file ${i}`));
      await h.close();
    }
    expect(fs.requests - before).toBe(10);
    const h = await fs.open("d/log", { write: true, create: true });
    const opened = fs.requests;
    for (let i = 0; i < 3; i++) {
      await h.write(enc(`entry ${i}\n`));
      await h.sync();
    }
    expect(fs.requests - opened).toBe(3);
    await h.close();
    expect(fs.requests - opened).toBe(3);
    const reader = new RemoteService(url, { signer });
    expect(dec(await readAll(reader, "d/f7"))).toBe("one file 7");
    expect((await reader.readdir("d")).map((e) => e.name).sort()).toEqual(["f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9", "log"]);
    // A create in a directory the client has not seen goes to the edge at once, with its error.
    await expect(fs.open("nodir/x", { write: true, create: true, truncate: true })).rejects.toMatchObject({ code: "ENOENT" });
    await expect(fs.open("d/f1", { write: true, create: true, exclusive: true })).rejects.toMatchObject({ code: "EEXIST" });
  });
});

describe("retries", () => {
  it("a batch whose answer was lost is resent with the same request id, and reports success", async () => {
    const url = wsUrl();
    const rids: string[] = [];
    let loseNext = false;
    const lossy: typeof fetch = async (input, init) => {
      if (String(input).endsWith("/batch")) {
        const body = init!.body as Uint8Array;
        rids.push((decodeFrame(body).header as { rid: string }).rid);
      }
      const res = await fetch(input, init);
      if (loseNext && String(input).endsWith("/batch")) {
        loseNext = false;
        await res.body?.cancel();
        throw new TypeError("socket hang up"); // the edge ran it; the answer never arrived
      }
      return res;
    };
    const fs = new RemoteService(url, { signer, fetch: lossy });
    await fs.mkdir("a");
    const first = rids.length;
    loseNext = true;
    await fs.mkdir("b"); // the edge ran it once and answers the resend from memory: no false EEXIST
    expect(rids.length).toBe(first + 2);
    expect(rids[first + 1]).toBe(rids[first]);
    expect(new Set(rids.slice(0, first)).size).toBe(first);
    expect(rids[first]).not.toBe(rids[first - 1]);
    expect((await fs.stat("b")).type).toBe("dir");
  });
});

describe("O_APPEND", () => {
  it("two clients appending to one file, both opened before either wrote, lose no line", async () => {
    const url = wsUrl();
    const a = new RemoteService(url, { signer }), b = new RemoteService(url, { signer });
    await a.createWorkspace();
    const ha = await a.open("log", { write: true, create: true }), hb = await b.open("log", { write: true, create: true });
    // What the WASI host does for a write on an O_APPEND descriptor.
    const appendLine = async (h: FileHandle, line: string) =>
      h.append ? h.append(enc(line)) : h.write(enc(line), (await h.stat()).size);
    for (let i = 0; i < 5; i++) {
      await appendLine(ha, `a${i}\n`);
      await appendLine(hb, `b${i}\n`);
      if (i === 2) await Promise.all([ha.sync(), hb.sync()]);
    }
    await Promise.all([ha.close(), hb.close()]);
    const lines = dec(await readAll(new RemoteService(url, { signer }), "log")).trim().split("\n").sort();
    expect(lines).toEqual(["a0", "a1", "a2", "a3", "a4", "b0", "b1", "b2", "b3", "b4"]);
  });

  const demo = join(ROOT, "agents", "build", "demo.wasm");
  it.skipIf(!existsSync(demo))("end to end: two demo agents logging to one remote events.jsonl lose no line", async () => {
    const url = wsUrl();
    await new RemoteService(url, { signer }).createWorkspace();
    const program = await loadProgram(readFileSync(demo));
    const files = { "a.txt": "one two three\n", "b.txt": "four five\n", "c/d.txt": "six\n" };
    const run = async () => {
      const logs = new RemoteService(url, { signer });
      const ns = new Namespace()
        .mount("/task", new TaskService({ kind: "wordcount", root: "/workspace", top: 3 }))
        .mount("/workspace", new MemService(files))
        .mount("/logs", logs);
      const st = await spawn(program, { namespace: ns });
      await logs.flush();
      return st.code;
    };
    expect(await Promise.all([run(), run()])).toEqual([0, 0]);
    const lines = dec(await readAll(new RemoteService(url, { signer }), "events.jsonl")).trim().split("\n");
    const events = lines.map((l) => (JSON.parse(l) as { event: string }).event);
    expect(events.filter((e) => e === "start")).toHaveLength(2);
    expect(events.filter((e) => e === "end")).toHaveLength(2);
    expect(events.filter((e) => e === "file")).toHaveLength(2 * Object.keys(files).length);
  });
});

describe("handle modes and read-only mounts", () => {
  it("a write-only handle cannot read, not even what it just wrote", async () => {
    const { fs } = await fresh();
    // Modes are the Namespace's to check, for every service (runtime/handle.ts).
    const h = await new Namespace().mount("/w", fs).open("/w/d/secret", { write: true, create: true });
    await h.write(enc("cached here"));
    expect(await code(() => h.read(100, 0))).toBe("EBADF");
    await h.close();
  });

  it("--ro on a workspace that does not exist says so and creates nothing", async () => {
    const url = wsUrl();
    const ro = new RemoteService(url, { signer, readOnly: true });
    const e = await Promise.resolve(ro.readdir("")).then(() => undefined, (x: unknown) => x);
    expect(e).toMatchObject({ code: "ENOENT" });
    expect((e as Error).message).toMatch(/workspace .* does not exist/);
    await expect(ro.createWorkspace()).rejects.toMatchObject({ code: "EROFS" });
    const res = await fetch(url, { headers: { authorization: signer.authorize(url, "GET") } });
    expect(res.status).toBe(404);
  });
});
