// A WebAssembly binary rewriter that makes a guest's resource limits enforceable by the host.
//
// The guest runs on the JS thread, so a busy loop can only be stopped if the guest itself calls
// out: every loop header and the entry of every function that calls (leaves cannot recurse)
// decrements a fuel global and, when it runs out, calls `oanix.tick() -> i32`, which returns the
// next fuel (or throws to stop the guest).
// Every `memory.grow` on memory 0 becomes `call oanix.grow: (i32) -> i32`, so the host decides
// each growth.
//
// The grow import must grow the guest's memory itself (so that memory has to be exported or
// imported) and return the old size in pages, or -1 to refuse. memory.grow on other memories
// (multi-memory) is left alone.
//
// Adding two function imports shifts every defined function index by 2, so every function index
// in the module is rewritten. Everything else is copied through byte for byte (code offsets in
// DWARF custom sections go stale; branch hints, which would too, are dropped). Written from the
// core spec binary format; anything not understood throws InstrumentError, and the caller then
// runs the module uninstrumented. Platform-neutral: no Node or DOM APIs.

export const INSTRUMENT_MODULE = "oanix";
export const TICK_IMPORT = "tick";
export const GROW_IMPORT = "grow";
/** Fuel the guest starts with, before the first tick tells it how much it gets next. */
export const INITIAL_FUEL = 65536;

export interface Instrumented {
  bytes: Uint8Array<ArrayBuffer>;
  tickImport: "tick";
  growImport: "grow";
}

export class InstrumentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InstrumentError";
  }
}

const hex = (n: number): string => `0x${n.toString(16)}`;

// ---------------------------------------------------------------------------------------------
// Bytes in and out

class Reader {
  readonly buf: Uint8Array;
  pos: number;
  end: number;
  constructor(buf: Uint8Array, pos = 0, end = buf.length) {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
  }

  fail(what: string, at = this.pos): never {
    throw new InstrumentError(`${what} at offset ${hex(at)}`);
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  u8(): number {
    if (this.pos >= this.end) this.fail("unexpected end");
    return this.buf[this.pos++]!;
  }

  peek(): number {
    if (this.pos >= this.end) this.fail("unexpected end");
    return this.buf[this.pos]!;
  }

  /** Unsigned LEB128 of at most 32 bits. */
  u32(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = this.u8();
      if (shift === 28 && b > 0x0f) this.fail("u32 LEB128 too long", this.pos - 1);
      result += (b & 0x7f) * 2 ** shift; // multiplication keeps bit 31 unsigned
      if ((b & 0x80) === 0) return result;
      shift += 7;
    }
  }

  /** Skips a LEB128 (signed or unsigned) of at most `maxBytes` bytes without decoding it. */
  skipLeb(maxBytes: number): void {
    for (let i = 0; i < maxBytes; i++) if ((this.u8() & 0x80) === 0) return;
    this.fail("LEB128 too long", this.pos - 1);
  }

  skip(n: number): void {
    if (n > this.end - this.pos) this.fail("unexpected end");
    this.pos += n;
  }

  /** A vec(byte) such as a name; returns its bytes as a view. */
  bytesVec(): Uint8Array {
    const n = this.u32();
    const start = this.pos;
    this.skip(n);
    return this.buf.subarray(start, this.pos);
  }
}

class Writer {
  private buf = new Uint8Array(1024);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  u8(b: number): void {
    this.reserve(1);
    this.buf[this.length++] = b;
  }

  u32(n: number): void {
    this.reserve(5);
    do {
      let b = n & 0x7f;
      n = Math.floor(n / 128);
      if (n !== 0) b |= 0x80;
      this.buf[this.length++] = b;
    } while (n !== 0);
  }

  /** Signed LEB128 of a 32-bit value. */
  s32(n: number): void {
    this.reserve(5);
    for (;;) {
      const b = n & 0x7f;
      n >>= 7;
      if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
        this.buf[this.length++] = b;
        return;
      }
      this.buf[this.length++] = b | 0x80;
    }
  }

  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }

  name(s: string): void {
    const b = new TextEncoder().encode(s);
    this.u32(b.length);
    this.bytes(b);
  }

  /** Writes `w`'s contents prefixed by their length. */
  sized(w: Writer): void {
    this.u32(w.length);
    this.bytes(w.view());
  }

  view(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }

  reset(): void {
    this.length = 0;
  }

  /** Removes bytes [from, to). */
  cut(from: number, to: number): void {
    this.buf.copyWithin(from, to, this.length);
    this.length -= to - from;
  }
}

// ---------------------------------------------------------------------------------------------
// Types

const I32 = 0x7f;
const FUNC_TYPE = 0x60;
const TICK_TYPE = new Uint8Array([FUNC_TYPE, 0, 1, I32]); // () -> i32
const GROW_TYPE = new Uint8Array([FUNC_TYPE, 1, I32, 1, I32]); // (i32) -> i32

// i32 i64 f32 f64 v128 funcref externref exnref
const SIMPLE_VALTYPES = new Set([0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f, 0x69]);
const REF_NULL = 0x63;
const REF = 0x64;

/** valtype: a one-byte type, or `ref null? heaptype` (typed function references). */
function skipValType(r: Reader): void {
  const at = r.pos;
  const b = r.u8();
  if (b === REF_NULL || b === REF) r.skipLeb(5); // heaptype: s33
  else if (!SIMPLE_VALTYPES.has(b)) r.fail(`unsupported value type ${hex(b)}`, at);
}

/** blocktype: 0x40 (empty), a valtype, or an s33 type index (multi-value). */
function skipBlockType(r: Reader): void {
  const b = r.peek();
  if (b === REF_NULL || b === REF) skipValType(r);
  else r.skipLeb(5);
}

/** limits for tables and memories; returns whether the index type is 64-bit. */
function skipLimits(r: Reader): boolean {
  const at = r.pos;
  const flags = r.u8();
  if (flags > 0x07) r.fail(`unsupported limits flags ${hex(flags)}`, at);
  const is64 = (flags & 0x04) !== 0;
  r.skipLeb(is64 ? 10 : 5);
  if (flags & 0x01) r.skipLeb(is64 ? 10 : 5);
  return is64;
}

function checkMemType(r: Reader): void {
  const at = r.pos;
  if (skipLimits(r)) r.fail("memory64 is not supported", at);
}

// ---------------------------------------------------------------------------------------------
// The instruction decoder: one immediate kind per one-byte opcode

const Imm = {
  BAD: 0,
  NONE: 1,
  BLOCK: 2, // blocktype
  IDX: 3, // one u32 index
  IDX2: 4, // two u32 indices
  BR_TABLE: 5,
  MEMARG: 6,
  I32: 7, // s32 LEB
  I64: 8, // s64 LEB
  F32: 9,
  F64: 10,
  SELECT_T: 11, // vec(valtype)
  HEAPTYPE: 12,
  TRY_TABLE: 13,
  FC: 14,
  FD: 15,
  FE: 16,
} as const;

const IMM = new Uint8Array(256); // all BAD
function setImm(kind: number, ...ops: number[]): void {
  for (const op of ops) IMM[op] = kind;
}
function setRange(kind: number, from: number, to: number): void {
  for (let op = from; op <= to; op++) IMM[op] = kind;
}
// unreachable nop else end return drop select catch_all throw_ref
setImm(Imm.NONE, 0x00, 0x01, 0x05, 0x0b, 0x0f, 0x1a, 0x1b, 0x19, 0x0a);
setImm(Imm.BLOCK, 0x02, 0x03, 0x04, 0x06); // block loop if try
// catch throw rethrow br br_if call return_call call_ref return_call_ref delegate
setImm(Imm.IDX, 0x07, 0x08, 0x09, 0x0c, 0x0d, 0x10, 0x12, 0x14, 0x15, 0x18);
setImm(Imm.IDX, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26); // local.*, global.*, table.get/set
setImm(Imm.IDX, 0x3f, 0x40); // memory.size, memory.grow (memidx)
setImm(Imm.IDX, 0xd2, 0xd5, 0xd6); // ref.func br_on_null br_on_non_null
setImm(Imm.IDX2, 0x11, 0x13); // call_indirect return_call_indirect (typeidx tableidx)
setImm(Imm.BR_TABLE, 0x0e);
setImm(Imm.SELECT_T, 0x1c);
setImm(Imm.TRY_TABLE, 0x1f);
setRange(Imm.MEMARG, 0x28, 0x3e); // loads and stores
setImm(Imm.I32, 0x41);
setImm(Imm.I64, 0x42);
setImm(Imm.F32, 0x43);
setImm(Imm.F64, 0x44);
setRange(Imm.NONE, 0x45, 0xc4); // numeric, including sign-extension 0xc0-0xc4
setImm(Imm.HEAPTYPE, 0xd0); // ref.null
setImm(Imm.NONE, 0xd1, 0xd4); // ref.is_null ref.as_non_null
setImm(Imm.FC, 0xfc);
setImm(Imm.FD, 0xfd);
setImm(Imm.FE, 0xfe);
// 0xfb (GC), 0xd3 (ref.eq, GC) and everything else stay BAD.

/** 0xFC sub-opcodes: number of u32 immediates (saturating truncation, bulk memory, tables). */
const FC_IMMS = [0, 0, 0, 0, 0, 0, 0, 0, 2, 1, 2, 1, 2, 1, 2, 1, 1, 1];

function memarg(r: Reader): void {
  const align = r.u32();
  if (align & 0x40) r.u32(); // multi-memory: explicit memory index
  r.skipLeb(10); // offset (u64 under memory64)
}

function skipPrefixed(r: Reader, prefix: number, at: number): void {
  const sub = r.u32();
  const bad = (): never => r.fail(`unsupported opcode ${hex(prefix)} ${sub}`, at);
  if (prefix === 0xfc) {
    const n = FC_IMMS[sub];
    if (n === undefined) bad();
    for (let i = 0; i < n!; i++) r.u32();
  } else if (prefix === 0xfd) {
    // SIMD (and relaxed SIMD up to 0x113)
    if (sub <= 11 || sub === 92 || sub === 93) memarg(r); // loads, store, load_zero
    else if (sub === 12 || sub === 13) r.skip(16); // v128.const, i8x16.shuffle
    else if (sub >= 21 && sub <= 34) r.skip(1); // extract/replace lane
    else if (sub >= 84 && sub <= 91) {
      memarg(r); // load/store lane
      r.skip(1);
    } else if (sub > 0x113) bad();
  } else {
    // threads: atomic.notify/wait, fence, loads/stores/rmw
    if (sub === 0x03) r.skip(1);
    else if (sub <= 0x02 || (sub >= 0x10 && sub <= 0x4e)) memarg(r);
    else bad();
  }
}

// ---------------------------------------------------------------------------------------------
// The module and its rewrite

interface Section {
  id: number;
  start: number; // payload start
  end: number; // payload end
}

const SEC = {
  custom: 0, type: 1, import: 2, function: 3, table: 4, memory: 5, global: 6, export: 7,
  start: 8, element: 9, code: 10, data: 11, dataCount: 12, tag: 13,
} as const;

// Required order of non-custom sections (the tag section sits between memory and global).
const ORDER = [SEC.type, SEC.import, SEC.function, SEC.table, SEC.memory, SEC.tag, SEC.global,
  SEC.export, SEC.start, SEC.element, SEC.dataCount, SEC.code, SEC.data];
const rank = (id: number): number => ORDER.indexOf(id as (typeof ORDER)[number]);

class Rewriter {
  readonly wasm: Uint8Array;
  readonly sections: Section[] = [];
  funcImports = 0;
  globalCount = 0; // imported + defined
  tickType = -1;
  growType = -1;
  tickFunc = 0;
  growFunc = 0;
  fuelGlobal = 0;
  private readonly scratch = new Writer();

  constructor(wasm: Uint8Array) {
    this.wasm = wasm;
  }

  reader(s: Section): Reader {
    return new Reader(this.wasm, s.start, s.end);
  }

  fn(idx: number): number {
    return idx >= this.funcImports ? idx + 2 : idx;
  }

  run(): Uint8Array<ArrayBuffer> {
    const w = this.wasm;
    if (w.length < 8 || w[0] !== 0 || w[1] !== 0x61 || w[2] !== 0x73 || w[3] !== 0x6d) {
      throw new InstrumentError("not a WebAssembly module (bad magic)");
    }
    if (w[4] !== 1 || w[5] !== 0 || w[6] !== 0 || w[7] !== 0) {
      throw new InstrumentError("unsupported binary version (components are not supported)");
    }
    const r = new Reader(w, 8);
    let lastRank = -1;
    while (!r.done) {
      const at = r.pos;
      const id = r.u8();
      const size = r.u32();
      const start = r.pos;
      r.skip(size);
      if (id !== SEC.custom) {
        const k = rank(id);
        if (k < 0) r.fail(`unknown section id ${id}`, at);
        if (k <= lastRank) r.fail(`section ${id} out of order`, at);
        lastRank = k;
      }
      this.sections.push({ id, start, end: r.pos });
    }
    this.scan();

    const out = new Writer();
    out.bytes(w.subarray(0, 8));
    const emitted = new Set<number>();
    const emit = (id: number, body: Writer): void => {
      out.u8(id);
      out.sized(body);
      emitted.add(id);
    };
    // Sections we must add if missing, emitted just before the first section that follows them.
    const needed = [SEC.type, SEC.import, SEC.global];
    const emitMissingBefore = (k: number): void => {
      for (const id of needed) {
        if (!emitted.has(id) && !this.has(id) && rank(id) < k) emit(id, this.section(id, null));
      }
    };
    for (const s of this.sections) {
      if (s.id === SEC.custom) {
        const custom = this.custom(s);
        if (custom) {
          out.u8(SEC.custom);
          out.sized(custom);
        }
        continue;
      }
      emitMissingBefore(rank(s.id));
      emit(s.id, this.section(s.id, s));
    }
    emitMissingBefore(ORDER.length);
    return out.view().slice();
  }

  has(id: number): boolean {
    return this.sections.some((s) => s.id === id);
  }

  /** First pass: the counts and types the rewrite needs. */
  scan(): void {
    let typeCount = 0;
    let definedFuncs = -1;
    let bodies = -1;
    for (const s of this.sections) {
      const r = this.reader(s);
      switch (s.id) {
        case SEC.type: {
          typeCount = r.u32();
          for (let i = 0; i < typeCount; i++) {
            const at = r.pos;
            const form = r.u8();
            if (form !== FUNC_TYPE) r.fail(`unsupported type form ${hex(form)} (GC types)`, at);
            for (let p = 0; p < 2; p++) {
              const n = r.u32();
              for (let j = 0; j < n; j++) skipValType(r);
            }
            const entry = this.wasm.subarray(at, r.pos);
            if (this.tickType < 0 && sameBytes(entry, TICK_TYPE)) this.tickType = i;
            if (this.growType < 0 && sameBytes(entry, GROW_TYPE)) this.growType = i;
          }
          break;
        }
        case SEC.import: {
          const n = r.u32();
          for (let i = 0; i < n; i++) {
            r.bytesVec();
            r.bytesVec();
            this.importDesc(r);
          }
          break;
        }
        case SEC.function:
          definedFuncs = r.u32();
          break;
        case SEC.memory: {
          const n = r.u32();
          for (let i = 0; i < n; i++) checkMemType(r);
          break;
        }
        case SEC.global:
          this.globalCount += r.u32();
          break;
        case SEC.code:
          bodies = r.u32();
          break;
      }
    }
    if (definedFuncs !== bodies && !(definedFuncs <= 0 && bodies <= 0)) {
      throw new InstrumentError(`function and code sections disagree (${definedFuncs} vs ${bodies})`);
    }
    if (this.tickType < 0) this.tickType = typeCount++;
    if (this.growType < 0) this.growType = typeCount;
    this.tickFunc = this.funcImports;
    this.growFunc = this.funcImports + 1;
    this.fuelGlobal = this.globalCount;
  }

  importDesc(r: Reader): void {
    const at = r.pos;
    const kind = r.u8();
    switch (kind) {
      case 0x00: // func
        r.u32();
        this.funcImports++;
        break;
      case 0x01: // table
        skipValType(r);
        skipLimits(r);
        break;
      case 0x02:
        checkMemType(r);
        break;
      case 0x03: // global
        skipValType(r);
        r.u8();
        this.globalCount++;
        break;
      case 0x04: // tag
        r.u8();
        r.u32();
        break;
      default:
        r.fail(`unsupported import kind ${hex(kind)}`, at);
    }
  }

  /** The new payload of a non-custom section (`s` null: the section is being created). */
  section(id: number, s: Section | null): Writer {
    const r = s ? this.reader(s) : new Reader(new Uint8Array([0]));
    const w = new Writer();
    const copyRest = (): void => {
      w.bytes(r.buf.subarray(r.pos, r.end));
      r.pos = r.end;
    };
    switch (id) {
      case SEC.type: {
        const n = r.u32();
        const added = (this.tickType >= n ? 1 : 0) + (this.growType >= n ? 1 : 0);
        w.u32(n + added);
        copyRest();
        if (this.tickType >= n) w.bytes(TICK_TYPE);
        if (this.growType >= n) w.bytes(GROW_TYPE);
        break;
      }
      case SEC.import: {
        w.u32(r.u32() + 2);
        copyRest();
        for (const [field, type] of [[TICK_IMPORT, this.tickType], [GROW_IMPORT, this.growType]] as const) {
          w.name(INSTRUMENT_MODULE);
          w.name(field);
          w.u8(0x00);
          w.u32(type);
        }
        break;
      }
      case SEC.table: {
        const n = r.u32();
        w.u32(n);
        for (let i = 0; i < n; i++) {
          if (r.peek() === 0x40) {
            // table with an initializer expression: 0x40 0x00 tabletype expr
            const start = r.pos;
            r.skip(2);
            skipValType(r);
            skipLimits(r);
            w.bytes(r.buf.subarray(start, r.pos));
            this.constExpr(r, w);
          } else {
            const start = r.pos;
            skipValType(r);
            skipLimits(r);
            w.bytes(r.buf.subarray(start, r.pos));
          }
        }
        break;
      }
      case SEC.global: {
        const n = r.u32();
        w.u32(n + 1);
        for (let i = 0; i < n; i++) {
          const start = r.pos;
          skipValType(r);
          r.u8();
          w.bytes(r.buf.subarray(start, r.pos));
          this.constExpr(r, w);
        }
        // $fuel: (global (mut i32) (i32.const INITIAL_FUEL))
        w.u8(I32);
        w.u8(0x01);
        w.u8(0x41);
        w.s32(INITIAL_FUEL);
        w.u8(0x0b);
        break;
      }
      case SEC.export: {
        const n = r.u32();
        w.u32(n);
        for (let i = 0; i < n; i++) {
          const start = r.pos;
          r.bytesVec();
          const kind = r.u8();
          w.bytes(r.buf.subarray(start, r.pos));
          const idx = r.u32();
          w.u32(kind === 0x00 ? this.fn(idx) : idx);
        }
        break;
      }
      case SEC.start:
        w.u32(this.fn(r.u32()));
        break;
      case SEC.element:
        this.elements(r, w);
        break;
      case SEC.code:
        this.code(r, w);
        break;
      case SEC.data: {
        const n = r.u32();
        w.u32(n);
        for (let i = 0; i < n; i++) {
          const at = r.pos;
          const flags = r.u32();
          w.u32(flags);
          if (flags === 2) w.u32(r.u32()); // memidx
          if (flags === 0 || flags === 2) this.constExpr(r, w);
          else if (flags !== 1) r.fail(`unsupported data segment flags ${flags}`, at);
          const bytes = r.bytesVec();
          w.u32(bytes.length);
          w.bytes(bytes);
        }
        break;
      }
      default: // function, memory, tag, data count: nothing to change
        copyRest();
    }
    if (r.pos !== r.end) r.fail(`section ${id} has trailing bytes`);
    return w;
  }

  /** Element segments, all eight encodings (flags bit 0: passive/declarative, bit 1: explicit
   * table or declarative, bit 2: expressions instead of function indices). */
  elements(r: Reader, w: Writer): void {
    const n = r.u32();
    w.u32(n);
    for (let i = 0; i < n; i++) {
      const at = r.pos;
      const flags = r.u32();
      if (flags > 7) r.fail(`unsupported element segment flags ${flags}`, at);
      w.u32(flags);
      if (flags === 2 || flags === 6) w.u32(r.u32()); // tableidx
      if ((flags & 0x01) === 0) this.constExpr(r, w); // active: offset
      if (flags & 0x03) {
        // elemkind (0x00 = funcref) or reftype
        const start = r.pos;
        if (flags & 0x04) skipValType(r);
        else if (r.u8() !== 0x00) r.fail("unsupported element kind", start);
        w.bytes(r.buf.subarray(start, r.pos));
      }
      const count = r.u32();
      w.u32(count);
      for (let j = 0; j < count; j++) {
        if (flags & 0x04) this.constExpr(r, w);
        else w.u32(this.fn(r.u32()));
      }
    }
  }

  constExpr(r: Reader, w: Writer): void {
    this.expr(r, w, false);
  }

  code(r: Reader, w: Writer): void {
    const n = r.u32();
    w.u32(n);
    const body = this.scratch;
    for (let i = 0; i < n; i++) {
      const size = r.u32();
      const end = r.pos + size;
      if (end > r.end) r.fail("function body overruns the code section");
      const fr = new Reader(r.buf, r.pos, end);
      body.reset();
      const localsStart = fr.pos;
      const groups = fr.u32();
      for (let j = 0; j < groups; j++) {
        fr.u32();
        skipValType(fr);
      }
      body.bytes(fr.buf.subarray(localsStart, fr.pos));
      const checkStart = body.length;
      this.fuelCheck(body);
      const checkEnd = body.length;
      const calls = this.expr(fr, body, true);
      if (fr.pos !== end) fr.fail("function body continues after its final end");
      // Unbounded work needs a loop (checked at its header) or a cycle of calls, so the entry
      // check is only needed in functions that call: a leaf's running time is bounded by its size.
      if (!calls) body.cut(checkStart, checkEnd);
      w.sized(body);
      r.pos = end;
    }
  }

  /** Stack-neutral, so it is valid anywhere, including loops with block parameters:
   *   $fuel = $fuel - 1; if ($fuel <= 0) $fuel = tick() */
  fuelCheck(w: Writer): void {
    const g = this.fuelGlobal;
    w.u8(0x23); w.u32(g); // global.get $fuel
    w.u8(0x41); w.u8(0x01); // i32.const 1
    w.u8(0x6b); // i32.sub
    w.u8(0x24); w.u32(g); // global.set $fuel
    w.u8(0x23); w.u32(g); // global.get $fuel
    w.u8(0x41); w.u8(0x00); // i32.const 0
    w.u8(0x4c); // i32.le_s (a tick returning <= 0 just makes every check call it)
    w.u8(0x04); w.u8(0x40); // if (empty blocktype)
    w.u8(0x10); w.u32(this.tickFunc); // call $tick
    w.u8(0x24); w.u32(g); // global.set $fuel
    w.u8(0x0b); // end
  }

  /**
   * Walks one expression up to and including its final `end`, copying it to `w` with function
   * indices shifted; in function bodies (`inBody`) it also adds fuel checks after each loop
   * header and routes memory.grow on memory 0 through the grow import. Untouched instruction runs
   * are copied in bulk. Returns whether the expression contains any call instruction.
   */
  expr(r: Reader, w: Writer, inBody: boolean): boolean {
    const buf = r.buf;
    let copied = r.pos; // bytes before this are already in w
    let depth = 0;
    let calls = false;
    for (;;) {
      const at = r.pos;
      const op = r.u8();
      // call call_indirect return_call return_call_indirect call_ref return_call_ref
      if (op >= 0x10 && op <= 0x15) calls = true;
      switch (op) {
        case 0x10: // call
        case 0x12: // return_call
        case 0xd2: { // ref.func
          const idx = r.u32();
          const shifted = this.fn(idx);
          if (shifted !== idx) {
            w.bytes(buf.subarray(copied, at));
            w.u8(op);
            w.u32(shifted);
            copied = r.pos;
          }
          continue;
        }
        case 0x40: { // memory.grow memidx
          const mem = r.u32();
          if (inBody && mem === 0) {
            w.bytes(buf.subarray(copied, at));
            w.u8(0x10);
            w.u32(this.growFunc);
            copied = r.pos;
          }
          continue;
        }
        case 0x03: // loop blocktype
          skipBlockType(r);
          depth++;
          if (inBody) {
            w.bytes(buf.subarray(copied, r.pos));
            this.fuelCheck(w);
            copied = r.pos;
          }
          continue;
        case 0x0b: // end
        case 0x18: // delegate (ends a try block)
          if (op === 0x18) r.u32();
          if (depth-- === 0) {
            if (op !== 0x0b) r.fail("expression ends with delegate", at);
            w.bytes(buf.subarray(copied, r.pos));
            return calls;
          }
          continue;
      }
      switch (IMM[op]) {
        case Imm.NONE:
          break;
        case Imm.BLOCK:
          skipBlockType(r);
          depth++;
          break;
        case Imm.IDX:
          r.u32();
          break;
        case Imm.IDX2:
          r.u32();
          r.u32();
          break;
        case Imm.BR_TABLE: {
          const n = r.u32();
          for (let i = 0; i <= n; i++) r.u32();
          break;
        }
        case Imm.MEMARG:
          memarg(r);
          break;
        case Imm.I32:
          r.skipLeb(5);
          break;
        case Imm.I64:
          r.skipLeb(10);
          break;
        case Imm.F32:
          r.skip(4);
          break;
        case Imm.F64:
          r.skip(8);
          break;
        case Imm.SELECT_T: {
          const n = r.u32();
          for (let i = 0; i < n; i++) skipValType(r);
          break;
        }
        case Imm.HEAPTYPE:
          r.skipLeb(5);
          break;
        case Imm.TRY_TABLE: {
          skipBlockType(r);
          depth++;
          const n = r.u32();
          for (let i = 0; i < n; i++) {
            const kindAt = r.pos;
            const kind = r.u8();
            if (kind > 3) r.fail(`unknown try_table catch kind ${kind}`, kindAt);
            if (kind < 2) r.u32(); // tag
            r.u32(); // label
          }
          break;
        }
        case Imm.FC:
        case Imm.FD:
        case Imm.FE:
          skipPrefixed(r, op, at);
          break;
        default:
          r.fail(op === 0xfb ? "unsupported GC opcode 0xfb" : `unsupported opcode ${hex(op)}`, at);
      }
    }
  }

  /** Custom sections: rewrite `name`, drop what would be stale, keep the rest raw. */
  custom(s: Section): Writer | null {
    const r = this.reader(s);
    const name = new TextDecoder().decode(r.bytesVec());
    const w = new Writer();
    if (name === "name") {
      try {
        return this.nameSection(r);
      } catch (e) {
        if (e instanceof InstrumentError) return null; // unparsable: drop it, it is only debug info
        throw e;
      }
    }
    // Branch hints address functions by index and instructions by offset; both moved.
    if (name === "metadata.code.branch_hint") return null;
    w.bytes(this.wasm.subarray(s.start, s.end));
    return w;
  }

  nameSection(r: Reader): Writer {
    const w = new Writer();
    w.name("name");
    const sub = new Writer();
    while (!r.done) {
      const id = r.u8();
      const size = r.u32();
      const start = r.pos;
      r.skip(size);
      const sr = new Reader(r.buf, start, r.pos);
      if (id === 3) continue; // label names: the inserted `if` blocks renumber labels
      sub.reset();
      if (id === 1) {
        // function names: namemap
        const n = sr.u32();
        sub.u32(n);
        for (let i = 0; i < n; i++) {
          sub.u32(this.fn(sr.u32()));
          const nm = sr.bytesVec();
          sub.u32(nm.length);
          sub.bytes(nm);
        }
      } else if (id === 2) {
        // local names: indirectnamemap, keyed by function index
        const n = sr.u32();
        sub.u32(n);
        for (let i = 0; i < n; i++) {
          sub.u32(this.fn(sr.u32()));
          const start = sr.pos;
          const m = sr.u32();
          for (let j = 0; j < m; j++) {
            sr.u32();
            sr.bytesVec();
          }
          sub.bytes(sr.buf.subarray(start, sr.pos));
        }
      } else {
        sub.bytes(sr.buf.subarray(start, sr.end));
        sr.pos = sr.end;
      }
      if (sr.pos !== sr.end) sr.fail("name subsection has trailing bytes");
      w.u8(id);
      w.sized(sub);
    }
    return w;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Returns a copy of `wasm` with fuel checks on loop headers and on the entries of functions that
 * call (calling `oanix.tick: () -> i32` when fuel runs out), and every `memory.grow` on memory 0
 * replaced by `call oanix.grow: (i32) -> i32`. Throws InstrumentError for anything it does not
 * understand; the caller then runs the module uninstrumented.
 */
export function instrument(wasm: Uint8Array): Uint8Array<ArrayBuffer> {
  try {
    return new Rewriter(wasm).run();
  } catch (e) {
    if (e instanceof InstrumentError) throw e;
    throw new InstrumentError(`malformed module: ${e instanceof Error ? e.message : String(e)}`);
  }
}
