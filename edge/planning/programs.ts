// The planning agents bundled with the Worker (workerd cannot compile wasm bytes at run time),
// instrumented for limits by edge/dev/build-programs.ts after `npm run build:agents`.
import phase from "../build/phase.wasm";
import reviewer from "../build/reviewer.wasm";
import { loadProgram, type Program } from "../../runtime/modules.ts";

let loaded: Promise<{ phase: Program; reviewer: Program }> | undefined;

export function planningPrograms(): Promise<{ phase: Program; reviewer: Program }> {
  loaded ??= Promise.all([loadProgram(phase), loadProgram(reviewer)]).then(([p, r]) => ({ phase: p, reviewer: r }));
  return loaded;
}
