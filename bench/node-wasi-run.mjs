// The peer of bench/cold-run.ts: node:wasi running one WASI module as Node's documentation shows
// it (builtins imported, compile, instantiate, start), so the comparison measures what `oanix run`
// adds to a process. bench/node-wasi-lean.mjs is the same with every possible saving.
import { readFileSync } from "node:fs";
import { WASI } from "node:wasi";

const file = process.argv[2];
const wasi = new WASI({ version: "preview1", args: [file, ...process.argv.slice(3)], env: {}, returnOnExit: true });
const module = await WebAssembly.compile(readFileSync(file));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
process.exitCode = wasi.start(instance);
