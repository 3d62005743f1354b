// The console's planning panel in Chromium. The planning API is built on another branch, so here
// its HTTP side is a stand-in (page.route) answering the shapes of the lead's contract
// (POST/GET /api/planning/runs, GET /api/planning/runs/ID, POST …/resume, GET /api/planning/parked,
// POST /api/webhooks); the workspace the artifacts live in is the real local edge's. What is
// tested is the page: what it asks (signed, with the form's values), what it shows, and how it
// watches a running run. Replace the stand-in with the real API once both branches are merged.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import type { Route } from "playwright-core";
import { decode } from "nostr-tools/nip19";
import { HAVE_CHROMIUM, OUT, startLab, type Lab, type Watched } from "./harness.ts";
import { RemoteService } from "../../services/remote.ts";
import { keySigner, newSecretKey } from "../../services/nip98.ts";

let lab: Lab;
let w: Watched;
const asked: { method: string; path: string; body: unknown; auth: string }[] = [];
const WS = `plan-${Date.now().toString(36)}`;
const NOW = new Date().toISOString();

/** The stand-in's state: one finished run, one failed, and whatever the page starts. */
const runs = new Map<string, Record<string, unknown>>([
  ["r-done", { id: "r-done", idea: "a tide clock for sailors", status: "completed", phase: "package", workspace: WS, createdAt: NOW, updatedAt: NOW,
    phases: [{ phase: "idea", artifact: "01-idea.md", score: 8, verdict: null }, { phase: "kill-test", artifact: `plans/r-done/02-kill-test.md`, score: null, verdict: "GO" }], events: [{ ts: Date.now(), type: "phase", phase: "idea" }] }],
  ["r-failed", { id: "r-failed", idea: "a bakery queue app", status: "failed", phase: "market", workspace: WS, createdAt: NOW, updatedAt: NOW, phases: [], events: [], error: { phase: "market", code: "EDQUOT", message: "token budget spent" } }],
]);
let polls = 0;

async function standIn(route: Route): Promise<void> {
  const req = route.request();
  const url = new URL(req.url());
  const body = req.postData() ? JSON.parse(req.postData()!) : undefined;
  asked.push({ method: req.method(), path: url.pathname, body, auth: req.headers().authorization ?? "" });
  const json = (status: number, v: unknown) => route.fulfill({ status, contentType: "application/json", body: JSON.stringify(v) });
  const list = () => [...runs.values()].map(({ id, idea, status, phase, workspace, createdAt, updatedAt }) => ({ id, idea, status, phase, workspace, createdAt, updatedAt }));
  const m = url.pathname.match(/^\/api\/planning\/runs(?:\/([^/]+))?(\/resume)?$/);
  if (url.pathname === "/api/planning/parked") return json(200, { parked: [{ idea: "a fax for cats", run: "r-old", phase: "kill-test", reason: "no market", revisitMonths: 6, parkedAt: NOW }] });
  if (url.pathname === "/api/webhooks" && req.method() === "POST") return json(201, { id: "wh1", url: body.url, events: body.events ?? ["*"] });
  if (m && !m[1] && req.method() === "GET") return json(200, { runs: list() });
  if (m && !m[1] && req.method() === "POST") {
    const run = { id: "r-new", idea: body.idea, status: "running", phase: "idea", workspace: body.workspace ?? WS, createdAt: NOW, updatedAt: NOW, phases: [], events: [] };
    runs.set("r-new", run);
    return json(202, { id: run.id, status: run.status, workspace: run.workspace, idea: run.idea, createdAt: NOW });
  }
  if (m && m[1] && m[2] && req.method() === "POST") {
    const run = runs.get(m[1])!;
    run.status = "running";
    return json(200, { id: m[1], status: "running" });
  }
  if (m && m[1] && req.method() === "GET") {
    const run = runs.get(m[1]);
    if (!run) return json(404, { error: { code: "ENOENT", message: `no run ${m[1]}` } });
    // The new run finishes on its third look: the page must keep watching until then.
    if (m[1] === "r-new" && ++polls >= 3) Object.assign(run, { status: "completed", phase: "package", phases: [{ phase: "idea", artifact: "01-idea.md", score: 7 }] });
    return json(200, run);
  }
  return json(404, { error: { code: "ENOENT", message: "no such route in the stand-in" } });
}

describe.skipIf(!HAVE_CHROMIUM)("the console's planning panel (against a stand-in of the planning API)", () => {
  beforeAll(async () => {
    lab = await startLab();
    w = await lab.page({ before: async (page) => void (await page.route(/\/api\/(planning|webhooks)/, standIn)) });
    await w.page.setViewportSize({ width: 1200, height: 1400 });
    // The artifacts' workspace is real: owned by another key, which lets the browser's key read it.
    const browserKey = decode((await w.page.locator("#npub").textContent())!.trim()).data as string;
    const owner = keySigner(newSecretKey());
    const url = `${lab.edge.url}/w/${WS}`;
    const fs = new RemoteService(url, { signer: owner });
    await fs.mkdir("plans").catch(() => {});
    await fs.mkdir("plans/r-done");
    const h = await fs.open("plans/r-done/01-idea.md", { write: true, create: true });
    await h.write(new TextEncoder().encode("# A tide clock\nfor sailors\n"));
    await h.close();
    const body = new TextEncoder().encode(JSON.stringify({ pubkey: browserKey, rights: "r" }));
    const g = await fetch(`${url}/grants`, { method: "POST", body, headers: { authorization: owner.authorize(`${url}/grants`, "POST", body), "content-type": "application/json" } });
    expect(g.status).toBe(201);
  }, 120_000);
  afterAll(async () => {
    await lab?.stop();
  });

  it("asks nothing until opened; opened from the keyboard, lists the runs and the parked ideas", async () => {
    const { page } = w;
    expect(asked).toEqual([]);
    await page.locator("#planning summary").focus();
    await page.keyboard.press("Enter");
    await expect.poll(() => page.locator("#plan-runs tr").count()).toBe(2);
    expect(await page.locator("#plan-runs tr").first().locator("td").allTextContents()).toEqual(["a tide clock for sailors", "completed", "package", WS, expect.any(String), "Open run r-done"]);
    expect(await page.locator("#plan-parked").textContent()).toBe("a fax for cats · at kill-test · no market · revisit in 6 months · (run r-old)");
    // Signed as the page signs: NIP-98 events.
    expect(asked.every((a) => a.auth.startsWith("Nostr "))).toBe(true);
  });

  it("opens a run: phases, scores, verdicts; an artifact opens in the workspace view", async () => {
    const { page } = w;
    await page.getByRole("button", { name: "Open run r-done" }).click();
    await expect.poll(() => page.locator("#plan-run-id").textContent()).toBe("r-done");
    expect(await page.locator("#plan-run-info").textContent()).toMatch(/^completed at package, workspace plan-/);
    expect(await page.locator("#plan-phases tr").evaluateAll((rs) => rs.map((r) => Array.from(r.querySelectorAll("td")).map((d) => d.textContent)))).toEqual([
      ["idea", "", "8", "", "plans/r-done/01-idea.md "],
      ["kill-test", "", "", "GO", "plans/r-done/02-kill-test.md "],
    ]);
    expect(await page.getByRole("button", { name: "Resume" }).isHidden()).toBe(true);
    await page.getByRole("button", { name: "plans/r-done/01-idea.md" }).click();
    await expect.poll(() => page.locator("#file-path").textContent()).toBe("/plans/r-done/01-idea.md");
    expect(await page.locator("#editor").inputValue()).toBe("# A tide clock\nfor sailors\n");
  });

  it("a failed run says why and can be resumed", async () => {
    const { page } = w;
    await page.getByRole("button", { name: "Open run r-failed" }).click();
    await expect.poll(() => page.locator("#plan-run-info").textContent()).toMatch(/error in market: EDQUOT token budget spent/);
    await page.getByRole("button", { name: "Resume" }).click();
    await expect.poll(() => page.locator("#plan-status").textContent()).toBe("run r-failed: running");
    expect(asked.some((a) => a.method === "POST" && a.path === "/api/planning/runs/r-failed/resume")).toBe(true);
    runs.get("r-failed")!.status = "paused"; // stop the watch the resume began
  });

  it("starts a run with the form's values and watches it until it completes", async () => {
    const { page } = w;
    await page.getByLabel("Idea", { exact: true }).fill("a tide clock for kayakers");
    await page.getByLabel("Model").fill("offline");
    await page.getByLabel("Pivots at most").fill("1");
    await page.getByLabel("Token budget").fill("0");
    await page.getByRole("button", { name: "Start run" }).click();
    expect(await page.getByLabel("Token budget").evaluate((e) => (e as HTMLInputElement).validity.rangeUnderflow)).toBe(true); // held by the form
    await page.getByLabel("Token budget").fill("5000");
    await page.getByRole("button", { name: "Start run" }).click();
    await expect.poll(() => page.locator("#plan-status").textContent()).toBe(`started run r-new in workspace ${WS}`);
    expect(asked.find((a) => a.method === "POST" && a.path === "/api/planning/runs")!.body).toEqual({ idea: "a tide clock for kayakers", llm: "offline", maxPivots: 1, budgetTokens: 5000 });
    await expect.poll(() => page.locator("#plan-run-info").textContent(), { timeout: 15_000 }).toMatch(/^completed at package/);
    expect(polls).toBeGreaterThanOrEqual(3);
    await page.screenshot({ path: join(OUT, "console-planning.png"), fullPage: true });
  });

  it("adds a webhook; a URL that is not http(s) is refused on the page", async () => {
    const { page } = w;
    await page.getByLabel("Webhook URL").fill("ftp://example.com/hook");
    await page.getByRole("button", { name: "Add webhook" }).click();
    await expect.poll(() => page.locator("#error").textContent()).toBe("a webhook is an http(s) URL");
    await page.getByLabel("Webhook URL").fill("https://example.com/hook");
    await page.getByLabel("Webhook events").fill("run.completed, run.failed");
    await page.getByLabel("Secret").fill("s3cret");
    await page.getByLabel("Secret").press("Enter");
    await expect.poll(() => page.locator("#hook-status").textContent()).toBe("webhook wh1 for https://example.com/hook (run.completed, run.failed)");
    expect(asked.find((a) => a.path === "/api/webhooks")!.body).toEqual({ url: "https://example.com/hook", events: ["run.completed", "run.failed"], secret: "s3cret" });
    expect(await page.getByLabel("Secret").inputValue()).toBe("");
  });

  it("leaves nothing in the browser console", async () => {
    expect(w.problems).toEqual([]);
  });
});
