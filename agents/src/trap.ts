// trap: a guest that traps, for crash-handling tests.
//
// stdout: "trap: start\n", then it executes the wasm `unreachable` instruction: a
// WebAssembly.RuntimeError ("unreachable"), not a proc_exit.

import { println } from "../sdk";

println("trap: start");
unreachable();
