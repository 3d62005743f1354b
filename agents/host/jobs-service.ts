// JobsService: the NIP-90 customer side as files, for agents — what the nostr capability mounts at
// /cap/nostr/jobs (an agent hires another agent with file operations only).
//
//   new           request/reply: write {"kind","input","params"?,"bid"?,"providers"?,"encrypted"?},
//                 read {"id":"<request id>"}. `input` is a string (one text input) or a list of
//                 {"data","type"?,"relay"?,"marker"?} (type defaults to text).
//   ID/status     the last feedback as JSON: {"status","message"?,"amount"?,"provider"?}; "sent"
//                 before any, "success" once the result arrived, "error"/"cancelled"/"timeout" at
//                 the end.
//   ID/feedback   one feedback event (JSON) per line, in arrival order; a read past what came so
//                 far waits for the next one, and EOF once the job is over.
//   ID/result     a read waits for the result and answers its content (decrypted when encrypted);
//                 ETIMEDOUT at the job's limit, EIO with the provider's reason on error feedback,
//                 EDQUOT when an invoice would pass the budget (nothing is paid), ECANCELED after
//                 a cancel.
//   ID/cancel     write anything: a kind-5 deletion of the request.
//
// Payments: with a wallet, payment-required invoices are paid from one purse shared by every job
// of the mount (`budgetMsats`, the `--budget nostr:msats=N` grant); without one, nothing is paid.
// Every failure is also reported through `onEvent` (the capability's /logs/events.jsonl line).
import { fsError, FsError } from "../../runtime/errors.ts";
import { segments } from "../../runtime/path.ts";
import { nowNs, type DirEntry, type FileHandle, type FileService, type OpenFlags, type Stat } from "../../runtime/types.ts";
import { JobFailed, JobTimeout, OverBudget, submitJob, type Feedback, type JobRequest, type JobResult, type PendingJob } from "./job.ts";
import type { Party } from "./nostr.ts";
import { INPUT_TYPES, type InputType } from "./spec.ts";
import type { WalletClient } from "./nwc.ts";

export interface JobsServiceOptions {
  peer: Party;
  wallet?: WalletClient;
  /** msats the mount may pay, over all its jobs (default 0: a priced job is EDQUOT). */
  budgetMsats?: number;
  /** Each job's limit (default 60 s): result reads answer ETIMEDOUT past it. */
  timeoutMs?: number;
  /** Most jobs one mount may have (default 256). */
  maxJobs?: number;
  onEvent?: (event: Record<string, unknown>) => void;
}

const FILES = ["status", "feedback", "result", "cancel"] as const;
const enc = new TextEncoder();
const MAX_REQUEST = 256 * 1024;

interface Job {
  id: string;
  ino: number;
  pending: PendingJob;
  feedback: Uint8Array;
  status: Record<string, unknown>;
  result?: JobResult;
  error?: FsError;
  over: boolean;
  /** Wakes readers waiting for more feedback or the end. */
  changed: Promise<void>;
  wake: () => void;
}

export class JobsService implements FileService {
  readonly #o: JobsServiceOptions;
  readonly #jobs = new Map<string, Job>();
  readonly #purse: { left: number };
  #ino = 10;
  readonly #born = nowNs();

  constructor(o: JobsServiceOptions) {
    this.#o = o;
    this.#purse = { left: o.budgetMsats ?? 0 };
  }

  /** msats still available to pay invoices. */
  get budgetLeft(): number {
    return this.#purse.left;
  }

  #lookup(path: string): { job?: Job; file?: string } {
    const s = segments(path);
    if (s.length === 0) return {};
    if (s.length === 1 && s[0] === "new") return { file: "new" };
    const job = this.#jobs.get(s[0]!);
    if (!job || s.length > 2 || (s.length === 2 && !(FILES as readonly string[]).includes(s[1]!))) throw fsError("ENOENT", `no ${path} in jobs`, { path });
    return s.length === 2 ? { job, file: s[1]! } : { job };
  }

  stat(path: string): Stat {
    const { job, file } = this.#lookup(path);
    const t = this.#born;
    const ino = file === "new" ? 2 : job ? job.ino + (file ? 1 + FILES.indexOf(file as (typeof FILES)[number]) : 0) : 1;
    return { type: file ? "file" : "dir", size: 0, ino, nlink: 1, atimeNs: t, mtimeNs: t, ctimeNs: t };
  }

  readdir(path: string): DirEntry[] {
    const { job, file } = this.#lookup(path);
    if (file) throw fsError("ENOTDIR", path, { op: "readdir", path });
    if (job) return FILES.map((name) => ({ name, type: "file" as const }));
    return [{ name: "new", type: "file" }, ...[...this.#jobs.keys()].map((name) => ({ name, type: "dir" as const }))];
  }

  open(path: string, flags: OpenFlags): FileHandle {
    const { job, file } = this.#lookup(path);
    if (!file) {
      if (flags.write) throw fsError("EISDIR", path, { op: "open", path });
      return dirHandle(this.stat(path));
    }
    if (flags.create && flags.exclusive) throw fsError("EEXIST", path, { op: "open", path });
    if (file === "new") return new NewHandle(this);
    if (file === "cancel") {
      if (flags.read) throw fsError("EACCES", "cancel is write-only", { op: "open", path });
      return new CancelHandle(this, job!);
    }
    if (flags.write || flags.truncate || flags.append) throw fsError("EACCES", `${file} is read-only`, { op: "open", path });
    if (file === "status") return new TextHandle(() => JSON.stringify(job!.status) + "\n");
    if (file === "feedback") return new FeedbackHandle(job!);
    return new ResultHandle(job!);
  }

  mkdir(path: string): never {
    throw fsError("EACCES", "jobs are made by writing to new", { op: "mkdir", path });
  }
  remove(path: string): never {
    throw fsError("EACCES", "jobs are cancelled by writing to ID/cancel", { op: "remove", path });
  }
  rename(from: string): never {
    throw fsError("EACCES", "jobs cannot be renamed", { op: "rename", path: from });
  }

  // ---- the work behind the files ------------------------------------------------------------

  /** Parses a `new` request and publishes the job; answers its id. */
  async submit(text: string): Promise<string> {
    const r = parseNew(text);
    if (this.#jobs.size >= (this.#o.maxJobs ?? 256)) throw fsError("EAGAIN", `at most ${this.#o.maxJobs ?? 256} jobs per mount`);
    let job: Job | undefined;
    const early: Feedback[] = []; // feedback can come back before the publish is acknowledged
    let pending: PendingJob;
    try {
      pending = await submitJob(this.#o.peer, r, {
        timeoutMs: this.#o.timeoutMs ?? 60_000,
        ...(this.#o.wallet ? { wallet: this.#o.wallet } : {}),
        purse: this.#purse,
        onFeedback: (f) => (job ? this.#feedback(job, f) : early.push(f)),
      });
    } catch (e) {
      this.#o.onEvent?.({ event: "job-failed", code: "EIO", reason: (e as Error).message });
      throw fsError("EIO", `new: ${(e as Error).message}`);
    }
    let wake!: () => void;
    job = {
      id: pending.id, ino: (this.#ino += 8), pending, feedback: new Uint8Array(0), status: { status: "sent" }, over: false,
      changed: new Promise<void>((r) => (wake = r)), wake: () => wake(),
    };
    this.#jobs.set(job.id, job);
    for (const f of early) this.#feedback(job, f);
    const j = job;
    pending.result.then(
      (res) => this.#end(j, { status: "success", provider: res.event.pubkey }, undefined, res),
      (e: Error) => this.#end(j, ...failure(e)),
    );
    return job.id;
  }

  async cancel(job: Job): Promise<void> {
    if (job.over) return;
    this.#end(job, { status: "cancelled" }, fsError("ECANCELED", "the job was cancelled"));
    await job.pending.cancel();
  }

  #feedback(job: Job, f: Feedback): void {
    const line = enc.encode(JSON.stringify(f.event) + "\n");
    const next = new Uint8Array(job.feedback.length + line.length);
    next.set(job.feedback);
    next.set(line, job.feedback.length);
    job.feedback = next;
    job.status = { status: f.status, ...(f.message ? { message: f.message } : {}), ...(f.amount !== undefined ? { amount: f.amount } : {}), provider: f.event.pubkey };
    this.#kick(job);
  }

  #end(job: Job, status: Record<string, unknown>, error?: FsError, result?: JobResult): void {
    if (job.over) return;
    job.over = true;
    job.status = status;
    if (result) job.result = result;
    if (error) {
      job.error = error;
      this.#o.onEvent?.({ event: "job-failed", id: job.id, code: error.code, reason: error.message });
    }
    this.#kick(job);
  }

  #kick(job: Job): void {
    const wake = job.wake;
    job.changed = new Promise<void>((r) => (job.wake = r));
    wake();
  }
}

function failure(e: Error): [Record<string, unknown>, FsError] {
  if (e instanceof OverBudget) return [{ status: "error", message: e.message }, fsError("EDQUOT", e.message)];
  if (e instanceof JobTimeout) return [{ status: "timeout" }, fsError("ETIMEDOUT", e.message)];
  if (e instanceof JobFailed) return [{ status: "error", message: e.message, provider: e.event.pubkey }, fsError("EIO", e.message)];
  return [{ status: "error", message: e.message }, fsError("EIO", e.message)];
}

/** The body written to `new`, checked; EINVAL with the reason. */
export function parseNew(text: string): JobRequest {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw fsError("EINVAL", `new: not JSON (${(e as Error).message})`);
  }
  if (!v || typeof v !== "object" || Array.isArray(v)) throw fsError("EINVAL", "new: expected a JSON object");
  const kind = v.kind;
  if (typeof kind !== "number" || !Number.isInteger(kind) || kind < 5000 || kind > 5999) throw fsError("EINVAL", "new: kind must be a job request kind (5000-5999)");
  const raw = typeof v.input === "string" ? [{ data: v.input }] : v.input;
  if (!Array.isArray(raw) || !raw.length) throw fsError("EINVAL", "new: input must be a string or a non-empty list of {data, type}");
  const inputs = raw.map((i, n) => {
    const x = i as Record<string, unknown>;
    const type = (x?.type ?? "text") as string;
    if (typeof x?.data !== "string" || !x.data) throw fsError("EINVAL", `new: input ${n + 1} needs a data string`);
    if (!(INPUT_TYPES as readonly string[]).includes(type)) throw fsError("EINVAL", `new: input ${n + 1} type must be one of ${INPUT_TYPES.join(", ")}`);
    return { data: x.data, type: type as InputType, ...(typeof x.relay === "string" ? { relay: x.relay } : {}), ...(typeof x.marker === "string" ? { marker: x.marker } : {}) };
  });
  const params: Record<string, string> = {};
  if (v.params !== undefined) {
    if (!v.params || typeof v.params !== "object" || Array.isArray(v.params)) throw fsError("EINVAL", "new: params must be an object of strings");
    for (const [k, p] of Object.entries(v.params)) {
      if (typeof p !== "string") throw fsError("EINVAL", `new: param ${k} must be a string`);
      params[k] = p;
    }
  }
  if (v.bid !== undefined && (!Number.isSafeInteger(v.bid) || (v.bid as number) < 0)) throw fsError("EINVAL", "new: bid must be a whole number of msats");
  const providers = v.providers ?? [];
  if (!Array.isArray(providers) || providers.some((p) => typeof p !== "string" || !/^[0-9a-f]{64}$/.test(p))) throw fsError("EINVAL", "new: providers must be hex pubkeys");
  if (v.encrypted !== undefined && typeof v.encrypted !== "boolean") throw fsError("EINVAL", "new: encrypted must be true or false");
  if (v.encrypted && providers.length !== 1) throw fsError("EINVAL", "new: an encrypted job names exactly one provider");
  return {
    kind, inputs, params,
    ...(v.bid !== undefined ? { bid: v.bid as number } : {}),
    ...(providers.length ? { providers: providers as string[] } : {}),
    ...(v.encrypted ? { encrypted: "nip44" as const } : {}),
  };
}

// ---- handles ---------------------------------------------------------------------------------

abstract class Handle implements FileHandle {
  position = 0;
  stat(): Stat {
    const t = nowNs();
    return { type: "file", size: 0, ino: 0, nlink: 1, atimeNs: t, mtimeNs: t, ctimeNs: t };
  }
  write(_data: Uint8Array, _offset?: number): number | Promise<number> {
    throw fsError("EBADF", "not open for writing");
  }
  read(_length: number, _offset?: number): Uint8Array | Promise<Uint8Array> {
    throw fsError("EBADF", "not open for reading");
  }
  truncate(): void {
    throw fsError("EACCES", "cannot truncate");
  }
  sync(): void {}
  close(): void {}
}

const slice = (bytes: Uint8Array, h: Handle, length: number, offset?: number): Uint8Array => {
  const at = offset ?? h.position;
  const out = bytes.subarray(at, at + length);
  if (offset === undefined) h.position += out.length;
  return out;
};

/** `new`: the request written first, the reply ({"id"}) read after. */
class NewHandle extends Handle {
  readonly transactional = true;
  #request = new Uint8Array(0);
  #reply: Promise<Uint8Array> | null = null;
  readonly #svc: JobsService;
  constructor(svc: JobsService) {
    super();
    this.#svc = svc;
  }
  override write(data: Uint8Array): number {
    if (this.#reply) throw fsError("EINVAL", "new: the request was already sent (one request per open)");
    if (this.#request.length + data.length > MAX_REQUEST) throw fsError("EMSGSIZE", `new: a request is at most ${MAX_REQUEST} bytes`);
    const next = new Uint8Array(this.#request.length + data.length);
    next.set(this.#request);
    next.set(data, this.#request.length);
    this.#request = next;
    return data.length;
  }
  override async read(length: number, offset?: number): Promise<Uint8Array> {
    if (!this.#reply) {
      if (!this.#request.length) throw fsError("EINVAL", "new: write the request before reading the reply");
      const text = new TextDecoder().decode(this.#request);
      this.#reply = this.#svc.submit(text).then((id) => enc.encode(JSON.stringify({ id }) + "\n"));
      this.position = 0;
    }
    return slice(await this.#reply, this, length, offset);
  }
}

class TextHandle extends Handle {
  readonly #text: () => string;
  constructor(text: () => string) {
    super();
    this.#text = text;
  }
  override read(length: number, offset?: number): Uint8Array {
    return slice(enc.encode(this.#text()), this, length, offset);
  }
}

class FeedbackHandle extends Handle {
  readonly #job: Job;
  constructor(job: Job) {
    super();
    this.#job = job;
  }
  override read(length: number, offset?: number): Uint8Array | Promise<Uint8Array> {
    const at = offset ?? this.position;
    if (at < this.#job.feedback.length || this.#job.over) return slice(this.#job.feedback, this, length, offset);
    return this.#job.changed.then(() => this.read(length, offset));
  }
}

class ResultHandle extends Handle {
  readonly #job: Job;
  constructor(job: Job) {
    super();
    this.#job = job;
  }
  override read(length: number, offset?: number): Uint8Array | Promise<Uint8Array> {
    const j = this.#job;
    if (j.result) return slice(enc.encode(j.result.content), this, length, offset);
    if (j.error) throw new FsError(j.error.code, j.error.message.replace(/^[A-Z]+: /, ""), { op: "read", path: `${j.id}/result` });
    return j.changed.then(() => this.read(length, offset));
  }
}

class CancelHandle extends Handle {
  readonly #svc: JobsService;
  readonly #job: Job;
  constructor(svc: JobsService, job: Job) {
    super();
    this.#svc = svc;
    this.#job = job;
  }
  override async write(data: Uint8Array): Promise<number> {
    await this.#svc.cancel(this.#job);
    return data.length;
  }
}

function dirHandle(st: Stat): FileHandle {
  return {
    type: "dir", position: 0,
    read: () => {
      throw fsError("EISDIR", "a directory");
    },
    write: () => {
      throw fsError("EISDIR", "a directory");
    },
    stat: () => st, truncate: () => {
      throw fsError("EISDIR", "a directory");
    },
    sync: () => {}, close: () => {},
  };
}
