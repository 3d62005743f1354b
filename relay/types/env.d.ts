// Types for relay/ tests and the wasm import: the test plugin's `cloudflare:test` module, the
// bindings the relay's tests use, and `.wasm` modules (wrangler's CompiledWasm rule).
/// <reference types="@cloudflare/vitest-plugin/types" />

declare namespace Cloudflare {
  interface Env {
    RELAY: DurableObjectNamespace<import("../relay.ts").NostrRelay>;
    RELAY_STORAGE: DurableObjectNamespace<import("../shard.ts").RelayStorageShard>;
  }
}

declare module "*.wasm" {
  const module: WebAssembly.Module;
  export default module;
}
