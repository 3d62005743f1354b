// Builds what the Worker serves to browsers (edge/http/assets.ts), into edge/build/browser/:
//   oanix.js.txt         the library (browser/host.ts), an ES module: import { createHost } from "/oanix.js"
//   oanix-worker.js.txt  its runtime worker (browser/worker.ts)
//   console.js.txt       the console page's script (browser/console/console.ts)
//   console.html         the console page
//   <agent>.bin          the bundled agents the page offers, as plain bytes (the browser compiles
//                        and instruments them itself; the edge's own copies are compiled modules)
// The .txt/.html/.bin names are Wrangler's default Text and Data module rules, so the Worker
// imports them as a string or bytes offline, in `wrangler dev`, the vitest workers pool and deploy.
// Run by `npm run build:agents` (after the agents): node browser/build.ts
import { build } from "esbuild";
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { PAGE_AGENTS } from "./agents.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const OUT = join(ROOT, "edge", "build", "browser");


const ENTRIES: Record<string, string> = {
  "oanix.js.txt": "browser/host.ts",
  "oanix-worker.js.txt": "browser/worker.ts",
  "console.js.txt": "browser/console/console.ts",
};

export async function buildBrowser(): Promise<string[]> {
  mkdirSync(OUT, { recursive: true });
  for (const [out, entry] of Object.entries(ENTRIES)) {
    const r = await build({
      entryPoints: [join(ROOT, entry)], bundle: true, format: "esm", platform: "browser", target: "es2022",
      minify: true, sourcemap: false, write: false, legalComments: "none", logLevel: "error",
    });
    writeFileSync(join(OUT, out), r.outputFiles[0]!.text);
  }
  writeFileSync(join(OUT, "console.html"), readFileSync(join(ROOT, "browser", "console", "index.html")));
  for (const name of PAGE_AGENTS) {
    const src = join(ROOT, "agents", "build", `${name}.wasm`);
    if (!existsSync(src)) throw new Error(`${src} is missing: run npm run build:agents first`);
    copyFileSync(src, join(OUT, `${name}.bin`));
  }
  return [...Object.keys(ENTRIES), "console.html", ...PAGE_AGENTS.map((n) => `${n}.bin`)];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const files = await buildBrowser();
  console.log(`browser: ${files.length} files (edge/build/browser/)`);
}
