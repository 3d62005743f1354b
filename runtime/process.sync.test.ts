// spawn({ jspi: false }): a guest run without WebAssembly.Suspending, for engines that lack it
// (the browser's Atomics.wait fallback, browser/guest.ts). Every service must answer synchronously;
// one that answers with a Promise stops the run with a named error instead of being misread as
// success; clock waits block the thread, bounded by the wall-time limit.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { MemService } from "../services/mem.ts";
import { TaskService } from "../services/task.ts";
import { command, op, u32s, WASI_IMPORTS, type WasiImport } from "../test/wasm.ts";
import { loadProgram } from "./modules.ts";
import { Namespace } from "./namespace.ts";
import { spawn } from "./process.ts";
import type { FileService, OpenFlags } from "./types.ts";
import { CLOCK, EVENTTYPE, SUBSCRIPTION } from "./wasi/defs.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const BUILD = join(import.meta.dirname, "../agents/build");
function agent(name: string): Uint8Array {
  const p = join(BUILD, `${name}.wasm`);
  if (!existsSync(p)) throw new Error(`${p} is missing: run npm run build:agents`);
  return readFileSync(p);
}

const poll_oneoff: WasiImport = { name: "poll_oneoff", params: ["i32", "i32", "i32", "i32"], result: "i32" };

/** Sleeps `ns` on the monotonic clock (poll_oneoff), then writes "slept" to stdout. */
function sleeper(ns: bigint): Uint8Array {
  const sub = new Uint8Array(SUBSCRIPTION.SIZE);
  const dv = new DataView(sub.buffer);
  dv.setUint8(SUBSCRIPTION.tag, EVENTTYPE.CLOCK);
  dv.setUint32(SUBSCRIPTION.clockId, CLOCK.MONOTONIC, true);
  dv.setBigUint64(SUBSCRIPTION.timeout, ns, true);
  return command([poll_oneoff, WASI_IMPORTS.fd_write], [
    op.i32(256), op.i32(512), op.i32(1), op.i32(768), op.call(0), op.drop,
    op.i32(1), op.i32(32), op.i32(1), op.i32(772), op.call(1), op.drop,
  ], [{ at: 256, bytes: sub }, { at: 32, bytes: u32s(48, 6) }, { at: 48, bytes: enc.encode("slept\n") }]);
}

function out() {
  const o = { stdout: "" };
  return { o, onStdout: (b: Uint8Array) => void (o.stdout += dec.decode(b)) };
}

describe("spawn without JSPI (jspi: false)", () => {
  it("runs a real guest over synchronous services, even where WebAssembly.Suspending is missing", async () => {
    const program = await loadProgram(agent("demo"));
    const W = WebAssembly as unknown as { Suspending?: unknown };
    const saved = W.Suspending;
    delete W.Suspending;
    try {
      const ns = new Namespace()
        .mount("/task", new TaskService({ kind: "wordcount", root: "/workspace", top: 3 }))
        .mount("/workspace", new MemService({ "a.txt": "one two two\n" }));
      const { o, onStdout } = out();
      const st = await spawn(program, { namespace: ns, jspi: false, onStdout });
      expect(st).toMatchObject({ code: 0, reason: "exit" });
      expect(o.stdout).toMatch(/1 files?/);
      expect(ns.stat("/workspace/manifest.json")).toMatchObject({ type: "file" });
    } finally {
      W.Suspending = saved;
    }
  });

  it("a service that answers with a Promise stops the run with an error naming the call, never a silent success", async () => {
    const mem = new MemService({ "a.txt": "x" });
    const later: FileService = { ...mem, stat: async (p: string) => mem.stat(p), open: (p: string, f: OpenFlags) => mem.open(p, f), readdir: (p: string) => mem.readdir(p) } as unknown as FileService;
    const ns = new Namespace().mount("/task", new TaskService({ kind: "wordcount", root: "/workspace", top: 3 })).mount("/workspace", later);
    const run = spawn(await loadProgram(agent("demo")), { namespace: ns, jspi: false });
    await expect(run).rejects.toMatchObject({ name: "SyncViolation", message: expect.stringMatching(/^path_filestat_get: a service answered with a Promise/) });
  });

  it("a clock wait blocks the thread for its time; past the wall-time limit it ends the run at the limit (124)", async () => {
    const short = out();
    const t0 = performance.now();
    const a = await spawn(await loadProgram(sleeper(80_000_000n)), { namespace: new Namespace(), jspi: false, preopen: null, onStdout: short.onStdout });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(75);
    expect(a).toMatchObject({ code: 0 });
    expect(short.o.stdout).toBe("slept\n");

    const long = out();
    const t1 = performance.now();
    const b = await spawn(await loadProgram(sleeper(10_000_000_000n)), { namespace: new Namespace(), jspi: false, preopen: null, limits: { wallTimeMs: 100 }, onStdout: long.onStdout });
    expect(b).toMatchObject({ code: 124, reason: "timeout" });
    expect(performance.now() - t1).toBeLessThan(2000);
    expect(long.o.stdout).toBe("");
  });
});
