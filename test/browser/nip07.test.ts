// A NIP-07 signer in real Chromium: the test injects `window.nostr` before the page loads, backed
// by a real key that stays in Node (nostr-tools signs there, as an extension signs in its own
// process). The console offers the choice, creates and edits a workspace as that key and runs the
// demo agent on it; the library mounts an edge workspace as that key (`createHost({ signer:
// "nip07" })`), in both JSPI and fallback modes; an extension that refuses is a clear failure.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { finalizeEvent, generateSecretKey, getPublicKey, type EventTemplate } from "nostr-tools/pure";
import { npubEncode } from "nostr-tools/nip19";
import { bytesToHex } from "@noble/hashes/utils.js";
import { HAVE_CHROMIUM, OUT, startLab, type Lab, type Watched } from "./harness.ts";
import { RemoteService } from "../../services/remote.ts";
import { keySigner } from "../../services/nip98.ts";
import type { RunResult } from "../../browser/protocol.ts";

declare const oanix: () => typeof import("../../browser/host.ts");

const sk = generateSecretKey();
const pk = getPublicKey(sk);
const extension = keySigner(bytesToHex(sk)); // the same key, for checking from Node
const signed: EventTemplate[] = [];
let refuse = false;

let lab: Lab;
let w: Watched;

/** What an extension puts on the page: the key's public half, and a signEvent that asks the extension. */
const PROVIDER = `
  window.nostr = {
    getPublicKey: async () => ${JSON.stringify(pk)},
    signEvent: (ev) => window.__extensionSign(ev),
  };`;

describe.skipIf(!HAVE_CHROMIUM)("a NIP-07 signer", () => {
  beforeAll(async () => {
    lab = await startLab();
    w = await lab.page({
      before: async (page) => {
        await page.exposeFunction("__extensionSign", (ev: EventTemplate) => {
          if (refuse) throw new Error("the user rejected the request");
          signed.push(ev);
          return finalizeEvent(ev, sk);
        });
        await page.addInitScript(PROVIDER);
      },
    });
    await w.page.setViewportSize({ width: 1200, height: 1000 });
  }, 120_000);
  afterAll(async () => {
    await lab?.stop();
  });

  it("the console offers the extension, and signs as its key once chosen", async () => {
    const { page } = w;
    const browserNpub = (await page.locator("#npub").textContent())!.trim();
    expect(browserNpub).not.toBe(npubEncode(pk));
    await page.getByLabel("Sign as").selectOption({ label: "your nostr extension (NIP-07)" });
    await expect.poll(() => page.locator("#npub").textContent()).toBe(npubEncode(pk));
    expect(await page.locator("#error").textContent()).toBe("");
  });

  it("creates a workspace as the extension's key, writes a file, and runs the demo agent on it", async () => {
    const { page } = w;
    const name = `ext-${Date.now().toString(36)}`;
    const before = signed.length;
    await page.getByLabel("New workspace").fill(name);
    await page.getByLabel("New workspace").press("Enter");
    await expect.poll(() => page.locator("#ws-name").textContent()).toBe(name);
    await page.getByLabel("New file").fill("words.txt");
    await page.getByLabel("New file").press("Enter");
    await expect.poll(() => page.locator("#file-path").textContent()).toBe("/words.txt");
    await page.getByLabel("File /words.txt").fill("signed by the extension\n");
    await page.getByRole("button", { name: "Save" }).click();
    await expect.poll(() => page.locator("#saved").textContent()).toMatch(/^saved/);
    // Every request went through the extension: each a kind 27235 event naming its URL.
    expect(signed.length).toBeGreaterThan(before);
    expect(signed.slice(before).every((e) => e.kind === 27235 && e.tags.some((t) => t[0] === "u" && t[1]!.startsWith(lab.edge.url)))).toBe(true);
    // The edge knows the workspace as the extension key's.
    const u = `${lab.edge.url}/w`;
    const mine = (await (await fetch(u, { headers: { authorization: extension.authorize(u, "GET") } })).json()) as { workspaces: { name: string }[] };
    expect(mine.workspaces.map((x) => x.name)).toContain(name);

    await page.getByLabel("Agent", { exact: true }).selectOption("demo");
    await page.getByLabel("/workspace is").selectOption("edge");
    await page.getByRole("button", { name: "Run" }).click();
    await expect.poll(() => page.locator("#status").textContent(), { timeout: 20_000 }).toMatch(/^exit 0 in /);
    expect(await page.locator("#stdout").textContent()).toMatch(/1 files?/);
    await expect.poll(() => page.locator("#files").textContent()).toContain("manifest.json");
    await page.screenshot({ path: join(OUT, "console-nip07.png"), fullPage: true });
  });

  it("the library mounts a workspace of the extension's key with createHost({ signer: 'nip07' }), with JSPI and without", async () => {
    const url = `${lab.edge.url}/w/lib-${Date.now().toString(36)}`;
    const fs = new RemoteService(url, { signer: extension });
    const h = await fs.open("notes.txt", { write: true, create: true });
    await h.write(new TextEncoder().encode("only the extension may read this\n"));
    await h.close();
    const task = { "/task": { "spec.json": JSON.stringify({ kind: "wordcount", root: "/workspace", top: 3 }) } };
    const runAs = (o: { signer?: "nip07"; jspi?: boolean }) => w.page.evaluate(async ([o, url, task]) => {
      const host = await oanix().createHost(o);
      try {
        const r = await host.run(new URL("/agents/demo.wasm", location.href), { mounts: { ...task, "/workspace": url } });
        return { pubkey: host.pubkey, mode: host.mode, r };
      } finally {
        host.close();
      }
    }, [o, url, task] as const) as Promise<{ pubkey: string; mode: string; r: RunResult }>;

    for (const jspi of [true, false]) {
      const a = await runAs({ signer: "nip07", jspi });
      expect(a.pubkey).toBe(pk);
      expect(a.mode).toBe(jspi ? "jspi" : "atomics");
      expect(a.r).toMatchObject({ code: 0, stderr: "" });
      expect(a.r.stdout).toMatch(/1 files?/);
    }
    // The browser's own key is not the owner: the same run is refused there, so the signer above did the work.
    const b = await runAs({});
    expect(b.r.code).toBe(1);
    expect(b.r.stderr).toMatch(/^demo: /);
  });

  it("an extension that refuses to sign is a clear failure, not a hang or a retry loop", async () => {
    refuse = true;
    try {
      const t = Date.now();
      const r = await w.page.evaluate(async () => {
        const host = await oanix().createHost({ signer: "nip07" });
        try {
          const task = { "spec.json": JSON.stringify({ kind: "wordcount", root: "/workspace", top: 3 }) };
          return await host.run(new URL("/agents/demo.wasm", location.href), { mounts: { "/task": task, "/workspace": `${location.origin}/w/anything` }, timeoutMs: 20_000 });
        } finally {
          host.close();
        }
      });
      expect(Date.now() - t).toBeLessThan(15_000);
      // The guest sees EACCES on its first call to the workspace, and says so.
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^demo: /);
    } finally {
      refuse = false;
    }
  });

  it("leaves nothing in the browser console but the refusals the last tests asked for", async () => {
    const others = w.problems.filter((p) => !/HTTP 40[34]|status of 40[34]/.test(p));
    expect(others).toEqual([]);
  });
});
