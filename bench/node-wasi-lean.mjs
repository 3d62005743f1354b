// The leanest node:wasi runner (bench/cold-run.ts's second peer): builtins through
// process.getBuiltinModule, which skips building their ES module facades (for node:fs, loading
// Node's streams), as the oanix entry does on its hot path.
const { readFileSync } = process.getBuiltinModule("node:fs");
const { WASI } = process.getBuiltinModule("node:wasi");

const file = process.argv[2];
const wasi = new WASI({ version: "preview1", args: [file, ...process.argv.slice(3)], env: {}, returnOnExit: true });
const module = await WebAssembly.compile(readFileSync(file));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
process.exitCode = wasi.start(instance);
