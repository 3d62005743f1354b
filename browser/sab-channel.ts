// A request/reply channel over one SharedArrayBuffer, between a thread that may block (the guest's:
// Atomics.wait) and one that must not (the services': Atomics.waitAsync). Without JSPI this is how
// a guest waits on a service that answers with a Promise: it blocks, another thread does the work.
//
// Layout: four int32 words, then the data area.
//   STATE  who holds the buffer (below)      LEN    bytes of this chunk in the data area
//   MORE   1 when more chunks follow          TOTAL  bytes of the whole message
// A message longer than the data area goes in chunks, each acknowledged by the reader
// (REQ_NEXT, REP_NEXT) before the writer overwrites it. One request at a time: the guest is one thread.
//
//   client                     state                     server
//   writes a chunk      →  REQ                  →  reads it (REQ_NEXT if MORE: client writes the next)
//   waits               ←  REP                  ←  writes a reply chunk (client answers REP_NEXT if MORE)
//   reads the last      →  IDLE
// CLOSED ends the channel from either side; a client waiting on it is told at once.

const STATE = 0, LEN = 1, MORE = 2, TOTAL = 3;
const HEADER = 16;

const IDLE = 0, REQ = 1, REQ_NEXT = 2, REP = 3, REP_NEXT = 4, CLOSED = 5;

/** The data area's default size: a smallfile op fits many times over; a 1 MiB read is 16 chunks. */
export const DEFAULT_CAPACITY = 64 << 10;

export function newChannel(capacity = DEFAULT_CAPACITY): SharedArrayBuffer {
  if (typeof SharedArrayBuffer !== "function")
    throw new Error("SharedArrayBuffer is missing: the page must be cross-origin isolated (served with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp)");
  return new SharedArrayBuffer(HEADER + capacity);
}

/** The client stopped waiting: its deadline passed, or the channel was closed. The channel is done. */
export class ChannelDown extends Error {
  readonly timedOut: boolean;
  constructor(message: string, timedOut: boolean) {
    super(message);
    this.name = "ChannelDown";
    this.timedOut = timedOut;
  }
}

/** The guest's side: `call` blocks the thread until the reply is in. */
export class BlockingClient {
  readonly #i32: Int32Array;
  readonly #data: Uint8Array;
  readonly #deadline: number;
  #down: ChannelDown | null = null;

  /** `deadline` is a performance.now() time past which a wait gives up (ChannelDown, timedOut). */
  constructor(sab: SharedArrayBuffer, deadline = Infinity) {
    this.#i32 = new Int32Array(sab, 0, HEADER / 4);
    this.#data = new Uint8Array(sab, HEADER);
    this.#deadline = deadline;
  }

  /** Set when a wait gave up or the other side closed: every later call fails with it. */
  get down(): ChannelDown | null {
    return this.#down;
  }

  call(req: Uint8Array): Uint8Array {
    if (this.#down) throw this.#down;
    this.#send(req);
    return this.#receive();
  }

  #send(req: Uint8Array): void {
    const i32 = this.#i32;
    const cap = this.#data.length;
    let at = 0;
    for (;;) {
      const n = Math.min(cap, req.length - at);
      this.#data.set(req.subarray(at, at + n));
      at += n;
      i32[LEN] = n;
      i32[MORE] = at < req.length ? 1 : 0;
      i32[TOTAL] = req.length;
      this.#move(at === n ? IDLE : REQ_NEXT, REQ);
      Atomics.notify(i32, STATE);
      if (at >= req.length) return;
      this.#expect(this.#waitWhile(REQ), REQ_NEXT);
    }
  }

  /** STATE from → to, unless the other side closed the channel meanwhile (never written over). */
  #move(from: number, to: number): void {
    this.#expect(Atomics.compareExchange(this.#i32, STATE, from, to), from);
  }

  #receive(): Uint8Array {
    const i32 = this.#i32;
    let out: Uint8Array | null = null;
    let at = 0;
    let waiting = REQ;
    for (;;) {
      this.#expect(this.#waitWhile(waiting), REP);
      const n = i32[LEN]!;
      out ??= new Uint8Array(i32[TOTAL]!);
      out.set(this.#data.subarray(0, n), at);
      at += n;
      if (!i32[MORE]) {
        this.#move(REP, IDLE);
        return out;
      }
      this.#move(REP, REP_NEXT);
      Atomics.notify(i32, STATE);
      waiting = REP_NEXT;
    }
  }

  /** Blocks while STATE is `state`; answers the new state. */
  #waitWhile(state: number): number {
    for (;;) {
      const s = Atomics.load(this.#i32, STATE);
      if (s !== state) return s;
      const left = this.#deadline - performance.now();
      if (left <= 0) throw (this.#down = new ChannelDown("no reply from the services' thread before the deadline", true));
      Atomics.wait(this.#i32, STATE, state, left === Infinity ? undefined : left);
    }
  }

  #expect(s: number, want: number): void {
    if (s === want) return;
    if (s === CLOSED) throw (this.#down = new ChannelDown("the services' thread closed the channel", false));
    throw (this.#down = new ChannelDown(`channel out of step: state ${s}, expected ${want}`, false));
  }
}

/** The services' side: answers requests, one at a time, until closed. Never blocks its thread. */
export class ChannelServer {
  readonly #i32: Int32Array;
  readonly #data: Uint8Array;
  #closed = false;
  #onClose!: () => void;
  /** Settles on close(): an answer still pending then is not waited for. */
  readonly #closing = new Promise<void>((res) => (this.#onClose = res));

  constructor(sab: SharedArrayBuffer) {
    if (typeof (Atomics as { waitAsync?: unknown }).waitAsync !== "function")
      throw new Error("Atomics.waitAsync is missing in this browser: the JSPI-free path needs it (Chromium 87+, Safari 16.4+, Node 16+)");
    this.#i32 = new Int32Array(sab, 0, HEADER / 4);
    this.#data = new Uint8Array(sab, HEADER);
  }

  /** Serves until close(). `answer` may throw: encode failures as replies, or the client is left waiting. */
  async serve(answer: (req: Uint8Array) => Uint8Array | Promise<Uint8Array>): Promise<void> {
    for (;;) {
      if ((await this.#waitFor(REQ)) === CLOSED) return;
      const req = await this.#receive();
      if (!req) return;
      const pending = Promise.resolve().then(() => answer(req));
      pending.catch(() => {});
      const reply = await Promise.race([pending, this.#closing]);
      if (this.#closed || !reply) return;
      if (!(await this.#send(reply))) return;
    }
  }

  /** Ends the channel: the loop returns and a client waiting is told (ChannelDown). */
  close(): void {
    this.#closed = true;
    this.#onClose();
    Atomics.store(this.#i32, STATE, CLOSED);
    Atomics.notify(this.#i32, STATE);
  }

  async #receive(): Promise<Uint8Array | null> {
    const i32 = this.#i32;
    let out: Uint8Array | null = null;
    let at = 0;
    for (;;) {
      const n = i32[LEN]!;
      out ??= new Uint8Array(i32[TOTAL]!);
      out.set(this.#data.subarray(0, n), at);
      at += n;
      if (!i32[MORE]) return out;
      Atomics.store(i32, STATE, REQ_NEXT);
      Atomics.notify(i32, STATE);
      if ((await this.#waitFor(REQ)) === CLOSED) return null;
    }
  }

  async #send(reply: Uint8Array): Promise<boolean> {
    const i32 = this.#i32;
    const cap = this.#data.length;
    let at = 0;
    for (;;) {
      const n = Math.min(cap, reply.length - at);
      this.#data.set(reply.subarray(at, at + n));
      at += n;
      i32[LEN] = n;
      i32[MORE] = at < reply.length ? 1 : 0;
      i32[TOTAL] = reply.length;
      Atomics.store(i32, STATE, REP);
      Atomics.notify(i32, STATE);
      if (at >= reply.length) return true;
      if ((await this.#waitFor(REP_NEXT)) === CLOSED) return false;
    }
  }

  /** Waits (without blocking the thread) until STATE is `want` or CLOSED. */
  async #waitFor(want: number): Promise<number> {
    for (;;) {
      const s = Atomics.load(this.#i32, STATE);
      if (s === want || s === CLOSED || this.#closed) return this.#closed ? CLOSED : s;
      const w = Atomics.waitAsync(this.#i32, STATE, s);
      if (w.async) await w.value;
    }
  }
}
