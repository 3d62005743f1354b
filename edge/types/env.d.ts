// Types for edge/ tests: the test plugin's `cloudflare:test` module and the Worker's bindings as
// `env` from `cloudflare:workers` sees them; `.wasm` modules (wrangler's CompiledWasm rule).
/// <reference types="@cloudflare/vitest-plugin/types" />

declare namespace Cloudflare {
  interface GlobalProps {
    mainModule: typeof import("../worker.ts");
  }
  interface Env extends Omit<import("../env.ts").Env, never> {
    RELAY: DurableObjectNamespace<import("../../relay/relay.ts").NostrRelay>;
    RELAY_STORAGE: DurableObjectNamespace<import("../../relay/shard.ts").RelayStorageShard>;
  }
}

declare module "*.wasm" {
  const module: WebAssembly.Module;
  export default module;
}

// JSPI and WebAssembly.compile exist in workerd (compiling bytes is refused at run time, which
// runtime/modules.ts handles); the generated runtime types leave them out.
declare namespace WebAssembly {
  function compile(bytes: BufferSource): Promise<Module>;
  class Suspending {
    constructor(fn: (...args: any[]) => unknown);
  }
  function promising<F extends (...args: any[]) => unknown>(fn: F): (...args: Parameters<F>) => Promise<Awaited<ReturnType<F>>>;
}
declare function clearTimeout(timeoutId?: number | null): void;
