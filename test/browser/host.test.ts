// The library (`/oanix.js`) in real Chromium: guests on memory, OPFS (surviving a reload) and an
// edge workspace; limits (a busy loop stopped at timeoutMs, memory capped, kill); bad options
// refused with a clear error; and a browser console that stays clean throughout. The JSPI-free
// path has its own suite (fallback.test.ts).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decode } from "nostr-tools/nip19";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../../edge/dev/launch.ts";
import { HAVE_CHROMIUM, OUT, killAndRunAgain, ready, startLab, type Lab, type Watched } from "./harness.ts";
import { RemoteService } from "../../services/remote.ts";
import { keySigner, newSecretKey } from "../../services/nip98.ts";
import type { RunOptions, RunResult } from "../../browser/protocol.ts";

let lab: Lab;
let w: Watched;

/** host.run in the page, on a host kept for the page's life; `agent` is a bundled agent's name. */
function run(agent: string, o: RunOptions = {}): Promise<RunResult> {
  return w.page.evaluate(async ([agent, o]) => {
    const g = globalThis as unknown as { host?: Promise<{ run(w: URL, o: unknown): Promise<unknown> }> };
    g.host ??= oanix().createHost();
    return (await g.host).run(new URL(`/agents/${agent}.wasm`, location.href), o);
  }, [agent, o] as const) as Promise<RunResult>;
}

/** The library, loaded by the harness (an import() written here would be rewritten by vitest). */
declare const oanix: () => typeof import("../../browser/host.ts");

const DEMO_TASK = { "/task": { "spec.json": JSON.stringify({ kind: "wordcount", root: "/workspace", top: 3 }) } };

const MISSING_WORKER = "/no-such-worker.js";

describe.skipIf(!HAVE_CHROMIUM)("the OANIX library in Chromium", () => {
  beforeAll(async () => {
    lab = await startLab();
    w = await lab.page();
  }, 120_000);
  afterAll(async () => {
    await lab?.stop();
  });

  it("runs an AssemblyScript guest: arguments, environment, stdin and exit code reach it", async () => {
    const hello = await run("hello");
    expect(hello).toMatchObject({ code: 0, reason: "exit", stdout: "hello\n", stderr: "" });
    const echo = await run("echo", { args: ["one", "two words"], env: { K: "v", EXIT_CODE: "3" }, stdin: "from stdin" });
    expect(echo.code).toBe(3);
    expect(echo.stdout).toBe("agent\none\ntwo words\nK=v\nEXIT_CODE=3\nfrom stdin");
  });

  it("mounts initial files in memory and runs the demo agent over them", async () => {
    const r = await run("demo", { mounts: { ...DEMO_TASK, "/workspace": { "a.txt": "the cat and the hat\n", "sub/b.txt": "the end\n" } } });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/2 files/);
  });

  it("an OPFS mount persists across a reload", async () => {
    const name = `t${Date.now().toString(36)}`;
    const first = await run("demo", { mounts: { ...DEMO_TASK, "/workspace": `opfs:${name}` } });
    expect(first.code).toBe(0);
    await w.page.reload();
    await ready(w.page);
    // The manifest the demo wrote is in the origin's file system, read here without OANIX.
    const manifest = await w.page.evaluate(async (name) => {
      const d = await (await navigator.storage.getDirectory()).getDirectoryHandle(name);
      return (await (await d.getFileHandle("manifest.json")).getFile()).text();
    }, name);
    expect(JSON.parse(manifest)).toBeTruthy();
    // And a file written by the page is seen by the next guest.
    await w.page.evaluate(async (name) => {
      const d = await (await navigator.storage.getDirectory()).getDirectoryHandle(name);
      const wr = await (await d.getFileHandle("words.txt", { create: true })).createWritable();
      await wr.write("alpha beta alpha\n");
      await wr.close();
    }, name);
    const second = await run("demo", { mounts: { ...DEMO_TASK, "/workspace": `opfs:${name}` } });
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/1 files?/);
  });

  it("smallfile's create, write, read, stat, readdir and unlink churn on OPFS", async () => {
    const r = await run("smallfile", { args: ["/workspace/churn", "200"], mounts: { "/workspace": `opfs:churn-${Date.now().toString(36)}` } });
    expect(r).toMatchObject({ code: 0, stdout: "ops=1200\n", stderr: "" });
  });

  it("mounts an edge workspace, signed by the browser's key (kept in IndexedDB)", async () => {
    const npub = await w.page.locator("#npub").textContent();
    const browserKey = decode(npub!.trim()).data as string;
    // The workspace belongs to another key, which grants the browser's key read-write.
    const owner = keySigner(newSecretKey());
    const url = `${lab.edge.url}/w/bw-${Date.now().toString(36)}`;
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
    // What the guest wrote in the tab is at the edge.
    const m = await fs.open("manifest.json", { read: true });
    const text = new TextDecoder().decode(await m.read(1 << 20));
    await m.close();
    expect(text).toContain("notes.txt");
  });

  it("grants capabilities: /cap/llm (offline), /cap/nostr with the browser's key, /cap/http for the hosts named; none without", async () => {
    const captest = readFileSync(join(ROOT, "agents", "build", "captest.wasm")).toString("base64");
    const runCap = (o: RunOptions) => w.page.evaluate(async ([b64, o]) => {
      const wasm = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const g = globalThis as unknown as { host?: Promise<{ run(w: Uint8Array, o: unknown): Promise<unknown> }> };
      g.host ??= oanix().createHost();
      return (await g.host).run(wasm, o);
    }, [captest, o] as const) as Promise<RunResult>;

    const none = await runCap({ args: ["llm", "hi"] });
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/^captest: /);
    const llm = await runCap({ args: ["llm", "hello there"], caps: { llm: "offline" } });
    expect(llm).toMatchObject({ code: 0 });
    expect(llm.stdout.length).toBeGreaterThan(0);
    const npub = await w.page.locator("#npub").textContent();
    const signed = await runCap({ args: ["sign", "from the tab"], caps: { nostr: true } });
    expect(signed.stderr).toBe("");
    const ev = JSON.parse(signed.stdout) as { pubkey: string; content: string };
    expect(ev).toMatchObject({ pubkey: decode(npub!.trim()).data, content: "from the tab" });
    // Loopback is granted only by exact host:port (services/cap/hosts.ts), in the browser too.
    const loose = await runCap({ args: ["http", `${lab.edge.url}/edge`], caps: { http: ["127.0.0.1"] } });
    expect(loose).toMatchObject({ code: 1, stderr: "captest: http: EACCES\n" });
    const http = await runCap({ args: ["http", `${lab.edge.url}/edge`], caps: { http: [new URL(lab.edge.url).host] } });
    expect(http.stderr).toBe("");
    expect(http.stdout).toMatch(/^200 /);
    expect(http.stdout).toContain("oanix-edge");
    const elsewhere = await runCap({ args: ["http", "http://example.com/"], caps: { http: [new URL(lab.edge.url).host] } });
    expect(elsewhere.code).toBe(1);
  });

  it("stops a busy loop at timeoutMs (124), a memory hog at its cap (137), a flood of output at its bound (153)", async () => {
    const busy = await run("busy", { timeoutMs: 300 });
    expect(busy).toMatchObject({ code: 124, reason: "timeout", stdout: "busy: start\n" });
    const bomb = await run("membomb", { memoryBytes: 16 << 20 });
    expect(bomb).toMatchObject({ code: 137, reason: "memory" });
    const spew = await run("spew", { outputBytes: 64 << 10 });
    expect(spew).toMatchObject({ code: 153, reason: "output" });
    expect(spew.stdout.length).toBeLessThanOrEqual(64 << 10);
    expect(await run("hello")).toMatchObject({ code: 0, stdout: "hello\n" }); // the host is still good
  });

  it("spawn streams output and kill() stops a running guest; the next run works", async () => {
    const r = await killAndRunAgain(w, {});
    expect(r.seen).toBe("busy: start\n");
    expect(r.killed).toMatchObject({ code: 137, reason: "killed", stdout: "busy: start\n" });
    expect(r.after).toMatchObject({ code: 0, stdout: "hello\n" });
  });

  it("a bad mount or module is a clear error, and so is asking for a NIP-07 signer on a page without one", async () => {
    const bad = await w.page.evaluate(async () => {
      const { createHost } = oanix();
      const host = await createHost();
      const out: string[] = [];
      for (const f of [
        () => host.run(new URL("/agents/hello.wasm", location.href), { mounts: { "/x": "ftp://nowhere" } }),
        () => host.run(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 5])),
        () => createHost({ signer: "nip07" }),
        () => createHost({ workerUrl: "/no-such-worker.js" }),
      ]) out.push(await f().then(() => "no error", (e: Error) => e.message));
      host.close();
      return out;
    });
    expect(bad[0]).toMatch(/mount \/x: unknown source "ftp:\/\/nowhere"/);
    expect(bad[1]).toMatch(/invalid wasm module/);
    expect(bad[2]).toMatch(/this page has no NIP-07 signer \(window\.nostr\)/);
    expect(bad[3]).toMatch(/the OANIX runtime worker failed: .*no-such-worker\.js/);
    // The missing worker script is an expected 404 (its "request failed" may arrive later still):
    // the last test leaves it out.
    expect(w.problems.some((p) => p.includes(MISSING_WORKER))).toBe(true);
  });

  it("leaves nothing in the browser console", async () => {
    await w.page.screenshot({ path: join(OUT, "library.png"), fullPage: true });
    expect(w.problems.filter((p) => !p.includes(MISSING_WORKER))).toEqual([]);
  });
});
