// The console page at `/` in Chromium, driven as a person would (by labels): identity and relay,
// create a workspace, write and edit a file, diff two versions, run the demo agent on the
// workspace and see its result, fork; with screenshots in test/browser/out/ and a clean console.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { HAVE_CHROMIUM, OUT, startLab, type Lab, type Watched } from "./harness.ts";

let lab: Lab;
let w: Watched;
const name = `page-${Date.now().toString(36)}`;

describe.skipIf(!HAVE_CHROMIUM)("the console page", () => {
  beforeAll(async () => {
    lab = await startLab();
    w = await lab.page();
    await w.page.setViewportSize({ width: 1200, height: 1000 });
  }, 120_000);
  afterAll(async () => {
    await lab?.stop();
  });

  it("shows the browser's identity and the relay's status", async () => {
    const { page } = w;
    await expect.poll(() => page.locator("#npub").textContent()).toMatch(/^npub1[02-9ac-hj-np-z]{58}$/);
    await expect.poll(() => page.locator("#relay").textContent()).toBe("connected");
    await page.screenshot({ path: join(OUT, "console-start.png"), fullPage: true });
  });

  it("creates a workspace, writes a file, edits it and diffs the two versions", async () => {
    const { page } = w;
    await page.getByLabel("New workspace").fill(name);
    await page.getByRole("button", { name: "Create" }).first().click();
    await expect.poll(() => page.locator("#ws-name").textContent()).toBe(name);
    expect(await page.getByLabel("Yours").inputValue()).toBe(name);

    await page.getByLabel("New file").fill("story.txt");
    await page.locator("#mkfile button").click();
    await expect.poll(() => page.locator("#file-path").textContent()).toBe("/story.txt");
    const editor = page.getByLabel("File /story.txt");
    await editor.fill("the cat sat\non the mat\n");
    await page.getByRole("button", { name: "Save" }).click();
    await expect.poll(() => page.locator("#saved").textContent()).toMatch(/^saved/);
    await editor.fill("the cat sat\non the hat\n");
    await page.keyboard.press("Tab"); // the form is usable from the keyboard: Tab to Save, Enter
    await page.keyboard.press("Enter");
    await expect.poll(() => page.locator("#saved").textContent()).toMatch(/^saved/);
    // Newest first: the edit, the first text, the empty file, the workspace's creation.
    expect(await page.locator("#ws-info").textContent()).toBe("version 4, 1 files, 23 bytes");
    expect(await page.locator("#versions td:nth-child(2)").allTextContents()).toEqual(["put", "put", "put", "create"]);
    await page.getByRole("button", { name: "Diff" }).click();
    await expect.poll(() => page.locator("#diff").textContent()).toBe("  the cat sat\n- on the mat\n+ on the hat\n  \n");
    await page.screenshot({ path: join(OUT, "console-diff.png"), fullPage: true });
  });

  it("uploads a file into the open folder and downloads it back", async () => {
    const { page } = w;
    await page.getByLabel("Upload").setInputFiles({ name: "up.txt", mimeType: "text/plain", buffer: Buffer.from("uploaded words\n") });
    await page.locator("#upload button[type=submit]").click();
    await expect.poll(() => page.locator("#files").textContent()).toContain("up.txt");
    await page.getByRole("button", { name: "up.txt" }).click();
    await expect.poll(() => page.locator("#editor").inputValue()).toBe("uploaded words\n");
    const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download" }).click()]);
    expect(download.suggestedFilename()).toBe("up.txt");
    const stream = await download.createReadStream();
    let text = "";
    for await (const chunk of stream) text += chunk;
    expect(text).toBe("uploaded words\n");
  });

  it("runs the demo agent on the open workspace and shows its output, status and duration", async () => {
    const { page } = w;
    await page.getByLabel("Agent", { exact: true }).selectOption("demo");
    await page.getByLabel("/workspace is").selectOption("edge");
    await page.getByRole("button", { name: "Run" }).click();
    await expect.poll(() => page.locator("#status").textContent(), { timeout: 20_000 }).toMatch(/^exit 0 in \d+\.\d ms$/);
    expect(await page.locator("#stdout").textContent()).toMatch(/2 files/);
    expect(await page.locator("#stderr").textContent()).toBe("");
    // The agent's manifest landed in the workspace, and the page lists it.
    await expect.poll(() => page.locator("#files").textContent()).toContain("manifest.json");
    await page.screenshot({ path: join(OUT, "console-run.png"), fullPage: true });
  });

  it("stops a runaway agent at its time limit and says so", async () => {
    const { page } = w;
    await page.getByLabel("Agent", { exact: true }).selectOption("busy");
    await page.getByLabel("/workspace is").selectOption("mem");
    await page.getByLabel("Time limit (ms)").fill("300");
    await page.getByRole("button", { name: "Run" }).click();
    await expect.poll(() => page.locator("#status").textContent(), { timeout: 20_000 }).toMatch(/^exit 124 \(timeout: wall time limit of 300 ms exceeded\)/);
    expect(await page.locator("#stdout").textContent()).toBe("busy: start\n");
  });

  it("forks the workspace and opens the fork", async () => {
    const { page } = w;
    await page.getByLabel("Fork to").fill(`${name}-fork`);
    await page.getByRole("button", { name: "Fork" }).click();
    await expect.poll(() => page.locator("#ws-name").textContent()).toBe(`${name}-fork`);
    await expect.poll(() => page.locator("#ws-info").textContent()).toContain(`forked from ${name}`);
    expect(await page.locator("#files").textContent()).toContain("story.txt");
    await page.screenshot({ path: join(OUT, "console-fork.png"), fullPage: true });
  });

  it("a refused action is shown on the page, not thrown to the console", async () => {
    const { page } = w;
    await page.getByLabel("Fork to").fill(name); // exists already, and is not the fork's
    await page.getByRole("button", { name: "Fork" }).click();
    await expect.poll(() => page.locator("#error").textContent()).not.toBe("");
    // The edge's 4xx is one expected answer; everything else must be clean.
    const others = w.problems.filter((p) => !/HTTP 4\d\d: POST .*\/fork$/.test(p) && !/status of 4\d\d/.test(p));
    expect(others).toEqual([]);
    w.problems.length = 0;
  });

  it("leaves nothing in the browser console", async () => {
    expect(w.problems).toEqual([]);
  });
});
