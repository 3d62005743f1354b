// The JSPI-free path's file proxy (browser/sab-fs.ts over browser/sab-channel.ts) with Node worker
// threads standing in for the browser's workers: the services answer with Promises on this
// thread, a worker thread calls them synchronously. Big reads and writes cross a small channel in
// chunks, errors keep their FsError code, several guests are served at once, a call that is
// never answered gives up at its deadline, and a real guest (browser/guest.ts) runs with limits.
import { Worker } from "node:worker_threads";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { fsError } from "../../runtime/errors.ts";
import { Namespace } from "../../runtime/namespace.ts";
import type { ExitStatus } from "../../runtime/process.ts";
import type { FileHandle, FileService } from "../../runtime/types.ts";
import { LogsService } from "../../services/logs.ts";
import { MemService } from "../../services/mem.ts";
import { TaskService } from "../../services/task.ts";
import { newChannel } from "../../browser/sab-channel.ts";
import { serveFileService, type Served } from "../../browser/sab-fs.ts";
import type { Seen } from "./sab-client.fixture.ts";

const FIXTURE = new URL("./sab-client.fixture.ts", import.meta.url);
const workers: Worker[] = [];
const served: Served[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
  await Promise.all(served.splice(0).map((s) => s.close()));
});

/** Every call answers through a Promise after a macrotask, as a remote service does. */
function slow(s: FileService): FileService {
  const later = <T>(f: () => T) => new Promise<Awaited<T>>((res, rej) => setTimeout(() => { try { res(f() as Awaited<T>); } catch (e) { rej(e); } }, 0));
  const h = (x: FileHandle): FileHandle => ({
    get position() { return x.position; },
    set position(p: number) { x.position = p; },
    type: x.type,
    read: (n, o) => later(() => x.read(n, o)),
    write: (d, o) => later(() => x.write(d.slice(), o)),
    ...(x.append ? { append: (d: Uint8Array) => later(() => x.append!(d.slice())) } : {}),
    stat: () => later(() => x.stat()), truncate: (n) => later(() => x.truncate(n)),
    sync: () => later(() => x.sync()), close: () => later(() => x.close()),
  });
  return {
    open: (p, f) => later(() => h(s.open(p, f) as FileHandle)),
    stat: (p) => later(() => s.stat(p)), lstat: (p) => later(() => s.lstat!(p)),
    readdir: (p) => later(() => s.readdir(p)), mkdir: (p) => later(() => s.mkdir(p)),
    remove: (p) => later(() => s.remove(p)), rename: (a, b) => later(() => s.rename(a, b)),
    setTimes: (p, a, m, o) => later(() => s.setTimes!(p, a, m, o)),
  };
}

function serve(fs: FileService, capacity?: number): SharedArrayBuffer {
  const sab = newChannel(capacity);
  served.push(serveFileService(sab, fs));
  return sab;
}

function client(sab: SharedArrayBuffer, scenario: string, o: { deadlineMs?: number; arg?: number } = {}): Promise<Record<string, Seen>> {
  const w = new Worker(FIXTURE, { workerData: { role: "client", sab, scenario, ...o } });
  workers.push(w);
  return new Promise((resolve, reject) => {
    w.once("message", resolve);
    w.once("error", reject);
  });
}

const memRoot = (): Namespace => {
  const ns = new Namespace();
  ns.mount("/", slow(new MemService()));
  return ns;
};

describe("the SAB file proxy (browser/sab-fs.ts)", () => {
  it("answers every call synchronously from services that answer with Promises, positions and errors included", async () => {
    const r = await client(serve(memRoot()), "basics");
    expect(r.write).toEqual({ ok: 11 });
    expect(r.positionAfterWrite).toEqual({ ok: 11 });
    expect(r.readAtPosition).toEqual({ ok: "world" });
    expect(r.positionAfterRead).toEqual({ ok: 11 });
    expect(r.readAtOffset).toEqual({ ok: "hello" });
    expect(r.readInto).toEqual({ ok: [4, "llo "] });
    expect(r.size).toEqual({ ok: 11 });
    expect(r.mtimeIsBigint).toEqual({ ok: "bigint" });
    expect(r.truncate).toEqual({ ok: 5 });
    expect(r.closeTwice!.error).toMatchObject({ name: "FsError", code: "EBADF" });
    expect(r.readdir).toEqual({ ok: ["a.txt:file"] });
    expect(r.rename).toEqual({ ok: ["b.txt"] });
    // FsErrors arrive with their code, operation and path, as the service threw them.
    expect(r.missing!.error).toMatchObject({ name: "FsError", code: "ENOENT" });
    expect(r.exclusive!.error).toMatchObject({ name: "FsError", code: "EEXIST" });
    expect(r.notEmpty!.error).toMatchObject({ name: "FsError", code: "ENOTEMPTY" });
    expect(r.setTimes).toEqual({ ok: [true, true] });
    expect(r.append).toEqual({ ok: ["function", 1, 6] });
    expect(r.remove).toEqual({ ok: [] });
  });

  it("keeps op and path on an FsError and its message without a doubled code", async () => {
    const fs: FileService = {
      ...new MemService(),
      stat: async (p: string) => { throw fsError("EACCES", "not yours", { op: "stat", path: p }); },
    } as unknown as FileService;
    const sab = serve(fs);
    const w = new Worker(FIXTURE, { workerData: { role: "client", sab, scenario: "hang" } }); // first call is stat("/hang")
    workers.push(w);
    const r = await new Promise<Record<string, Seen>>((res) => w.once("message", res));
    expect(r.first!.error).toEqual({ name: "FsError", code: "EACCES", message: "EACCES: not yours", op: "stat", path: "/hang" });
  });

  it("moves big reads and writes through a small channel in chunks, byte for byte", async () => {
    const n = (3 << 20) + 17;
    const r = await client(serve(memRoot(), 4093), "big", { arg: n });
    expect(r).toEqual({ wrote: { ok: n }, readBack: { ok: true }, readIntoBack: { ok: true } });
  });

  it("serves several guests at once, each on its own channel, without mixing their replies", async () => {
    const ns = memRoot();
    const rs = await Promise.all([1, 2, 3, 4].map((i) => client(serve(ns, 64), "many", { arg: i })));
    rs.forEach((r, i) => expect(r).toEqual({ bad: { ok: 0 }, last: { ok: `worker ${i + 1} round 199` } }));
  });

  it("a call never answered gives up at the deadline (ETIMEDOUT), and the channel stays down", async () => {
    const ns = memRoot();
    ns.mount("/hang", { ...slow(new MemService()), stat: () => new Promise(() => {}) } as FileService);
    const r = await client(serve(ns), "hang", { deadlineMs: 300 });
    expect(r.first!.error).toMatchObject({ name: "FsError", code: "ETIMEDOUT" });
    expect(r.waited!.ok).toBeGreaterThanOrEqual(295);
    expect(r.second!.error).toMatchObject({ code: "ETIMEDOUT" });
    expect(r.secondWaited!.ok).toBeLessThan(50);
  });

  it("a client waiting when the services close the channel is told at once (EIO)", async () => {
    const ns = memRoot();
    let asked!: () => void;
    const waiting = new Promise<void>((r) => (asked = r));
    ns.mount("/hang", { ...slow(new MemService()), stat: () => (asked(), new Promise(() => {})) } as FileService);
    const sab = serve(ns);
    const seen = client(sab, "hang");
    await waiting;
    await served[0]!.close();
    const r = await seen;
    expect(r.first!.error).toMatchObject({ code: "EIO", message: expect.stringMatching(/closed/) });
    expect(r.second!.error).toMatchObject({ code: "EIO" });
  });

  it("a client that calls after the services closed the channel is told at once (EIO), not left waiting", async () => {
    const sab = serve(memRoot());
    await served[0]!.close();
    const r = await client(sab, "hang");
    expect(r.first!.error).toMatchObject({ code: "EIO", message: expect.stringMatching(/closed/) });
  });

  it("a service failing with something else than an FsError is an Error with its message; an unknown operation is ENOSYS", async () => {
    const ns = memRoot();
    ns.mount("/boom", { ...slow(new MemService()), stat: () => Promise.reject(new TypeError("fetch failed")) } as FileService);
    const r = await client(serve(ns), "odd");
    expect(r.typeError!.error).toMatchObject({ name: "TypeError", message: "fetch failed" });
    expect(r.typeError!.error!.code).toBeUndefined();
    expect(r.unknownOp!.error).toMatchObject({ code: "ENOSYS" });
  });
});

// ---------------------------------------------------------------------------------------------
// A real guest without JSPI, as in the browser's guest worker.

const BUILD = join(import.meta.dirname, "../../agents/build");
function agent(name: string): Uint8Array {
  const p = join(BUILD, `${name}.wasm`);
  if (!existsSync(p)) throw new Error(`${p} is missing: run npm run build:agents`);
  return readFileSync(p);
}

interface GuestDone { status: ExitStatus; stdout: string; stderr: string; channelDown: boolean }

async function guest(name: string, ns: FileService, o: { args?: string[]; limits?: Record<string, number> } = {}): Promise<GuestDone> {
  const sab = newChannel();
  const s = serveFileService(sab, ns);
  served.push(s);
  const w = new Worker(FIXTURE, { workerData: { role: "guest" } });
  workers.push(w);
  const out = { 1: "", 2: "" };
  const dec = { 1: new TextDecoder(), 2: new TextDecoder() };
  return new Promise((resolve, reject) => {
    w.on("message", (m: { t: string; fd: 1 | 2; bytes: Uint8Array; status: ExitStatus; channelDown: boolean; message: string }) => {
      if (m.t === "out") out[m.fd] += dec[m.fd].decode(m.bytes, { stream: true });
      else if (m.t === "exit") resolve({ status: m.status, stdout: out[1], stderr: out[2], channelDown: m.channelDown });
      else reject(new Error(m.message));
    });
    w.once("error", reject);
    w.postMessage({ wasm: agent(name), sab, name, args: o.args, limits: o.limits ?? {} });
  });
}

function agentNamespace(files: Record<string, string> = {}, spec?: object): Namespace {
  const ns = new Namespace();
  ns.mount("/task", new TaskService(spec ?? {}));
  ns.mount("/workspace", slow(new MemService(files)));
  ns.mount("/logs", new LogsService());
  return ns;
}

describe("a guest without JSPI (browser/guest.ts) over the proxy", () => {
  it("runs the demo agent on a namespace of Promise-answering services, and its files and logs land", async () => {
    const ns = agentNamespace({ "a.txt": "the cat and the hat\n", "sub/b.txt": "the end\n" }, { kind: "wordcount", root: "/workspace", top: 3 });
    const r = await guest("demo", ns);
    expect(r.stderr).toBe("");
    expect(r.status).toMatchObject({ code: 0, reason: "exit" });
    expect(r.stdout).toMatch(/2 files/);
    expect(JSON.parse(new TextDecoder().decode(await (await ns.open("/workspace/manifest.json", { read: true })).read(1 << 20)))).toBeTruthy();
    const log = await ns.open("/logs/stdout", { read: true });
    expect(new TextDecoder().decode(await log.read(1 << 20))).toBe(r.stdout);
  });

  it("smallfile's churn gives the same count as with JSPI", async () => {
    const r = await guest("smallfile", agentNamespace(), { args: ["/workspace/churn", "100"] });
    expect(r).toMatchObject({ status: { code: 0 }, stdout: "ops=600\n", stderr: "" });
  });

  it("stops a busy loop at its wall time (124) and a memory hog at its cap (137); the channel was not left mid-call", async () => {
    const busy = await guest("busy", agentNamespace(), { limits: { wallTimeMs: 300 } });
    expect(busy.status).toMatchObject({ code: 124, reason: "timeout" });
    expect(busy.stdout).toBe("busy: start\n");
    const bomb = await guest("membomb", agentNamespace(), { limits: { memoryBytes: 16 << 20 } });
    expect(bomb.status).toMatchObject({ code: 137, reason: "memory" });
  });

  it("a guest blocked on a service that never answers is stopped at its wall time (124), not left hanging", async () => {
    const ns = agentNamespace({}, { kind: "wordcount", root: "/workspace", top: 3 });
    ns.mount("/workspace", { ...slow(new MemService()), readdir: () => new Promise(() => {}), stat: () => new Promise(() => {}) } as FileService);
    const t = performance.now();
    const r = await guest("demo", ns, { limits: { wallTimeMs: 400 } });
    expect(r.status).toMatchObject({ code: 124, reason: "timeout" });
    expect(r.channelDown).toBe(true);
    expect(performance.now() - t).toBeLessThan(5000);
  });
});
