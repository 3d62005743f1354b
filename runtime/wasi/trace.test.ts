import { describe, expect, it } from "vitest";
import { MemService } from "../../services/mem.ts";
import { command, op, u32s, WASI_IMPORTS } from "../../test/wasm.ts";
import { loadProgram } from "../modules.ts";
import { Namespace } from "../namespace.ts";
import { spawn } from "../process.ts";
import { RIGHTS } from "./defs.ts";

const enc = new TextEncoder();
const { path_open, fd_write, fd_close } = WASI_IMPORTS;

/** Opens "missing" (ENOENT), creates "f", writes "hello" to it and closes it. */
const guest = command([path_open, fd_write, fd_close], [
  op.i32(3), op.i32(0), op.i32(16), op.i32(7), op.i32(0), op.i64(RIGHTS.FD_READ), op.i64(0), op.i32(0), op.i32(64), op.call(0), op.drop,
  op.i32(3), op.i32(0), op.i32(24), op.i32(1), op.i32(1), op.i64(RIGHTS.FD_WRITE), op.i64(0), op.i32(0), op.i32(64), op.call(0), op.drop,
  op.i32(64), op.load(), op.i32(32), op.i32(1), op.i32(68), op.call(1), op.drop,
  op.i32(64), op.load(), op.call(2), op.drop,
], [{ at: 16, bytes: enc.encode("missing") }, { at: 24, bytes: enc.encode("f") }, { at: 32, bytes: u32s(48, 5) }, { at: 48, bytes: enc.encode("hello") }]);

describe("spawn trace", () => {
  it("writes one line per syscall with its arguments, result and errno", async () => {
    const lines: string[] = [];
    const ns = new Namespace().mount("/", new MemService());
    const st = await spawn(await loadProgram(guest), { namespace: ns, trace: (l) => void lines.push(l) });
    expect(st.code).toBe(0);
    expect(lines).toEqual([
      'path_open(3, 0, "missing", 0, 0x2, 0x0, 0, 64) = 44 NOENT',
      'path_open(3, 0, "f", 1, 0x40, 0x0, 0, 64) = 0 SUCCESS [fd 4]',
      "fd_write(4, 32, 1, 68) = 0 SUCCESS [5 bytes]",
      "fd_close(4) = 0 SUCCESS",
    ]);
  });

  it("answers the same with and without a trace", async () => {
    const run = async (trace?: (l: string) => void) => {
      const mem = new MemService();
      const st = await spawn(await loadProgram(guest), { namespace: new Namespace().mount("/", mem), trace });
      return [st.code, new TextDecoder().decode(mem.readFile("f"))];
    };
    expect(await run(() => {})).toEqual(await run());
  });
});
