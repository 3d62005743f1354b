// Instrumented modules cached on disk, so a cold `oanix run` pays a compile, not an instrument.
// An entry is named by the SHA-256 of the module's bytes and of the instrumenter's own source (a
// changed instrumenter can never serve a stale rewrite), written atomically (temp file, rename),
// and carries the SHA-256 of its payload: an entry that is truncated or altered is ignored and
// rebuilt. A cache that cannot be written (read-only disk) only costs speed.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ProgramError, loadProgram, type Program } from "../runtime/modules.ts";
import { InstrumentError, instrument } from "../runtime/wasi/instrument.ts";

const sha256 = (b: Uint8Array | string): Buffer => createHash("sha256").update(b).digest();

let instrumenterId: string | undefined;
/** Identifies the instrumenter: the hash of its source, so no version number can be forgotten. */
function instrumenter(): string {
  return (instrumenterId ??= sha256(readFileSync(new URL("../runtime/wasi/instrument.ts", import.meta.url))).toString("hex").slice(0, 16));
}

// Entry layout: sha256(payload) (32 bytes) | kind (1 byte) | payload.
const RAW = 0; // the instrumenter does not understand this module: run the original bytes
const INSTRUMENTED = 1;

/** The cache entry of a module: its SHA-256 (hex) and the instrumenter's. */
export function entryPath(dir: string, hash: string): string {
  return join(dir, "modules", `${hash}-${instrumenter()}.bin`);
}

/** loadProgram with a disk cache of the instrumented bytes under `dir`. */
export async function loadCachedProgram(bytes: Uint8Array, dir: string): Promise<Program> {
  const hash = sha256(bytes).toString("hex");
  const path = entryPath(dir, hash);
  const hit = readEntry(path);
  if (hit) {
    try {
      const module = await WebAssembly.compile((hit.kind === INSTRUMENTED ? hit.payload : bytes) as Uint8Array<ArrayBuffer>);
      return { ...(await loadProgram(module)), hash };
    } catch {
      // A payload that passed its checksum but does not compile: rebuild it below.
    }
  }
  let original: WebAssembly.Module;
  try {
    original = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
  } catch (e) {
    throw new ProgramError(`invalid wasm module: ${(e as Error).message}`);
  }
  await loadProgram(original); // validates imports and exports (throws ProgramError)
  let rewritten: Uint8Array | undefined;
  try {
    rewritten = instrument(bytes);
  } catch (e) {
    if (!(e instanceof InstrumentError)) throw e;
  }
  writeEntry(path, rewritten ? INSTRUMENTED : RAW, rewritten ?? new Uint8Array(0));
  const module = rewritten ? await WebAssembly.compile(rewritten as Uint8Array<ArrayBuffer>) : original;
  return { ...(await loadProgram(module)), hash };
}

function readEntry(path: string): { kind: number; payload: Uint8Array } | undefined {
  let b: Buffer;
  try {
    b = readFileSync(path);
  } catch {
    return undefined;
  }
  if (b.length < 33) return undefined;
  const payload = b.subarray(33);
  if (!sha256(payload).equals(b.subarray(0, 32))) return undefined;
  const kind = b[32]!;
  if (kind !== RAW && kind !== INSTRUMENTED) return undefined;
  return { kind, payload };
}

function writeEntry(path: string, kind: number, payload: Uint8Array): void {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    mkdirSync(join(path, ".."), { recursive: true });
    writeFileSync(tmp, Buffer.concat([sha256(payload), Buffer.of(kind), payload]));
    renameSync(tmp, path);
  } catch {
    rmSync(tmp, { force: true });
  }
}
