// The on-disk cache of instrumented modules: hits, misses, corruption, and files that change.
import { createHash } from "node:crypto";
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { Namespace } from "../runtime/namespace.ts";
import { spawn } from "../runtime/process.ts";
import { INSTRUMENT_MODULE } from "../runtime/wasi/instrument.ts";
import { entryPath, loadCachedProgram, loadProgramFile } from "./program-cache.ts";

const AGENTS = join(import.meta.dirname, "../agents/build");
const tmp = mkdtempSync(join(tmpdir(), "oanix-pcache-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function output(p: Awaited<ReturnType<typeof loadCachedProgram>>): Promise<string> {
  let out = "";
  const st = await spawn(p, { namespace: new Namespace(), onStdout: (b) => (out += new TextDecoder().decode(b)) });
  expect(st.code).toBe(0);
  return out;
}

describe("program cache", () => {
  it("stores the instrumented module once and serves it from disk after", async () => {
    const dir = join(tmp, "a");
    const bytes = readFileSync(join(AGENTS, "hello.wasm"));
    const first = await loadCachedProgram(bytes, dir);
    expect(first.instrumented).toBe(true);
    expect(first.hash).toBe(sha(bytes));
    const entry = entryPath(dir, first.hash);
    const stored = readFileSync(entry);
    // A hit compiles the stored module once: no validation of the original, no instrumenting.
    const compile = vi.spyOn(WebAssembly, "compile");
    const again = await loadCachedProgram(bytes, dir);
    expect(compile).toHaveBeenCalledTimes(1);
    compile.mockClear();
    const file = join(tmp, "settled.wasm");
    writeFileSync(file, bytes);
    await loadProgramFile(file, dir, -1); // records the file's identity
    compile.mockClear();
    expect((await loadProgramFile(file, dir, -1)).hash).toBe(first.hash);
    expect(compile).toHaveBeenCalledTimes(1);
    compile.mockRestore();
    expect(again.instrumented).toBe(true);
    expect(WebAssembly.Module.imports(again.module).some((i) => i.module === INSTRUMENT_MODULE)).toBe(true);
    expect(readFileSync(entry).equals(stored)).toBe(true);
    expect(await output(again)).toContain("hello");
    expect(readdirSync(join(dir, "modules")).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });

  it("ignores a corrupt entry (truncated, or a flipped byte) and rebuilds it", async () => {
    const dir = join(tmp, "b");
    const bytes = readFileSync(join(AGENTS, "hello.wasm"));
    const entry = entryPath(dir, (await loadCachedProgram(bytes, dir)).hash);
    const good = readFileSync(entry);
    const flipped = Buffer.from(good);
    flipped[flipped.length - 100]! ^= 0xff;
    for (const bad of [good.subarray(0, good.length / 2), flipped, Buffer.from("garbage")]) {
      writeFileSync(entry, bad);
      const p = await loadCachedProgram(bytes, dir);
      expect(await output(p)).toContain("hello");
      expect(readFileSync(entry).equals(good)).toBe(true);
    }
  });

  it("a module file rewritten in place is never served from its old identity", async () => {
    const dir = join(tmp, "c");
    const file = join(tmp, "agent.wasm");
    // Two valid modules of the same size: hello.wasm plus a 3-byte custom section "x" of A or B.
    const variant = (c: number) => Buffer.concat([readFileSync(join(AGENTS, "hello.wasm")), Buffer.of(0, 3, 1, 0x78, c)]);
    writeFileSync(file, variant(0x41));
    const a = await loadProgramFile(file, dir, -1); // trusted at once: its identity is recorded
    expect(a.hash).toBe(sha(variant(0x41)));
    expect(readdirSync(join(dir, "modules", "by-file"))).toHaveLength(1);
    expect((await loadProgramFile(file, dir, -1)).hash).toBe(a.hash);
    writeFileSync(file, variant(0x42));
    const b = await loadProgramFile(file, dir, -1);
    expect(b.hash).toBe(sha(variant(0x42)));
    copyFileSync(join(AGENTS, "echo.wasm"), file);
    expect((await loadProgramFile(file, dir, -1)).hash).toBe(sha(readFileSync(join(AGENTS, "echo.wasm"))));
  });

  it("refuses what is not a WASI command, and caches nothing for it", async () => {
    const dir = join(tmp, "d");
    await expect(loadCachedProgram(new TextEncoder().encode("not wasm"), dir)).rejects.toThrow(/invalid wasm module/);
    await expect(loadProgramFile(join(tmp, "missing.wasm"), dir)).rejects.toThrow(/cannot read the module/);
  });
});
