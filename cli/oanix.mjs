#!/usr/bin/env node
// The `oanix` command's entry, in plain JavaScript on purpose: Node strips TypeScript types with
// a WebAssembly compiler that costs ~40 ms to load, so the first thing a run does is switch on
// Node's compile cache (which keeps stripped and compiled modules on disk); then it loads the CLI.
import module from "node:module";
import { cacheDir } from "./cache-dir.mjs";

module.enableCompileCache?.(`${cacheDir()}/node`);

// Resolving a relative import costs Node a realpath, stats and a walk up for package.json: about
// 0.3 ms for each of the ~80 imports among this repository's own modules, a sixth of a plain
// run. Between our own .ts files (outside node_modules) the answer is only the URL joined, as a
// bundler would have written it; everything else is resolved by Node as usual.
const ROOT = new URL("../", import.meta.url).href;
module.registerHooks?.({
  resolve(specifier, context, next) {
    const parent = context.parentURL;
    if ((specifier.startsWith("./") || specifier.startsWith("../")) && specifier.endsWith(".ts") &&
      parent?.startsWith(ROOT) && !parent.slice(ROOT.length).includes("node_modules/")) {
      return { url: new URL(specifier, parent).href, format: "module-typescript", shortCircuit: true };
    }
    return next(specifier, context);
  },
});

await import("./main.ts");
