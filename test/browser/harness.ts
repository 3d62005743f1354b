// Shared by the browser suites: the local edge (wrangler dev, offline) and Debian's Chromium
// driven by playwright-core, with every console error, page error, failed request and 4xx/5xx
// answer recorded, so a suite can assert the page stayed clean.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { ROOT, startEdge, type Edge } from "../../edge/dev/launch.ts";

export const CHROMIUM = process.env.OANIX_CHROMIUM ?? "/usr/bin/chromium";
export const HAVE_CHROMIUM = existsSync(CHROMIUM);
export const OUT = join(ROOT, "test", "browser", "out");

if (!HAVE_CHROMIUM)
  console.warn(`browser tests skipped: no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set OANIX_CHROMIUM)`);

export interface Lab {
  edge: Edge;
  browser: Browser;
  /** A new page (in the lab's one context: OPFS, IndexedDB and storage are shared) at the console; `before` runs before it loads. */
  page(o?: { path?: string; before?: (page: Page) => Promise<void> }): Promise<Watched>;
  stop(): Promise<void>;
}

export interface Watched {
  page: Page;
  /** Everything the browser complained about so far (console errors, page errors, failed or 4xx/5xx requests). */
  problems: string[];
}

/** Waits for the console page, then loads the library as `oanix()` in the page (a string: vitest would rewrite an import()). */
export async function ready(page: Page): Promise<void> {
  await page.waitForFunction(() => document.body.dataset.ready === "1");
  await page.evaluate(`import("/oanix.js").then((m) => { globalThis.oanix = () => m; })`);
}

export async function startLab(): Promise<Lab> {
  const dir = mkdtempSync(join(tmpdir(), "oanix-browser-"));
  mkdirSync(OUT, { recursive: true });
  const edge = await startEdge({ persistTo: dir });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-gpu"],
  });
  const context = await browser.newContext();
  return {
    edge, browser,
    async page(o = {}) {
      const page = await context.newPage();
      const problems: string[] = [];
      page.on("console", (m) => {
        if (m.type() === "error" || m.type() === "warning") problems.push(`console.${m.type()}: ${m.text()}`);
      });
      page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
      page.on("requestfailed", (r) => problems.push(`request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`));
      page.on("response", (r) => {
        if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`);
      });
      await o.before?.(page);
      await page.goto(edge.url + (o.path ?? "/"));
      await ready(page);
      return { page, problems };
    },
    async stop() {
      await browser.close().catch(() => {});
      await edge.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The library in the page (ready() loads it). */
declare const oanix: () => typeof import("../../browser/host.ts");

/**
 * spawn streams output and kill() stops a running guest, then the next run works: the same check
 * for each way a host runs guests (JSPI, or the SharedArrayBuffer fallback with `{jspi: false}`).
 */
export async function killAndRunAgain(w: Watched, hostOptions: Record<string, unknown>) {
  return w.page.evaluate(async (opts) => {
    const host = await oanix().createHost(opts);
    let seen = "";
    const p = host.spawn(new URL("/agents/busy.wasm", location.href), { onStdout: (t: string) => (seen += t) });
    while (!seen) await new Promise((r) => setTimeout(r, 10));
    p.kill();
    const killed = await p.done;
    const after = await host.run(new URL("/agents/hello.wasm", location.href));
    host.close();
    return { seen, killed, after };
  }, hostOptions);
}
