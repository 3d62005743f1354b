import { describe, expect, it } from "vitest";
import { existsSync, openSync, closeSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { WASI } from "node:wasi";
import asc from "assemblyscript/asc";
import { INSTRUMENT_MODULE, InstrumentError, instrument } from "./instrument.ts";

// ---------------------------------------------------------------------------------------------
// A tiny assembler: modules are built from byte arrays, section by section.

type Bytes = number[];

function u32(n: number): Bytes {
  const out: Bytes = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}
const str = (s: string): Bytes => {
  const b = [...new TextEncoder().encode(s)];
  return [...u32(b.length), ...b];
};
const vec = (items: Bytes[]): Bytes => [...u32(items.length), ...items.flat()];
const section = (id: number, payload: Bytes): Bytes => [id, ...u32(payload.length), ...payload];
const wasmModule = (...sections: Bytes[]): Uint8Array<ArrayBuffer> =>
  new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...sections.flat()]);

const i32 = 0x7f;
const i64 = 0x7e;
const funcref = 0x70;
const functype = (params: Bytes, results: Bytes): Bytes => [0x60, ...vec(params.map((p) => [p])), ...vec(results.map((r) => [r]))];
const typeSec = (...types: Bytes[]): Bytes => section(1, vec(types));
const importFunc = (mod: string, name: string, type: number): Bytes => [...str(mod), ...str(name), 0x00, ...u32(type)];
const importSec = (...imports: Bytes[]): Bytes => section(2, vec(imports));
const funcSec = (...types: number[]): Bytes => section(3, vec(types.map((t) => u32(t))));
const tableSec = (...tables: Bytes[]): Bytes => section(4, vec(tables));
const memSec = (...mems: Bytes[]): Bytes => section(5, vec(mems));
const globalSec = (...globals: Bytes[]): Bytes => section(6, vec(globals));
const exportFunc = (name: string, idx: number): Bytes => [...str(name), 0x00, ...u32(idx)];
const exportSec = (...exports: Bytes[]): Bytes => section(7, vec(exports));
const startSec = (idx: number): Bytes => section(8, u32(idx));
const elemSec = (...segs: Bytes[]): Bytes => section(9, vec(segs));
const codeSec = (...bodies: Bytes[]): Bytes => section(10, vec(bodies));
const dataSec = (...segs: Bytes[]): Bytes => section(11, vec(segs));
const customSec = (name: string, payload: Bytes): Bytes => section(0, [...str(name), ...payload]);
/** A function body: local groups [count, type] and code (the final `end` is added). */
const body = (locals: [number, number][], code: Bytes): Bytes => {
  const b = [...vec(locals.map(([n, t]) => [...u32(n), t])), ...code, 0x0b];
  return [...u32(b.length), ...b];
};
/** i32.const n (signed LEB128 immediate). */
const i32const = (n: number): Bytes => {
  const out: Bytes = [0x41];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) return [...out, b];
    out.push(b | 0x80);
  }
};
const END = 0x0b;
/** A function body with pre-encoded locals (for reference-typed locals). */
const rawBody = (locals: Bytes, code: Bytes): Bytes => {
  const b = [...locals, ...code, END];
  return [...u32(b.length), ...b];
};

// ---------------------------------------------------------------------------------------------
// Running instrumented modules

interface Host {
  ticks: number;
  grows: number[];
  /** Fuel each tick hands out; a function may throw to stop the guest. */
  tick: () => number;
  /** Pages the guest may reach; growth beyond is refused. */
  maxPages: number;
}

function host(overrides: Partial<Host> = {}): Host {
  return { ticks: 0, grows: [], tick: () => 1000, maxPages: 16, ...overrides };
}

async function run(wasm: Uint8Array<ArrayBuffer>, h: Host, imports: WebAssembly.Imports = {}): Promise<WebAssembly.Instance> {
  const out = instrument(wasm);
  expect(WebAssembly.validate(out)).toBe(true);
  let memory: WebAssembly.Memory | undefined;
  const { instance } = await WebAssembly.instantiate(out, {
    ...imports,
    [INSTRUMENT_MODULE]: {
      tick: () => {
        h.ticks++;
        return h.tick();
      },
      grow: (delta: number) => {
        h.grows.push(delta);
        if (!memory) return -1;
        const pages = memory.buffer.byteLength / 65536;
        if (pages + delta > h.maxPages) return -1;
        return memory.grow(delta);
      },
    },
  });
  memory = instance.exports.memory as WebAssembly.Memory | undefined;
  return instance;
}

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

const fn = (instance: WebAssembly.Instance, name: string) => instance.exports[name] as (...args: number[]) => number;

async function compileAS(source: string): Promise<Uint8Array<ArrayBuffer>> {
  const result = await asc.compileString(source, { optimizeLevel: 3, runtime: "stub" });
  if (result.error || !result.binary) throw new Error(`asc: ${result.error?.message}\n${result.stderr.toString()}`);
  return result.binary.slice();
}

// ---------------------------------------------------------------------------------------------

describe("instrument: fuel", () => {
  // (func $count (param $n i32) (result i32) (local $i i32)
  //   (loop (local.set $i (i32.add (local.get $i) (i32.const 1)))
  //         (br_if 0 (i32.lt_u (local.get $i) (local.get $n))))
  //   (local.get $i))
  // (func $spin (loop (br 0)))
  const loops = wasmModule(
    typeSec(functype([i32], [i32]), functype([], [])),
    funcSec(0, 1),
    exportSec(exportFunc("count", 0), exportFunc("spin", 1)),
    codeSec(
      body([[1, i32]], [
        0x03, 0x40, 0x20, 0x01, 0x41, 0x01, 0x6a, 0x21, 0x01, 0x20, 0x01, 0x20, 0x00, 0x49, 0x0d, 0x00, END,
        0x20, 0x01,
      ]),
      body([], [0x03, 0x40, 0x0c, 0x00, END]),
    ),
  );

  it("a loop calls tick each time the fuel runs out", async () => {
    const h = host();
    const instance = await run(loops, h);
    expect(fn(instance, "count")(1_000_000)).toBe(1_000_000);
    // 65536 initial fuel, then 1000 per tick; each iteration burns one (a leaf has no entry check).
    expect(h.ticks).toBe(Math.ceil((1_000_000 - 65536) / 1000));
  });

  it("a tick that throws stops a busy loop", async () => {
    const h = host({
      tick: () => {
        if (h.ticks === 5) throw new Error("deadline exceeded");
        return 1000;
      },
    });
    const instance = await run(loops, h);
    expect(() => fn(instance, "spin")()).toThrow("deadline exceeded");
    expect(h.ticks).toBe(5);
  });

  it("a wall-time deadline stops an AssemblyScript busy loop", async () => {
    const wasm = await compileAS("export function spin(): void { while (true) {} }");
    const deadline = Date.now() + 50;
    const h = host({
      tick: () => {
        if (Date.now() > deadline) throw new Error("deadline exceeded");
        return 10_000;
      },
    });
    const instance = await run(wasm, h);
    expect(() => fn(instance, "spin")()).toThrow("deadline exceeded");
    expect(Date.now() - deadline).toBeLessThan(1000);
  });

  it("recursion without loops still ticks (function entry), including tail calls", async () => {
    // (func $down (param i32) (result i32)
    //   (if (result i32) (i32.eqz (local.get 0)) (then (i32.const 0))
    //     (else (i32.add (call $down (i32.sub (local.get 0) (i32.const 1))) (i32.const 1)))))
    // (func $forever (return_call $forever))
    const wasm = wasmModule(
      typeSec(functype([i32], [i32]), functype([], [])),
      funcSec(0, 1),
      exportSec(exportFunc("down", 0), exportFunc("forever", 1)),
      codeSec(
        body([], [
          0x20, 0x00, 0x45, 0x04, i32, 0x41, 0x00, 0x05,
          0x20, 0x00, 0x41, 0x01, 0x6b, 0x10, 0x00, 0x41, 0x01, 0x6a, END,
        ]),
        body([], [0x12, 0x01]),
      ),
    );
    expect(WebAssembly.validate(wasm)).toBe(true);
    const h = host({ tick: () => 100 });
    const instance = await run(wasm, h);
    for (let i = 0; i < 100; i++) expect(fn(instance, "down")(1000)).toBe(1000);
    expect(h.ticks).toBe(Math.ceil((100 * 1001 - 65536) / 100));

    h.ticks = 0;
    h.tick = () => {
      if (h.ticks === 3) throw new Error("stop");
      return 100;
    };
    expect(() => fn(instance, "forever")()).toThrow("stop");
  });

  it("a leaf function (no loop, no call) gets no entry check: its running time is bounded", async () => {
    const leaf = body([], [0x20, 0x00, 0x41, 0x03, 0x6c]); // x * 3
    const wasm = wasmModule(typeSec(functype([i32], [i32])), funcSec(0), exportSec(exportFunc("triple", 0)), codeSec(leaf));
    const out = instrument(wasm);
    expect(indexOf(out, new Uint8Array(leaf))).toBeGreaterThan(0);
    const h = host();
    const instance = await run(wasm, h);
    for (let i = 0; i < 100_000; i++) fn(instance, "triple")(i);
    expect(h.ticks).toBe(0);
  });

  it("multi-value loops with block parameters validate and run", async () => {
    // (type $t (func (param i32) (result i32)))
    // (func (param $n i32) (result i32) (local $x i32)
    //   (local.get $n)
    //   (loop (type $t) (i32.sub (i32.const 1)) (local.tee $x) (br_if 0 (local.get $x))))
    //   -> 0 after $n iterations, the counter living on the loop's parameter
    const wasm = wasmModule(
      typeSec(functype([i32], [i32]), functype([i32, i64], [i32, i64])),
      funcSec(0, 1),
      exportSec(exportFunc("down", 0)),
      codeSec(
        body([[1, i32]], [
          0x20, 0x00,
          0x03, 0x00, 0x41, 0x01, 0x6b, 0x22, 0x01, 0x20, 0x01, 0x0d, 0x00, END,
        ]),
        // (func (param i32 i64) (result i32 i64) local.get 0 local.get 1 (loop (type 1) (block (type 1))))
        body([], [0x20, 0x00, 0x20, 0x01, 0x03, 0x01, 0x02, 0x01, END, END]),
      ),
    );
    expect(WebAssembly.validate(wasm)).toBe(true);
    const h = host();
    const instance = await run(wasm, h);
    expect(fn(instance, "down")(200_000)).toBe(0);
    expect(h.ticks).toBe(Math.ceil((200_000 - 65536) / 1000));
  });
});

describe("instrument: memory.grow", () => {
  it("every memory.grow goes through the host, and a refusal returns -1 to the guest", async () => {
    const wasm = await compileAS("export function grow(pages: i32): i32 { return memory.grow(pages); }");
    const h = host({ maxPages: 3 });
    const instance = await run(wasm, h);
    const memory = instance.exports.memory as WebAssembly.Memory;
    const before = memory.buffer.byteLength / 65536;
    expect(fn(instance, "grow")(1)).toBe(before);
    expect(fn(instance, "grow")(100)).toBe(-1);
    expect(memory.buffer.byteLength / 65536).toBe(before + 1);
    expect(fn(instance, "grow")(0)).toBe(before + 1);
    expect(h.grows).toEqual([1, 100, 0]);
  });
});

describe("instrument: function indices shift by two", () => {
  // imports: 0 env.add10 (i32)->i32
  // defined: 1 double, 2 viaImport, 3 viaTable, 4 start, 5 getG, 6 viaFuncref, 7 passive, 8 boom
  const T_I_I = 0;
  const T_V_I = 1;
  const T_V_V = 2;
  const wasm = wasmModule(
    typeSec(functype([i32], [i32]), functype([], [i32]), functype([], [])),
    importSec(importFunc("env", "add10", T_I_I)),
    funcSec(T_I_I, T_I_I, T_I_I, T_V_V, T_V_I, T_V_I, T_V_I, T_V_V),
    tableSec([funcref, 0x00, 10]),
    memSec([0x00, 1]),
    globalSec(
      [i32, 0x01, ...i32const(0), END], // g0: set by start
      [funcref, 0x00, 0xd2, 0x01, END], // g1: ref.func $double
    ),
    exportSec(
      exportFunc("double", 1), exportFunc("viaImport", 2), exportFunc("viaTable", 3), exportFunc("getG", 5),
      exportFunc("viaFuncref", 6), exportFunc("passive", 7), exportFunc("boom", 8), [...str("table"), 0x01, 0x00],
      [...str("memory"), 0x02, 0x00],
    ),
    startSec(4),
    elemSec(
      [0x00, ...i32const(0), END, ...vec([[1], [2], [0]])], // table[0..2] = double viaImport add10
      [0x05, funcref, ...vec([[0xd2, 0x02, END]])], // passive, exprs: viaImport
      [0x06, 0x00, ...i32const(5), END, funcref, ...vec([[0xd2, 0x01, END], [0xd0, funcref, END]])], // [5]=double [6]=null
      [0x02, 0x00, ...i32const(7), END, 0x00, ...vec([[2]])], // [7] = viaImport
      [0x04, ...i32const(8), END, ...vec([[0xd2, 0x01, END]])], // [8] = double
      [0x01, 0x00, ...vec([[2]])], // passive funcidx
      [0x03, 0x00, ...vec([[8]])], // declarative funcidx
      [0x07, funcref, ...vec([[0xd2, 0x03, END]])], // declarative exprs
    ),
    codeSec(
      body([], [0x20, 0x00, 0x41, 0x02, 0x6c]), // double: x*2
      body([], [0x20, 0x00, 0x10, 0x00, 0x10, 0x01]), // viaImport: double(add10(x))
      body([], [0x41, 21, 0x20, 0x00, 0x11, T_I_I, 0x00]), // viaTable: table[x](21)
      body([], [...i32const(42), 0x24, 0x00]), // start: g0 = 42
      body([], [0x23, 0x00]), // getG
      // viaFuncref: table[3] = g1; table[3](5)
      body([], [0x41, 0x03, 0x23, 0x01, 0x26, 0x00, 0x41, 0x05, 0x41, 0x03, 0x11, T_I_I, 0x00]),
      // passive: table.init 1 at [4]; table[4](1)
      body([], [0x41, 0x04, 0x41, 0x00, 0x41, 0x01, 0xfc, 0x0c, 0x01, 0x00, 0x41, 0x01, 0x41, 0x04, 0x11, T_I_I, 0x00]),
      body([], [0x00]), // boom: unreachable
    ),
    dataSec([0x00, ...i32const(16), END, ...str("hello")]),
    customSec("name", [
      ...section(0, str("shifty")),
      ...section(1, vec([
        [0, ...str("add10")], [1, ...str("double")], [2, ...str("viaImport")], [8, ...str("boom")],
      ])),
      ...section(2, vec([[1, ...vec([[0, ...str("x")]])]])),
      ...section(3, vec([[1, ...vec([[0, ...str("label")]])]])),
      ...section(7, vec([[0, ...str("started")]])),
    ]),
    customSec("producers", [1, 2, 3]),
  );

  it("the hand-assembled module is valid to begin with", () => {
    expect(WebAssembly.validate(wasm)).toBe(true);
  });

  it("calls, exports, the start function, element segments, ref.func and call_indirect still hit the right functions", async () => {
    const instance = await run(wasm, host(), { env: { add10: (x: number) => x + 10 } });
    expect(fn(instance, "double")(4)).toBe(8);
    expect(fn(instance, "viaImport")(1)).toBe(22);
    expect(fn(instance, "getG")()).toBe(42); // the start function ran
    expect(fn(instance, "viaTable")(0)).toBe(42);
    expect(fn(instance, "viaTable")(1)).toBe(62);
    expect(fn(instance, "viaTable")(2)).toBe(31);
    expect(fn(instance, "viaTable")(5)).toBe(42);
    expect(() => fn(instance, "viaTable")(6)).toThrow();
    expect(fn(instance, "viaTable")(7)).toBe(62);
    expect(fn(instance, "viaTable")(8)).toBe(42);
    expect(fn(instance, "viaFuncref")()).toBe(10);
    expect(fn(instance, "passive")()).toBe(22);
    const table = instance.exports.table as WebAssembly.Table;
    expect((table.get(0) as (x: number) => number)(3)).toBe(6);
    expect(new TextDecoder().decode(new Uint8Array((instance.exports.memory as WebAssembly.Memory).buffer, 16, 5))).toBe("hello");
  });

  it("adds the two imports at the end and keeps other sections byte-identical", () => {
    const out = new WebAssembly.Module(instrument(wasm));
    const imports = WebAssembly.Module.imports(out);
    expect(imports).toEqual([
      { module: "env", name: "add10", kind: "function" },
      { module: INSTRUMENT_MODULE, name: "tick", kind: "function" },
      { module: INSTRUMENT_MODULE, name: "grow", kind: "function" },
    ]);
    const producers = WebAssembly.Module.customSections(out, "producers");
    expect(producers.map((b) => [...new Uint8Array(b)])).toEqual([[1, 2, 3]]);
  });

  it("keeps the name section valid: function and local names shifted, labels dropped", async () => {
    const out = instrument(wasm);
    const [names] = WebAssembly.Module.customSections(new WebAssembly.Module(out), "name");
    const subs = parseNameSection(new Uint8Array(names!));
    expect([...subs.keys()]).toEqual([0, 1, 2, 7]);
    expect(subs.get(1)).toEqual(new Map([[0, "add10"], [3, "double"], [4, "viaImport"], [10, "boom"]]));
    expect(subs.get(2)).toEqual(new Map([["3.0", "x"]]));
    // V8 names stack frames from the name section: the trap is reported in "boom", whose index moved to 10.
    const instance = await run(wasm, host(), { env: { add10: (x: number) => x + 10 } });
    let stack = "";
    try {
      fn(instance, "boom")();
    } catch (e) {
      stack = (e as Error).stack ?? "";
    }
    expect(stack).toMatch(/at shifty\.boom \(wasm:\/\/wasm\/shifty-[0-9a-f]+:wasm-function\[10\]/);
  });

  it("drops a name section that does not parse", () => {
    const broken = wasmModule(
      typeSec(functype([], [])), funcSec(0), codeSec(body([], [])),
      customSec("name", [1, 5, 0xff]),
    );
    const out = new WebAssembly.Module(instrument(broken));
    expect(WebAssembly.Module.customSections(out, "name")).toEqual([]);
  });
});

/** Name subsections decoded enough to compare: id -> module name, or (index -> name). */
function parseNameSection(b: Uint8Array): Map<number, unknown> {
  let pos = 0;
  const leb = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      const x = b[pos++]!;
      result |= (x & 0x7f) << shift;
      if ((x & 0x80) === 0) return result >>> 0;
      shift += 7;
    }
  };
  const name = (): string => {
    const n = leb();
    const s = new TextDecoder().decode(b.subarray(pos, pos + n));
    pos += n;
    return s;
  };
  const out = new Map<number, unknown>();
  while (pos < b.length) {
    const id = b[pos++]!;
    const end = leb() + pos;
    if (id === 0) out.set(id, name());
    else if (id === 2) {
      const m = new Map<string, string>(); // "func.local" -> name
      for (let n = leb(); n > 0; n--) {
        const f = leb();
        for (let k = leb(); k > 0; k--) m.set(`${f}.${leb()}`, name());
      }
      out.set(id, m);
    } else {
      const m = new Map<number, string>();
      for (let n = leb(); n > 0; n--) m.set(leb(), name());
      out.set(id, m);
    }
    if (pos !== end) throw new Error(`name subsection ${id} is ${pos - end} bytes off`);
  }
  return out;
}

describe("instrument: instruction coverage", () => {
  /** Module wrapping one (param i32) (result i32) function "f", plus extra sections. */
  const one = (code: Bytes, extra: { before?: Bytes[]; mem?: Bytes; after?: Bytes[] } = {}) =>
    wasmModule(
      typeSec(functype([i32], [i32])),
      funcSec(0),
      ...(extra.before ?? []),
      memSec(extra.mem ?? [0x00, 1]),
      exportSec(exportFunc("f", 0)),
      ...(extra.after ?? []),
      codeSec(body([], code)),
    );

  /** The hand-assembled module is valid (Node 24 has every feature used here), and so is its rewrite. */
  function check(wasm: Uint8Array<ArrayBuffer>): void {
    expect(WebAssembly.validate(wasm)).toBe(true);
    expect(WebAssembly.validate(instrument(wasm))).toBe(true);
  }

  it("MVP control flow, br_table, sign-extension, saturating truncation, select t, bulk memory", async () => {
    const wasm = one(
      [
        0x02, 0x40, 0x02, 0x40, 0x20, 0x00, 0x0e, 0x02, 0x00, 0x01, 0x00, END, END, // block block br_table
        0x20, 0x00, 0xc0, // i32.extend8_s
        0x43, 0x00, 0x00, 0xc0, 0x3f, 0xfc, 0x00, 0x6a, // f32.const 1.5 i32.trunc_sat_f32_s add
        0x42, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0xa7, 0x6a, // i64.const (multi-byte) wrap add
        0x44, 0, 0, 0, 0, 0, 0, 0, 0, 0xaa, 0x6a, // f64.const 0 i32.trunc_f64_s add
        0x41, 0x01, 0x41, 0x02, 0x20, 0x00, 0x1c, 0x01, i32, 0x6a, // select (result i32)
        0x41, 0x00, 0x41, 0x07, 0x41, 0x04, 0xfc, 0x0b, 0x00, // memory.fill
        0x41, 0x08, 0x41, 0x00, 0x41, 0x04, 0xfc, 0x0a, 0x00, 0x00, // memory.copy
        0x41, 0x00, 0x41, 0x00, 0x41, 0x02, 0xfc, 0x08, 0x00, 0x00, 0xfc, 0x09, 0x00, // memory.init data.drop
        0x41, 0x00, 0x28, 0x02, 0x00, 0x6a, // i32.load
        0x41, 0x00, 0x20, 0x00, 0x36, 0x02, 0x84, 0x01, // i32.store offset=132
        0x3f, 0x00, 0x6a, // memory.size
        0x41, 0x00, 0x40, 0x00, 0x6a, // memory.grow 0
        0xd0, funcref, 0xd1, 0x6a, // ref.null func, ref.is_null
        0xfc, 0x10, 0x00, 0x6a, // table.size
        0xd0, funcref, 0x41, 0x01, 0xfc, 0x0f, 0x00, 0x6a, // table.grow
        0x41, 0x00, 0x25, 0x00, 0xd1, 0x6a, // table.get ref.is_null
        0x41, 0x00, 0xd2, 0x00, 0x41, 0x01, 0xfc, 0x11, 0x00, // table.fill with ref.func 0
        0x41, 0x00, 0x41, 0x00, 0x41, 0x01, 0xfc, 0x0e, 0x00, 0x00, // table.copy
        0x41, 0x00, 0x41, 0x00, 0x41, 0x00, 0xfc, 0x0c, 0x00, 0x00, 0xfc, 0x0d, 0x00, // table.init elem.drop
        0x04, i32, 0x41, 0x01, 0x05, 0x41, 0x02, END, // if/else with a value
      ],
      {
        before: [tableSec([funcref, 0x00, 2])],
        after: [elemSec([0x01, 0x00, ...vec([[0]])]), section(12, u32(1))],
      },
    );
    // the data section comes after code; append it
    const withData = new Uint8Array([...wasm, ...dataSec([0x01, ...str("abcd")])]);
    check(withData);
    const h = host();
    const instance = await run(withData, h);
    expect(typeof fn(instance, "f")(3)).toBe("number");
    expect(h.grows).toEqual([0]);
  });

  it("SIMD: memargs, v128.const, i8x16.shuffle, lanes, load_lane, two-byte opcodes", async () => {
    const v128 = (...b: number[]) => [0xfd, 0x0c, ...b, ...Array<number>(16 - b.length).fill(0)];
    const wasm = one([
      0x20, 0x00, // addr for load_lane
      0x20, 0x00, 0xfd, 0x00, 0x04, 0x00, // v128.load
      0xfd, 0x56, 0x02, 0x00, 0x01, // v128.load32_lane lane 1
      0xfd, 0x1b, 0x01, // i32x4.extract_lane 1
      0x20, 0x00, 0xfd, 0x5c, 0x02, 0x00, 0xfd, 0x1b, 0x00, 0x6a, // v128.load32_zero
      ...v128(1, 2, 3), ...v128(4, 5, 6), 0xfd, 0x0d, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
      0xfd, 0x16, 0x02, 0x6a, // shuffle, i8x16.extract_lane_u 2
      ...v128(7), ...v128(8), 0xfd, 0xae, 0x01, 0xfd, 0x1b, 0x00, 0x6a, // i32x4.add (0xae as LEB)
      0x41, 0x00, ...v128(9), 0xfd, 0x0b, 0x04, 0x00, // v128.store
      0x41, 0x00, ...v128(9), 0xfd, 0x5a, 0x02, 0x10, 0x03, // v128.store32_lane offset=16 lane 3
      0x20, 0x00, 0xfd, 0x11, 0x41, 0x07, 0xfd, 0x1c, 0x02, 0xfd, 0x1b, 0x02, 0x6a, // i32x4.splat, replace_lane 2
    ]);
    check(wasm);
    const plain = new WebAssembly.Instance(new WebAssembly.Module(wasm));
    const instance = await run(wasm, host());
    expect(fn(instance, "f")(4)).toBe(fn(plain, "f")(4));
  });

  it("threads: atomics and atomic.fence on shared memory", () => {
    const wasm = one(
      [
        0x20, 0x00, 0x41, 0x05, 0xfe, 0x1e, 0x02, 0x00, // i32.atomic.rmw.add
        0xfe, 0x03, 0x00, // atomic.fence
        0x20, 0x00, 0xfe, 0x10, 0x02, 0x00, 0x6a, // i32.atomic.load
        0x20, 0x00, 0x41, 0x00, 0xfe, 0x00, 0x02, 0x00, 0x6a, // memory.atomic.notify
        0x20, 0x00, 0x41, 0x00, 0x42, 0x00, 0xfe, 0x01, 0x02, 0x00, 0x6a, // memory.atomic.wait32
        0x20, 0x00, 0x42, 0x01, 0x42, 0x02, 0xfe, 0x49, 0x03, 0x08, 0xa7, 0x6a, // i64.atomic.rmw.cmpxchg offset=8
      ],
      { mem: [0x03, 1, 1] },
    );
    check(wasm);
  });

  it("legacy exception handling: try/catch/catch_all/throw/rethrow/delegate", () => {
    const wasm = wasmModule(
      typeSec(functype([i32], [i32]), functype([i32], [])),
      funcSec(0),
      section(13, vec([[0x00, 0x01]])), // tag $e (param i32)
      exportSec(exportFunc("f", 0)),
      codeSec(body([], [
        0x06, 0x40, // try
        0x06, 0x40, 0x01, 0x18, 0x00, // try nop delegate 0
        0x03, 0x40, END, // a loop inside a try
        0x41, 0x01, 0x08, 0x00, // throw $e
        0x07, 0x00, 0x1a, // catch $e drop
        0x19, 0x09, 0x00, // catch_all rethrow 0
        END,
        0x20, 0x00,
      ])),
    );
    check(wasm);
  });

  it("exception handling with exnref: try_table, throw_ref", () => {
    const wasm = wasmModule(
      typeSec(functype([i32], [i32]), functype([i32], []), functype([], [i32, 0x69])),
      funcSec(0),
      section(13, vec([[0x00, 0x01]])),
      exportSec(exportFunc("f", 0)),
      codeSec(body([], [
        0x02, 0x40, 0x1f, 0x40, 0x01, 0x02, 0x00, 0x41, 0x01, 0x08, 0x00, END, END, // try_table (catch_all 0)
        0x02, 0x7f, 0x1f, 0x40, 0x01, 0x00, 0x00, 0x00, 0x41, 0x00, 0x08, 0x00, END, 0x00, END, 0x1a, // (catch $e 0)
        0x02, 0x69, 0x1f, 0x40, 0x01, 0x03, 0x00, 0x01, END, 0x00, END, 0x1a, // (catch_all_ref 0)
        0x02, 0x02, 0x1f, 0x40, 0x01, 0x01, 0x00, 0x00, 0x01, END, 0x00, END, 0x0a, // (catch_ref $e 0) throw_ref
        0x20, 0x00,
      ])),
    );
    check(wasm);
  });

  it("typed function references and tail calls: call_ref, return_call_ref, br_on_null, return_call_indirect", async () => {
    const T = 1; // () -> i32
    const wasm = wasmModule(
      typeSec(functype([i32], [i32]), functype([], [i32])),
      funcSec(T, T, T, T, T, T),
      tableSec([funcref, 0x00, 1]),
      exportSec(
        exportFunc("seven", 0), exportFunc("viaRef", 1), exportFunc("onNull", 2), exportFunc("tailRef", 3),
        exportFunc("tail", 4), exportFunc("tailIndirect", 5),
      ),
      elemSec([0x00, ...i32const(0), END, ...vec([[0]])], [0x03, 0x00, ...vec([[0]])]),
      codeSec(
        body([], [0x41, 0x07]),
        body([], [0xd2, 0x00, 0x14, T]), // ref.func 0 call_ref
        // (local (ref null $T)) block (result i32) i32.const 5; ref.func 0; br_on_null 0; ref.as_non_null; call_ref; add end
        // then br_on_non_null on the null local
        rawBody(vec([[...u32(1), 0x63, T]]), [ // (local (ref null $T))
          0x02, i32, 0x41, 0x05, 0xd2, 0x00, 0xd5, 0x00, 0xd4, 0x14, T, 0x6a, END,
          // block (result (ref null $T)) local.get 0; br_on_non_null 0 (not taken: null); ref.null $T end drop
          0x02, 0x63, T, 0x20, 0x00, 0xd6, 0x00, 0xd0, T, END, 0x1a,
        ]),
        body([], [0xd2, 0x00, 0x15, T]), // return_call_ref
        body([], [0x12, 0x00]), // return_call 0
        body([], [0x41, 0x00, 0x13, T, 0x00]), // return_call_indirect
      ),
    );
    check(wasm);
    const instance = await run(wasm, host());
    expect(fn(instance, "seven")()).toBe(7);
    expect(fn(instance, "viaRef")()).toBe(7);
    expect(fn(instance, "onNull")()).toBe(12);
    expect(fn(instance, "tailRef")()).toBe(7);
    expect(fn(instance, "tail")()).toBe(7);
    expect(fn(instance, "tailIndirect")()).toBe(7);
  });

  it("multi-memory: memargs with a memory index; memory.grow on memory 1 is left alone", async () => {
    const wasm = wasmModule(
      typeSec(functype([i32], [i32])),
      funcSec(0),
      memSec([0x00, 1], [0x00, 1]),
      exportSec(exportFunc("f", 0), [...str("memory"), 0x02, 0x00]),
      codeSec(body([], [
        0x41, 0x00, 0x28, 0x42, 0x01, 0x00, // i32.load (memory 1)
        0x20, 0x00, 0x40, 0x01, 0x6a, // memory.grow 1
        0x41, 0x00, 0x40, 0x00, 0x6a, // memory.grow 0
      ])),
    );
    check(wasm);
    const h = host();
    const instance = await run(wasm, h);
    expect(fn(instance, "f")(1)).toBe(1 + 1);
    expect(h.grows).toEqual([0]);
  });

  it("creates the type, import and global sections when missing", async () => {
    const empty = wasmModule();
    const out = instrument(empty);
    expect(WebAssembly.validate(out)).toBe(true);
    expect(WebAssembly.Module.imports(new WebAssembly.Module(out)).map((i) => i.name)).toEqual(["tick", "grow"]);

    // a function with no imports and no globals: indices 0,1 become the imports
    const wasm = wasmModule(typeSec(functype([], [i32])), funcSec(0), exportSec(exportFunc("f", 0)), codeSec(body([], [0x41, 0x09])));
    const instance = await run(wasm, host());
    expect(fn(instance, "f")()).toBe(9);
  });

  it("rejects what it does not support with InstrumentError naming the opcode and offset", () => {
    const gc = one([0x20, 0x00, 0xfb, 0x1c]); // ref.i31 (GC)
    expect(() => instrument(gc)).toThrow(InstrumentError);
    expect(() => instrument(gc)).toThrow(/0xfb at offset 0x[0-9a-f]+/);
    expect(() => instrument(one([0x20, 0x00, 0xff]))).toThrow(/unsupported opcode 0xff at offset/);
    expect(() => instrument(one([0x20, 0x00, 0xfc, 0x30]))).toThrow(/unsupported opcode 0xfc 48 at offset/);
    const mem64 = one([0x20, 0x00], { mem: [0x04, 1] });
    expect(() => instrument(mem64)).toThrow(/memory64/);
    const rec = wasmModule(section(1, [1, 0x4e, 1, 0x60, 0, 0]));
    expect(() => instrument(rec)).toThrow(/GC types/);
    expect(() => instrument(new Uint8Array([1, 2, 3]))).toThrow(InstrumentError);
    const truncated = one([0x20, 0x00]).slice(0, -3);
    expect(() => instrument(truncated)).toThrow(InstrumentError);
  });

  it("on damaged input it either produces a module or throws InstrumentError, nothing else", async () => {
    const wasm = await compileAS(`
      export function sum(n: i32): i32 { let s: i32 = 0; for (let i = 0; i < n; i++) s += i ^ (s >>> 3); return s; }
      export function fib(n: i32): i32 { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
      export function grow(pages: i32): i32 { return memory.grow(pages); }`);
    let seed = 1;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const attempt = (bytes: Uint8Array<ArrayBuffer>): void => {
      let out: Uint8Array<ArrayBuffer> | undefined;
      try {
        out = instrument(bytes);
      } catch (e) {
        expect(e).toBeInstanceOf(InstrumentError);
      }
      // whatever the engine accepts, the rewrite must keep acceptable
      if (WebAssembly.validate(bytes)) expect(out && WebAssembly.validate(out)).toBe(true);
    };
    for (let len = 0; len < wasm.length; len++) attempt(wasm.slice(0, len));
    for (let i = 0; i < 3000; i++) {
      const damaged = wasm.slice();
      damaged[8 + random(damaged.length - 8)] = random(256);
      attempt(damaged);
    }
  });
});

// ---------------------------------------------------------------------------------------------

const SUITE = "/work/shared/wasi-testsuite/tests";

function wasmFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return wasmFiles(path);
    return name.endsWith(".wasm") ? [path] : [];
  });
}

describe.skipIf(!existsSync(SUITE))(`instrument: every .wasm in ${SUITE}`, () => {
  const files = existsSync(SUITE) ? wasmFiles(SUITE) : [];

  it("finds the test binaries", () => {
    expect(files.length).toBeGreaterThan(50);
  });

  it.each(files.map((f) => [f.slice(SUITE.length + 1), f]))("%s instruments and validates", (_, file) => {
    const out = instrument(readFileSync(file));
    expect(WebAssembly.validate(out)).toBe(true);
  });

  // Programs that need no arguments, environment or preopens run to exit code 0, instrumented.
  const runnable = [
    "rust/testsuite/wasm32-wasip1/big_random_buf.wasm",
    "rust/testsuite/wasm32-wasip1/clock_time_get.wasm",
    "rust/testsuite/wasm32-wasip1/sched_yield.wasm",
    "c/testsuite/wasm32-wasip1/clock_gettime-monotonic.wasm",
    "c/testsuite/wasm32-wasip1/clock_getres-realtime.wasm",
    "assemblyscript/testsuite/wasm32-wasip1/random_get-non-zero-length.wasm",
    "assemblyscript/testsuite/wasm32-wasip1/proc_exit-success.wasm",
  ].filter((f) => existsSync(join(SUITE, f)));

  it.each(runnable)("%s runs instrumented (node:wasi) and exits 0", async (file) => {
    const devnull = openSync("/dev/null", "w");
    try {
      const wasi = new WASI({ version: "preview1", returnOnExit: true, stdout: devnull, stderr: devnull });
      const h = host({ tick: () => 100 });
      const instance = await run(new Uint8Array(readFileSync(join(SUITE, file))), h, wasi.getImportObject() as WebAssembly.Imports);
      expect(wasi.start(instance)).toBe(0);
    } finally {
      closeSync(devnull);
    }
  });
});
