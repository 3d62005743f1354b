// A tiny assembler for hand-built WASI test guests: a command whose `_start` runs a straight line
// of instructions over WASI imports. For tests that need a guest to do exactly one odd thing (leave
// a file open at exit, hand the host a lying iovec) without a C toolchain.

type ValType = "i32" | "i64";
const VAL: Record<ValType, number> = { i32: 0x7f, i64: 0x7e };

export interface WasiImport { name: string; params: ValType[]; result?: ValType }

/** The WASI imports the guests here use, with their signatures. */
export const WASI_IMPORTS = {
  path_open: { name: "path_open", params: ["i32", "i32", "i32", "i32", "i32", "i64", "i64", "i32", "i32"], result: "i32" },
  fd_write: { name: "fd_write", params: ["i32", "i32", "i32", "i32"], result: "i32" },
  fd_read: { name: "fd_read", params: ["i32", "i32", "i32", "i32"], result: "i32" },
  fd_close: { name: "fd_close", params: ["i32"], result: "i32" },
  proc_exit: { name: "proc_exit", params: ["i32"] },
} satisfies Record<string, WasiImport>;

const uleb = (n: number | bigint): number[] => {
  let v = BigInt(n);
  const out: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) b |= 0x80;
    out.push(b);
  } while (v !== 0n);
  return out;
};
const sleb = (n: number | bigint): number[] => {
  let v = BigInt(n);
  const out: number[] = [];
  for (;;) {
    const b = Number(v & 0x7fn);
    v >>= 7n;
    if ((v === 0n && !(b & 0x40)) || (v === -1n && b & 0x40)) return [...out, b];
    out.push(b | 0x80);
  }
};
const str = (s: string): number[] => {
  const b = [...new TextEncoder().encode(s)];
  return [...uleb(b.length), ...b];
};
const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];

/** Instructions. */
export const op = {
  i32: (n: number): number[] => [0x41, ...sleb(n)],
  i64: (n: number | bigint): number[] => [0x42, ...sleb(n)],
  /** i32.load at the address on the stack (plus a constant offset). */
  load: (offset = 0): number[] => [0x28, 2, ...uleb(offset)],
  call: (index: number): number[] => [0x10, ...uleb(index)],
  drop: [0x1a],
};

/**
 * A WASI command: `imports` in order (call them by index), one page of memory unless `pages`,
 * `data` placed at fixed addresses, and `_start` running `body`.
 */
export function command(imports: WasiImport[], body: number[][], data: { at: number; bytes: Uint8Array }[] = [], pages = 1): Uint8Array {
  const types = imports.map((i) => [0x60, ...vec(i.params.map((p) => [VAL[p]])), ...vec(i.result ? [[VAL[i.result]]] : [])]);
  types.push([0x60, 0, 0]); // _start: [] -> []
  const start = imports.length;
  const code = [0, ...body.flat(), 0x0b];
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec(types)),
    ...section(2, vec(imports.map((i, k) => [...str("wasi_snapshot_preview1"), ...str(i.name), 0x00, ...uleb(k)]))),
    ...section(3, vec([uleb(start)])),
    ...section(5, vec([[0x00, ...uleb(pages)]])),
    ...section(7, vec([[...str("memory"), 0x02, 0], [...str("_start"), 0x00, ...uleb(start)]])),
    ...section(10, vec([[...uleb(code.length), ...code]])),
    ...section(11, vec(data.map((d) => [0x00, ...op.i32(d.at), 0x0b, ...uleb(d.bytes.length), ...d.bytes]))),
  ];
  return new Uint8Array(bytes);
}

/** Little-endian u32s, for iovec arrays in a data segment. */
export function u32s(...values: number[]): Uint8Array {
  const b = new Uint8Array(values.length * 4);
  const dv = new DataView(b.buffer);
  values.forEach((v, i) => dv.setUint32(i * 4, v >>> 0, true));
  return b;
}
