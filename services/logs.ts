// LogsService: a process's output, mounted at /logs. Three append-only, bounded files:
//   stdout, stderr   raw bytes.
//   events.jsonl     one JSON object per line.
//
// Decisions:
// - Append-only: every write goes to the end whatever the offset or the handle's position (which
//   then points at the end); truncating (truncate(), or open with truncate) is EACCES; nothing else
//   can be created, removed or renamed (EACCES; missing names are ENOENT without create).
// - Bounded: each file keeps at most `limitBytes` (1 MiB by default; 0 keeps nothing). Past that the
//   oldest bytes are dropped and counted in `dropped(name)`, so for every file
//   retained + dropped == written. The file's contents, size and offsets are the retained bytes:
//   dropping is like truncating the front of the file. stdout/stderr cut on a UTF-8 character
//   boundary (at most 3 more bytes go) so `text()` never starts with a broken character;
//   events.jsonl cuts on a line boundary so every retained line still parses.
// - events.jsonl takes only complete lines: each write must be one or more "\n"-terminated lines,
//   each a JSON object; otherwise EINVAL and nothing is written. A single line longer than the limit
//   could never be kept, so it is EFBIG (nothing written) rather than silently dropped. The same rules
//   apply to the host's `append`.
// - Storage is one growable buffer per file with a start offset (capacity up to 2 × limit), so an
//   append copies only its own bytes (amortised), however small the writes are.
// - `onAppend` listeners get (name, bytes) after the bytes are stored — the whole append, even the
//   part a small limit dropped at once. The bytes are a copy they may keep; an exception thrown by
//   a listener is swallowed so it can never fail the writer.
// - inos: root 1, stdout 2, stderr 3, events.jsonl 4. mtime/ctime are the last append.
import { fsError } from "../runtime/errors.ts";
import { normalize, segments } from "../runtime/path.ts";
import { applyTimes, nowNs, type DirEntry, type FileHandle, type FileService, type OpenFlags, type Stat } from "../runtime/types.ts";

export const LOG_NAMES = ["events.jsonl", "stderr", "stdout"] as const;
export type LogName = (typeof LOG_NAMES)[number];

export interface LogsServiceOptions {
  /** Bytes kept per file; older bytes are dropped (1 MiB by default). */
  limitBytes?: number;
}

export type AppendListener = (name: LogName, bytes: Uint8Array) => void;

const NL = 0x0a;

class Log {
  buf = new Uint8Array(0);
  start = 0;
  end = 0;
  dropped = 0;
  written = 0;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  readonly name: LogName;
  readonly ino: number;

  constructor(name: LogName, ino: number, t: bigint) {
    this.name = name;
    this.ino = ino;
    this.atimeNs = this.mtimeNs = this.ctimeNs = t;
  }

  get size(): number {
    return this.end - this.start;
  }

  /** Stores `data` at the end, dropping from the front to stay within `limit`. */
  store(data: Uint8Array, limit: number): void {
    const retained = this.end - this.start;
    const n = data.length;
    const total = retained + n;
    this.written += n;
    let cut = total > limit ? total - limit : 0;
    if (cut > 0) {
      const at = (i: number): number => (i < retained ? this.buf[this.start + i]! : data[i - retained]!);
      if (this.name === "events.jsonl") {
        // Keep whole lines: move the cut past the end of the line it falls in.
        if (at(cut - 1) !== NL) {
          while (cut < total && at(cut) !== NL) cut++;
          cut = Math.min(cut + 1, total);
        }
      } else {
        // Do not keep the tail of a UTF-8 character whose head was dropped.
        for (let k = 0; k < 3 && cut < total && (at(cut) & 0xc0) === 0x80; k++) cut++;
      }
    }
    this.dropped += cut;
    if (cut >= retained) {
      this.start = this.end = 0;
      this.#put(data.subarray(cut - retained), limit);
    } else {
      this.start += cut;
      this.#put(data, limit);
    }
  }

  #put(data: Uint8Array, limit: number): void {
    const m = data.length;
    if (m === 0) return;
    if (this.end + m > this.buf.length) {
      const needed = this.end - this.start + m;
      let cap = Math.max(this.buf.length, 4096);
      const ceiling = Math.max(2 * limit, needed);
      while (cap < 2 * needed && cap < ceiling) cap *= 2;
      cap = Math.min(Math.max(cap, needed), Math.max(ceiling, needed));
      if (cap > this.buf.length) {
        const grown = new Uint8Array(cap);
        grown.set(this.buf.subarray(this.start, this.end));
        this.buf = grown;
      } else {
        this.buf.copyWithin(0, this.start, this.end);
      }
      this.end -= this.start;
      this.start = 0;
    }
    this.buf.set(data, this.end);
    this.end += m;
  }

  slice(from: number, to: number): Uint8Array {
    return this.buf.slice(this.start + from, this.start + to);
  }
}

export class LogsService implements FileService {
  readonly #limit: number;
  readonly #logs: Record<LogName, Log>;
  readonly #listeners = new Set<AppendListener>();
  readonly #rootTimeNs: bigint;

  constructor(options: LogsServiceOptions = {}) {
    const limit = options.limitBytes ?? 1024 * 1024;
    if (!Number.isSafeInteger(limit) || limit < 0) throw fsError("EINVAL", `logs: bad limitBytes ${limit}`);
    this.#limit = limit;
    const t = nowNs();
    this.#rootTimeNs = t;
    this.#logs = {
      stdout: new Log("stdout", 2, t),
      stderr: new Log("stderr", 3, t),
      "events.jsonl": new Log("events.jsonl", 4, t),
    };
  }

  // ---- host side ----

  #log(name: string): Log {
    const log = Object.hasOwn(this.#logs, name) ? this.#logs[name as LogName] : undefined;
    if (log === undefined) throw fsError("ENOENT", `logs: no log named ${JSON.stringify(name)} (stdout, stderr, events.jsonl)`);
    return log;
  }

  /**
   * Appends bytes to a log (what the WASI host does for stdout/stderr, and what every handle write
   * does). Returns the number of bytes accepted: all of them, or an error and nothing written.
   */
  append(name: LogName, bytes: Uint8Array): number {
    const log = this.#log(name);
    if (log.name === "events.jsonl") this.#checkEvents(bytes);
    if (bytes.length === 0) return 0;
    log.store(bytes, this.#limit);
    log.mtimeNs = log.ctimeNs = nowNs();
    if (this.#listeners.size > 0) {
      const copy = bytes.slice();
      for (const fn of this.#listeners) {
        try {
          fn(log.name, copy);
        } catch {
          // A listener's failure must not fail the writer.
        }
      }
    }
    return bytes.length;
  }

  #checkEvents(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    if (bytes[bytes.length - 1] !== NL) {
      throw fsError("EINVAL", "write events.jsonl: a write must be whole lines, each ending in a newline");
    }
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
    } catch {
      throw fsError("EINVAL", "write events.jsonl: not UTF-8 text");
    }
    let from = 0;
    let line = 0;
    while (from < text.length) {
      const nl = text.indexOf("\n", from);
      const s = text.slice(from, nl);
      line++;
      let v: unknown;
      try {
        v = JSON.parse(s);
      } catch (e) {
        throw fsError("EINVAL", `write events.jsonl: line ${line} is not JSON: ${(e as Error).message}`);
      }
      if (typeof v !== "object" || v === null || Array.isArray(v)) {
        throw fsError("EINVAL", `write events.jsonl: line ${line} is not a JSON object`);
      }
      const lineBytes = byteLength(s) + 1;
      if (lineBytes > this.#limit) {
        throw fsError("EFBIG", `write events.jsonl: line ${line} is ${lineBytes} bytes, over the ${this.#limit}-byte limit`);
      }
      from = nl + 1;
    }
  }

  /** The retained bytes of a log (a copy). */
  bytes(name: LogName): Uint8Array {
    const log = this.#log(name);
    return log.slice(0, log.size);
  }

  /** The retained bytes of a log as text (malformed UTF-8 shows as U+FFFD). */
  text(name: LogName): string {
    const log = this.#log(name);
    return new TextDecoder().decode(log.buf.subarray(log.start, log.end));
  }

  /** Bytes dropped from the front of a log to respect the limit. */
  dropped(name: LogName): number {
    return this.#log(name).dropped;
  }

  /** Bytes ever appended to a log (retained + dropped). */
  written(name: LogName): number {
    return this.#log(name).written;
  }

  /** The retained events, parsed. */
  events(): Record<string, unknown>[] {
    const text = this.text("events.jsonl");
    const out: Record<string, unknown>[] = [];
    for (const line of text.split("\n")) if (line !== "") out.push(JSON.parse(line) as Record<string, unknown>);
    return out;
  }

  /** Calls `fn(name, bytes)` after every append; returns the function that stops it. */
  onAppend(fn: AppendListener): () => void {
    this.#listeners.add(fn);
    return () => {
      this.#listeners.delete(fn);
    };
  }

  // ---- FileService ----

  #find(op: string, path: string, create = false): Log | null {
    const segs = segments(path);
    if (segs.length === 0) return null;
    const name = segs[0]!;
    const log = Object.hasOwn(this.#logs, name) ? this.#logs[name as LogName] : undefined;
    if (segs.length > 1) {
      if (log) throw fsError("ENOTDIR", `${op} ${segs.join("/")}: ${name} is not a directory`);
      throw fsError("ENOENT", `${op} ${segs.join("/")}: no such file or directory`);
    }
    if (log) return log;
    if (create) throw fsError("EACCES", `${op} ${name}: /logs holds only stdout, stderr and events.jsonl`);
    throw fsError("ENOENT", `${op} ${name}: no such file or directory`);
  }

  open(path: string, flags: OpenFlags): LogHandle {
    const log = this.#find("open", path, flags.create);
    if (flags.create && flags.exclusive) throw fsError("EEXIST", `open ${log?.name ?? "/"}: file exists`);
    if (log === null) {
      if (flags.write || flags.append || flags.truncate) throw fsError("EISDIR", "open /: is a directory");
      return new LogHandle(this, null);
    }
    if (flags.directory) throw fsError("ENOTDIR", `open ${log.name}: not a directory`);
    if (flags.truncate) throw fsError("EACCES", `open ${log.name}: logs are append-only; truncating is not allowed`);
    return new LogHandle(this, log);
  }

  stat(path: string): Stat {
    const log = this.#find("stat", path);
    if (log === null) {
      const t = this.#rootTimeNs;
      return { type: "dir", size: 3, ino: 1, nlink: 2, atimeNs: t, mtimeNs: t, ctimeNs: t };
    }
    return logStat(log);
  }

  lstat(path: string): Stat {
    return this.stat(path);
  }

  readdir(path: string): DirEntry[] {
    const log = this.#find("readdir", path);
    if (log !== null) throw fsError("ENOTDIR", `readdir ${log.name}: not a directory`);
    return LOG_NAMES.map((name) => ({ name, type: "file" as const, ino: this.#logs[name].ino }));
  }

  mkdir(path: string): void {
    const segs = segments(path);
    if (segs.length === 0 || (segs.length === 1 && Object.hasOwn(this.#logs, segs[0]!))) {
      throw fsError("EEXIST", `mkdir ${normalize(path) || "/"}: file exists`);
    }
    this.#find("mkdir", path, true);
    throw fsError("EACCES", `mkdir ${normalize(path)}: /logs holds only stdout, stderr and events.jsonl`);
  }

  remove(path: string): void {
    const log = this.#find("remove", path);
    throw fsError("EACCES", `remove ${log?.name ?? "/"}: logs cannot be removed`);
  }

  rename(from: string, _to: string): void {
    const log = this.#find("rename", from);
    throw fsError("EACCES", `rename ${log?.name ?? "/"}: logs cannot be renamed`);
  }

  symlink(_target: string, path: string): void {
    this.#find("symlink", path, true);
    throw fsError("EEXIST", `symlink ${normalize(path) || "/"}: file exists`);
  }

  link(existing: string, path: string): void {
    this.#find("link", existing);
    this.#find("link", path, true);
    throw fsError("EEXIST", `link ${normalize(path) || "/"}: file exists`);
  }

  readlink(path: string): string {
    const log = this.#find("readlink", path);
    throw fsError("EINVAL", `readlink ${log?.name ?? "/"}: not a symbolic link`);
  }

  setTimes(path: string, atimeNs: bigint | undefined, mtimeNs: bigint | undefined): void {
    const log = this.#find("setTimes", path);
    if (log === null) throw fsError("EACCES", "setTimes /: the logs directory is the host's");
    applyTimes(log, atimeNs, mtimeNs);
  }

  /** Used by handles. */
  read(log: Log, from: number, length: number): Uint8Array {
    const start = Math.min(from, log.size);
    return log.slice(start, Math.min(start + length, log.size));
  }
}

function byteLength(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

function logStat(log: Log): Stat {
  return { type: "file", size: log.size, ino: log.ino, nlink: 1, atimeNs: log.atimeNs, mtimeNs: log.mtimeNs, ctimeNs: log.ctimeNs };
}


export class LogHandle implements FileHandle {
  position = 0;
  readonly #logs: LogsService;
  readonly #log: Log | null;
  #closed = false;

  constructor(logs: LogsService, log: Log | null) {
    this.#logs = logs;
    this.#log = log;
  }

  #live(op: string): Log {
    const name = this.#log?.name ?? "/";
    if (this.#closed) throw fsError("EBADF", `${op} ${name}: handle is closed`);
    if (this.#log === null) throw fsError("EISDIR", `${op} /: is a directory`);
    return this.#log;
  }

  read(length: number, offset?: number): Uint8Array {
    const log = this.#live("read");
    if (!Number.isSafeInteger(length) || length < 0) throw fsError("EINVAL", `read ${log.name}: bad length ${length}`);
    const at = offset ?? this.position;
    if (!Number.isSafeInteger(at) || at < 0) throw fsError("EINVAL", `read ${log.name}: bad offset ${at}`);
    const out = this.#logs.read(log, at, length);
    if (offset === undefined) this.position = at + out.length;
    return out;
  }

  write(data: Uint8Array, _offset?: number): number {
    const log = this.#live("write");
    const n = this.#logs.append(log.name, data);
    this.position = log.size;
    return n;
  }

  truncate(_size: number): void {
    const log = this.#live("truncate");
    throw fsError("EACCES", `truncate ${log.name}: logs are append-only`);
  }

  setTimes(atimeNs: bigint | undefined, mtimeNs: bigint | undefined): void {
    applyTimes(this.#live("setTimes"), atimeNs, mtimeNs);
  }

  stat(): Stat {
    if (this.#closed) throw fsError("EBADF", `stat ${this.#log?.name ?? "/"}: handle is closed`);
    return this.#log === null ? this.#logs.stat("") : logStat(this.#log);
  }

  sync(): void {
    if (this.#closed) throw fsError("EBADF", `sync ${this.#log?.name ?? "/"}: handle is closed`);
  }

  close(): void {
    if (this.#closed) throw fsError("EBADF", `close ${this.#log?.name ?? "/"}: handle is closed`);
    this.#closed = true;
  }
}
