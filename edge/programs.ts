// Agents bundled with the Worker (workerd cannot compile wasm bytes at run time, so every program
// the edge runner may start is imported here), instrumented for limits by
// edge/dev/build-programs.ts after `npm run build:agents`.
import demo from "./build/demo.wasm";
import hello from "./build/hello.wasm";
import busy from "./build/busy.wasm";
import spew from "./build/spew.wasm";
import membomb from "./build/membomb.wasm";
import summarize from "./build/summarize.wasm";
import captest from "./build/captest.wasm";
import jobcount from "./build/jobcount.wasm";
import hire from "./build/hire.wasm";
import orchestrate from "./build/orchestrate.wasm";

export const PROGRAMS: Record<string, WebAssembly.Module> = { demo, hello, busy, spew, membomb, summarize, captest, jobcount, hire, orchestrate };
