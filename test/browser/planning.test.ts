// The console's planning panel in Chromium, against the real local edge's planning API (the
// PlanningRun Durable Object, D1, R2, the offline model): a run started by labels and keyboard,
// listed, watched as its phases land until it completes, its artifact opened in the workspace view
// and its package read from the API; a run out of budget pauses, says why and is resumed; a
// webhook added; and a clean browser console. What the panel shows is checked against the
// phases the planning machine defines, so a misread field of the API's answer fails here.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { HAVE_CHROMIUM, OUT, startLab, type Lab, type Watched } from "./harness.ts";
import { PHASES } from "../../agents/planning/phases.ts";

let lab: Lab;
let w: Watched;
const asked: { method: string; path: string; body: unknown; auth: string }[] = [];
const IDEA = "a tide clock for kayakers";
let done = ""; // the run that completes

const EDGE = { timeout: 15_000 }; // the local edge is slow under load; a poll is not a timing assertion
const cells = (page: Watched["page"], sel: string) => page.locator(sel).evaluateAll((rs) => rs.map((r) => Array.from(r.querySelectorAll("td")).map((d) => d.textContent)));

describe.skipIf(!HAVE_CHROMIUM)("the console's planning panel (against the local edge's planning API)", { timeout: 150_000 }, () => {
  beforeAll(async () => {
    lab = await startLab();
    w = await lab.page({
      before: async (page) => void page.on("request", (req) => {
        const url = new URL(req.url());
        if (!/^\/api\/(planning|webhooks)/.test(url.pathname)) return;
        asked.push({ method: req.method(), path: url.pathname, body: req.postData() ? JSON.parse(req.postData()!) : undefined, auth: req.headers().authorization ?? "" });
      }),
    });
    await w.page.setViewportSize({ width: 1200, height: 1400 });
  }, 120_000);
  afterAll(async () => {
    await lab?.stop();
  });

  it("asks nothing until opened; opened from the keyboard, a new key has no runs and nothing parked", async () => {
    const { page } = w;
    expect(asked).toEqual([]);
    await page.locator("#planning summary").focus();
    await page.keyboard.press("Enter");
    await expect.poll(() => page.locator("#plan-runs-none").isVisible(), EDGE).toBe(true);
    await expect.poll(() => page.locator("#plan-parked-none").isVisible(), EDGE).toBe(true);
    expect(asked.map((a) => `${a.method} ${a.path}`).sort()).toEqual(["GET /api/planning/parked", "GET /api/planning/runs"]);
    expect(asked.every((a) => a.auth.startsWith("Nostr "))).toBe(true); // NIP-98, as the page signs
  });

  it("starts a run by labels and keyboard, lists it, and watches its phases until it completes", async () => {
    const { page } = w;
    await page.getByLabel("Idea", { exact: true }).fill(IDEA);
    await page.getByLabel("Model").fill("offline");
    await page.getByLabel("Review rounds").fill("0");
    await page.getByLabel("Review rounds").press("Enter");
    expect(await page.getByLabel("Review rounds").evaluate((e) => (e as HTMLInputElement).validity.rangeUnderflow)).toBe(true); // held by the form
    expect(asked.some((a) => a.method === "POST")).toBe(false);
    await page.getByLabel("Review rounds").fill("1");
    await page.getByLabel("Review rounds").press("Enter");
    await expect.poll(() => page.locator("#plan-status").textContent(), { timeout: 15_000 }).toMatch(/^started run \S+ in workspace plan-\S+$/);
    done = (await page.locator("#plan-status").textContent())!.match(/^started run (\S+)/)![1]!;
    expect(await page.locator("#plan-status").textContent()).toBe(`started run ${done} in workspace plan-${done}`);
    expect(asked.find((a) => a.method === "POST" && a.path === "/api/planning/runs")!.body).toEqual({ idea: IDEA, llm: "offline", reviewIterations: 1 });

    // Listed, and opened: the first phases land while it runs.
    const row = page.locator("#plan-runs tr", { hasText: IDEA });
    await expect.poll(() => row.count(), { timeout: 15_000 }).toBe(1);
    expect((await row.locator("td").allTextContents()).slice(0, 4)).toEqual([IDEA, "running", expect.toBeOneOf(PHASES.map((p) => p.name)), `plan-${done}`]);
    await expect.poll(() => page.locator("#plan-run-id").textContent(), EDGE).toBe(done);
    await expect.poll(async () => (await cells(page, "#plan-phases tr")).filter((r) => r[5]).length, { timeout: 60_000 }).toBeGreaterThan(0);
    const first = (await cells(page, "#plan-phases tr"))[0]!;
    expect(first[0]).toBe(PHASES[0]!.name);
    expect(first[5]).toMatch(new RegExp(`^plans/${done}/\\S+\\.md$`));

    // Watched (no click here) until it completes; then every phase, reviewed ones with their score.
    await expect.poll(() => page.locator("#plan-run-info").textContent(), { timeout: 120_000, interval: 1000 }).toMatch(/^completed/);
    const info = (await page.locator("#plan-run-info").textContent())!;
    expect(info).toMatch(new RegExp(`^completed at \\S+, workspace plan-${done}, verdict GO, (now "[^"]+", )?\\d+ tokens in ${PHASES.length + PHASES.filter((p) => p.review).length} calls, updated `));
    expect(await page.locator("#plan-run-info").getAttribute("class")).toBe("good");
    const rows = await cells(page, "#plan-phases tr");
    expect(rows.map((r) => r[0])).toEqual(PHASES.map((p) => p.name));
    PHASES.forEach((p, i) => {
      const [, review, score, reviews, verdict, artifact] = rows[i]!;
      expect(artifact).toBe(`plans/${done}/${String(i + 1).padStart(2, "0")}-${p.name}.md`);
      expect(reviews).toBe("1");
      if (p.review) {
        expect(review).toBe("ACCEPT");
        expect(score).toMatch(/^\d+(\.\d+)?$/);
      } else expect([review, score]).toEqual(["", ""]);
      expect(verdict).toBe(p.name === "kill-test" ? "GO" : "");
    });
    expect(await page.getByRole("button", { name: "Resume" }).isHidden()).toBe(true);
    expect(await page.locator("#plan-run-parked").isHidden()).toBe(true);

    // The events: a time each (the API's ISO time read as such), one per phase, then the end.
    const events = await page.locator("#plan-events li").allTextContents();
    expect(events.filter((e) => / · phase_completed · /.test(e))).toHaveLength(PHASES.length);
    expect(events.find((e) => e.includes(" · verdict · "))).toMatch(/ · verdict · GO$/);
    expect(events.at(-1)).toMatch(new RegExp(`^\\d{1,2}:\\d\\d:\\d\\d.* · run_completed · completed · plans/${done}/package\\.md$`));
    expect(events.every((e) => !e.includes("Invalid Date"))).toBe(true);
    expect(await row.locator("td").nth(1).textContent()).toBe("completed");
    await page.screenshot({ path: join(OUT, "console-planning.png"), fullPage: true });
  });

  it("reads the package from the API and opens an artifact and the package in the workspace view", async () => {
    const { page } = w;
    await page.getByRole("button", { name: "Package", exact: true }).click();
    await expect.poll(() => page.locator("#plan-package").textContent(), EDGE).toMatch(new RegExp(`^# Plan: ${IDEA}`, "i"));
    expect(asked.some((a) => a.method === "GET" && a.path === `/api/planning/runs/${done}/package`)).toBe(true);
    const pkg = (await page.locator("#plan-package").textContent())!;

    const intake = `plans/${done}/01-${PHASES[0]!.name}.md`;
    await page.getByRole("button", { name: intake }).click();
    await expect.poll(() => page.locator("#file-path").textContent(), EDGE).toBe(`/${intake}`);
    expect(await page.locator("#editor").inputValue()).toContain(IDEA);

    await page.getByRole("button", { name: `plans/${done}/package.md` }).click();
    await expect.poll(() => page.locator("#file-path").textContent(), EDGE).toBe(`/plans/${done}/package.md`);
    expect(await page.locator("#editor").inputValue()).toBe(pkg);
  });

  it("a run out of budget pauses, says why, and is resumed from the panel", async () => {
    const { page } = w;
    await page.getByLabel("Idea", { exact: true }).fill("bread subscriptions by bike");
    await page.getByLabel("Token budget").fill("700");
    await page.getByRole("button", { name: "Start run" }).click();
    await expect.poll(() => page.locator("#plan-status").textContent(), EDGE).not.toContain(done);
    const id = (await page.locator("#plan-status").textContent())!.match(/^started run (\S+)/)![1]!;
    await expect.poll(() => page.locator("#plan-run-info").textContent(), { timeout: 60_000, interval: 1000 }).toMatch(/^paused/);
    expect(await page.locator("#plan-run-info").textContent()).toMatch(/, error in \S+: EDQUOT /);
    expect(await page.getByRole("button", { name: "Package", exact: true }).isHidden()).toBe(true);
    expect((await page.locator("#plan-events li").allTextContents()).at(-1)).toMatch(/ · run_paused · paused · EDQUOT: /);
    const resumes = () => asked.filter((a) => a.method === "POST" && a.path === `/api/planning/runs/${id}/resume`).length;
    expect(resumes()).toBe(0);
    await page.getByRole("button", { name: "Resume" }).click();
    await expect.poll(() => page.locator("#plan-status").textContent(), EDGE).toBe(`run ${id}: running`);
    expect(resumes()).toBe(1);
    // The same budget is spent already: it pauses again, a second run_paused in its events.
    await expect.poll(async () => (await page.locator("#plan-events li").allTextContents()).filter((e) => e.includes(" · run_paused · ")).length, { timeout: 60_000, interval: 1000 }).toBe(2);
    expect(await page.locator("#plan-run-info").textContent()).toMatch(/^paused/);
    expect(await page.getByRole("button", { name: "Resume" }).isVisible()).toBe(true);
  });

  it("adds a webhook; a URL that is not http(s) is refused on the page", async () => {
    const { page } = w;
    await page.getByLabel("Webhook URL").fill("ftp://example.com/hook");
    await page.getByRole("button", { name: "Add webhook" }).click();
    await expect.poll(() => page.locator("#error").textContent(), EDGE).toBe("a webhook is an http(s) URL");
    await page.getByLabel("Webhook URL").fill("https://example.com/hook");
    await page.getByLabel("Webhook events").fill("run_completed, run_failed");
    await page.getByLabel("Secret").fill("s3cret");
    await page.getByLabel("Secret").press("Enter");
    await expect.poll(() => page.locator("#hook-status").textContent(), EDGE).toMatch(/^webhook [0-9a-f-]{36} for https:\/\/example\.com\/hook \(run_completed, run_failed\)$/);
    expect(asked.find((a) => a.path === "/api/webhooks")!.body).toEqual({ url: "https://example.com/hook", events: ["run_completed", "run_failed"], secret: "s3cret" });
    expect(await page.getByLabel("Secret").inputValue()).toBe("");
  });

  it("leaves nothing in the browser console", async () => {
    expect(w.problems).toEqual([]);
  });
});
