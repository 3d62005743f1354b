// The request/reply pattern (Plan 9's ctl files, webfs): open read-write, write one request (every
// byte written before the first read), then read the reply from the same handle until EOF. The
// first read sends the request; the reply arrives whole or not at all (a failure is an errno on
// that read, never half a reply). A second request on the handle, or a read before any write, is
// EINVAL. Closing the handle aborts a request still in flight.
import { fsError, type FsError } from "../../runtime/errors.ts";
import { nowNs, type FileHandle, type MaybePromise, type OpenFlags, type Stat } from "../../runtime/types.ts";
import { file, type CapFile } from "./tree.ts";

export type Answer = (request: Uint8Array, signal: AbortSignal) => MaybePromise<Uint8Array>;

export interface ReqReplyOptions {
  /** Largest request in bytes (EFBIG past it); 1 MiB by default. */
  maxRequest?: number;
  /** Turns a failure into the FsError the guest sees (and logs it). */
  fail: (e: unknown) => FsError;
}

export const MiB = 1 << 20;

/** A request/reply file: every handle is one request answered by `answer`. */
export function reqReplyFile(answer: Answer, o: ReqReplyOptions): CapFile {
  return file((flags: OpenFlags) => {
    if (!flags.read || !flags.write) throw o.fail(fsError("EINVAL", "open request/reply files read-write (write the request, then read the reply)"));
    return new ReqReplyHandle(answer, o);
  });
}

export class ReqReplyHandle implements FileHandle {
  readonly transactional = true;
  position = 0;
  readonly #answer: Answer;
  readonly #o: ReqReplyOptions;
  readonly #abort = new AbortController();
  #chunks: Uint8Array[] = [];
  #size = 0;
  #wrote = false;
  #pending: Promise<void> | null = null;
  #reply: Uint8Array | null = null;
  #error: FsError | null = null;
  #closed = false;

  constructor(answer: Answer, o: ReqReplyOptions) {
    this.#answer = answer;
    this.#o = o;
  }

  write(data: Uint8Array): number {
    if (this.#closed) throw fsError("EBADF", "write: handle is closed");
    if (this.#pending) throw this.#o.fail(fsError("EINVAL", "one request per handle: open the file again for another request"));
    const max = this.#o.maxRequest ?? MiB;
    if (this.#size + data.length > max) throw this.#o.fail(fsError("EFBIG", `request over the ${max}-byte limit`));
    this.#wrote = true;
    this.#chunks.push(data.slice());
    this.#size += data.length;
    this.position += data.length;
    return data.length;
  }

  read(length: number, offset?: number): MaybePromise<Uint8Array> {
    if (this.#closed) throw fsError("EBADF", "read: handle is closed");
    if (this.#reply) return this.#slice(this.#reply, length, offset);
    if (this.#error) throw this.#error;
    if (!this.#pending) {
      if (!this.#wrote) throw this.#o.fail(fsError("EINVAL", "read before any request: write the request first"));
      const request = concat(this.#chunks, this.#size);
      this.#chunks = [];
      this.position = 0;
      let v: MaybePromise<Uint8Array>;
      try {
        v = this.#answer(request, this.#abort.signal);
      } catch (e) {
        this.#pending = Promise.resolve();
        throw (this.#error = this.#o.fail(e));
      }
      if (!(v instanceof Promise)) {
        this.#pending = Promise.resolve();
        this.#reply = v;
        return this.#slice(v, length, offset);
      }
      this.#pending = v.then(
        (r) => { this.#reply = r; },
        // A request abandoned by closing its handle is not a failure worth a log line.
        (e) => { this.#error = this.#closed ? fsError("ECANCELED", "the handle was closed") : this.#o.fail(e); },
      );
    }
    return this.#pending.then(() => this.read(length, offset));
  }

  #slice(reply: Uint8Array, length: number, offset?: number): Uint8Array {
    const at = offset ?? this.position;
    const out = reply.subarray(Math.min(at, reply.length), Math.min(at + length, reply.length));
    if (offset === undefined) this.position = at + out.length;
    return out;
  }

  stat(): Stat {
    const t = nowNs();
    return { type: "file", size: this.#reply?.length ?? 0, ino: 0, nlink: 1, atimeNs: t, mtimeNs: t, ctimeNs: t };
  }
  truncate(): void {
    throw fsError("EINVAL", "truncate: a request/reply file cannot be truncated");
  }
  sync(): void {}
  close(): void {
    if (this.#closed) throw fsError("EBADF", "close: handle is closed");
    this.#closed = true;
    // Only a request still in flight is aborted: aborting a finished fetch costs as much as the
    // fetch itself (undici tears down what it kept for the request).
    if (this.#pending && !this.#reply && !this.#error) this.#abort.abort(fsError("ECANCELED", "the handle was closed"));
  }
}

export function concat(chunks: Uint8Array[], size = chunks.reduce((n, c) => n + c.length, 0)): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(size);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
const encoder = new TextEncoder();

/** The request as JSON, or EINVAL with the parser's reason. */
export function parseJson(request: Uint8Array, what: string): unknown {
  let text: string;
  try {
    text = decoder.decode(request);
  } catch {
    throw fsError("EINVAL", `${what}: the request is not UTF-8`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw fsError("EINVAL", `${what}: the request is not JSON (${(e as Error).message})`);
  }
}

export const jsonReply = (v: unknown): Uint8Array => encoder.encode(JSON.stringify(v) + "\n");

export const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Base64 through btoa/atob (there in Node, browsers and Workers), in chunks for big inputs. */
export function toBase64(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
}

export function fromBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
