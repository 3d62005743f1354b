// The JSPI-free path, both ends. Where the engine has no WebAssembly.Suspending, a guest cannot be
// suspended while a service waits, so it runs in a worker of its own (the guest's thread, started
// by the runtime worker) and blocks on Atomics.wait; the runtime worker keeps the namespace and
// answers over a SharedArrayBuffer (browser/sab-fs.ts). No copy-in/copy-out: every call reaches
// the live services, so OPFS and edge mounts behave as with JSPI.
//
//   page ──comlink── runtime worker (namespace, services, caps) ──SAB── guest worker (WASI, blocking)
import { loadProgram } from "../runtime/modules.ts";
import { spawn, type ExitStatus, type Limits } from "../runtime/process.ts";
import type { FileService } from "../runtime/types.ts";
import { LimitExceeded } from "../runtime/wasi/host.ts";
import { BlockingClient, newChannel } from "./sab-channel.ts";
import { SabFileService, serveFileService } from "./sab-fs.ts";

/** The guest worker's name: the same script (oanix-worker.js) takes this role when started under it. */
export const GUEST_WORKER = "oanix-guest";

interface GuestRun {
  wasm: Uint8Array;
  sab: SharedArrayBuffer;
  name: string;
  args?: string[];
  env?: Record<string, string>;
  stdin?: string | Uint8Array;
  limits: Limits;
}

type FromGuest =
  | { t: "out"; fd: 1 | 2; bytes: Uint8Array }
  | { t: "exit"; status: ExitStatus; channelDown: boolean }
  | { t: "error"; message: string };

interface Port {
  postMessage(m: unknown): void;
  onmessage: ((ev: MessageEvent) => unknown) | null;
}

/** The guest worker: runs one program at a time over the namespace across the channel. */
export function serveGuest(port: Port): void {
  port.onmessage = async (ev) => {
    const r = ev.data as GuestRun;
    try {
      const program = await loadProgram(r.wasm);
      const wall = r.limits.wallTimeMs ?? Infinity;
      const client = new BlockingClient(r.sab, performance.now() + wall);
      const namespace = new SabFileService(client, { onTimeout: () => new LimitExceeded("timeout", `wall time limit of ${wall} ms exceeded`) });
      const out = (fd: 1 | 2) => (bytes: Uint8Array): void => port.postMessage({ t: "out", fd, bytes: bytes.slice() } satisfies FromGuest);
      const status = await spawn(program, {
        namespace, jspi: false, name: r.name, args: r.args, env: r.env, stdin: r.stdin, limits: r.limits,
        onStdout: out(1), onStderr: out(2),
      });
      port.postMessage({ t: "exit", status, channelDown: client.down !== null } satisfies FromGuest);
    } catch (e) {
      port.postMessage({ t: "error", message: e instanceof Error ? e.message : String(e) } satisfies FromGuest);
    }
  };
}

export interface GuestOptions {
  name: string;
  args?: string[];
  env?: Record<string, string>;
  stdin?: string | Uint8Array;
  limits: Limits;
  onOutput: (fd: 1 | 2, bytes: Uint8Array) => void;
}

/**
 * The runtime worker's side: one guest worker, kept between runs (its compiled modules stay warm)
 * and replaced when a run leaves it unusable (a wait given up, a crash).
 */
export class GuestThread {
  readonly #script: string;
  #worker: Worker | null = null;

  constructor(script: string) {
    this.#script = script;
  }

  async run(wasm: Uint8Array, ns: FileService, o: GuestOptions): Promise<ExitStatus> {
    const worker = (this.#worker ??= new Worker(this.#script, { type: "module", name: GUEST_WORKER }));
    const sab = newChannel();
    const served = serveFileService(sab, ns);
    let status: ExitStatus;
    try {
      const ended = await new Promise<{ status: ExitStatus; channelDown: boolean }>((resolve, reject) => {
        worker.onmessage = (ev: MessageEvent<FromGuest>) => {
          const m = ev.data;
          if (m.t === "out") o.onOutput(m.fd, m.bytes);
          else if (m.t === "exit") resolve(m);
          else reject(new Error(m.message));
        };
        worker.onerror = (e) => {
          e.preventDefault();
          reject(new Error(`the guest's worker failed: ${e.message || `could not load ${this.#script}`}`));
        };
        const run: GuestRun = { wasm, sab, name: o.name, args: o.args, env: o.env, stdin: o.stdin, limits: o.limits };
        worker.postMessage(run);
      });
      status = ended.status;
      if (ended.channelDown) this.#drop(); // it may still be owed a reply on the old channel: start afresh
    } catch (e) {
      this.#drop();
      await served.close();
      throw e;
    } finally {
      worker.onmessage = worker.onerror = null;
    }
    // Handles a guest left open are those it could not close (its channel went down): closing them
    // here flushes what they hold; a failure is said in the status.
    const lost = await served.close();
    if (lost.length) {
      const why = lost.map((e) => (e instanceof Error ? e.message : String(e))).join("; ");
      status = { ...status, message: `${status.message ? status.message + "; " : ""}closing files failed: ${why}` };
    }
    return status;
  }

  close(): void {
    this.#drop();
  }

  #drop(): void {
    this.#worker?.terminate();
    this.#worker = null;
  }
}
