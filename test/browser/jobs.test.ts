// The console's jobs panel in Chromium, against the local edge's relay and a real NIP-90 provider
// (agents/host/serve.ts, the one behind `oanix serve`, running WASI agents in Node): the provider's
// NIP-89 announcement listed, a job asked for by labels and keyboard with its feedback and result
// as they arrive, a provider's error shown, bad input refused before anything is sent, a running
// job cancelled (the agent stopped, no result), and a clean browser console.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { generateSecretKey } from "nostr-tools/pure";
import { decode } from "nostr-tools/nip19";
import { HAVE_CHROMIUM, OUT, startLab, type Lab, type Watched } from "./harness.ts";
import { Provider } from "../../agents/host/serve.ts";
import { agent, newPeer } from "../../agents/host/testing.ts";

let lab: Lab;
let w: Watched;
let provider: Provider;
const providerLog: string[] = [];

describe.skipIf(!HAVE_CHROMIUM)("the console's jobs panel", () => {
  beforeAll(async () => {
    lab = await startLab();
    const relay = `${lab.edge.url.replace(/^http/, "ws")}/relay`;
    provider = new Provider({
      relays: [relay], secretKey: generateSecretKey(), concurrency: 2, timeoutMs: 60_000, chainTimeoutMs: 1500,
      programs: new Map([[5050, await agent("jobcount")], [5999, await agent("busy")]]),
      name: "counter", about: "counts words", log: (l) => providerLog.push(l),
    });
    await provider.start();
    w = await lab.page();
    await w.page.setViewportSize({ width: 1200, height: 1400 });
  }, 120_000);
  afterAll(async () => {
    provider?.stop();
    await lab?.stop();
  });

  it("lists the providers announced on the relay (NIP-89), with their kinds", async () => {
    const { page } = w;
    const row = page.locator("#providers tr", { hasText: "counter" });
    await expect.poll(() => row.count(), { timeout: 15_000 }).toBe(1);
    expect(await row.locator("td").allTextContents()).toEqual(["counter", "5050, 5999", "counts words", expect.stringMatching(/^npub1.{7}….{6}$/)]);
    expect(await page.locator("#providers-none").isHidden()).toBe(true);
    const options = await page.getByLabel("Provider", { exact: true }).locator("option").allTextContents();
    expect(options).toEqual(["any provider", expect.stringMatching(/^counter \(npub1/)]);
  });

  it("asks for a job by keyboard and shows its feedback and result as they arrive", async () => {
    const { page } = w;
    await page.getByLabel("Kind").fill("5050");
    await page.getByLabel("Provider", { exact: true }).selectOption({ index: 1 });
    await page.getByLabel("Input", { exact: true }).fill("one two three");
    await page.getByLabel("Parameters").fill("op=count");
    await page.getByLabel("Bid (msats)").fill("1000");
    await page.keyboard.press("Tab"); // to "Send request"
    await page.keyboard.press("Enter");
    await expect.poll(() => page.locator("#job-status").textContent(), { timeout: 20_000 }).toMatch(/^result from npub1/);
    expect(await page.locator("#job-result").textContent()).toBe("3 words");
    expect(await page.locator("#job-feedback li").evaluateAll((ls) => ls.map((l) => (l as HTMLElement).dataset.status))).toContain("processing");
    // The request the page signed is the one the provider answered, with what the form said.
    const id = (await page.locator("#job-id").textContent())!;
    const peer = newPeer(`${lab.edge.url.replace(/^http/, "ws")}/relay`);
    const [req] = await peer.query({ ids: [id] });
    peer.close();
    const npub = (await page.locator("#npub").textContent())!.trim();
    expect(req).toMatchObject({ kind: 5050, pubkey: decode(npub).data });
    expect(req!.tags).toEqual(expect.arrayContaining([["i", "one two three", "text"], ["param", "op", "count"], ["bid", "1000"], ["p", provider.pubkey]]));
    expect(await page.getByRole("button", { name: "Send request" }).isEnabled()).toBe(true);
    expect(await page.getByRole("button", { name: "Cancel job" }).isDisabled()).toBe(true);
    await page.screenshot({ path: join(OUT, "console-jobs.png"), fullPage: true });
  });

  it("shows a provider's error feedback and ends the job", async () => {
    const { page } = w;
    await page.getByLabel("Input", { exact: true }).fill("a".repeat(64)); // a job that never ran: its result never comes
    await page.getByLabel("Input type").selectOption("job");
    await page.getByRole("button", { name: "Send request" }).click();
    await expect.poll(() => page.locator("#job-status").textContent(), { timeout: 20_000 }).toMatch(/^error from npub1/);
    expect(await page.locator("#job-feedback li[data-status=error]").count()).toBe(1);
    expect(await page.locator("#job-result").textContent()).toBe("");
    await page.getByLabel("Input type").selectOption("text");
  });

  it("refuses bad input on the page, before anything is signed or sent", async () => {
    const { page } = w;
    const before = await page.locator("#job-id").textContent();
    await page.getByLabel("Input", { exact: true }).fill("some words");
    await page.getByLabel("Parameters").fill("op=count\nnonsense");
    await page.getByRole("button", { name: "Send request" }).click();
    await expect.poll(() => page.locator("#error").textContent()).toBe('parameter line 2 ("nonsense") is not name=value');
    await page.getByLabel("Parameters").fill("op=count");
    await page.getByLabel("Input type").selectOption("event");
    await page.getByRole("button", { name: "Send request" }).click();
    await expect.poll(() => page.locator("#error").textContent()).toBe("an event input is an event id (64 hex digits)");
    await page.getByLabel("Input type").selectOption("text");
    // A kind outside 5000–5999 is held by the form itself.
    await page.getByLabel("Kind").fill("4000");
    await page.getByRole("button", { name: "Send request" }).click();
    expect(await page.getByLabel("Kind").evaluate((e) => (e as HTMLInputElement).validity.rangeUnderflow)).toBe(true);
    expect(await page.locator("#job-id").textContent()).toBe(before);
  });

  it("cancels a running job: the request is deleted, the agent stopped, no result comes", async () => {
    const { page } = w;
    await page.getByLabel("Kind").fill("5999");
    await page.getByLabel("Provider", { exact: true }).selectOption({ index: 0 });
    await page.getByLabel("Input", { exact: true }).fill("spin");
    const last = await page.locator("#job-id").textContent();
    await page.getByRole("button", { name: "Send request" }).click();
    await expect.poll(() => page.locator("#job-id").textContent()).toMatch(/^[0-9a-f]{64}$/);
    const id = (await page.locator("#job-id").textContent())!;
    expect(id).not.toBe(last);
    await expect.poll(() => page.locator("#job-feedback li[data-status=processing]").count(), { timeout: 20_000 }).toBeGreaterThan(0);
    await page.getByRole("button", { name: "Cancel job" }).click();
    await expect.poll(() => page.locator("#job-status").textContent()).toBe("cancelled (the request was deleted)");
    await expect.poll(() => providerLog.filter((l) => l.startsWith(`job ${id.slice(0, 8)}`)), { timeout: 10_000 }).toContain(`job ${id.slice(0, 8)}: cancelled by its customer`);
    const peer = newPeer(`${lab.edge.url.replace(/^http/, "ws")}/relay`);
    const answers = await peer.query({ kinds: [6999], "#e": [id] });
    const deletions = await peer.query({ kinds: [5], "#e": [id] });
    peer.close();
    expect(answers).toEqual([]);
    expect(deletions).toHaveLength(1);
    expect(await page.locator("#job-result").textContent()).toBe("");
    expect(await page.getByRole("button", { name: "Send request" }).isEnabled()).toBe(true);
  });

  it("leaves nothing in the browser console", async () => {
    expect(w.problems).toEqual([]);
  });
});
