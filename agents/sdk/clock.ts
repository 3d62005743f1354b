// Clocks: wall time for timestamps, monotonic time for measuring.

import { clock_time_get } from "bindings/wasi_snapshot_preview1";

const OUT = memory.data(8, 8);

/** Milliseconds since the Unix epoch (0 if the host has no realtime clock). */
export function nowMs(): i64 {
  if (clock_time_get(0 /* REALTIME */, 1_000_000, OUT) != 0) return 0;
  return <i64>(load<u64>(OUT) / 1_000_000);
}

/** Monotonic nanoseconds; only differences are meaningful. */
export function monotonicNs(): u64 {
  if (clock_time_get(1 /* MONOTONIC */, 1, OUT) != 0) return 0;
  return load<u64>(OUT);
}
