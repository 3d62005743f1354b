// TaskService: an agent's job, mounted at /task. Three files and nothing else:
//   spec.json    the job, pretty JSON (2 spaces, final newline); the host's, read-only for the task.
//   status       one word and a newline: queued | running | succeeded | failed. The task may read
//                it; only the host changes it, with `setStatus`.
//   result.json  written by the task; the host reads it with `result()` (parsed) or `resultText()`.
//
// Decisions:
// - Writing spec.json or status in any way (open for write/truncate/append, remove, rename over or
//   away, setTimes) is EACCES, with a message saying who owns the file. No other name can be created
//   (open with create, mkdir, symlink, link, rename to it) — EACCES; opening a missing name without
//   create is ENOENT, and an exclusive create of an existing file is EEXIST, as POSIX would answer.
// - result.json is an ordinary file: create, write at any offset (gaps read as zeros), truncate,
//   append, remove (the task may start over), setTimes. It is bounded by `maxResultBytes` (16 MiB by
//   default): a write or truncate past it is EFBIG and changes nothing.
// - Handles read live contents: a reader of status sees the host's latest value. A removed
//   result.json lives on for the handles still open on it (POSIX unlink), and a new one gets a new ino.
// - The host may set any of the four statuses in any order (retries, re-queues); only the value is
//   checked (EINVAL). `spec` must be JSON-serialisable (EINVAL otherwise); the host reads it back
//   with `task.spec`.
// - inos: root 1, spec.json 2, status 3, each result.json 4, 5, …. Times are nanoseconds; status's
//   mtime is the last setStatus, result.json's the last write.
import { fsError } from "../runtime/errors.ts";
import { normalize, segments } from "../runtime/path.ts";
import { applyTimes, nowNs, type DirEntry, type FileHandle, type FileService, type OpenFlags, type Stat } from "../runtime/types.ts";

export const TASK_STATUSES = ["queued", "running", "succeeded", "failed"] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

export interface TaskServiceOptions {
  /** Initial status; "queued" by default. */
  status?: TaskStatus;
  /** Largest result.json accepted, in bytes (16 MiB by default). */
  maxResultBytes?: number;
}

const encoder = new TextEncoder();

/** One file's bytes and times. `data` may be longer than `size` (room to grow). */
interface TaskFile {
  name: "spec.json" | "status" | "result.json";
  ino: number;
  data: Uint8Array;
  size: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

const isStatus = (s: unknown): s is TaskStatus => typeof s === "string" && (TASK_STATUSES as readonly string[]).includes(s);

export class TaskService implements FileService {
  readonly #spec: TaskFile;
  readonly #status: TaskFile;
  #result: TaskFile | null = null;
  #nextResultIno = 4;
  readonly #maxResult: number;
  readonly #rootTimeNs: bigint;

  constructor(spec: unknown, options: TaskServiceOptions = {}) {
    let json: string | undefined;
    try {
      json = JSON.stringify(spec, null, 2);
    } catch (e) {
      throw fsError("EINVAL", `task spec is not JSON-serialisable: ${(e as Error).message}`);
    }
    if (json === undefined) throw fsError("EINVAL", "task spec is not JSON-serialisable (undefined, a function or a symbol)");
    const status = options.status ?? "queued";
    if (!isStatus(status)) throw fsError("EINVAL", `bad task status ${JSON.stringify(status)}: one of ${TASK_STATUSES.join(", ")}`);
    const max = options.maxResultBytes ?? 16 * 1024 * 1024;
    if (!Number.isSafeInteger(max) || max < 0) throw fsError("EINVAL", `bad maxResultBytes ${max}`);
    this.#maxResult = max;
    const t = nowNs();
    this.#rootTimeNs = t;
    this.#spec = file("spec.json", 2, encoder.encode(json + "\n"), t);
    this.#status = file("status", 3, encoder.encode(status + "\n"), t);
  }

  // ---- host side ----

  /** The spec, parsed again from spec.json (a fresh copy each time). */
  get spec(): unknown {
    return JSON.parse(new TextDecoder().decode(this.#spec.data.subarray(0, this.#spec.size)));
  }

  get status(): TaskStatus {
    return new TextDecoder().decode(this.#status.data.subarray(0, this.#status.size)).trim() as TaskStatus;
  }

  setStatus(s: TaskStatus): void {
    if (!isStatus(s)) throw fsError("EINVAL", `bad task status ${JSON.stringify(s)}: one of ${TASK_STATUSES.join(", ")}`);
    const f = this.#status;
    f.data = encoder.encode(s + "\n");
    f.size = f.data.length;
    f.mtimeNs = f.ctimeNs = nowNs();
  }

  /** The raw text of result.json; ENOENT when the task has not written one. */
  resultText(): string {
    const r = this.#result;
    if (r === null) throw fsError("ENOENT", "result.json: the task has not written a result");
    try {
      return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(r.data.subarray(0, r.size));
    } catch {
      throw fsError("EINVAL", "result.json is not valid JSON: it is not UTF-8 text");
    }
  }

  /** result.json parsed; ENOENT when absent, EINVAL when it does not parse. */
  result(): unknown {
    const text = this.resultText();
    try {
      return JSON.parse(text);
    } catch (e) {
      throw fsError("EINVAL", `result.json is not valid JSON: ${(e as Error).message}`);
    }
  }

  // ---- FileService ----

  /** Resolves a path: null for the root, the file, or an error for anything else. */
  #find(op: string, path: string, create = false): TaskFile | null {
    const segs = segments(path);
    if (segs.length === 0) return null;
    const name = segs[0]!;
    const f = this.#byName(name);
    if (segs.length > 1) {
      if (f) throw fsError("ENOTDIR", `${op} ${segs.join("/")}: ${name} is not a directory`);
      throw fsError("ENOENT", `${op} ${segs.join("/")}: no such file or directory`);
    }
    if (f) return f;
    if (create) {
      throw fsError("EACCES", `${op} ${name}: /task holds only spec.json, status and result.json; only result.json can be created`);
    }
    throw fsError("ENOENT", `${op} ${name}: no such file or directory`);
  }

  #byName(name: string): TaskFile | undefined {
    if (name === "spec.json") return this.#spec;
    if (name === "status") return this.#status;
    if (name === "result.json") return this.#result ?? undefined;
    return undefined;
  }

  #guard(op: string, f: TaskFile): void {
    if (f.name === "spec.json") throw fsError("EACCES", `${op} spec.json: the task spec is the host's; it is read-only for the task`);
    if (f.name === "status") throw fsError("EACCES", `${op} status: the status is set by the host; the task may only read it`);
  }

  open(path: string, flags: OpenFlags): TaskHandle {
    const writes = !!(flags.write || flags.truncate || flags.append);
    const segs = segments(path);
    if (segs.length === 1 && segs[0] === "result.json" && this.#result === null && flags.create) {
      if (flags.directory) throw fsError("ENOENT", "open result.json: no such directory");
      this.#result = file("result.json", this.#nextResultIno++, new Uint8Array(0), nowNs());
      return new TaskHandle(this, this.#result, flags);
    }
    const f = this.#find("open", path, flags.create);
    if (f === null) {
      if (writes) throw fsError("EISDIR", "open /: is a directory");
      if (flags.create && flags.exclusive) throw fsError("EEXIST", "open /: exists");
      return new TaskHandle(this, null, flags);
    }
    if (flags.create && flags.exclusive) throw fsError("EEXIST", `open ${f.name}: file exists`);
    if (flags.directory) throw fsError("ENOTDIR", `open ${f.name}: not a directory`);
    if (writes) this.#guard("open", f);
    if (flags.truncate) this.truncateFile(f, 0);
    return new TaskHandle(this, f, flags);
  }

  stat(path: string): Stat {
    const f = this.#find("stat", path);
    return f === null ? this.#rootStat() : fileStat(f);
  }

  lstat(path: string): Stat {
    return this.stat(path);
  }

  readdir(path: string): DirEntry[] {
    const f = this.#find("readdir", path);
    if (f !== null) throw fsError("ENOTDIR", `readdir ${f.name}: not a directory`);
    const out: DirEntry[] = [];
    if (this.#result) out.push({ name: "result.json", type: "file", ino: this.#result.ino });
    out.push({ name: "spec.json", type: "file", ino: 2 }, { name: "status", type: "file", ino: 3 });
    return out;
  }

  mkdir(path: string): void {
    const segs = segments(path);
    if (segs.length === 0 || (segs.length === 1 && this.#byName(segs[0]!))) {
      throw fsError("EEXIST", `mkdir ${normalize(path) || "/"}: file exists`);
    }
    if (segs.length > 1) this.#find("mkdir", path);
    throw fsError("EACCES", `mkdir ${segs.join("/")}: /task holds only spec.json, status and result.json`);
  }

  remove(path: string): void {
    const f = this.#find("remove", path);
    if (f === null) throw fsError("EBUSY", "remove /: the task directory cannot be removed");
    this.#guard("remove", f);
    this.#result = null;
  }

  rename(from: string, to: string): void {
    const f = this.#find("rename", from);
    if (f === null) throw fsError("EBUSY", "rename /: the task directory cannot be moved");
    const dest = normalize(to);
    if (dest === f.name) return;
    this.#guard("rename", f);
    const target = this.#find("rename", to, true);
    if (target === null) throw fsError("EISDIR", "rename result.json to /: is a directory");
    this.#guard("rename", target);
  }

  symlink(_target: string, path: string): void {
    this.#refuseCreate("symlink", path);
  }

  link(existing: string, path: string): void {
    this.#find("link", existing);
    this.#refuseCreate("link", path);
  }

  #refuseCreate(op: string, path: string): never {
    const segs = segments(path);
    if (segs.length === 0 || (segs.length === 1 && this.#byName(segs[0]!))) {
      throw fsError("EEXIST", `${op} ${normalize(path) || "/"}: file exists`);
    }
    this.#find(op, path, true);
    throw fsError("EACCES", `${op} ${path}: not allowed in /task`);
  }

  readlink(path: string): string {
    const f = this.#find("readlink", path);
    throw fsError("EINVAL", `readlink ${f?.name ?? "/"}: not a symbolic link`);
  }

  setTimes(path: string, atimeNs: bigint | undefined, mtimeNs: bigint | undefined): void {
    const f = this.#find("setTimes", path);
    if (f === null) throw fsError("EACCES", "setTimes /: the task directory is the host's");
    this.#guard("setTimes", f);
    applyTimes(f, atimeNs, mtimeNs);
  }

  #rootStat(): Stat {
    const t = this.#rootTimeNs;
    return { type: "dir", size: this.#result ? 3 : 2, ino: 1, nlink: 2, atimeNs: t, mtimeNs: t, ctimeNs: t };
  }

  // ---- used by handles ----

  writeFile(f: TaskFile, data: Uint8Array, at: number): number {
    this.#guard("write", f);
    const end = at + data.length;
    if (end > this.#maxResult) {
      throw fsError("EFBIG", `write result.json: ${end} bytes is over the ${this.#maxResult}-byte limit`);
    }
    ensure(f, end);
    f.data.set(data, at);
    if (end > f.size) f.size = end;
    f.mtimeNs = f.ctimeNs = nowNs();
    return data.length;
  }

  truncateFile(f: TaskFile, size: number): void {
    this.#guard("truncate", f);
    if (!Number.isSafeInteger(size) || size < 0) throw fsError("EINVAL", `truncate result.json: bad size ${size}`);
    if (size > this.#maxResult) throw fsError("EFBIG", `truncate result.json: ${size} bytes is over the ${this.#maxResult}-byte limit`);
    ensure(f, size);
    if (size < f.size) f.data.fill(0, size, f.size);
    f.size = size;
    f.mtimeNs = f.ctimeNs = nowNs();
  }

  guard(op: string, f: TaskFile): void {
    this.#guard(op, f);
  }
}

function file(name: TaskFile["name"], ino: number, data: Uint8Array, t: bigint): TaskFile {
  return { name, ino, data, size: data.length, atimeNs: t, mtimeNs: t, ctimeNs: t };
}

function fileStat(f: TaskFile): Stat {
  return { type: "file", size: f.size, ino: f.ino, nlink: 1, atimeNs: f.atimeNs, mtimeNs: f.mtimeNs, ctimeNs: f.ctimeNs };
}

function ensure(f: TaskFile, size: number): void {
  if (size <= f.data.length) return;
  const grown = new Uint8Array(Math.max(size, f.data.length * 2, 256));
  grown.set(f.data.subarray(0, f.size));
  f.data = grown;
}


export class TaskHandle implements FileHandle {
  position = 0;
  readonly #task: TaskService;
  readonly #file: TaskFile | null;
  readonly #flags: OpenFlags;
  #closed = false;

  constructor(task: TaskService, f: TaskFile | null, flags: OpenFlags) {
    this.#task = task;
    this.#file = f;
    this.#flags = flags;
  }

  #name(): string {
    return this.#file?.name ?? "/";
  }

  #live(op: string): TaskFile {
    if (this.#closed) throw fsError("EBADF", `${op} ${this.#name()}: handle is closed`);
    if (this.#file === null) throw fsError("EISDIR", `${op} /: is a directory`);
    return this.#file;
  }

  #writable(op: string): TaskFile {
    const f = this.#live(op);
    this.#task.guard(op, f);
    return f;
  }

  read(length: number, offset?: number): Uint8Array {
    const f = this.#live("read");
    if (!Number.isSafeInteger(length) || length < 0) throw fsError("EINVAL", `read ${f.name}: bad length ${length}`);
    const at = offset ?? this.position;
    if (!Number.isSafeInteger(at) || at < 0) throw fsError("EINVAL", `read ${f.name}: bad offset ${at}`);
    const start = Math.min(at, f.size);
    const out = f.data.slice(start, Math.min(start + length, f.size));
    if (offset === undefined) this.position = at + out.length;
    return out;
  }

  write(data: Uint8Array, offset?: number): number {
    const f = this.#writable("write");
    const at = this.#flags.append ? f.size : (offset ?? this.position);
    if (!Number.isSafeInteger(at) || at < 0) throw fsError("EINVAL", `write ${f.name}: bad offset ${at}`);
    const n = this.#task.writeFile(f, data, at);
    if (offset === undefined || this.#flags.append) this.position = at + n;
    return n;
  }

  truncate(size: number): void {
    this.#task.truncateFile(this.#writable("truncate"), size);
  }

  setTimes(atimeNs: bigint | undefined, mtimeNs: bigint | undefined): void {
    const f = this.#live("setTimes");
    this.#task.guard("setTimes", f);
    applyTimes(f, atimeNs, mtimeNs);
  }

  stat(): Stat {
    if (this.#closed) throw fsError("EBADF", `stat ${this.#name()}: handle is closed`);
    if (this.#file === null) return this.#task.stat("");
    return fileStat(this.#file);
  }

  sync(): void {
    if (this.#closed) throw fsError("EBADF", `sync ${this.#name()}: handle is closed`);
  }

  close(): void {
    if (this.#closed) throw fsError("EBADF", `close ${this.#name()}: handle is closed`);
    this.#closed = true;
  }
}
