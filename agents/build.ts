// Builds every AssemblyScript entry file agents/src/*.ts into agents/build/<name>.wasm.
//
//   node agents/build.ts            build what is out of date
//   node agents/build.ts --force    rebuild everything
//   node agents/build.ts demo echo  only these modules
//
// Each module is compiled with the AssemblyScript compiler's API and the @assemblyscript/wasi-shim
// config: top-level code becomes the exported `_start`, syscalls are wasi_snapshot_preview1
// imports, and the only exports are `memory` and `_start`. Optimisation is -O3 (speed; the
// guests are small either way, and the benchmarks measure the host, not the guest's code size).
//
// A module is skipped when its .wasm is newer than all of its inputs: the entry file, everything
// under agents/sdk/ and agents/src/ subfolders, this script, and the shim config. Outputs are
// written to a temporary name and renamed, so a reader never sees half a module.

import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const AGENTS_DIR = path.dirname(fileURLToPath(import.meta.url));
const SRC_DIR = path.join(AGENTS_DIR, "src");
const SDK_DIR = path.join(AGENTS_DIR, "sdk");
export const BUILD_DIR = path.join(AGENTS_DIR, "build");

const require = createRequire(import.meta.url);
const SHIM_CONFIG = path.join(
  path.dirname(require.resolve("@assemblyscript/wasi-shim/package.json")),
  "asconfig.json",
);

/** Compiler flags besides the entry, the shim config and the output file. */
const ASC_FLAGS = ["-O3", "--noColors"];

export interface BuildOptions {
  /** Rebuild even when outputs are up to date. */
  force?: boolean;
  /** Module names (without .ts) to build; all entries when empty. */
  only?: string[];
  /** Where progress lines go (default: console.log). */
  log?: (line: string) => void;
}

export interface BuildFailure {
  name: string;
  message: string;
}

export interface BuildResult {
  built: string[];
  upToDate: string[];
  failed: BuildFailure[];
}

/** Every .ts file below `dir` (recursively). */
function tsFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const found: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...tsFiles(full));
    else if (entry.name.endsWith(".ts")) found.push(full);
  }
  return found;
}

/** Entry modules: the .ts files directly in agents/src/. */
export function entryNames(): string[] {
  return fs
    .readdirSync(SRC_DIR, { withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(".ts"))
    .map((e) => e.name.slice(0, -3))
    .sort();
}

/** Path of a built module, e.g. wasmPath("echo") -> .../agents/build/echo.wasm. */
export function wasmPath(name: string): string {
  return path.join(BUILD_DIR, name + ".wasm");
}

function mtime(file: string): number {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return -1;
  }
}

function formatSize(bytes: number): string {
  return bytes < 1024 ? `${bytes} B` : `${(bytes / 1024).toFixed(1)} KiB`;
}

async function compile(name: string): Promise<{ binary: Uint8Array; warnings: string }> {
  const entry = path.relative(process.cwd(), path.join(SRC_DIR, name + ".ts"));
  const outFile = name + ".wasm";
  // Loaded on first use: the compiler (with binaryen) takes ~0.4 s to import, which an
  // up-to-date build should not pay.
  const { default: asc } = await import("assemblyscript/asc");
  const stdout = asc.createMemoryStream();
  const stderr = asc.createMemoryStream();
  let binary: Uint8Array | null = null;
  const { error } = await asc.main(
    [entry, "--config", path.relative(process.cwd(), SHIM_CONFIG), "--outFile", outFile, ...ASC_FLAGS],
    {
      stdout,
      stderr,
      writeFile(filename: string, contents: Uint8Array | string) {
        if (path.basename(filename) === outFile && typeof contents !== "string") binary = contents;
      },
    },
  );
  if (error) {
    const text = stderr.toString().trim();
    throw new Error(text.length > 0 ? text : error.message);
  }
  if (binary === null) throw new Error(`the compiler produced no ${outFile}`);
  const diagnostics = stderr.toString().trim();
  return { binary, warnings: diagnostics.includes("WARNING") ? diagnostics : "" };
}

/** Builds the agents; never throws for compile errors (they are in `failed`). */
export async function buildAgents(options: BuildOptions = {}): Promise<BuildResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const all = entryNames();
  const only = options.only ?? [];
  const unknown = only.filter((n) => !all.includes(n));
  if (unknown.length > 0) throw new Error(`no such agent source: ${unknown.join(", ")}`);
  const names = only.length > 0 ? only : all;

  // Shared inputs: the SDK, helper folders under src/, this script and the shim config.
  const shared = [
    ...tsFiles(SDK_DIR),
    ...tsFiles(SRC_DIR).filter((f) => path.dirname(f) !== SRC_DIR),
    fileURLToPath(import.meta.url),
    SHIM_CONFIG,
  ];
  const sharedTime = Math.max(...shared.map(mtime));

  fs.mkdirSync(BUILD_DIR, { recursive: true });
  const result: BuildResult = { built: [], upToDate: [], failed: [] };
  for (const name of names) {
    const out = wasmPath(name);
    const newestInput = Math.max(sharedTime, mtime(path.join(SRC_DIR, name + ".ts")));
    if (!options.force && mtime(out) > newestInput) {
      result.upToDate.push(name);
      continue;
    }
    const started = performance.now();
    try {
      const { binary, warnings } = await compile(name);
      const tmp = `${out}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, binary);
      fs.renameSync(tmp, out);
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      log(`built ${name}.wasm  ${formatSize(binary.byteLength)}  (${seconds} s)`);
      if (warnings) log(warnings);
      result.built.push(name);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      log(`FAILED ${name}.wasm\n${message}`);
      result.failed.push({ name, message });
    }
  }
  if (result.built.length === 0 && result.failed.length === 0) {
    log(`agents: ${result.upToDate.length} module(s) up to date`);
  }
  return result;
}

async function main(argv: string[]): Promise<number> {
  const force = argv.includes("--force");
  const only = argv.filter((a) => !a.startsWith("--"));
  const started = performance.now();
  const result = await buildAgents({ force, only });
  if (result.built.length > 0) {
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(`agents: built ${result.built.length}, up to date ${result.upToDate.length} in ${seconds} s`);
  }
  return result.failed.length > 0 ? 1 : 0;
}

const invokedDirectly =
  process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : String(err));
      process.exitCode = 1;
    },
  );
}
