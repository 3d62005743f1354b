// Builds the programs the edge runner bundles: each agent module from agents/build, instrumented
// for the runtime's limits (runtime/wasi/instrument.ts), written to edge/build/. workerd cannot
// compile or instrument bytes at run time, so a bundled module must arrive instrumented, or a busy
// guest could never be stopped there. Run after `npm run build:agents`: node edge/dev/build-programs.ts
import { mkdirSync, readFileSync, writeFileSync, existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { instrument } from "../../runtime/wasi/instrument.ts";
import { ROOT } from "./launch.ts";

export const EDGE_PROGRAMS = ["demo", "hello", "busy", "spew", "membomb", "summarize", "captest", "jobcount", "hire", "orchestrate", "phase", "reviewer"];

export function buildPrograms(): string[] {
  const out = join(ROOT, "edge", "build");
  mkdirSync(out, { recursive: true });
  const built: string[] = [];
  for (const name of EDGE_PROGRAMS) {
    const src = join(ROOT, "agents", "build", `${name}.wasm`);
    const dst = join(out, `${name}.wasm`);
    if (!existsSync(src)) throw new Error(`${src} is missing: run npm run build:agents first`);
    if (existsSync(dst) && statSync(dst).mtimeMs >= statSync(src).mtimeMs) continue;
    writeFileSync(dst, instrument(readFileSync(src)));
    built.push(name);
  }
  return built;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const built = buildPrograms();
  console.log(`edge programs: ${built.length ? built.join(", ") + " instrumented" : "up to date"} (edge/build/)`);
}
