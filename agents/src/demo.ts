// demo: the OANIX demo agent — a word count over a workspace tree.
//
// spec (/task/spec.json):
//   {"kind":"wordcount","root":"/workspace","top":10,"manifest":"/workspace/manifest.json"}
//   kind is required; root, top (0..1000) and manifest are optional with the defaults shown
//   (manifest defaults to <root>/manifest.json).
//
// It walks `root` recursively (names sorted, symlinks not followed, the manifest itself
// skipped) and, per file, counts bytes, lines, words and an FNV-1a 32-bit checksum. Totals and
// the top-N words across all files (case-folded; ties broken alphabetically) go to
// /task/result.json:
//   {"ok":true,"kind":"wordcount","root":..,"files":N,"bytes":..,"lines":..,"words":..,
//    "top":[["word",count],...],"manifest":"/workspace/manifest.json"}
// and the per-file table to the manifest (written to a temporary name, then renamed). Events go
// to /logs/events.jsonl (start, one per file, end); a short summary goes to stdout.
//
// Definitions. lines: newline count, plus one if the file does not end with a newline.
// words: maximal runs of word characters — ASCII letters and digits, and non-ASCII characters
// outside the punctuation/symbol/emoji blocks — where an apostrophe (' or ’) between two word
// characters stays inside the word ("don't"). A file with a NUL byte in its first 8 KiB is
// binary: bytes and checksum only.
//
// Exit codes: 0 done; 2 bad input (spec missing or unreadable, invalid JSON, unknown kind, bad
// field), with "demo: <reason>" on stderr; 1 failure while working (root unreadable, a file
// unreadable, output not writable). Whenever it can, it still writes {"ok":false,"error":...}
// to /task/result.json.

import {
  DirEntry,
  Json,
  TYPE_DIR,
  TYPE_FILE,
  TYPE_UNKNOWN,
  eprintln,
  exit,
  join,
  jsonError,
  lastError,
  listDir,
  log,
  monotonicNs,
  normalize,
  parseJson,
  println,
  readFile,
  rename,
  stat,
  stringify,
  utf8ToString,
  writeText,
} from "../sdk";

const SPEC_PATH = "/task/spec.json";
const RESULT_PATH = "/task/result.json";
const EXIT_FAILED = 1;
const EXIT_BAD_INPUT = 2;

// ---- failing -------------------------------------------------------------------------------

/** Reports `message` on stderr, in the result and the event log, then exits with `code`. */
function fail(code: i32, message: string): void {
  eprintln("demo: " + message);
  log("error", Json.obj().set("error", Json.str(message)));
  writeText(RESULT_PATH, Json.obj().set("ok", Json.bool(false)).set("error", Json.str(message)).toString() + "\n");
  exit(code);
}

// ---- the spec ------------------------------------------------------------------------------

class Spec {
  root: string = "/workspace";
  top: i32 = 10;
  manifest: string = "";
}

function readSpec(): Spec {
  const bytes = readFile(SPEC_PATH);
  if (bytes == null) {
    fail(EXIT_BAD_INPUT, lastError().toString());
    return new Spec();
  }
  const text = utf8ToString(bytes);
  const json = parseJson(text);
  if (json == null) {
    fail(EXIT_BAD_INPUT, SPEC_PATH + ": invalid JSON: " + jsonError());
    return new Spec();
  }
  if (!json.isObject()) fail(EXIT_BAD_INPUT, SPEC_PATH + ": expected a JSON object");
  const kind = json.get("kind");
  if (kind == null || !kind.isString()) fail(EXIT_BAD_INPUT, SPEC_PATH + ": \"kind\" must be a string");
  if (kind!.asString() != "wordcount") {
    fail(EXIT_BAD_INPUT, SPEC_PATH + ": unknown kind " + kind!.toString() + " (supported: \"wordcount\")");
  }
  const spec = new Spec();
  const root = json.get("root");
  if (root != null) {
    if (!root.isString() || !root.asString().startsWith("/")) {
      fail(EXIT_BAD_INPUT, SPEC_PATH + ": \"root\" must be an absolute path");
    }
    spec.root = normalize(root.asString());
  }
  const top = json.get("top");
  if (top != null) {
    const n = top.asNumber();
    if (!top.isNumber() || n != Math.floor(n) || n < 0 || n > 1000) {
      fail(EXIT_BAD_INPUT, SPEC_PATH + ": \"top\" must be an integer from 0 to 1000");
    }
    spec.top = <i32>n;
  }
  const manifest = json.get("manifest");
  if (manifest != null) {
    if (!manifest.isString() || !manifest.asString().startsWith("/")) {
      fail(EXIT_BAD_INPUT, SPEC_PATH + ": \"manifest\" must be an absolute path");
    }
    spec.manifest = normalize(manifest.asString());
  } else {
    spec.manifest = join(spec.root, "manifest.json");
  }
  return spec;
}

// ---- counting ------------------------------------------------------------------------------

/** Word characters: ASCII letters/digits, and non-ASCII outside punctuation and symbol blocks. */
function isWordChar(c: i32): bool {
  if (c < 0x80) return (c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x7a);
  if (c < 0xc0 || c == 0xd7 || c == 0xf7) return false; // Latin-1 punctuation, × ÷
  if (c >= 0x2000 && c < 0x2c00) return false; // punctuation, symbols, arrows, math, shapes
  if (c >= 0x3000 && c < 0x3040) return false; // CJK punctuation
  if (c >= 0xd800 && c < 0xf900) return false; // surrogates (emoji and other astral), private use
  if (c >= 0xfe00 && c < 0xfe70) return false; // variation selectors, presentation forms
  if (c == 0xfeff || (c >= 0xff00 && c < 0xff10) || c >= 0xfff0) return false;
  return true;
}

function isApostrophe(c: i32): bool {
  return c == 0x27 || c == 0x2019;
}

class FileCount {
  path: string;
  bytes: i64 = 0;
  lines: i64 = 0;
  words: i64 = 0;
  fnv: u32 = 0;
  binary: bool = false;

  constructor(path: string) {
    this.path = path;
  }

  toJson(): Json {
    const o = Json.obj()
      .set("path", Json.str(this.path))
      .set("bytes", Json.num(<f64>this.bytes))
      .set("lines", Json.num(<f64>this.lines))
      .set("words", Json.num(<f64>this.words))
      .set("fnv1a", Json.str(hex32(this.fnv)));
    if (this.binary) o.set("binary", Json.bool(true));
    return o;
  }
}

function hex32(v: u32): string {
  const s = v.toString(16);
  return "00000000".substring(0, 8 - s.length) + s;
}

/** FNV-1a, 32 bits. */
function fnv1a(data: Uint8Array): u32 {
  let h: u32 = 0x811c9dc5;
  const p = data.dataStart;
  const n = <usize>data.length;
  for (let i: usize = 0; i < n; i++) {
    h = (h ^ <u32>load<u8>(p + i)) * 0x01000193;
  }
  return h;
}

function countLines(data: Uint8Array): i64 {
  const p = data.dataStart;
  const n = <usize>data.length;
  let lines: i64 = 0;
  for (let i: usize = 0; i < n; i++) if (load<u8>(p + i) == 0x0a) lines++;
  if (n > 0 && load<u8>(p + n - 1) != 0x0a) lines++;
  return lines;
}

function looksBinary(data: Uint8Array): bool {
  const n = <usize>min(data.length, 8192);
  for (let i: usize = 0; i < n; i++) if (load<u8>(data.dataStart + i) == 0) return true;
  return false;
}

/** Counts the words of `text` into `counts` (case-folded); returns how many it saw. */
function countWords(text: string, counts: Map<string, i32>): i64 {
  let words: i64 = 0;
  const n = text.length;
  let i = 0;
  while (i < n) {
    while (i < n && !isWordChar(text.charCodeAt(i))) i++;
    if (i >= n) break;
    const start = i;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (isWordChar(c)) {
        i++;
      } else if (isApostrophe(c) && i + 1 < n && isWordChar(text.charCodeAt(i + 1))) {
        i += 2;
      } else {
        break;
      }
    }
    const word = text.substring(start, i).toLowerCase().replaceAll("\u2019", "'");
    counts.set(word, counts.has(word) ? counts.get(word) + 1 : 1);
    words++;
  }
  return words;
}

// ---- the walk ------------------------------------------------------------------------------

class Run {
  spec: Spec;
  files: FileCount[] = new Array<FileCount>();
  counts: Map<string, i32> = new Map<string, i32>();
  errors: Json = Json.arr();

  constructor(spec: Spec) {
    this.spec = spec;
  }

  /** Relative path of `full` below the root, for the manifest. */
  rel(full: string): string {
    const root = this.spec.root;
    return root == "/" ? full.substring(1) : full.substring(root.length + 1);
  }

  error(path: string, why: string): void {
    this.errors.push(Json.obj().set("path", Json.str(path)).set("error", Json.str(why)));
    log("error", Json.obj().set("path", Json.str(path)).set("error", Json.str(why)));
    eprintln("demo: " + path + ": " + why);
  }

  walk(dir: string): void {
    const entries = listDir(dir);
    if (entries == null) {
      this.error(dir, lastError().name);
      return;
    }
    entries.sort((a: DirEntry, b: DirEntry): i32 => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (let i = 0; i < entries.length; i++) {
      const full = join(dir, entries[i].name);
      let type = entries[i].type;
      if (type == TYPE_UNKNOWN) {
        const st = stat(full);
        if (st != null) type = st.type;
      }
      if (type == TYPE_DIR) {
        this.walk(full);
      } else if (type == TYPE_FILE && full != this.spec.manifest) {
        this.count(full);
      }
    }
  }

  count(full: string): void {
    const data = readFile(full);
    if (data == null) {
      this.error(full, lastError().name);
      return;
    }
    const f = new FileCount(this.rel(full));
    f.bytes = data.length;
    f.fnv = fnv1a(data);
    f.binary = looksBinary(data);
    if (!f.binary) {
      f.lines = countLines(data);
      f.words = countWords(utf8ToString(data), this.counts);
    }
    this.files.push(f);
    log("file", f.toJson());
  }
}

class WordCount {
  word: string;
  count: i32;

  constructor(word: string, count: i32) {
    this.word = word;
    this.count = count;
  }
}

/** The `n` most frequent words, most frequent first, ties alphabetical. */
function topWords(counts: Map<string, i32>, n: i32): WordCount[] {
  const words = counts.keys();
  const all = new Array<WordCount>(words.length);
  for (let i = 0; i < words.length; i++) all[i] = new WordCount(words[i], counts.get(words[i]));
  all.sort((a: WordCount, b: WordCount): i32 => {
    if (a.count != b.count) return b.count - a.count;
    return a.word < b.word ? -1 : a.word > b.word ? 1 : 0;
  });
  return all.length > n ? all.slice(0, n) : all;
}

// ---- main ----------------------------------------------------------------------------------

const started = monotonicNs();
const spec = readSpec();
log("start", Json.obj().set("kind", Json.str("wordcount")).set("root", Json.str(spec.root)));

const rootStat = stat(spec.root);
if (rootStat == null) fail(EXIT_FAILED, lastError().toString());
if (!rootStat!.isDir) fail(EXIT_FAILED, spec.root + ": not a directory");

const run = new Run(spec);
run.walk(spec.root);

let bytes: i64 = 0;
let lines: i64 = 0;
let words: i64 = 0;
const table = Json.arr();
for (let i = 0; i < run.files.length; i++) {
  const f = run.files[i];
  bytes += f.bytes;
  lines += f.lines;
  words += f.words;
  table.push(f.toJson());
}
const totals = Json.obj()
  .set("files", Json.num(run.files.length))
  .set("bytes", Json.num(<f64>bytes))
  .set("lines", Json.num(<f64>lines))
  .set("words", Json.num(<f64>words));

const manifest = Json.obj()
  .set("root", Json.str(spec.root))
  .set("files", table)
  .set("totals", totals);
if (run.errors.length > 0) manifest.set("errors", run.errors);
const tmp = spec.manifest + ".tmp";
if (!writeText(tmp, stringify(manifest, 2) + "\n") || !rename(tmp, spec.manifest)) {
  fail(EXIT_FAILED, "writing the manifest: " + lastError().toString());
}

const top = topWords(run.counts, spec.top);
const topJson = Json.arr();
for (let i = 0; i < top.length; i++) {
  topJson.push(Json.arr().push(Json.str(top[i].word)).push(Json.num(top[i].count)));
}
const ok = run.errors.length == 0;
const result = Json.obj()
  .set("ok", Json.bool(ok))
  .set("kind", Json.str("wordcount"))
  .set("root", Json.str(spec.root))
  .set("files", Json.num(run.files.length))
  .set("bytes", Json.num(<f64>bytes))
  .set("lines", Json.num(<f64>lines))
  .set("words", Json.num(<f64>words))
  .set("top", topJson)
  .set("manifest", Json.str(spec.manifest));
if (!ok) {
  result.set("error", Json.str(run.errors.length.toString() + " file(s) could not be read"));
  result.set("errors", run.errors);
}
if (!writeText(RESULT_PATH, result.toString() + "\n")) {
  eprintln("demo: " + lastError().toString());
  exit(EXIT_FAILED);
}

const ms = <f64>(monotonicNs() - started) / 1e6;
log("end", Json.obj()
  .set("ok", Json.bool(ok))
  .set("files", Json.num(run.files.length))
  .set("bytes", Json.num(<f64>bytes))
  .set("words", Json.num(<f64>words))
  .set("ms", Json.num(Math.round(ms * 10) / 10)));

println("wordcount " + spec.root + ": " + run.files.length.toString() + " files, " +
  bytes.toString() + " bytes, " + lines.toString() + " lines, " + words.toString() + " words");
const shown = new Array<string>();
for (let i = 0; i < top.length && i < 5; i++) shown.push(top[i].word + " (" + top[i].count.toString() + ")");
if (shown.length > 0) println("top words: " + shown.join(", "));
println("manifest: " + spec.manifest + "   result: " + RESULT_PATH);
if (!ok) exit(EXIT_FAILED);
