// membomb: a guest that allocates without end, for memory-limit tests.
//
// stdout: "membomb: start\n", then it allocates 1 MiB arrays forever, writing to every 4 KiB
// page of each and keeping all of them reachable, so linear memory grows until the host's cap
// (or wasm32's 4 GiB) refuses memory.grow. The AssemblyScript runtime answers a failed grow
// with `unreachable`, so the end is a trap, not an exit code.

import { println } from "../sdk";

const MIB: i32 = 1 << 20;
const kept = new Array<Uint8Array>();

println("membomb: start");
let round: i32 = 0;
while (true) {
  const block = new Uint8Array(MIB);
  for (let i = 0; i < MIB; i += 4096) block[i] = <u8>(round + i);
  kept.push(block);
  round++;
}
