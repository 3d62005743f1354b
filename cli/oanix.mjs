#!/usr/bin/env node
// The `oanix` command's entry, in plain JavaScript on purpose: Node strips TypeScript types with
// a WebAssembly compiler that costs ~40 ms to load, so the first thing a run does is switch on
// Node's compile cache (which keeps stripped and compiled modules on disk); then it loads the CLI.
import module from "node:module";
import { cacheDir } from "./cache-dir.mjs";

module.enableCompileCache?.(`${cacheDir()}/node`);
await import("./main.ts");
