// The library's JSPI-free path in real Chromium (`createHost({ jspi: false })`): the guest in a
// worker of its own blocking on Atomics.wait, the runtime worker answering its file calls over a
// SharedArrayBuffer. Guests on memory, OPFS and an edge workspace; limits and kill; the page
// cross-origin isolated by the edge's headers; a clean browser console.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decode } from "nostr-tools/nip19";
import { join } from "node:path";
import { HAVE_CHROMIUM, OUT, killAndRunAgain, startLab, type Lab, type Watched } from "./harness.ts";
import { RemoteService } from "../../services/remote.ts";
import { keySigner, newSecretKey } from "../../services/nip98.ts";
import type { RunOptions, RunResult } from "../../browser/protocol.ts";

let lab: Lab;
let w: Watched;

declare const oanix: () => typeof import("../../browser/host.ts");

/** host.run on a fallback host kept for the page's life. */
function run(agent: string, o: RunOptions = {}): Promise<RunResult> {
  return w.page.evaluate(async ([agent, o]) => {
    const g = globalThis as unknown as { fallback?: Promise<{ mode: string; run(w: URL, o: unknown): Promise<unknown> }> };
    g.fallback ??= oanix().createHost({ jspi: false });
    const host = await g.fallback;
    if (host.mode !== "atomics") throw new Error(`mode ${host.mode}`);
    return host.run(new URL(`/agents/${agent}.wasm`, location.href), o);
  }, [agent, o] as const) as Promise<RunResult>;
}

const DEMO_TASK = { "/task": { "spec.json": JSON.stringify({ kind: "wordcount", root: "/workspace", top: 3 }) } };

describe.skipIf(!HAVE_CHROMIUM)("the JSPI-free path in Chromium", () => {
  beforeAll(async () => {
    lab = await startLab();
    w = await lab.page();
  }, 120_000);
  afterAll(async () => {
    await lab?.stop();
  });

  it("the console page is cross-origin isolated, so the fallback can share memory", async () => {
    expect(await w.page.evaluate(() => crossOriginIsolated)).toBe(true);
    const mode = await w.page.evaluate(async () => {
      const h = await oanix().createHost({ jspi: false });
      h.close();
      return h.mode;
    });
    expect(mode).toBe("atomics");
  });

  it("runs guests on memory: arguments, environment, stdin, exit code; the demo agent over initial files", async () => {
    expect(await run("hello")).toMatchObject({ code: 0, reason: "exit", stdout: "hello\n", stderr: "" });
    const echo = await run("echo", { args: ["one", "two words"], env: { K: "v", EXIT_CODE: "3" }, stdin: "from stdin" });
    expect(echo.code).toBe(3);
    expect(echo.stdout).toBe("agent\none\ntwo words\nK=v\nEXIT_CODE=3\nfrom stdin");
    const demo = await run("demo", { mounts: { ...DEMO_TASK, "/workspace": { "a.txt": "the cat and the hat\n", "sub/b.txt": "the end\n" } } });
    expect(demo).toMatchObject({ code: 0, stderr: "" });
    expect(demo.stdout).toMatch(/2 files/);
    // smallfile's churn: the same count as with JSPI.
    expect(await run("smallfile", { args: ["/workspace/churn", "200"] })).toMatchObject({ code: 0, stdout: "ops=1200\n" });
  });

  it("runs on OPFS (its async directory calls answered across threads), and what it wrote is there", async () => {
    const name = `fb-${Date.now().toString(36)}`;
    const r = await run("smallfile", { args: ["/workspace/churn", "50"], mounts: { "/workspace": `opfs:${name}` } });
    expect(r).toMatchObject({ code: 0, stdout: "ops=300\n", stderr: "" });
    const demo = await run("demo", { mounts: { ...DEMO_TASK, "/workspace": `opfs:${name}` } });
    expect(demo.code).toBe(0);
    const manifest = await w.page.evaluate(async (name) => {
      const d = await (await navigator.storage.getDirectory()).getDirectoryHandle(name);
      return (await (await d.getFileHandle("manifest.json")).getFile()).text();
    }, name);
    expect(JSON.parse(manifest)).toBeTruthy();
  });

  it("mounts an edge workspace: the guest's writes reach the edge", async () => {
    const browserKey = decode((await w.page.locator("#npub").textContent())!.trim()).data as string;
    const owner = keySigner(newSecretKey());
    const url = `${lab.edge.url}/w/fb-${Date.now().toString(36)}`;
    const fs = new RemoteService(url, { signer: owner });
    const h = await fs.open("notes.txt", { write: true, create: true });
    await h.write(new TextEncoder().encode("edge words edge\n"));
    await h.close();
    const body = new TextEncoder().encode(JSON.stringify({ pubkey: browserKey, rights: "rw" }));
    const g = await fetch(`${url}/grants`, { method: "POST", body, headers: { authorization: owner.authorize(`${url}/grants`, "POST", body), "content-type": "application/json" } });
    expect(g.status).toBe(201);

    const r = await run("demo", { mounts: { ...DEMO_TASK, "/workspace": url } });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/1 files?/);
    const m = await fs.open("manifest.json", { read: true });
    const text = new TextDecoder().decode(await m.read(1 << 20));
    await m.close();
    expect(text).toContain("notes.txt");
  });

  it("stops a busy loop at timeoutMs (124), a memory hog at its cap (137), a flood of output at its bound (153)", async () => {
    expect(await run("busy", { timeoutMs: 300 })).toMatchObject({ code: 124, reason: "timeout", stdout: "busy: start\n" });
    expect(await run("membomb", { memoryBytes: 16 << 20 })).toMatchObject({ code: 137, reason: "memory" });
    const spew = await run("spew", { outputBytes: 64 << 10 });
    expect(spew).toMatchObject({ code: 153, reason: "output" });
    expect(spew.stdout.length).toBeLessThanOrEqual(64 << 10);
    expect(await run("hello")).toMatchObject({ code: 0, stdout: "hello\n" });
  });

  it("spawn streams output and kill() stops a running guest; the next run works", async () => {
    const r = await killAndRunAgain(w, { jspi: false });
    expect(r.seen).toBe("busy: start\n");
    expect(r.killed).toMatchObject({ code: 137, reason: "killed", stdout: "busy: start\n" });
    expect(r.after).toMatchObject({ code: 0, stdout: "hello\n" });
  });

  it("a bad module is the same clear error as with JSPI", async () => {
    const msg = await w.page.evaluate(async () => {
      const host = await oanix().createHost({ jspi: false });
      const m = await host.run(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 5])).then(() => "no error", (e: Error) => e.message);
      host.close();
      return m;
    });
    expect(msg).toMatch(/invalid wasm module/);
  });

  it("leaves nothing in the browser console", async () => {
    await w.page.screenshot({ path: join(OUT, "fallback.png"), fullPage: true });
    expect(w.problems).toEqual([]);
  });
});
