// The page's side of OANIX: `createHost()` starts the runtime in a dedicated Web Worker and runs
// WASI agents there (browser/worker.ts), talking to it through comlink.
//
//   const host = await createHost();
//   const r = await host.run(wasm, { args: ["basic"], mounts: { "/workspace": "opfs:notes" }, timeoutMs: 1000 });
//   const p = host.spawn(wasm, { onStdout: (t) => log(t) }); … p.kill(); await p.done;
//
// Each run takes an idle worker (or starts one); its compiled modules stay cached there. kill()
// ends that worker (a busy guest never yields, so nothing gentler can stop it); the next run
// starts a fresh one. The page also keeps a last-resort timer past timeoutMs, which stops a guest
// the runtime could not instrument.
//
// Where the browser has no JSPI (or with `jspi: false`), each runtime worker hands its guests to a
// guest worker of its own that blocks on Atomics.wait while the runtime worker answers its file
// calls (browser/guest.ts); kill() ending the runtime worker ends that one too.
import * as Comlink from "comlink";
import type { Signer } from "../services/nip98.ts";
import { nip07Signer } from "./nip07.ts";
import type { RunOptions, RunResult, RuntimeApi, WorkerEnv } from "./protocol.ts";

export type { MountSpec, RunOptions, RunResult } from "./protocol.ts";
export type { Signer } from "../services/nip98.ts";
export { nip07, nip07Signer } from "./nip07.ts";

export interface HostOptions {
  /**
   * true: JSPI only. false: the Atomics.wait fallback (the guest in a worker of its own, blocking
   * while the runtime worker waits on services; the page must be cross-origin isolated). Absent:
   * JSPI where the browser has it, else the fallback where the page is isolated.
   */
  jspi?: boolean;
  /**
   * Who signs edge mounts (NIP-98): "browser" (the browser's key, kept in IndexedDB; the default),
   * "nip07" (the page's `window.nostr` extension), or any Signer.
   */
  signer?: "browser" | "nip07" | Signer;
  /** Where the worker's script is; by default oanix-worker.js next to this module. */
  workerUrl?: string | URL;
}

export interface SpawnOptions extends RunOptions {
  onStdout?: (text: string) => void;
  onStderr?: (text: string) => void;
}

export interface Spawned {
  /** Settles with the exit status and all the output. */
  done: Promise<RunResult>;
  /** Stops the agent now (exit status 137, reason "killed"). */
  kill(): void;
}

export interface Host {
  /** How guests wait on services here: "jspi", or "atomics" (the fallback). */
  readonly mode: "jspi" | "atomics";
  /** The public key (hex) edge mounts are signed with; "" for the browser's key until a run asks for it. */
  readonly pubkey: string;
  run(wasm: Uint8Array | ArrayBuffer | URL | string, o?: RunOptions): Promise<RunResult>;
  spawn(wasm: Uint8Array | ArrayBuffer | URL | string, o?: SpawnOptions): Spawned;
  /** Ends every worker; the host cannot be used after. */
  close(): void;
}

/** Extra time the page grants past timeoutMs before it stops the worker itself. */
const GRACE_MS = 2000;

interface Slot {
  worker: Worker;
  api: Comlink.Remote<RuntimeApi>;
  /** Settles when the worker fails to load or throws outside a call: what waits on it would hang. */
  broken: Promise<never>;
  /** Settles when the worker has its mode and signer. */
  ready: Promise<void>;
}

export async function createHost(o: HostOptions = {}): Promise<Host> {
  const signer = o.signer === "nip07" ? await nip07Signer() : o.signer === "browser" ? undefined : o.signer;
  const scriptUrl = await workerScript(o.workerUrl ?? new URL("oanix-worker.js", import.meta.url));
  const idle: Slot[] = [];
  const busy = new Set<Slot>();
  let closed = false;
  let jspi = true;

  const open = (): Omit<Slot, "ready"> => {
    const worker = new Worker(scriptUrl, { type: "module", name: "oanix-runtime" });
    const broken = new Promise<never>((_, reject) =>
      worker.addEventListener("error", (e) => {
        e.preventDefault();
        reject(new Error(`the OANIX runtime worker failed: ${e.message || `could not load ${scriptUrl}`}`));
      }, { once: true }));
    broken.catch(() => {});
    return { worker, api: Comlink.wrap<RuntimeApi>(worker), broken };
  };
  // The signer stays on this page (an extension's lives on `window`): the worker calls back to it.
  const init = (s: Omit<Slot, "ready">): Slot => {
    const ready = Promise.race([s.api.init({ jspi }, signer ? Comlink.proxy(signer) : undefined), s.broken]);
    ready.catch(() => {});
    return { ...s, ready };
  };
  const start = (): Slot => init(open());
  const stop = (s: Omit<Slot, "ready">): void => {
    s.api[Comlink.releaseProxy]();
    s.worker.terminate();
  };

  // The first worker says what this browser offers, and is then set up in the mode chosen.
  const probe = open();
  let first: Slot;
  try {
    jspi = chooseMode(o.jspi, await Promise.race([probe.api.env(), probe.broken]));
    first = init(probe);
    await first.ready;
  } catch (e) {
    stop(probe);
    throw e;
  }
  idle.push(first);

  const spawn = (wasm: Uint8Array | ArrayBuffer | URL | string, so: SpawnOptions = {}): Spawned => {
    if (closed) throw new Error("host closed");
    const slot = idle.pop() ?? start();
    busy.add(slot);
    const dec = { 1: new TextDecoder(), 2: new TextDecoder() };
    const text = { 1: "", 2: "" };
    const streamed = so.onStdout || so.onStderr;
    let finish!: (r: RunResult) => void;
    let fail!: (e: unknown) => void;
    const ended = new Promise<RunResult>((res, rej) => ((finish = res), (fail = rej)));
    const started = performance.now();
    let over = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const end = (r: RunResult | null, e?: unknown, reuse = true): void => {
      if (over) return;
      over = true;
      clearTimeout(timer);
      busy.delete(slot);
      if (reuse && !closed) idle.push(slot);
      else stop(slot);
      if (r) finish(r);
      else fail(e);
    };
    const stopped = (code: number, reason: RunResult["reason"], message: string): RunResult => ({
      code, reason, message, durationMs: performance.now() - started, stdout: text[1] + dec[1].decode(), stderr: text[2] + dec[2].decode(),
    });
    if (so.timeoutMs !== undefined && Number.isFinite(so.timeoutMs))
      timer = setTimeout(() => end(stopped(124, "timeout", `wall time limit of ${so.timeoutMs} ms exceeded (worker stopped)`), undefined, false), so.timeoutMs + GRACE_MS);

    const out = streamed
      ? Comlink.proxy((fd: 1 | 2, b: Uint8Array) => {
          if (over) return;
          const t = dec[fd].decode(b, { stream: true });
          text[fd] += t;
          (fd === 1 ? so.onStdout : so.onStderr)?.(t);
        })
      : undefined;
    const { onStdout: _o, onStderr: _e, ...ro } = so;
    Promise.all([bytesOf(wasm), slot.ready])
      .then(([bytes]) => Promise.race([slot.api.run(bytes, ro, out), slot.broken]))
      .then((r) => end(streamed ? { ...r, stdout: text[1] + dec[1].decode(), stderr: text[2] + dec[2].decode() } : r), (e) => end(null, e, false));
    return { done: ended, kill: () => end(stopped(137, "killed", "killed"), undefined, false) };
  };

  return {
    mode: jspi ? "jspi" : "atomics",
    pubkey: signer?.pubkey ?? "",
    spawn,
    run: (wasm, ro) => spawn(wasm, ro).done,
    close() {
      closed = true;
      for (const s of [...idle, ...busy]) stop(s);
      idle.length = 0;
      busy.clear();
    },
  };
}

/** JSPI, or the Atomics.wait fallback: what the page asked for, if this browser and page allow it. */
function chooseMode(asked: boolean | undefined, env: WorkerEnv): boolean {
  const fallback = env.isolated && env.waitAsync;
  const why = !env.isolated
    ? "the page is not cross-origin isolated (serve it with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp; the local edge does)"
    : "this browser has no Atomics.waitAsync";
  if (asked === true && !env.jspi) throw new Error("createHost({ jspi: true }): this browser has no WebAssembly JSPI (WebAssembly.Suspending); Chromium has it from 137");
  if (asked === false && !fallback) throw new Error(`createHost({ jspi: false }): the Atomics.wait fallback cannot run here: ${why}`);
  if (asked === undefined && !env.jspi && !fallback)
    throw new Error(`this browser has no WebAssembly JSPI (WebAssembly.Suspending), and the Atomics.wait fallback cannot run either: ${why}`);
  return asked ?? env.jspi;
}

async function bytesOf(w: Uint8Array | ArrayBuffer | URL | string): Promise<Uint8Array> {
  if (w instanceof Uint8Array) return w;
  if (w instanceof ArrayBuffer) return new Uint8Array(w);
  const r = await fetch(w);
  if (!r.ok) throw new Error(`${w}: ${r.status} ${r.statusText}`);
  return new Uint8Array(await r.arrayBuffer());
}

/** A worker must be same-origin: a script from elsewhere is fetched and started from a blob URL. */
async function workerScript(url: string | URL): Promise<string> {
  const u = new URL(url, globalThis.location?.href);
  if (u.origin === globalThis.location?.origin || u.protocol === "blob:") return u.href;
  const r = await fetch(u);
  if (!r.ok) throw new Error(`${u}: ${r.status} ${r.statusText}`);
  return URL.createObjectURL(new Blob([await r.text()], { type: "text/javascript" }));
}
