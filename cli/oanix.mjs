#!/usr/bin/env node
// The `oanix` command's entry, in plain JavaScript on purpose: Node strips TypeScript types with
// a WebAssembly compiler that costs ~40 ms to load, so the first thing a run does is switch on
// Node's compile cache (which keeps stripped and compiled modules on disk). Then it loads the CLI
// as one bundle (cli/bundle.ts) when a fresh one is cached: Node's module loader costs ~0.6 ms
// per file, a third of what a run adds to a process. A missing or stale bundle is rebuilt in the
// background while this run loads cli/main.ts as it is. OANIX_NO_BUNDLE=1 never uses one.
import module from "node:module";
import { cacheDir } from "./cache-dir.mjs";

const cache = cacheDir();
module.enableCompileCache?.(`${cache}/node`);
globalThis[Symbol.for("oanix.root")] = new URL("..", import.meta.url);

const entry = process.env.OANIX_NO_BUNDLE === "1" ? undefined : freshBundle();
await import(entry ?? "./main.ts");

/** The cached bundle's entry if every file it was built from is unchanged, else undefined. */
function freshBundle() {
  const { readFileSync, statSync } = process.getBuiltinModule("node:fs");
  let m;
  try {
    m = JSON.parse(readFileSync(`${cache}/cli/current.json`, "utf8"));
    if (m.node === process.version && m.inputs.every(([p, size, mtime]) => {
      const st = statSync(p);
      return st.size === size && st.mtimeMs === mtime;
    }) && statSync(m.entry).isFile()) return m.entry;
  } catch {
    // no bundle yet, or an input is gone: rebuild
  }
  rebuild();
  return undefined;
}

/** Starts cli/bundle.ts in the background, unless one started in the last minute (a marker file). */
function rebuild() {
  const { mkdirSync, statSync, writeFileSync } = process.getBuiltinModule("node:fs");
  const { spawn } = process.getBuiltinModule("node:child_process");
  const marker = `${cache}/cli/building`;
  try {
    if (Date.now() - statSync(marker).mtimeMs < 60_000) return;
  } catch {
    // no build under way
  }
  try {
    mkdirSync(`${cache}/cli`, { recursive: true });
    writeFileSync(marker, String(process.pid));
    spawn(process.execPath, [new URL("./bundle.ts", import.meta.url).pathname, cache], { detached: true, stdio: "ignore" }).unref();
  } catch {
    // cannot start it: this run is only slower
  }
}
