// Processes on the real guests built from agents/src (npm test builds them first).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { LogsService } from "../services/logs.ts";
import { MemService } from "../services/mem.ts";
import { TaskService } from "../services/task.ts";
import { ProgramError, loadProgram } from "./modules.ts";
import { Namespace } from "./namespace.ts";
import { DEFAULT_LIMITS, EXIT, spawn } from "./process.ts";
import type { FileHandle, FileService } from "./types.ts";

const BUILD = join(import.meta.dirname, "../agents/build");
function agent(name: string): Uint8Array {
  const p = join(BUILD, `${name}.wasm`);
  if (!existsSync(p)) throw new Error(`${p} is missing: run npm run build:agents`);
  return readFileSync(p);
}
const dec = new TextDecoder();

function collect() {
  const out = { stdout: "", stderr: "" };
  return {
    out,
    onStdout: (b: Uint8Array) => void (out.stdout += dec.decode(b)),
    onStderr: (b: Uint8Array) => void (out.stderr += dec.decode(b)),
  };
}

/** Every call answers through a Promise after a macrotask, as a remote service would. */
function slow(s: FileService): FileService {
  const later = <T>(f: () => T) => new Promise<Awaited<T>>((res, rej) => setTimeout(() => { try { res(f() as Awaited<T>); } catch (e) { rej(e); } }, 0));
  const h = (x: ReturnType<MemService["open"]>): FileHandle => ({
    get position() { return x.position; },
    set position(p: number) { x.position = p; },
    type: x.type,
    read: (n: number, o?: number) => later(() => x.read(n, o)),
    write: (d: Uint8Array, o?: number) => later(() => x.write(d.slice(), o)),
    stat: () => later(() => x.stat()), truncate: (n: number) => later(() => x.truncate(n)),
    sync: () => later(() => x.sync()), close: () => later(() => x.close()),
  });
  return {
    open: (p, f) => later(() => h(s.open(p, f) as ReturnType<MemService["open"]>)),
    stat: (p) => later(() => s.stat(p)), lstat: (p) => later(() => s.lstat!(p)),
    readdir: (p) => later(() => s.readdir(p)), mkdir: (p) => later(() => s.mkdir(p)),
    remove: (p) => later(() => s.remove(p)), rename: (a, b) => later(() => s.rename(a, b)),
  };
}

describe("spawn", () => {
  it("passes args, env and stdin, and returns the guest's exit code", async () => {
    const c = collect();
    const st = await spawn(await loadProgram(agent("echo")), {
      namespace: new Namespace(), name: "echo", args: ["one", "two words"], env: { A: "1", EXIT_CODE: "7" },
      stdin: "from stdin\n", ...c,
    });
    expect(st).toMatchObject({ code: 7, reason: "exit" });
    expect(c.out.stdout).toBe("echo\none\ntwo words\nA=1\nEXIT_CODE=7\nfrom stdin\n");
  });

  it("a limit given as undefined keeps its default (no NaN timer, no warning)", async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on("warning", onWarning);
    try {
      const st = await spawn(await loadProgram(agent("hello")), {
        namespace: new Namespace(), limits: { wallTimeMs: undefined, memoryBytes: undefined, outputBytes: undefined }, ...collect(),
      });
      await new Promise((r) => setTimeout(r, 10));
      expect(st).toMatchObject({ code: 0, reason: "exit" });
      expect(warnings).toEqual([]);
    } finally {
      process.off("warning", onWarning);
    }
  });

  it("a run given no output limit is still stopped at the default one", async () => {
    let out = 0;
    const st = await spawn(await loadProgram(agent("spew")), {
      namespace: new Namespace().mount("/", new MemService()), limits: { outputBytes: undefined },
      onStdout: (b) => void (out += b.length),
    });
    expect(st).toMatchObject({ code: 153, reason: "output" });
    expect(out).toBeLessThanOrEqual(DEFAULT_LIMITS.outputBytes);
  });

  it("reads stdin lazily from a reader that waits", async () => {
    const c = collect();
    const chunks = ["a", "b", ""];
    const stdin = (_max: number) => new Promise<Uint8Array>((r) => setTimeout(() => r(new TextEncoder().encode(chunks.shift() ?? "")), 5));
    const st = await spawn(await loadProgram(agent("echo")), { namespace: new Namespace(), name: "e", stdin, ...c });
    expect(st.code).toBe(0);
    expect(c.out.stdout).toBe("e\nab");
  });

  it("sends stdout and stderr to /logs as well as to the callbacks, and logs the exit", async () => {
    const logs = new LogsService();
    const ns = new Namespace().mount("/logs", logs);
    const c = collect();
    const st = await spawn(await loadProgram(agent("echo")), { namespace: ns, name: "e", env: { EXIT_CODE: "nope" }, ...c });
    expect(st.code).toBe(2);
    expect(logs.text("stdout")).toBe(c.out.stdout);
    expect(logs.text("stderr")).toBe("echo: bad EXIT_CODE: nope\n");
    expect(logs.events().at(-1)).toMatchObject({ event: "exit", code: 2, reason: "exit" });
  });

  it("stops a busy loop at the wall-time limit with 124", async () => {
    const c = collect();
    const st = await spawn(await loadProgram(agent("busy")), { namespace: new Namespace(), limits: { wallTimeMs: 200 }, ...c });
    expect(st).toMatchObject({ code: EXIT.timeout, reason: "timeout" });
    expect(st.message).toContain("200 ms");
    expect(c.out.stdout).toBe("busy: start\n");
  });

  it("stops a guest waiting on a slow service at the wall-time limit", async () => {
    const never: FileService = {
      open: () => new Promise(() => {}), stat: () => new Promise(() => {}), readdir: () => new Promise(() => {}),
      mkdir: () => new Promise(() => {}), remove: () => new Promise(() => {}), rename: () => new Promise(() => {}),
    };
    const ns = new Namespace().mount("/task", never);
    const st = await spawn(await loadProgram(agent("demo")), { namespace: ns, limits: { wallTimeMs: 150 } });
    expect(st).toMatchObject({ code: EXIT.timeout, reason: "timeout" });
  });

  it("refuses memory past the cap and reports 137", async () => {
    const c = collect();
    const st = await spawn(await loadProgram(agent("membomb")), { namespace: new Namespace(), limits: { memoryBytes: 16 << 20 }, ...c });
    expect(st).toMatchObject({ code: EXIT.memory, reason: "memory" });
    expect(st.message).toContain(String(16 << 20));
    expect(c.out.stdout).toContain("membomb: start");
  });

  it("reports a trap with 134 and its message", async () => {
    const st = await spawn(await loadProgram(agent("trap")), { namespace: new Namespace() });
    expect(st).toMatchObject({ code: EXIT.trap, reason: "trap" });
    expect(st.message).toMatch(/unreachable/);
  });

  it("stops a guest past the output limit with 153, keeping what came before", async () => {
    const c = collect();
    const st = await spawn(await loadProgram(agent("spew")), { namespace: new Namespace(), limits: { outputBytes: 10_000 }, ...c });
    expect(st).toMatchObject({ code: EXIT.output, reason: "output" });
    expect(c.out.stdout.length).toBeLessThanOrEqual(10_000);
    expect(c.out.stdout.length).toBeGreaterThan(0);
  });

  it("gives the guest EIO when a service fails with a plain error, and the run fails", async () => {
    const ws = new MemService({ "a.txt": "words here\n" });
    const flaky: FileService = {
      ...Object.fromEntries(["stat", "lstat", "readdir", "mkdir", "remove", "rename"].map((k) => [k, (...a: never[]) => (ws as never as Record<string, (...x: never[]) => unknown>)[k]!(...a)])),
      open: (p, f) => {
        const h = ws.open(p, f);
        if (!f.write) return h;
        return {
          type: h.type, get position() { return h.position; }, set position(n: number) { h.position = n; },
          read: (n, o) => h.read(n, o), write: (d, o) => h.write(d, o), stat: () => h.stat(),
          truncate: (n) => h.truncate(n), sync: () => h.sync(), close: () => Promise.reject(new Error("edge unreachable")),
        } satisfies FileHandle;
      },
    } as FileService;
    const task = new TaskService({ kind: "wordcount", root: "/workspace" });
    const ns = new Namespace().mount("/task", task).mount("/workspace", flaky);
    let stderr = "";
    const st = await spawn(await loadProgram(agent("demo")), { namespace: ns, onStderr: (b) => void (stderr += dec.decode(b)) });
    expect(st).toMatchObject({ code: 1, reason: "exit" });
    expect(stderr).toMatch(/EIO/);
  });

  it("runs the same agent on a service that answers with Promises (JSPI) with the same result", async () => {
    const files = { "a.txt": "the cat and the hat\n", "notes/b.md": "The end.\n" };
    const run = async (wrap: (s: FileService) => FileService) => {
      const task = new TaskService({ kind: "wordcount", root: "/workspace", top: 3 });
      const ws = new MemService(files);
      const ns = new Namespace().mount("/task", task).mount("/workspace", wrap(ws)).mount("/logs", new LogsService());
      const st = await spawn(await loadProgram(agent("demo")), { namespace: ns });
      expect(st.code).toBe(0);
      return { result: task.result(), manifest: dec.decode(ws.readFile("manifest.json")) };
    };
    const sync = await run((s) => s);
    const async = await run(slow);
    expect(async).toEqual(sync);
    expect(sync.result).toMatchObject({ ok: true, files: 2, words: 7, top: [["the", 3], ["and", 1], ["cat", 1]] });
  });
});

describe("programs", () => {
  it("compiles once per content hash", async () => {
    const a = await loadProgram(agent("hello"));
    const b = await loadProgram(new Uint8Array(agent("hello")));
    expect(b).toBe(a);
    expect(a.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(a.instrumented).toBe(true);
  });

  it("rejects bytes that are not wasm, modules with foreign imports, and non-commands", async () => {
    await expect(loadProgram(new TextEncoder().encode("not wasm"))).rejects.toThrow(ProgramError);
    await expect(loadProgram(new TextEncoder().encode("not wasm"))).rejects.toThrow(/invalid wasm module/);
    // (module (import "env" "f" (func)) (memory (export "memory") 1) (func (export "_start")))
    const foreign = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 2, 9, 1, 3, 101, 110, 118, 1, 102, 0, 0, 3, 2, 1, 0, 5, 3, 1, 0, 1, 7, 19, 2, 6, 109, 101, 109, 111, 114, 121, 2, 0, 6, 95, 115, 116, 97, 114, 116, 0, 1, 10, 4, 1, 2, 0, 11]);
    await expect(loadProgram(foreign)).rejects.toThrow(/imports env\.f/);
    // (module (memory (export "memory") 1))
    const noStart = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 5, 3, 1, 0, 1, 7, 10, 1, 6, 109, 101, 109, 111, 114, 121, 2, 0]);
    await expect(loadProgram(noStart)).rejects.toThrow(/no _start/);
  });
});
