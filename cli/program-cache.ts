// Instrumented modules cached on disk, so a cold `oanix run` pays a compile, not an instrument.
//
// An entry is named by the SHA-256 of the module's bytes and a fingerprint of the instrumenter's
// own source (a changed instrumenter can never serve a stale rewrite), is written atomically
// (temp file, rename), and carries a checksum of its payload: an entry that is truncated or
// altered is ignored and rebuilt. A cache that cannot be written (read-only disk) only costs speed.
//
// Hashing needs node:crypto, whose loading alone costs ~6 ms of a ~45 ms run, so a second, small
// index maps a module file's identity (path, device, inode, size, mtime, ctime in ns) to its
// content hash, as git's index and ccache's direct mode do. An identity is recorded only once the
// file is older than the clock's granularity can blur (git's "racy" rule), so a file rewritten in
// the same tick as it was indexed is hashed again, never mistaken for its old content.
// A hit imports neither the instrumenter nor the validator: the entry was validated when it was
// written, and its checksum says it is what was written.
import { join, resolve } from "node:path";

// node:fs as in cli/output.ts: its ES module facade would load Node's streams on every run.
const { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } = process.getBuiltinModule("node:fs") as typeof import("node:fs");
import type { Program } from "../runtime/modules.ts";

/** The module file cannot be read (missing, a directory, no permission). */
export class UnreadableModule extends Error {}

/**
 * A 64-bit checksum (two multiply-xor lanes over 32-bit words): detects a truncated or altered
 * entry, not an adversary (who could write the cache could write anything). Word-wise, because
 * it runs before the JIT has warmed up.
 */
export function checksum(b: Uint8Array): string {
  const words = b.length >>> 2;
  let aligned = b;
  if (b.byteOffset % 4) {
    aligned = new Uint8Array(words * 4); // a copy: Buffer#slice would be a view of the whole pool
    aligned.set(b.subarray(0, words * 4));
  }
  const w = new Uint32Array(aligned.buffer, aligned.byteOffset, words);
  let h1 = 0x811c9dc5 ^ b.length, h2 = 0x01000193;
  for (let i = 0; i < words; i++) {
    h1 = Math.imul(h1 ^ w[i]!, 0x01000193);
    h2 = Math.imul(h2 ^ w[i]!, 0x5bd1e995) ^ (h2 >>> 13);
  }
  for (let i = words * 4; i < b.length; i++) h1 = Math.imul(h1 ^ b[i]!, 0x01000193);
  return (h1 >>> 0).toString(16).padStart(8, "0") + (h2 >>> 0).toString(16).padStart(8, "0");
}

let instrumenterId: string | undefined;
/**
 * Identifies the instrumenter: the size and modification time (ns) of its source, so that any
 * edit to it, however small, makes every entry a miss (no version number to forget to bump).
 */
export function instrumenter(): string {
  if (instrumenterId === undefined) {
    const st = statSync(new URL("../runtime/wasi/instrument.ts", import.meta.url), { bigint: true });
    instrumenterId = `${st.size.toString(36)}.${st.mtimeNs.toString(36)}`;
  }
  return instrumenterId;
}

// Entry: checksum of payload (16 ASCII hex) | kind (1 byte) | 3 zero bytes | payload (at a
// 4-byte boundary, so the checksum reads it as words without a copy).
const RAW = 0; // the instrumenter does not understand this module: run the original bytes
const INSTRUMENTED = 1;
const HEAD = 20;
/** How old a file must be before its identity is trusted to stand for its content. */
const SETTLED_MS = 2000;

/** The cache entry of a module: its SHA-256 (hex) and the instrumenter's fingerprint. */
export function entryPath(dir: string, hash: string): string {
  return join(dir, "modules", `${hash}-${instrumenter()}.bin`);
}

/** loadProgram for a module file, with the instrumented bytes cached under `dir`. */
export async function loadProgramFile(file: string, dir: string, settledMs = SETTLED_MS): Promise<Program> {
  const path = resolve(file);
  let st;
  try {
    st = statSync(path, { bigint: true });
  } catch {
    throw new UnreadableModule("cannot read the module");
  }
  if (!st.isFile()) throw new UnreadableModule("cannot read the module (not a file)");
  const identity = `${path}\0${st.dev}\0${st.ino}\0${st.size}\0${st.mtimeNs}\0${st.ctimeNs}`;
  const indexFile = join(dir, "modules", "by-file", `${checksum(new TextEncoder().encode(path))}.txt`);
  const known = readIndex(indexFile, identity);
  if (known) {
    const p = await fromEntry(entryPath(dir, known), () => readFileSync(path));
    if (p) return { ...p, hash: known };
  }
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch {
    throw new UnreadableModule("cannot read the module");
  }
  const program = await loadCachedProgram(bytes, dir);
  if (Date.now() - Number(st.ctimeNs / 1_000_000n) > settledMs) atomicWrite(indexFile, `${identity}\n${program.hash}`);
  return program;
}

/** loadProgram with a disk cache of the instrumented bytes under `dir`. */
export async function loadCachedProgram(bytes: Uint8Array, dir: string): Promise<Program> {
  const { createHash } = await import("node:crypto");
  const hash = createHash("sha256").update(bytes).digest("hex");
  const path = entryPath(dir, hash);
  const hit = await fromEntry(path, () => bytes);
  if (hit) return { ...hit, hash };
  const [{ ProgramError, loadProgram }, { InstrumentError, instrument }] = await Promise.all([
    import("../runtime/modules.ts"), import("../runtime/wasi/instrument.ts"),
  ]);
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
  const payload = rewritten ?? new Uint8Array(0);
  atomicWrite(path, Buffer.concat([Buffer.from(checksum(payload)), Buffer.of(rewritten ? INSTRUMENTED : RAW, 0, 0, 0), payload]));
  const module = rewritten ? await WebAssembly.compile(rewritten as Uint8Array<ArrayBuffer>) : original;
  return { ...(await loadProgram(module)), hash };
}

/** The program in a cache entry, or undefined when it is missing, corrupt or does not compile. */
async function fromEntry(path: string, original: () => Uint8Array): Promise<Omit<Program, "hash"> | undefined> {
  let b: Buffer;
  try {
    b = readFileSync(path);
  } catch {
    return undefined;
  }
  if (b.length < HEAD) return undefined;
  const payload = b.subarray(HEAD);
  const kind = b[16];
  if ((kind !== RAW && kind !== INSTRUMENTED) || b.toString("latin1", 0, 16) !== checksum(payload)) return undefined;
  try {
    const module = await WebAssembly.compile((kind === INSTRUMENTED ? payload : original()) as Uint8Array<ArrayBuffer>);
    return { module, instrumented: kind === INSTRUMENTED };
  } catch {
    return undefined; // a payload that passed its checksum but does not load: rebuilt by the caller
  }
}

function readIndex(file: string, identity: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
  const nl = text.lastIndexOf("\n");
  const hash = text.slice(nl + 1);
  return text.slice(0, nl) === identity && /^[0-9a-f]{64}$/.test(hash) ? hash : undefined;
}

function atomicWrite(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    mkdirSync(join(path, ".."), { recursive: true });
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch {
    rmSync(tmp, { force: true });
  }
}
