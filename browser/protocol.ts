// What the page and the runtime's worker say to each other (through comlink), and the options a
// page gives `host.run` / `host.spawn`.

/** A mount: initial files in memory, "mem:", "opfs:NAME", or an edge workspace "http(s)://HOST/w/NAME". */
export type MountSpec = Record<string, string | Uint8Array> | string;

export interface RunOptions {
  /** Arguments after the program name. */
  args?: string[];
  env?: Record<string, string>;
  /** Mount points (absolute paths) and what to mount there. Without mounts: /task, /workspace, /logs in memory. */
  mounts?: Record<string, MountSpec>;
  /** Capabilities: hosts for /cap/http, an LLM provider ("offline", "openai:URL#MODEL"), nostr with the browser's key. */
  caps?: { http?: string | string[]; llm?: string; nostr?: boolean | { relays: string[] } };
  stdin?: string | Uint8Array;
  /** Wall time (exit 124 past it). */
  timeoutMs?: number;
  /** Linear memory cap (exit 137 past it). */
  memoryBytes?: number;
  /** stdout + stderr bytes (exit 153 past it). */
  outputBytes?: number;
  /** argv[0]; "agent" by default. */
  name?: string;
}

export interface RunResult {
  code: number;
  reason: "exit" | "trap" | "timeout" | "memory" | "output" | "io" | "killed";
  message?: string;
  durationMs: number;
  stdout: string;
  stderr: string;
}

/** What a runtime worker's thread offers: JSPI, or what the Atomics.wait fallback needs. */
export interface WorkerEnv {
  /** WebAssembly.Suspending and promising are there. */
  jspi: boolean;
  /** crossOriginIsolated (SharedArrayBuffer can be shared with another worker). */
  isolated: boolean;
  /** Atomics.waitAsync is there (the services' side of the fallback waits with it). */
  waitAsync: boolean;
}

/** A signer the page lends the worker (a NIP-07 extension lives on the page's `window`). */
export interface LentSigner {
  readonly pubkey: string;
  authorize(url: string, method: string, body?: Uint8Array): string | Promise<string>;
}

/** The worker's side, as comlink exposes it. */
export interface RuntimeApi {
  env(): WorkerEnv;
  /** Once, before runs: JSPI or the guest worker, and who signs edge mounts (the browser's key when absent). */
  init(o: { jspi: boolean }, signer?: LentSigner): Promise<void>;
  /** `out(1|2, bytes)` streams output; without it, output is collected into the result. */
  run(wasm: Uint8Array, o: RunOptions, out?: (fd: 1 | 2, bytes: Uint8Array) => void): Promise<RunResult>;
}
