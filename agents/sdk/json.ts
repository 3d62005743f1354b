// A small JSON value type with a strict parser (RFC 8259) and a serialiser.
//
// Objects keep their keys in insertion order (serialisation is deterministic); a duplicate key
// replaces the earlier value. Numbers are f64. Strings are AssemblyScript (UTF-16) strings, so
// "\uD83D\uDE00" parses to the same string as the raw emoji; lone surrogates survive a round
// trip because the serialiser escapes them.

export const KIND_NULL: u8 = 0;
export const KIND_BOOL: u8 = 1;
export const KIND_NUMBER: u8 = 2;
export const KIND_STRING: u8 = 3;
export const KIND_ARRAY: u8 = 4;
export const KIND_OBJECT: u8 = 5;

/** Nesting deeper than this is refused (the parser recurses). */
export const MAX_DEPTH: i32 = 512;

/** Objects with more keys than this get a hash index for lookups. */
const INDEX_AFTER: i32 = 8;

export class Json {
  kind: u8;
  private flag: bool = false;
  private num: f64 = 0;
  private text: string = "";
  /** Array elements, or object values (parallel to `names`). */
  private items: Json[] | null = null;
  private names: string[] | null = null;
  private index: Map<string, i32> | null = null;

  constructor(kind: u8) {
    this.kind = kind;
    if (kind == KIND_ARRAY || kind == KIND_OBJECT) this.items = new Array<Json>();
    if (kind == KIND_OBJECT) this.names = new Array<string>();
  }

  // ---- construction ----

  static nil(): Json { return new Json(KIND_NULL); }
  static bool(v: bool): Json { const j = new Json(KIND_BOOL); j.flag = v; return j; }
  static num(v: f64): Json { const j = new Json(KIND_NUMBER); j.num = v; return j; }
  static str(v: string): Json { const j = new Json(KIND_STRING); j.text = v; return j; }
  static arr(): Json { return new Json(KIND_ARRAY); }
  static obj(): Json { return new Json(KIND_OBJECT); }

  // ---- inspection ----

  isNull(): bool { return this.kind == KIND_NULL; }
  isBool(): bool { return this.kind == KIND_BOOL; }
  isNumber(): bool { return this.kind == KIND_NUMBER; }
  isString(): bool { return this.kind == KIND_STRING; }
  isArray(): bool { return this.kind == KIND_ARRAY; }
  isObject(): bool { return this.kind == KIND_OBJECT; }

  /** The boolean, or false for any other kind. */
  asBool(): bool { return this.kind == KIND_BOOL && this.flag; }
  /** The number, or NaN for any other kind. */
  asNumber(): f64 { return this.kind == KIND_NUMBER ? this.num : NaN; }
  /** The string, or "" for any other kind. */
  asString(): string { return this.kind == KIND_STRING ? this.text : ""; }

  /** Element count of an array, key count of an object, 0 otherwise. */
  get length(): i32 {
    const items = this.items;
    return items != null ? items.length : 0;
  }

  // ---- arrays ----

  /** Element `i` of an array, or null. */
  at(i: i32): Json | null {
    const items = this.items;
    if (this.kind != KIND_ARRAY || items == null || i < 0 || i >= items.length) return null;
    return items[i];
  }

  /** Appends to an array; returns this for chaining. */
  push(v: Json): Json {
    assert(this.kind == KIND_ARRAY, "Json.push: not an array");
    this.items!.push(v);
    return this;
  }

  // ---- objects ----

  /** Keys of an object in insertion order (a copy). */
  keys(): string[] {
    const names = this.names;
    return names != null ? names.slice() : new Array<string>();
  }

  private find(key: string): i32 {
    const names = this.names;
    if (names == null) return -1;
    const index = this.index;
    if (index != null) return index.has(key) ? index.get(key) : -1;
    for (let i = 0; i < names.length; i++) if (names[i] == key) return i;
    return -1;
  }

  has(key: string): bool { return this.find(key) >= 0; }

  /** Member `key` of an object, or null. */
  get(key: string): Json | null {
    const i = this.find(key);
    return i >= 0 ? this.items![i] : null;
  }

  /** Sets member `key` (replacing, position kept); returns this for chaining. */
  set(key: string, v: Json): Json {
    assert(this.kind == KIND_OBJECT, "Json.set: not an object");
    const names = this.names!;
    const items = this.items!;
    const i = this.find(key);
    if (i >= 0) {
      items[i] = v;
      return this;
    }
    names.push(key);
    items.push(v);
    let index = this.index;
    if (index != null) {
      index.set(key, names.length - 1);
    } else if (names.length > INDEX_AFTER) {
      index = new Map<string, i32>();
      for (let k = 0; k < names.length; k++) index.set(names[k], k);
      this.index = index;
    }
    return this;
  }

  /** String member, or `fallback` when missing or not a string. */
  getString(key: string, fallback: string = ""): string {
    const v = this.get(key);
    return v != null && v.isString() ? v.asString() : fallback;
  }

  /** Number member, or `fallback` when missing or not a number. */
  getNumber(key: string, fallback: f64 = 0): f64 {
    const v = this.get(key);
    return v != null && v.isNumber() ? v.asNumber() : fallback;
  }

  /** Boolean member, or `fallback` when missing or not a boolean. */
  getBool(key: string, fallback: bool = false): bool {
    const v = this.get(key);
    return v != null && v.isBool() ? v.asBool() : fallback;
  }

  // ---- serialisation ----

  /** Compact JSON text. */
  toString(): string {
    return stringify(this, 0);
  }

  /** Appends the JSON text of this value to `out`; `indent` > 0 pretty-prints. */
  writeTo(out: string[], indent: i32, level: i32): void {
    switch (this.kind) {
      case KIND_NULL: out.push("null"); return;
      case KIND_BOOL: out.push(this.flag ? "true" : "false"); return;
      case KIND_NUMBER: out.push(formatNumber(this.num)); return;
      case KIND_STRING: out.push(quote(this.text)); return;
    }
    const items = this.items!;
    const names = this.names;
    const isObject = names != null;
    if (items.length == 0) {
      out.push(isObject ? "{}" : "[]");
      return;
    }
    out.push(isObject ? "{" : "[");
    for (let i = 0; i < items.length; i++) {
      if (i > 0) out.push(",");
      if (indent > 0) out.push("\n" + " ".repeat(indent * (level + 1)));
      if (names != null) {
        out.push(quote(names[i]));
        out.push(indent > 0 ? ": " : ":");
      }
      items[i].writeTo(out, indent, level + 1);
    }
    if (indent > 0) out.push("\n" + " ".repeat(indent * level));
    out.push(isObject ? "}" : "]");
  }
}

/** JSON text of `v`; `indent` > 0 pretty-prints with that many spaces per level. */
export function stringify(v: Json, indent: i32 = 0): string {
  const out = new Array<string>();
  v.writeTo(out, indent, 0);
  return out.join("");
}

/** Integers as integers ("3", not "3.0"); non-finite numbers as null, as JSON.stringify does. */
export function formatNumber(n: f64): string {
  if (!isFinite(n)) return "null";
  if (n == Math.trunc(n) && Math.abs(n) <= 9007199254740992.0) return (<i64>n).toString();
  const s = n.toString(); // AssemblyScript writes integral values as "1.2e+21" or "123.0"
  return s.endsWith(".0") ? s.substring(0, s.length - 2) : s;
}

const HEX = "0123456789abcdef";

function escapeUnit(c: i32): string {
  switch (c) {
    case 0x22: return "\\\"";
    case 0x5c: return "\\\\";
    case 0x08: return "\\b";
    case 0x0c: return "\\f";
    case 0x0a: return "\\n";
    case 0x0d: return "\\r";
    case 0x09: return "\\t";
  }
  return "\\u" + HEX.charAt((c >> 12) & 15) + HEX.charAt((c >> 8) & 15) +
    HEX.charAt((c >> 4) & 15) + HEX.charAt(c & 15);
}

/** Length of the run at `i` that needs no escaping: 0 if s[i] needs escaping, 2 for a valid pair. */
function plainUnit(s: string, i: i32): i32 {
  const c = s.charCodeAt(i);
  if (c < 0x20 || c == 0x22 || c == 0x5c) return 0;
  if (c < 0xd800 || c > 0xdfff) return 1;
  if (c <= 0xdbff && i + 1 < s.length) {
    const d = s.charCodeAt(i + 1);
    if (d >= 0xdc00 && d <= 0xdfff) return 2;
  }
  return 0; // lone surrogate
}

/** A JSON string literal for `s`, quotes included. */
export function quote(s: string): string {
  const n = s.length;
  let i = 0;
  while (i < n) {
    const k = plainUnit(s, i);
    if (k == 0) break;
    i += k;
  }
  if (i == n) return "\"" + s + "\"";
  const out = new Array<string>();
  out.push("\"");
  let start = 0;
  i = 0;
  while (i < n) {
    const k = plainUnit(s, i);
    if (k > 0) {
      i += k;
      continue;
    }
    if (i > start) out.push(s.substring(start, i));
    out.push(escapeUnit(s.charCodeAt(i)));
    i++;
    start = i;
  }
  if (n > start) out.push(s.substring(start, n));
  out.push("\"");
  return out.join("");
}

// ---- parsing ----------------------------------------------------------------------------------

let parseError = "";

/** Why the last parseJson() returned null: "expected ':' at line 1, column 9". */
export function jsonError(): string {
  return parseError;
}

/** Parses JSON text (a leading BOM is allowed); null on error, see jsonError(). */
export function parseJson(text: string): Json | null {
  const p = new Parser(text);
  if (p.peek() == 0xfeff) p.pos++;
  const v = p.value(0);
  if (v != null) {
    p.skipSpace();
    if (p.pos < text.length) return p.fail("unexpected text after the JSON value");
  }
  return v;
}

function isDigit(c: i32): bool {
  return c >= 0x30 && c <= 0x39;
}

function hexValue(c: i32): i32 {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

class Parser {
  s: string;
  pos: i32 = 0;

  constructor(s: string) {
    this.s = s;
  }

  /** Code unit at the cursor (+ahead), or -1 past the end. */
  peek(ahead: i32 = 0): i32 {
    const i = this.pos + ahead;
    return i < this.s.length ? <i32>this.s.charCodeAt(i) : -1;
  }

  fail(msg: string): Json | null {
    let line = 1;
    let col = 1;
    for (let i = 0; i < this.pos && i < this.s.length; i++) {
      if (this.s.charCodeAt(i) == 0x0a) {
        line++;
        col = 1;
      } else {
        col++;
      }
    }
    parseError = msg + " at line " + line.toString() + ", column " + col.toString();
    return null;
  }

  skipSpace(): void {
    while (true) {
      const c = this.peek();
      if (c != 0x20 && c != 0x0a && c != 0x0d && c != 0x09) return;
      this.pos++;
    }
  }

  value(depth: i32): Json | null {
    this.skipSpace();
    const c = this.peek();
    if (c == 0x7b) return this.object(depth + 1);
    if (c == 0x5b) return this.array(depth + 1);
    if (c == 0x22) {
      const s = this.string();
      return s != null ? Json.str(s) : null;
    }
    if (c == 0x2d || isDigit(c)) return this.number();
    if (this.word("true")) return Json.bool(true);
    if (this.word("false")) return Json.bool(false);
    if (this.word("null")) return Json.nil();
    if (c < 0) return this.fail("unexpected end of input");
    return this.fail("unexpected character '" + String.fromCharCode(c) + "'");
  }

  word(w: string): bool {
    for (let i = 0; i < w.length; i++) if (this.peek(i) != <i32>w.charCodeAt(i)) return false;
    this.pos += w.length;
    return true;
  }

  array(depth: i32): Json | null {
    if (depth > MAX_DEPTH) return this.fail("nesting deeper than " + MAX_DEPTH.toString());
    this.pos++; // [
    const out = Json.arr();
    this.skipSpace();
    if (this.peek() == 0x5d) {
      this.pos++;
      return out;
    }
    while (true) {
      const v = this.value(depth);
      if (v == null) return null;
      out.push(v);
      this.skipSpace();
      const c = this.peek();
      this.pos++;
      if (c == 0x2c) continue;
      if (c == 0x5d) return out;
      this.pos--;
      return this.fail("expected ',' or ']'");
    }
  }

  object(depth: i32): Json | null {
    if (depth > MAX_DEPTH) return this.fail("nesting deeper than " + MAX_DEPTH.toString());
    this.pos++; // {
    const out = Json.obj();
    this.skipSpace();
    if (this.peek() == 0x7d) {
      this.pos++;
      return out;
    }
    while (true) {
      this.skipSpace();
      if (this.peek() != 0x22) return this.fail("expected a string key");
      const key = this.string();
      if (key == null) return null;
      this.skipSpace();
      if (this.peek() != 0x3a) return this.fail("expected ':'");
      this.pos++;
      const v = this.value(depth);
      if (v == null) return null;
      out.set(key, v);
      this.skipSpace();
      const c = this.peek();
      this.pos++;
      if (c == 0x2c) continue;
      if (c == 0x7d) return out;
      this.pos--;
      return this.fail("expected ',' or '}'");
    }
  }

  /** A string literal at the cursor (which is on the opening quote); null on error. */
  string(): string | null {
    const s = this.s;
    const n = s.length;
    let i = this.pos + 1;
    let start = i;
    let parts: string[] | null = null;
    while (true) {
      if (i >= n) {
        this.pos = i;
        this.fail("unterminated string");
        return null;
      }
      const c = <i32>s.charCodeAt(i);
      if (c == 0x22) break;
      if (c < 0x20) {
        this.pos = i;
        this.fail("control character in string");
        return null;
      }
      if (c != 0x5c) {
        i++;
        continue;
      }
      if (parts == null) parts = new Array<string>();
      if (i > start) parts.push(s.substring(start, i));
      const e = i + 1 < n ? <i32>s.charCodeAt(i + 1) : -1;
      let unit = -1;
      let len = 2;
      switch (e) {
        case 0x22: unit = 0x22; break; // \"
        case 0x5c: unit = 0x5c; break; // \\
        case 0x2f: unit = 0x2f; break; // \/
        case 0x62: unit = 0x08; break; // \b
        case 0x66: unit = 0x0c; break; // \f
        case 0x6e: unit = 0x0a; break; // \n
        case 0x72: unit = 0x0d; break; // \r
        case 0x74: unit = 0x09; break; // \t
        case 0x75: { // \uXXXX (a surrogate pair is two of these, which is what UTF-16 wants)
          unit = 0;
          for (let k = 2; k < 6; k++) {
            const h = i + k < n ? hexValue(<i32>s.charCodeAt(i + k)) : -1;
            if (h < 0) {
              unit = -1;
              break;
            }
            unit = (unit << 4) | h;
          }
          len = 6;
          break;
        }
      }
      if (unit < 0) {
        this.pos = i;
        this.fail(e == 0x75 ? "bad \\u escape" : "invalid escape");
        return null;
      }
      parts.push(String.fromCharCode(unit));
      i += len;
      start = i;
    }
    this.pos = i + 1;
    if (parts == null) return s.substring(start, i);
    if (i > start) parts.push(s.substring(start, i));
    return parts.join("");
  }

  number(): Json | null {
    const start = this.pos;
    if (this.peek() == 0x2d) this.pos++;
    if (this.peek() == 0x30) {
      this.pos++;
    } else if (isDigit(this.peek())) {
      while (isDigit(this.peek())) this.pos++;
    } else {
      return this.fail("invalid number");
    }
    let integral = true;
    if (this.peek() == 0x2e) {
      this.pos++;
      if (!isDigit(this.peek())) return this.fail("digit expected after '.'");
      while (isDigit(this.peek())) this.pos++;
      integral = false;
    }
    const e = this.peek();
    if (e == 0x65 || e == 0x45) {
      this.pos++;
      const sign = this.peek();
      if (sign == 0x2b || sign == 0x2d) this.pos++;
      if (!isDigit(this.peek())) return this.fail("digit expected in exponent");
      while (isDigit(this.peek())) this.pos++;
      integral = false;
    }
    const end = this.pos;
    if (integral && end - start <= 15) {
      // Up to 15 digits fit an f64 exactly: skip the general float parser.
      let i = start;
      const negative = this.s.charCodeAt(i) == 0x2d;
      if (negative) i++;
      let v: i64 = 0;
      for (; i < end; i++) v = v * 10 + <i64>(this.s.charCodeAt(i) - 0x30);
      return Json.num(negative ? -<f64>v : <f64>v);
    }
    return Json.num(parseFloat(this.s.substring(start, end)));
  }
}
