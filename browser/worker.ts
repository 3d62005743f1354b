// The runtime's worker: runs guests off the page's thread, with JSPI where the engine has it, else
// in a guest worker of its own that blocks on Atomics.wait while this one answers its file calls
// (browser/guest.ts). Compiled modules stay cached by hash for the worker's life
// (runtime/modules.ts), so a warm run is an instantiate. The page talks to it through comlink
// (browser/host.ts). The same script is the guest worker when started under GUEST_WORKER's name.
import * as Comlink from "comlink";
import { loadProgram } from "../runtime/modules.ts";
import { Namespace } from "../runtime/namespace.ts";
import { spawn, type ExitStatus, type Limits } from "../runtime/process.ts";
import type { FileService } from "../runtime/types.ts";
import { grantCaps, type CapGrants } from "../services/cap/grant.ts";
import { LogsService } from "../services/logs.ts";
import { MemService } from "../services/mem.ts";
import type { Signer } from "../services/nip98.ts";
import { RemoteService } from "../services/remote.ts";
import { TaskService } from "../services/task.ts";
import { GUEST_WORKER, GuestThread, serveGuest } from "./guest.ts";
import { browserSecret, browserSigner } from "./key.ts";
import { opfsService } from "./opfs.ts";
import type { LentSigner, MountSpec, RunOptions, RunResult, RuntimeApi } from "./protocol.ts";

/** Who signs edge mounts: the browser's key, unless the page lent its signer (init). */
let signer: () => Promise<Signer> = browserSigner;
/** Set by init({ jspi: false }): guests run there, blocking, and this worker serves their files. */
let guest: GuestThread | null = null;

/** A mount spec as a FileService; a bad spec is a clear error before anything runs. */
export async function serviceOf(spec: MountSpec, at: string): Promise<FileService> {
  if (typeof spec !== "string") return new MemService(spec);
  if (spec === "mem:") return new MemService();
  if (spec.startsWith("opfs:")) return opfsService(spec.slice(5));
  if (/^https?:\/\/[^/]+\/w\/[^/]+\/?$/.test(spec)) return new RemoteService(spec.replace(/\/$/, ""), { signer: signer() });
  throw new Error(`mount ${at}: unknown source "${spec}" (mem:, opfs:NAME, http(s)://HOST/w/NAME, or an object of files)`);
}

async function namespaceOf(o: RunOptions): Promise<Namespace> {
  const ns = new Namespace();
  const mounts = o.mounts ?? {};
  const at = (p: string): string => "/" + p.split("/").filter(Boolean).join("/");
  const given = new Set(Object.keys(mounts).map(at));
  if (!given.has("/task")) ns.mount("/task", new TaskService({}));
  if (!given.has("/workspace")) ns.mount("/workspace", new MemService());
  if (!given.has("/logs")) ns.mount("/logs", new LogsService());
  for (const [path, spec] of Object.entries(mounts)) {
    if (!path.startsWith("/")) throw new Error(`mount ${path}: a mount point is an absolute path`);
    ns.mount(at(path), await serviceOf(spec, path));
  }
  return ns;
}

async function capsOf(caps: NonNullable<RunOptions["caps"]>): Promise<CapGrants> {
  const g: CapGrants = {};
  if (caps.http) g.http = { hosts: caps.http };
  if (caps.llm) g.llm = { provider: caps.llm };
  if (caps.nostr) {
    const relays = caps.nostr === true ? [new URL("/relay", self.location.origin).href.replace(/^http/, "ws")] : caps.nostr.relays;
    g.nostr = { secretKey: await browserSecret(), relays };
  }
  return g;
}

const api: RuntimeApi = {
  env: () => ({
    jspi: typeof (WebAssembly as { Suspending?: unknown }).Suspending === "function" && typeof (WebAssembly as { promising?: unknown }).promising === "function",
    isolated: globalThis.crossOriginIsolated === true,
    waitAsync: typeof (Atomics as { waitAsync?: unknown }).waitAsync === "function",
  }),

  async init(o, lent) {
    if (!o.jspi) guest ??= new GuestThread(self.location.href);
    if (lent) {
      // A comlink proxy of the page's signer: its property and its calls answer Promises.
      const remote = lent as unknown as Comlink.Remote<LentSigner>;
      const lentSigner: Signer = { pubkey: await remote.pubkey, authorize: (url, method, body) => remote.authorize(url, method, body) };
      signer = async () => lentSigner;
    }
  },

  async run(wasm, o, out) {
    const ns = await namespaceOf(o);
    const granted = o.caps ? grantCaps(ns, await capsOf(o.caps)) : null;
    const chunks: Record<1 | 2, Uint8Array[]> = { 1: [], 2: [] };
    const sink = (fd: 1 | 2) => (b: Uint8Array): void => (out ? out(fd, b.slice()) : void chunks[fd].push(b.slice()));
    const limits: Limits = { wallTimeMs: o.timeoutMs, memoryBytes: o.memoryBytes, outputBytes: o.outputBytes };
    const name = o.name ?? "agent";
    try {
      let s: ExitStatus;
      if (guest) {
        // The guest worker's bytes are its own (it compiles and caches them); outputs arrive as posted.
        s = await guest.run(wasm, ns, { name, args: o.args, env: o.env, stdin: o.stdin, limits, onOutput: (fd, b) => sink(fd)(b) });
      } else {
        const program = await loadProgram(wasm);
        s = await spawn(program, { namespace: ns, name, args: o.args, env: o.env, stdin: o.stdin, limits, onStdout: sink(1), onStderr: sink(2) });
      }
      const text = (fd: 1 | 2): string => new TextDecoder().decode(concat(chunks[fd]));
      const r: RunResult = { code: s.code, reason: s.reason, durationMs: s.durationMs, stdout: text(1), stderr: text(2) };
      if (s.message) r.message = s.message;
      return r;
    } finally {
      granted?.close();
    }
  },
};

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, at), (at += p.length);
  return out;
}

if (self.name === GUEST_WORKER) serveGuest(self as unknown as Parameters<typeof serveGuest>[0]);
else Comlink.expose(api);
