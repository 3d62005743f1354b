// Syscall tracing (as browser_wasi_shim's strace): one line per call with its arguments (paths
// decoded from guest memory), its result and the errno's name, e.g.
//
//   path_open(3, 1, "notes/a.txt", 0x1, 0x0, 0x2000042, 0x0, 0x0, 0x11ff8) = 0 SUCCESS [fd 4]
//   fd_read(4, 0x11fe0, 1, 0x11fdc) = 0 SUCCESS [12 bytes]
//   path_filestat_get(3, 1, "missing", 0x12000) = 44 NOENT
//
// Built only when a trace is asked for (the host wraps each import once more); a host without one
// runs none of this.
import type { MaybePromise } from "../types.ts";
import { isPromise } from "../types.ts";
import type { Syscall, WasiCore } from "./core.ts";
import { ERRNO } from "./defs.ts";

const NAMES: Record<number, string> = Object.fromEntries(Object.entries(ERRNO).map(([k, v]) => [v, k]));

/** Which arguments are (pointer, length) strings, by syscall. */
const STRINGS: Record<string, number[]> = {
  path_open: [2], path_create_directory: [1], path_remove_directory: [1], path_unlink_file: [1],
  path_readlink: [1], path_filestat_get: [2], path_filestat_set_times: [2], path_link: [2, 5],
  path_rename: [1, 4], path_symlink: [0, 3],
};
/** Where a successful call leaves a u32 worth showing: [argument index of the pointer, unit]. */
const OUT: Record<string, [number, string]> = {
  path_open: [8, "fd"], fd_read: [3, "bytes"], fd_write: [3, "bytes"], fd_pread: [4, "bytes"],
  fd_pwrite: [4, "bytes"], fd_readdir: [4, "bytes"], path_readlink: [5, "bytes"],
};

export function tracer(h: WasiCore, line: (s: string) => void): (name: string, call: Syscall) => Syscall {
  const show = (name: string, args: unknown[]): string => {
    const strs = STRINGS[name] ?? [];
    const parts: string[] = [];
    for (let i = 0; i < args.length; i++) {
      if (strs.includes(i)) {
        let text: string;
        try {
          text = JSON.stringify(new TextDecoder().decode(h.bytes(args[i] as number, args[i + 1] as number)));
        } catch {
          text = `<bad string at ${args[i]}>`;
        }
        parts.push(text);
        i++;
      } else {
        const v = args[i];
        parts.push(typeof v === "bigint" ? `0x${v.toString(16)}` : i === 0 || typeof v !== "number" || v < 4096 ? String(v) : `0x${v.toString(16)}`);
      }
    }
    return `${name}(${parts.join(", ")})`;
  };
  const result = (name: string, args: unknown[], errno: number): string => {
    let extra = "";
    const out = OUT[name];
    if (errno === ERRNO.SUCCESS && out) {
      try {
        extra = ` [${out[1] === "fd" ? "fd " : ""}${h.view().getUint32(args[out[0]] as number, true)}${out[1] === "bytes" ? " bytes" : ""}]`;
      } catch {
        // the guest's pointer was bad: the call said so itself
      }
    }
    return ` = ${errno} ${NAMES[errno] ?? "?"}${extra}`;
  };
  return (name, call) => (...a: never[]): MaybePromise<number> => {
    const args = a as unknown[];
    const head = show(name, args);
    let r: MaybePromise<number>;
    try {
      r = call(...a);
    } catch (e) {
      line(`${head} = ${e instanceof Error ? e.constructor.name : "exit"}`);
      throw e;
    }
    if (!isPromise(r)) {
      line(head + result(name, args, r));
      return r;
    }
    return r.then(
      (errno) => (line(head + result(name, args, errno)), errno),
      (e: unknown) => {
        line(`${head} = ${e instanceof Error ? e.constructor.name : "exit"}`);
        throw e;
      },
    );
  };
}
