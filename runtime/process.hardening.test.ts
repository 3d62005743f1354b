// Process hardening: JSPI missing, closes that hang or reject, and guests that lie about iovecs.
// The guests are hand-built (test/wasm.ts) so each does exactly the one odd thing under test.
import { describe, expect, it } from "vitest";
import { MemService } from "../services/mem.ts";
import { command, op, u32s, WASI_IMPORTS } from "../test/wasm.ts";
import { loadProgram } from "./modules.ts";
import { Namespace } from "./namespace.ts";
import { EXIT, spawn } from "./process.ts";
import type { FileHandle, FileService, OpenFlags } from "./types.ts";
import { ERRNO, RIGHTS } from "./wasi/defs.ts";

const enc = new TextEncoder();
const { path_open, fd_write, proc_exit } = WASI_IMPORTS;

/** Opens (creating) "f" under the preopen, writes "hello" to it, and exits 0 without closing it. */
const leavesOpen = command([path_open, fd_write], [
  op.i32(3), op.i32(0), op.i32(16), op.i32(1), op.i32(1), op.i64(RIGHTS.FD_WRITE), op.i64(0), op.i32(0), op.i32(64), op.call(0), op.drop,
  op.i32(64), op.load(), op.i32(32), op.i32(1), op.i32(68), op.call(1), op.drop,
], [{ at: 16, bytes: enc.encode("f") }, { at: 32, bytes: u32s(48, 5) }, { at: 48, bytes: enc.encode("hello") }]);

/** A service over `mem` whose handles' close never settles, or rejects (and which leaves O_DIRECTORY to the host). */
function closing(mem: MemService, how: "hangs" | "rejects"): FileService {
  return {
    open(p: string, f: OpenFlags): FileHandle {
      const h = mem.open(p, { ...f, directory: false });
      return {
        get position() { return h.position; }, set position(n: number) { h.position = n; },
        type: h.type, read: (n, o) => h.read(n, o), write: (d, o) => h.write(d, o), stat: () => h.stat(),
        truncate: (n) => h.truncate(n), sync: () => h.sync(),
        close: () => (how === "hangs" ? new Promise<void>(() => {}) : Promise.reject(new Error("edge unreachable"))),
      };
    },
    stat: (p) => mem.stat(p), lstat: (p) => mem.lstat(p), readdir: (p) => mem.readdir(p),
    mkdir: (p) => mem.mkdir(p), remove: (p) => mem.remove(p), rename: (a, b) => mem.rename(a, b),
  };
}

describe("spawn without JSPI", () => {
  it("fails with what is missing and what to do, not a TypeError from deep inside", async () => {
    const program = await loadProgram(leavesOpen);
    const W = WebAssembly as unknown as { Suspending?: unknown };
    const saved = W.Suspending;
    delete W.Suspending;
    try {
      const run = spawn(program, { namespace: new Namespace().mount("/", new MemService()) });
      await expect(run).rejects.toThrow(/no JSPI \(WebAssembly\.Suspending.*Node >= 24.*--experimental-wasm-jspi.*Chromium >= 137/);
      await expect(run).rejects.toMatchObject({ name: "JspiMissing" });
    } finally {
      W.Suspending = saved;
    }
  });
});

describe("closing at exit", () => {
  it("a close that rejects is reported with exit 74, never as an unhandled rejection", async () => {
    const mem = new MemService();
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => void unhandled.push(e);
    process.on("unhandledRejection", onUnhandled);
    try {
      const st = await spawn(await loadProgram(leavesOpen), { namespace: new Namespace().mount("/", closing(mem, "rejects")) });
      expect(st).toMatchObject({ code: EXIT.io, reason: "io" });
      expect(st.message).toMatch(/closing files failed: edge unreachable/);
      // A handle the host throws away itself (a file opened as a directory) is closed too.
      const notDir = command([path_open, proc_exit], [
        op.i32(3), op.i32(0), op.i32(16), op.i32(1), op.i32(2), op.i64(RIGHTS.FD_READ), op.i64(0), op.i32(0), op.i32(64), op.call(0), op.call(1),
      ], [{ at: 16, bytes: enc.encode("f") }]);
      const st2 = await spawn(await loadProgram(notDir), { namespace: new Namespace().mount("/", closing(mem, "rejects")) });
      expect(st2).toMatchObject({ code: ERRNO.NOTDIR, reason: "exit" });
      await new Promise((r) => setTimeout(r, 50));
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });

  it("the wall-time limit bounds the final flush: a close that hangs is reported as not flushed", async () => {
    const mem = new MemService();
    const t0 = performance.now();
    const st = await spawn(await loadProgram(leavesOpen), {
      namespace: new Namespace().mount("/", closing(mem, "hangs")), limits: { wallTimeMs: 300 },
    });
    expect(performance.now() - t0).toBeLessThan(3000); // unbounded, it would never return
    expect(st).toMatchObject({ code: EXIT.io, reason: "io" });
    expect(st.message).toMatch(/close \/f: not flushed within the wall-time limit/);
    expect(new TextDecoder().decode(mem.readFile("f"))).toBe("hello");
  });

  it("a clean close still exits 0", async () => {
    const mem = new MemService();
    const st = await spawn(await loadProgram(leavesOpen), { namespace: new Namespace().mount("/", mem), limits: { wallTimeMs: 5000 } });
    expect(st).toMatchObject({ code: 0, reason: "exit" });
  });
});

describe("declared iovec lengths are not trusted", () => {
  /** fd_write(fd, two iovecs {1 byte}, {1 GiB}) and exits with the errno it got. */
  const liar = (fd: "stdout" | "file") =>
    command([path_open, fd_write, proc_exit], [
      ...(fd === "file"
        ? [op.i32(3), op.i32(0), op.i32(16), op.i32(1), op.i32(1), op.i64(RIGHTS.FD_WRITE), op.i64(0), op.i32(0), op.i32(64), op.call(0), op.drop, op.i32(64), op.load()]
        : [op.i32(1)]),
      op.i32(32), op.i32(2), op.i32(68), op.call(1), op.call(2),
    ], [{ at: 16, bytes: enc.encode("f") }, { at: 32, bytes: u32s(48, 1, 48, 1 << 30) }, { at: 48, bytes: enc.encode("x") }]);

  it("an iovec reaching past guest memory is EFAULT, on stdout and on a file, and writes nothing", async () => {
    for (const fd of ["stdout", "file"] as const) {
      const mem = new MemService();
      let out = 0;
      const st = await spawn(await loadProgram(liar(fd)), {
        namespace: new Namespace().mount("/", mem), onStdout: (b) => void (out += b.length), limits: { memoryBytes: 4 << 20 },
      });
      expect(`${fd}: ${st.code}`).toBe(`${fd}: ${ERRNO.FAULT}`);
      expect(out).toBe(0);
      if (fd === "file") expect(mem.stat("f").size).toBe(0);
    }
  });

  it("many iovecs over all of memory make no host buffer larger than guest memory", async () => {
    // 512 iovecs, each the whole 64 KiB page: 32 MiB declared, 64 KiB of memory.
    const table = u32s(...Array.from({ length: 512 }, () => [0, 65536]).flat());
    const guest = command([path_open, fd_write, proc_exit], [
      op.i32(1), op.i32(4096), op.i32(512), op.i32(68), op.call(1), op.drop,
      op.i32(68), op.load(), op.call(2),
    ], [{ at: 4096, bytes: table }]);
    let out = 0;
    const st = await spawn(await loadProgram(guest), { namespace: new Namespace(), onStdout: (b) => void (out += b.length) });
    // A short write of at most one memory's worth; the guest is told how much went.
    expect(out).toBe(65536);
    expect(st.code).toBe(65536); // nwritten, as the guest passes it to proc_exit
  });
});
