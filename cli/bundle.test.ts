// The CLI bundle (cli/bundle.ts) and the entry's use of it (cli/oanix.mjs): used only while
// every input is unchanged, rebuilt in the background when stale, never a reason to fail a run.
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { buildBundle, type Manifest } from "./bundle.ts";

const ROOT = join(import.meta.dirname, "..");
const tmp = mkdtempSync(join(tmpdir(), "oanix-bundle-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function hello(cache: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(ROOT, "cli/oanix.mjs"), "run", join(ROOT, "agents/build/hello.wasm")], { env: { ...process.env, OANIX_CACHE_DIR: cache }, encoding: "utf8" },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stdout, stderr }));
  });
}

const current = (cache: string): Manifest => JSON.parse(readFileSync(join(cache, "cli", "current.json"), "utf8")) as Manifest;

describe("CLI bundle", () => {
  it("lists our sources and the install (not every package file) as its inputs", async () => {
    const cache = join(tmp, "a");
    const m = await buildBundle(cache);
    expect(existsSync(m.entry)).toBe(true);
    const inputs = m.inputs.map(([p]) => p);
    expect(inputs).toContain(join(ROOT, "cli/main.ts"));
    expect(inputs).toContain(join(ROOT, "runtime/wasi/host.ts"));
    expect(inputs).toContain(join(ROOT, "node_modules/.package-lock.json"));
    expect(inputs.filter((p) => p.includes("/node_modules/") && !p.endsWith(".package-lock.json"))).toEqual([]);
  }, 60_000);

  it("is used while fresh; a changed input makes the run load the sources and rebuild it", async () => {
    const cache = join(tmp, "b");
    const m = await buildBundle(cache);
    writeFileSync(m.entry, `process.stderr.write("from the bundle\\n");\n${readFileSync(m.entry, "utf8")}`);
    const fresh = await hello(cache);
    expect(fresh).toMatchObject({ code: 0, stdout: "hello\n" });
    expect(fresh.stderr).toContain("from the bundle");
    // An input that is not what it was when bundled: the bundle must not be used.
    const stale = { ...m, inputs: m.inputs.map(([p, size, mtime], i) => [p, i === 0 ? size + 1 : size, mtime] as [string, number, number]) };
    writeFileSync(join(cache, "cli", "current.json"), JSON.stringify(stale));
    const r = await hello(cache);
    expect(r).toMatchObject({ code: 0, stdout: "hello\n" });
    expect(r.stderr).not.toContain("from the bundle");
    for (let i = 0; i < 300 && current(cache).entry === m.entry; i++) await new Promise((res) => setTimeout(res, 100));
    expect(current(cache).entry).not.toBe(m.entry); // rebuilt in the background
    expect(existsSync(current(cache).entry)).toBe(true);
  }, 60_000);

  it("starts one background build at a time (a marker younger than a minute holds others back)", async () => {
    const cache = join(tmp, "d");
    const m = await buildBundle(cache);
    const stale = { ...m, inputs: m.inputs.map(([p, size, mtime], i) => [p, i === 0 ? size + 1 : size, mtime] as [string, number, number]) };
    writeFileSync(join(cache, "cli", "current.json"), JSON.stringify(stale));
    const marker = join(cache, "cli", "building");
    writeFileSync(marker, "someone else");
    expect(await hello(cache)).toMatchObject({ code: 0, stdout: "hello\n" });
    await new Promise((res) => setTimeout(res, 3000));
    expect(current(cache).entry).toBe(m.entry); // not rebuilt: another build is under way
    const old = new Date(Date.now() - 120_000);
    utimesSync(marker, old, old);
    expect(await hello(cache)).toMatchObject({ code: 0, stdout: "hello\n" });
    for (let i = 0; i < 300 && current(cache).entry === m.entry; i++) await new Promise((res) => setTimeout(res, 100));
    expect(current(cache).entry).not.toBe(m.entry);
    for (let i = 0; i < 50 && existsSync(marker); i++) await new Promise((res) => setTimeout(res, 100));
    expect(existsSync(marker)).toBe(false);
  }, 60_000);

  it("a bundle whose file is gone or a garbled manifest only costs speed", async () => {
    const cache = join(tmp, "c");
    const m = await buildBundle(cache);
    rmSync(m.entry);
    expect(await hello(cache)).toMatchObject({ code: 0, stdout: "hello\n", stderr: "" });
    writeFileSync(join(cache, "cli", "current.json"), "{garbled");
    expect(await hello(cache)).toMatchObject({ code: 0, stdout: "hello\n", stderr: "" });
  }, 60_000);
});
