// poll_oneoff: stdio and files are always ready; clocks sleep (suspending the guest).
import type { MaybePromise } from "../types.ts";
import { nowNs } from "../types.ts";
import type { Syscall, WasiCore } from "./core.ts";
import { CLOCK, ERRNO, EVENT, EVENTTYPE, SUBCLOCKFLAGS_ABSTIME, SUBSCRIPTION } from "./defs.ts";

export function pollSyscalls(w: WasiCore): Record<string, Syscall> {
  return {
      poll_oneoff: (inPtr: number, outPtr: number, nsubs: number, neventsPtr: number) => poll(w, inPtr, outPtr, nsubs, neventsPtr),
  };
}

/** poll_oneoff: stdio and files are always ready; clocks sleep (suspending the guest). */
export function poll(w: WasiCore, inPtr: number, outPtr: number, nsubs: number, neventsPtr: number): MaybePromise<number> {
  if (nsubs === 0) return ERRNO.INVAL;
  const dv = w.view();
  const ready: { userdata: bigint; error: number; type: number; nbytes: bigint }[] = [];
  const clocks: { userdata: bigint; wakeNs: bigint }[] = [];
  const now = (id: number): bigint =>
    id === CLOCK.REALTIME ? nowNs() : BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
  for (let i = 0; i < nsubs; i++) {
    const s = inPtr + i * SUBSCRIPTION.SIZE;
    const userdata = dv.getBigUint64(s + SUBSCRIPTION.userdata, true);
    const tag = dv.getUint8(s + SUBSCRIPTION.tag);
    if (tag === EVENTTYPE.CLOCK) {
      const id = dv.getUint32(s + SUBSCRIPTION.clockId, true);
      const timeout = dv.getBigUint64(s + SUBSCRIPTION.timeout, true);
      const abs = dv.getUint16(s + SUBSCRIPTION.flags, true) & SUBCLOCKFLAGS_ABSTIME;
      if (id > CLOCK.THREAD_CPUTIME) ready.push({ userdata, error: ERRNO.INVAL, type: tag, nbytes: 0n });
      else clocks.push({ userdata, wakeNs: abs ? timeout : now(id) + timeout });
    } else if (tag === EVENTTYPE.FD_READ || tag === EVENTTYPE.FD_WRITE) {
      const e = w.fds[dv.getUint32(s + SUBSCRIPTION.fd, true)];
      const nbytes = e?.stdio === 0 && tag === EVENTTYPE.FD_READ ? BigInt(w.stdinLeft()) : 0n;
      ready.push({ userdata, error: e ? ERRNO.SUCCESS : ERRNO.BADF, type: tag, nbytes });
    } else {
      ready.push({ userdata, error: ERRNO.INVAL, type: tag, nbytes: 0n });
    }
  }
  const finish = (): number => {
    const v = w.view();
    ready.forEach((ev, i) => {
      const o = outPtr + i * EVENT.SIZE;
      w.bytes(o, EVENT.SIZE).fill(0);
      v.setBigUint64(o + EVENT.userdata, ev.userdata, true);
      v.setUint16(o + EVENT.error, ev.error, true);
      v.setUint8(o + EVENT.type, ev.type);
      v.setBigUint64(o + EVENT.nbytes, ev.nbytes, true);
    });
    return w.setU32(neventsPtr, ready.length);
  };
  if (ready.length || !clocks.length) return finish();
  const first = clocks.reduce((a, b) => (b.wakeNs < a.wakeNs ? b : a));
  const waitMs = Number(first.wakeNs - now(CLOCK.MONOTONIC)) / 1e6;
  const wake = (): number => {
    for (const c of clocks) if (c.wakeNs <= first.wakeNs) ready.push({ userdata: c.userdata, error: 0, type: EVENTTYPE.CLOCK, nbytes: 0n });
    return finish();
  };
  if (waitMs <= 0) return wake();
  if (w.blockingSleep) {
    w.blockingSleep(waitMs);
    return wake();
  }
  return new Promise<number>((resolve) => setTimeout(() => resolve(wake()), Math.min(waitMs, 2 ** 31 - 1)));
}
