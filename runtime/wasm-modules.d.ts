// `.wasm` files imported statically are compiled modules (workerd's CompiledWasm rule).
declare module "*.wasm" {
  const module: WebAssembly.Module;
  export default module;
}
