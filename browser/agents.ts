// The bundled agents the console page offers (served by the Worker at /agents/NAME.wasm).
export const PAGE_AGENTS = ["demo", "hello", "echo", "smallfile", "busy", "membomb", "spew"] as const;
