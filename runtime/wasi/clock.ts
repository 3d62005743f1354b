// clock_*: wall and monotonic time.
import { nowNs } from "../types.ts";
import type { Syscall, WasiCore } from "./core.ts";
import { CLOCK, ERRNO } from "./defs.ts";

export function clockSyscalls(w: WasiCore): Record<string, Syscall> {
  const fs = w.fs;
  const S = ERRNO.SUCCESS;
  return {
    clock_res_get: (id: number, ptr: number) => {
      if (id > CLOCK.THREAD_CPUTIME) return ERRNO.INVAL;
      return w.setU64(ptr, id === CLOCK.REALTIME ? 1_000_000n : 1_000n);
    },
    clock_time_get: (id: number, _precision: bigint, ptr: number) => {
      if (id === CLOCK.REALTIME) return w.setU64(ptr, nowNs() + BigInt(Math.floor((performance.now() % 1) * 1e6)));
      if (id > CLOCK.THREAD_CPUTIME) return ERRNO.INVAL;
      return w.setU64(ptr, BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6)));
    },
  };
}
