// Programs: WASI modules validated, instrumented for limits and compiled once, cached by the
// SHA-256 of their bytes, so a warm spawn costs an instantiate, not a compile. At the edge, where
// compiling bytes at run time is forbidden, pass a statically imported WebAssembly.Module instead.
import { hex } from "./bytes.ts";
import { INSTRUMENT_MODULE, InstrumentError, instrument } from "./wasi/instrument.ts";

export interface Program {
  module: WebAssembly.Module;
  /** Hex SHA-256 of the original bytes ("" for a module given precompiled). */
  hash: string;
  /** True when the module calls back for wall-time and memory limits (see wasi/instrument.ts). */
  instrumented: boolean;
}

/** A module OANIX cannot run, with a one-line reason. */
export class ProgramError extends Error {
  override name = "ProgramError";
}

const WASI = "wasi_snapshot_preview1";
const cache = new Map<string, Promise<Program>>();

export async function loadProgram(source: Uint8Array | ArrayBuffer | WebAssembly.Module): Promise<Program> {
  if (source instanceof WebAssembly.Module) {
    check(source);
    return { module: source, hash: "", instrumented: WebAssembly.Module.imports(source).some((i) => i.module === INSTRUMENT_MODULE) };
  }
  const bytes = source instanceof Uint8Array ? source : new Uint8Array(source);
  const hash = await sha256(bytes);
  let p = cache.get(hash);
  if (!p) {
    cache.set(hash, (p = compile(bytes, hash)));
    p.catch(() => cache.delete(hash));
  }
  return p;
}

async function compile(bytes: Uint8Array, hash: string): Promise<Program> {
  let original: WebAssembly.Module;
  try {
    original = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
  } catch (e) {
    throw new ProgramError(`invalid wasm module: ${(e as Error).message}`);
  }
  check(original);
  try {
    const module = await WebAssembly.compile(instrument(bytes) as Uint8Array<ArrayBuffer>);
    return { module, hash, instrumented: true };
  } catch (e) {
    // Features the instrumenter does not know (GC, memory64): run it, bounded only by the platform.
    if (e instanceof InstrumentError) return { module: original, hash, instrumented: false };
    throw e;
  }
}

function check(m: WebAssembly.Module): void {
  for (const imp of WebAssembly.Module.imports(m)) {
    if (imp.module !== WASI && imp.module !== INSTRUMENT_MODULE)
      throw new ProgramError(`module imports ${imp.module}.${imp.name}, which OANIX does not provide (only ${WASI})`);
  }
  const exports = WebAssembly.Module.exports(m);
  if (!exports.some((e) => e.name === "_start" && e.kind === "function")) throw new ProgramError("module has no _start function (not a WASI command)");
  if (!exports.some((e) => e.kind === "memory")) throw new ProgramError("module exports no memory");
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return hex(d);
}
