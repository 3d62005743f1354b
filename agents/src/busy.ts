// busy: a guest that computes forever without a single syscall, for wall-time limit tests.
//
// stdout: "busy: start\n", then nothing: it spins until the host stops it. The loop steps a
// global LCG that is printed after the loop, so the optimiser cannot remove it. Env
// BUSY_ITERATIONS bounds the loop (for checking the guest itself): it then prints
// "busy: done <state>" and exits 0.

import { getenv, println } from "../sdk";

let state: u64 = 0x9e3779b97f4a7c15;

println("busy: start");
const bound = getenv("BUSY_ITERATIONS");
const limit: u64 = bound != null ? U64.parseInt(bound!) : u64.MAX_VALUE;
for (let i: u64 = 0; i != limit; i++) {
  state = state * 6364136223846793005 + 1442695040888963407;
}
println("busy: done " + state.toString());
