// Builds the CLI into one ES module (plus lazily imported chunks) under the cache directory, so
// that a run loads a handful of files instead of ~20 TypeScript modules: Node's ES module loader
// costs ~0.6 ms per file, which was a third of what `oanix run` added to a process. The entry
// (cli/oanix.mjs) uses the bundle only while every input file is unchanged (size and mtime, in
// the manifest) and starts this script in the background when it is missing or stale.
//
//   node cli/bundle.ts [CACHE_DIR]
//
// Publishing is atomic: the build goes to a fresh directory, then `current.json` is replaced by a
// rename. Lazily imported parts are split into chunks (one file would hoist their imports of
// node:stream, node:os … into every run), and a run may still import a chunk of the build it
// started from, so a replaced build is marked and deleted ten minutes later (a run imports its
// lazy parts while it sets up, in its first second).
// Installed packages are checked as one input, node_modules/.package-lock.json, which npm
// rewrites on every install, instead of file by file.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { cacheDir } from "./cache-dir.mjs";

const ROOT = resolve(fileURLToPath(import.meta.url), "../..");

export interface Manifest {
  entry: string;
  node: string;
  /** Every input file with its size and mtime (ms) when bundled. */
  inputs: Array<[path: string, size: number, mtimeMs: number]>;
}

export async function buildBundle(cache = cacheDir()): Promise<Manifest> {
  const esbuild = await import("esbuild");
  const started = Date.now();
  const base = join(cache, "cli");
  const id = `${Date.now().toString(36)}-${process.pid}`;
  const out = join(base, id);
  mkdirSync(out, { recursive: true });
  const r = await esbuild.build({
    entryPoints: [join(ROOT, "cli/main.ts")], absWorkingDir: ROOT, bundle: true, splitting: true, format: "esm",
    platform: "node", target: "node24", outdir: out, outExtension: { ".js": ".mjs" }, metafile: true,
    logLevel: "silent", legalComments: "none",
  });
  const manifest: Manifest = {
    entry: join(out, "main.mjs"), node: process.version,
    inputs: [...Object.keys(r.metafile.inputs).filter((p) => !p.split("/").includes("node_modules")), "node_modules/.package-lock.json"].map((p) => {
      const abs = resolve(ROOT, p);
      const st = statSync(abs);
      return [abs, st.size, st.mtimeMs];
    }),
  };
  // A file changed while (or just before) it was read might be in the bundle in its old form
  // under its new mtime: publish nothing, the next run builds again.
  if (manifest.inputs.some(([, , mtime]) => mtime > started - 1000)) throw new Error("inputs changed during the build");
  const tmp = join(base, `current.json.${process.pid}.tmp`);
  writeFileSync(tmp, JSON.stringify(manifest));
  renameSync(tmp, join(base, "current.json"));
  // Replaced builds are marked, and deleted once marked for ten minutes; a build still being
  // written by another process (younger than a minute) is left alone.
  for (const d of readdirSync(base)) {
    const p = join(base, d);
    if (d === id || d.startsWith("current.json") || d === "building") continue;
    const replaced = join(p, ".replaced");
    if (existsSync(replaced)) {
      if (Date.now() - statSync(replaced).mtimeMs > 10 * 60_000) rmSync(p, { recursive: true, force: true });
    } else if (Date.now() - statSync(p).mtimeMs > 60_000) writeFileSync(replaced, id);
  }
  return manifest;
}

if (import.meta.main) {
  const cache = process.argv[2] ?? cacheDir();
  try {
    await buildBundle(cache);
    rmSync(join(cache, "cli", "building"), { force: true });
  } catch {
    // No esbuild, a read-only cache, inputs edited mid-build: runs stay on the unbundled path, and
    // the marker the entry wrote (cli/oanix.mjs) keeps them from retrying for a minute.
    process.exitCode = 1;
  }
}
