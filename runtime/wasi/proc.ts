// args, environment, randomness, exit, and the socket calls a file-only guest never has.
import type { Syscall, WasiCore } from "./core.ts";
import { ProcExit } from "./core.ts";
import { ERRNO } from "./defs.ts";

export function procSyscalls(w: WasiCore): Record<string, Syscall> {
  const fs = w.fs;
  const S = ERRNO.SUCCESS;
  const sizes = (list: Uint8Array[], countPtr: number, sizePtr: number): number => {
    w.setU32(countPtr, list.length);
    return w.setU32(sizePtr, list.reduce((n, b) => n + b.length, 0));
  };
  const strings = (list: Uint8Array[], ptrs: number, buf: number): number => {
    const dv = w.view();
    for (const b of list) {
      dv.setUint32(ptrs, buf, true);
      w.u8.set(b, buf);
      ptrs += 4;
      buf += b.length;
    }
    return S;
  };
  return {
    args_sizes_get: (c: number, s: number) => sizes(w.args, c, s),
    args_get: (p: number, b: number) => strings(w.args, p, b),
    environ_sizes_get: (c: number, s: number) => sizes(w.env, c, s),
    environ_get: (p: number, b: number) => strings(w.env, p, b),
    proc_exit: (code: number) => {
      throw new ProcExit(code);
    },
    proc_raise: () => ERRNO.NOSYS,
    sched_yield: () => S,
    random_get: (buf: number, len: number) => {
      const target = w.bytes(buf, len);
      for (let o = 0; o < len; o += 65536) crypto.getRandomValues(target.subarray(o, Math.min(len, o + 65536)));
      return S;
    },
    sock_accept: (fd: number) => (w.fd(fd), ERRNO.NOTSOCK),
    sock_recv: (fd: number) => (w.fd(fd), ERRNO.NOTSOCK),
    sock_send: (fd: number) => (w.fd(fd), ERRNO.NOTSOCK),
    sock_shutdown: (fd: number) => (w.fd(fd), ERRNO.NOTSOCK),
  };
}
