// Byte streams behind clone files. A Pipe is pushed into (stream deltas, event lines) and read
// from with waiting; a Pull reads a ReadableStream on demand, so a slow reader holds the sender
// back instead of buffering the whole body.
import { fsError, type FsError } from "../../runtime/errors.ts";
import type { MaybePromise } from "../../runtime/types.ts";

export class Pipe {
  #chunks: Uint8Array[] = [];
  #ended = false;
  #error: FsError | null = null;
  #wake: (() => void) | null = null;
  #size = 0;
  #drain: { below: number; resolve: () => void }[] = [];

  push(b: Uint8Array): void {
    if (this.#ended || !b.length) return;
    this.#chunks.push(b);
    this.#size += b.length;
    this.#kick();
  }
  /** Bytes pushed and not yet read. */
  get buffered(): number {
    return this.#size;
  }
  /** Resolves once fewer than `n` bytes are buffered (or the pipe ends). */
  below(n: number): Promise<void> {
    if (this.#size < n || this.#ended) return Promise.resolve();
    return new Promise((resolve) => this.#drain.push({ below: n, resolve }));
  }
  #taken(n: number): void {
    this.#size -= n;
    if (this.#drain.length) {
      const ready = this.#drain.filter((d) => this.#size < d.below);
      this.#drain = this.#drain.filter((d) => this.#size >= d.below);
      for (const d of ready) d.resolve();
    }
  }
  end(): void {
    this.#ended = true;
    this.#kick();
  }
  fail(e: FsError): void {
    if (this.#ended) return;
    this.#error = e;
    this.#ended = true;
    this.#kick();
  }
  get ended(): boolean {
    return this.#ended;
  }
  #kick(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
    if (this.#ended) for (const d of this.#drain.splice(0)) d.resolve();
  }

  /** Up to `max` bytes, waiting for some; an empty array at the end. */
  read(max: number): MaybePromise<Uint8Array> {
    const head = this.#chunks[0];
    if (head) {
      if (head.length <= max) {
        this.#chunks.shift();
        this.#taken(head.length);
        return head;
      }
      this.#chunks[0] = head.subarray(max);
      this.#taken(max);
      return head.subarray(0, max);
    }
    if (this.#error) throw this.#error;
    if (this.#ended) return new Uint8Array(0);
    return new Promise<void>((r) => (this.#wake = r)).then(() => this.read(max));
  }
}

/** Reads a ReadableStream in pieces of at most `max` bytes. */
export class Pull {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  #left: Uint8Array | null = null;
  #done = false;
  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }
  read(max: number): MaybePromise<Uint8Array> {
    const left = this.#left;
    if (left) {
      this.#left = left.length > max ? left.subarray(max) : null;
      return left.subarray(0, max);
    }
    if (this.#done) return new Uint8Array(0);
    return this.#reader.read().then(({ done, value }) => {
      if (done) {
        this.#done = true;
        return new Uint8Array(0);
      }
      this.#left = value;
      return this.read(max);
    });
  }
  cancel(): void {
    this.#done = true;
    this.#reader.cancel().catch(() => {});
  }
}

/** Whole messages (a WebSocket's): each read takes exactly one, EMSGSIZE if it does not fit. */
export class MessageQueue {
  #items: Uint8Array[] = [];
  #ended = false;
  #wake: (() => void) | null = null;
  push(m: Uint8Array): void {
    this.#items.push(m);
    this.#kick();
  }
  end(): void {
    this.#ended = true;
    this.#kick();
  }
  #kick(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }
  read(max: number): MaybePromise<Uint8Array> {
    const head = this.#items[0];
    if (head) {
      if (head.length > max) throw fsError("EMSGSIZE", `the next message is ${head.length} bytes; read with a buffer at least that big`);
      this.#items.shift();
      return head;
    }
    if (this.#ended) return new Uint8Array(0);
    return new Promise<void>((r) => (this.#wake = r)).then(() => this.read(max));
  }
}
