// wasi_snapshot_preview1 over a live FileService (usually a Namespace), preopened as "/". No
// copy-in/copy-out: every syscall reaches the services. Syscalls answer a number when the services
// answer synchronously and a Promise when they wait; the imports are wrapped in
// WebAssembly.Suspending so a waiting service suspends the guest (JSPI) instead of blocking.
// Without JSPI (`jspi: false`) the imports are plain functions: every service must answer
// synchronously (memory, or a proxy that blocks on Atomics.wait, browser/sab-fs.ts), and a
// service that answers with a Promise stops the process with an error rather than be misread.
//
// The syscalls live by concern: fd.ts, path.ts, clock.ts, proc.ts, poll.ts; the guest's state and
// the helpers they share in core.ts; struct layouts beside the constants in defs.ts.
import { fsError } from "../errors.ts";
import type { MaybePromise } from "../types.ts";
import { isPromise } from "../types.ts";
import { clockSyscalls } from "./clock.ts";
import { errnoOf, WasiCore } from "./core.ts";
import type { Syscall, WasiOptions as CoreOptions } from "./core.ts";
import { fdSyscalls } from "./fd.ts";
import { pathSyscalls } from "./path.ts";
import { pollSyscalls } from "./poll.ts";
import { procSyscalls } from "./proc.ts";

export { LimitExceeded, ProcExit } from "./core.ts";
export type { StdinReader } from "./core.ts";

/** Wraps a syscall to trace it (runtime/wasi/trace.ts `tracer`, given the host whose memory it reads). */
export type Tracer = (host: WasiCore) => (name: string, call: Syscall) => Syscall;

export interface WasiOptions extends CoreOptions {
  /**
   * One line per syscall: its arguments, result and errno (strace). Off: no cost, not even its
   * module's load (runtime/process.ts imports trace.ts only for a traced run).
   */
  trace?: Tracer;
  /** false: plain imports, no WebAssembly.Suspending; every service must answer synchronously. */
  jspi?: boolean;
}

/** A service answered with a Promise in a process run without JSPI: a host's mistake, never an errno. */
export class SyncViolation extends Error {
  override name = "SyncViolation";
}
/** What a platform without JSPI (WebAssembly.Suspending) gets from spawn: what is missing, and what to do. */
export class JspiMissing extends Error {
  override name = "JspiMissing";
}

/** Throws JspiMissing unless this engine has JavaScript Promise Integration. */
export function requireJspi(): void {
  const W = WebAssembly as unknown as { Suspending?: unknown; promising?: unknown };
  if (typeof W.Suspending === "function" && typeof W.promising === "function") return;
  throw new JspiMissing(
    "this JavaScript engine has no JSPI (WebAssembly.Suspending and WebAssembly.promising), which OANIX needs to run " +
      "WASI programs: use Node >= 24, or Node 22-23 with --experimental-wasm-jspi, or Chromium >= 137",
  );
}


export class WasiHost extends WasiCore {
  readonly #trace?: Tracer;
  readonly #jspi: boolean;

  constructor(o: WasiOptions) {
    super(o);
    this.#trace = o.trace;
    this.#jspi = o.jspi !== false;
  }

  #syscalls(): Record<string, Syscall> {
    return { ...procSyscalls(this), ...clockSyscalls(this), ...fdSyscalls(this), ...pathSyscalls(this), ...pollSyscalls(this) };
  }

  /**
   * The import object for `wasi_snapshot_preview1`. With a trace, each syscall is wrapped once
   * more to write its line; without one, nothing of tracing is on the path.
   */
  imports(): Record<string, unknown> {
    const jspi = this.#jspi;
    if (jspi) requireJspi();
    const out: Record<string, unknown> = {};
    const trace = this.#trace ? this.#trace(this) : null;
    for (const [name, fn] of Object.entries(this.#syscalls())) {
      const call = (...a: never[]): MaybePromise<number> => {
        let r: MaybePromise<number>;
        try {
          r = fn(...a);
        } catch (e) {
          return errnoOf(e);
        }
        if (!isPromise(r)) return r;
        if (jspi) return this.guard(r).catch(errnoOf);
        r.catch(() => {});
        throw new SyncViolation(`${name}: a service answered with a Promise, and this process runs without JSPI (every service must answer synchronously)`);
      };
      const traced = trace ? trace(name, call) : call;
      out[name] = jspi && ASYNC.has(name) ? new WebAssembly.Suspending(traced) : traced;
    }
    return out;
  }

  /**
   * Closes every open handle at once (flushing write-behind services) and waits at most `withinMs`
   * for them. Errors are collected, never thrown or left unhandled; a close still pending when the
   * time is up is reported as ETIMEDOUT (its file was not flushed).
   */
  async closeAll(withinMs = Infinity): Promise<unknown[]> {
    const errors: unknown[] = [];
    const pending: { path: string; done: boolean; p: Promise<void> }[] = [];
    for (let i = 0; i < this.fds.length; i++) {
      const e = this.fds[i];
      this.fds[i] = undefined;
      if (!e?.handle) continue;
      try {
        const r = e.handle.close();
        if (!isPromise(r)) continue;
        const c = { path: e.path, done: false, p: Promise.resolve() };
        c.p = r.then(() => { c.done = true; }, (err: unknown) => { c.done = true; errors.push(err); });
        pending.push(c);
      } catch (err) {
        errors.push(err);
      }
    }
    if (!pending.length) return errors;
    const all = Promise.all(pending.map((c) => c.p));
    if (withinMs === Infinity) await all;
    else {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([all, new Promise<void>((res) => { timer = setTimeout(res, Math.max(0, withinMs)); })]);
      clearTimeout(timer);
    }
    for (const c of pending) if (!c.done) errors.push(fsError("ETIMEDOUT", `close ${c.path}: not flushed within the wall-time limit`, { op: "close", path: c.path }));
    return errors;
  }

}

/** Syscalls that may wait on a service (or a clock) and so may suspend the guest. */
const ASYNC = new Set([
  "fd_allocate", "fd_close", "fd_datasync", "fd_sync", "fd_filestat_get", "fd_filestat_set_size",
  "fd_filestat_set_times", "fd_pread", "fd_pwrite", "fd_read", "fd_write", "fd_readdir", "fd_renumber",
  "fd_seek", "path_create_directory", "path_filestat_get", "path_filestat_set_times", "path_link",
  "path_open", "path_readlink", "path_remove_directory", "path_rename", "path_symlink",
  "path_unlink_file", "poll_oneoff",
]);

