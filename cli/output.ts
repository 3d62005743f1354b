// The terminal, written with blocking writes to fds 1 and 2 (as node:wasi does): a guest's output
// and our messages keep their order, nothing is buffered at exit, and a run never pays for
// Node's stream machinery (process.stdout on a pipe loads net, streams and readline: ~5 ms).
// A descriptor someone made non-blocking answers EAGAIN when full: then we wait for it.
// node:fs through getBuiltinModule, not an import: importing a builtin as an ES module builds its
// facade, which for node:fs means loading Node's streams (~3 ms of a run's CPU time).
const { writeSync } = process.getBuiltinModule("node:fs") as typeof import("node:fs");

const enc = new TextEncoder();

function writeAll(fd: number, data: string | Uint8Array): void {
  let b = typeof data === "string" ? enc.encode(data) : data;
  let spins = 0;
  while (b.length) {
    try {
      b = b.subarray(writeSync(fd, b));
      spins = 0;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EAGAIN" && spins++ < 10_000) {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1); // 1 ms, then try again
        continue;
      }
      if (code === "EPIPE") return; // the reader went away (oanix … | head): drop the rest
      throw e;
    }
  }
}

export const stdout = (data: string | Uint8Array): void => writeAll(1, data);
export const stderr = (data: string | Uint8Array): void => writeAll(2, data);
