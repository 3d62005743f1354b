// Processes: a Program instantiated over a namespace, run to its exit under limits that hold.
// Wall time: instrumented guests call back every few thousand loop iterations (a busy loop is
// stopped) and every wait on a service is raced against the deadline. Memory: each memory.grow is
// decided here, against the cap. Output: stdout+stderr bytes are counted; past the cap the guest is
// stopped. stdout/stderr also go to /logs/stdout and /logs/stderr when the namespace has them.
import { fsError, isFsError } from "./errors.ts";
import type { Program } from "./modules.ts";
import type { FileHandle, FileService, MaybePromise } from "./types.ts";
import { isPromise } from "./types.ts";
import { LimitExceeded, ProcExit, WasiHost, requireJspi } from "./wasi/host.ts";
import type { StdinReader } from "./wasi/host.ts";

export interface Limits {
  /** Wall-clock time from start to exit. */
  wallTimeMs?: number;
  /** Linear memory the guest may grow to. */
  memoryBytes?: number;
  /** stdout + stderr bytes. */
  outputBytes?: number;
}

export const DEFAULT_LIMITS: Required<Limits> = { wallTimeMs: Infinity, memoryBytes: 1 << 30, outputBytes: 64 << 20 };

/** Exit statuses for stopped processes, as a shell would show them. */
export const EXIT = { io: 74, timeout: 124, trap: 134, memory: 137, output: 153 } as const;

export interface SpawnOptions {
  namespace: FileService;
  /** argv[0]; defaults to "agent". */
  name?: string;
  args?: string[];
  env?: Record<string, string>;
  stdin?: Uint8Array | string | StdinReader;
  limits?: Limits;
  onStdout?: (bytes: Uint8Array) => void;
  onStderr?: (bytes: Uint8Array) => void;
  /** The namespace path preopened as "/" (default "/"); null preopens nothing. */
  preopen?: string | null;
  /** One line per syscall with its arguments, result and errno (strace); no cost when absent. */
  trace?: (line: string) => void;
  /**
   * false runs the guest without JSPI, to its exit on this thread: every service must answer
   * synchronously (memory, or browser/sab-fs.ts's proxy blocking on Atomics.wait), and clock waits
   * block the thread. For engines without WebAssembly.Suspending; a worker, never a page's thread.
   */
  jspi?: boolean;
}

export interface ExitStatus {
  code: number;
  reason: "exit" | "trap" | "timeout" | "memory" | "output" | "io";
  /** Why a process was stopped (trap message or limit), absent for a normal exit. */
  message?: string;
  durationMs: number;
}

const FUEL = 1 << 16;

export async function spawn(program: Program, o: SpawnOptions): Promise<ExitStatus> {
  const jspi = o.jspi !== false;
  if (jspi) requireJspi();
  // A limit given as undefined keeps its default (a spread would make it undefined, and NaN later).
  const given = Object.entries(o.limits ?? {}).filter(([, v]) => v !== undefined);
  const limits: Required<Limits> = { ...DEFAULT_LIMITS, ...Object.fromEntries(given) };
  const started = performance.now();
  const deadline = started + limits.wallTimeMs;
  const logs = await openLogs(o.namespace);
  let output = 0;
  let memoryRefused = false;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const sink = (log: FileHandle | null, tee?: (b: Uint8Array) => void) => (b: Uint8Array): void => {
    output += b.length;
    if (output > limits.outputBytes) throw new LimitExceeded("output", `output limit of ${limits.outputBytes} bytes exceeded`);
    tee?.(b);
    if (log) logs.write(log, b);
  };
  const timeout = (): LimitExceeded => new LimitExceeded("timeout", `wall time limit of ${limits.wallTimeMs} ms exceeded`);
  const expired = Number.isFinite(limits.wallTimeMs)
    ? new Promise<never>((_, reject) => { timer = setTimeout(() => reject(timeout()), Math.max(0, deadline - performance.now())); })
    : null;
  expired?.catch(() => {});

  const line = o.trace;
  const trace = line ? (await import("./wasi/trace.ts")).tracer : undefined;
  const host = new WasiHost({
    fs: o.namespace,
    args: [o.name ?? "agent", ...(o.args ?? [])],
    env: o.env,
    stdin: typeof o.stdin === "string" ? new TextEncoder().encode(o.stdin) : o.stdin,
    stdout: sink(logs.stdout, o.onStdout),
    stderr: sink(logs.stderr, o.onStderr),
    preopen: o.preopen,
    trace: trace && line ? (h) => trace(h, line) : undefined,
    guard: expired ? (p) => Promise.race([p, expired]) : undefined,
    jspi,
    blockingSleep: jspi ? undefined : (ms) => {
      // A sleep past the deadline sleeps to it and ends the process there, as the JSPI path's race does.
      const left = deadline - performance.now();
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Math.max(0, Math.min(ms, left)));
      if (ms >= left) throw timeout();
    },
  });

  let memory: WebAssembly.Memory | undefined;
  const oanix = {
    tick: (): number => {
      if (performance.now() > deadline) throw timeout();
      return FUEL;
    },
    grow: (pages: number): number => {
      if (!memory) return -1; // a wasm start section growing memory before instantiation finished
      const cur = memory.buffer.byteLength;
      if (cur + pages * 65536 > limits.memoryBytes) {
        memoryRefused = true;
        return -1;
      }
      try {
        return memory.grow(pages);
      } catch {
        return -1;
      }
    },
  };

  let status: Omit<ExitStatus, "durationMs">;
  try {
    const instance = new WebAssembly.Instance(program.module, { wasi_snapshot_preview1: host.imports(), oanix } as WebAssembly.Imports);
    memory = Object.values(instance.exports).find((e) => e instanceof WebAssembly.Memory) as WebAssembly.Memory;
    host.memory = memory;
    if (memory.buffer.byteLength > limits.memoryBytes)
      throw new LimitExceeded("memory", `initial memory of ${memory.buffer.byteLength} bytes exceeds the limit of ${limits.memoryBytes}`);
    const main = instance.exports._start as () => void;
    if (jspi) await WebAssembly.promising(main)();
    else main();
    status = { code: 0, reason: "exit" };
  } catch (e) {
    status = ended(e, memoryRefused, limits.memoryBytes);
  } finally {
    clearTimeout(timer);
  }
  // Closing flushes write-behind services: a write that cannot land fails the process (EX_IOERR).
  // The wall-time limit bounds the flush too: what is not flushed by then is reported, not awaited.
  const left = (): number => deadline - performance.now();
  const lost = await host.closeAll(left());
  if (lost.length) status = failedIo(status, lost);
  try {
    await within(logs.close(status), left());
  } catch (e) {
    status = failedIo(status, [e]);
  }
  return { ...status, durationMs: performance.now() - started };
}

/** A status that says which files could not be closed; a clean exit becomes EX_IOERR (74). */
function failedIo(status: Omit<ExitStatus, "durationMs">, lost: unknown[]): Omit<ExitStatus, "durationMs"> {
  const why = lost.map((e) => (e instanceof Error ? e.message : String(e))).join("; ");
  const ok = status.code === 0;
  return { code: ok ? EXIT.io : status.code, reason: ok ? "io" : status.reason, message: `${status.message ? status.message + "; " : ""}closing files failed: ${why}` };
}

/** `p`, or ETIMEDOUT after `ms` (Infinity waits); a late rejection of `p` is dropped, not left unhandled. */
async function within<T>(p: Promise<T>, ms: number): Promise<T> {
  if (ms === Infinity) return p;
  p.catch(() => {});
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(fsError("ETIMEDOUT", "logs not flushed within the wall-time limit")), Math.max(0, ms));
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

function ended(e: unknown, memoryRefused: boolean, cap: number): Omit<ExitStatus, "durationMs"> {
  if (e instanceof ProcExit) {
    // A guest that dies after being refused memory died of the memory limit, whatever it says.
    if (e.code !== 0 && memoryRefused) return { code: EXIT.memory, reason: "memory", message: `memory limit of ${cap} bytes reached` };
    return { code: e.code, reason: "exit" };
  }
  if (e instanceof LimitExceeded) return { code: EXIT[e.kind], reason: e.kind, message: e.message };
  if (e instanceof WebAssembly.RuntimeError || e instanceof RangeError) {
    if (memoryRefused) return { code: EXIT.memory, reason: "memory", message: `memory limit of ${cap} bytes reached` };
    return { code: EXIT.trap, reason: "trap", message: `trap: ${e.message}` };
  }
  throw e;
}

/** The process's /logs files, when the namespace has them; writes keep their order even when async. */
async function openLogs(ns: FileService) {
  let hasLogs = true;
  try {
    await ns.stat("/logs");
  } catch (e) {
    if (!isFsError(e)) throw e;
    hasLogs = false;
  }
  const open = async (name: string): Promise<FileHandle | null> => {
    if (!hasLogs) return null;
    try {
      return await ns.open(`/logs/${name}`, { write: true, append: true, create: true });
    } catch (e) {
      if (isFsError(e)) return null; // no /logs, or not writable: output still reaches the callbacks
      throw e;
    }
  };
  const [stdout, stderr, events] = await Promise.all([open("stdout"), open("stderr"), open("events.jsonl")]);
  let chain: Promise<unknown> | null = null;
  const errors: unknown[] = [];
  const write = (h: FileHandle, b: Uint8Array): void => {
    const go = (): MaybePromise<unknown> => h.write(b);
    if (chain) chain = chain.then(go).catch((e) => errors.push(e));
    else {
      const r = go();
      if (isPromise(r)) chain = r.catch((e) => errors.push(e));
    }
  };
  return {
    stdout, stderr, write,
    async close(status: Omit<ExitStatus, "durationMs">): Promise<void> {
      if (events) write(events, new TextEncoder().encode(JSON.stringify({ ts: Date.now(), event: "exit", ...status }) + "\n"));
      await chain;
      const closing = await Promise.allSettled([stdout, stderr, events].map(async (h) => h?.close()));
      const failed = [...errors, ...closing.flatMap((r) => (r.status === "rejected" ? [r.reason] : []))];
      if (failed.length) throw failed[0];
    },
  };
}
