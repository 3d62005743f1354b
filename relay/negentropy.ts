// Negentropy protocol version 1 (byte 0x61): range-based set reconciliation, the binary protocol
// NIP-77 carries in hex. Written from the protocol description (hoytech/negentropy,
// docs/negentropy-protocol-v1.md). Pure and synchronous: the relay (nip77.ts) and any client
// (the tests, the bench) use this same file.
//
// Records are (timestamp, 32-byte id), sorted by timestamp then id. A message is the version byte
// and a list of ranges, each an exclusive upper bound, a mode (Skip, Fingerprint, IdList) and a
// payload. Fingerprint = first 16 bytes of SHA-256(sum of the ids as little-endian 256-bit
// integers, mod 2^256 ‖ varint(count)). Range sums come from prefix sums, so any range's
// fingerprint costs one subtraction and one hash.
import { sha256 } from "@noble/hashes/sha2.js";

export const PROTOCOL_VERSION = 0x61;
const ID_SIZE = 32;
const FINGERPRINT_SIZE = 16;
/** A differing range is split into this many sub-ranges... */
const BUCKETS = 16;
/** ...unless it holds fewer than this many records, which are then listed outright. */
const ID_LIST_BELOW = BUCKETS * 2;
/** Room kept under the frame size limit for the range that closes a message. */
const FRAME_SLACK = 200;

const Mode = { Skip: 0, Fingerprint: 1, IdList: 2 } as const;

/** A malformed message or a misuse of the API. The relay answers it with NEG-ERR. */
export class NegentropyError extends Error {
  override name = "NegentropyError";
}

/** An upper bound: a timestamp (Infinity for the end of the universe) and an id prefix (≤ 32 bytes). */
interface Bound {
  timestamp: number;
  prefix: Uint8Array;
}

const EMPTY = new Uint8Array(0);
const INFINITE: Bound = { timestamp: Infinity, prefix: EMPTY };

// ---------------------------------------------------------------- hex

const HEX = "0123456789abcdef";
const HEX_PAIRS: string[] = Array.from({ length: 256 }, (_, i) => HEX[i >> 4]! + HEX[i & 15]!);

export function toHex(bytes: Uint8Array, start = 0, end = bytes.length): string {
  let s = "";
  for (let i = start; i < end; i++) s += HEX_PAIRS[bytes[i]!];
  return s;
}

/** Lowercase (or uppercase) hex to bytes; null if it is not hex of even length. */
export function fromHex(hex: string): Uint8Array | null {
  if (hex.length % 2 !== 0) return null;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) {
    const hi = nibble(hex.charCodeAt(2 * i));
    const lo = nibble(hex.charCodeAt(2 * i + 1));
    if (hi < 0 || lo < 0) return null;
    out[i] = (hi << 4) | lo;
  }
  return out;
}

/** Char code → hex digit value, -1 for anything else. */
const NIBBLE = new Int8Array(256).fill(-1);
for (let i = 0; i < 16; i++) {
  NIBBLE["0123456789abcdef".charCodeAt(i)] = i;
  NIBBLE["0123456789ABCDEF".charCodeAt(i)] = i;
}

function nibble(c: number): number {
  return c < 256 ? NIBBLE[c]! : -1;
}

// ---------------------------------------------------------------- wire encoding

/** A growable byte buffer with the protocol's encoders; timestamps are delta-encoded per message. */
class Writer {
  private buf = new Uint8Array(256);
  length = 0;
  /** The last timestamp written: deltas continue from it (a range built aside starts from the message's). */
  lastTimestamp = 0;

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }
  byte(b: number): void {
    this.room(1);
    this.buf[this.length++] = b;
  }
  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  /** Base-128, most significant digit first, high bit set on every byte but the last. */
  varint(n: number): void {
    if (n < 128) return this.byte(n);
    const digits: number[] = [];
    while (n > 0) {
      digits.push(n % 128);
      n = Math.floor(n / 128);
    }
    for (let i = digits.length - 1; i >= 0; i--) this.byte(i > 0 ? digits[i]! | 0x80 : digits[i]!);
  }
  /** Infinity is 0; anything else is 1 + the difference from the previous timestamp written. */
  bound(b: Bound): void {
    if (b.timestamp === Infinity) {
      this.lastTimestamp = Infinity;
      this.varint(0);
    } else {
      this.varint(1 + b.timestamp - this.lastTimestamp);
      this.lastTimestamp = b.timestamp;
    }
    this.varint(b.prefix.length);
    this.bytes(b.prefix);
  }
  /** Appends a range built aside, continuing from its timestamp. */
  append(w: Writer): void {
    this.bytes(w.result());
    this.lastTimestamp = w.lastTimestamp;
  }
  result(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

class Reader {
  private pos = 0;
  private lastTimestamp = 0;
  private buf: Uint8Array;
  constructor(buf: Uint8Array) {
    this.buf = buf;
  }

  get done(): boolean {
    return this.pos >= this.buf.length;
  }
  byte(): number {
    if (this.pos >= this.buf.length) throw new NegentropyError("message ends in the middle of a range");
    return this.buf[this.pos++]!;
  }
  bytes(n: number): Uint8Array {
    if (this.pos + n > this.buf.length) throw new NegentropyError("message ends in the middle of a range");
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  varint(): number {
    let n = 0;
    for (;;) {
      const b = this.byte();
      n = n * 128 + (b & 0x7f);
      if (n > Number.MAX_SAFE_INTEGER) throw new NegentropyError("varint is too large");
      if ((b & 0x80) === 0) return n;
    }
  }
  bound(): Bound {
    const raw = this.varint();
    let timestamp = raw === 0 ? Infinity : raw - 1;
    if (this.lastTimestamp === Infinity || timestamp === Infinity) timestamp = Infinity;
    else timestamp += this.lastTimestamp;
    if (timestamp !== Infinity && timestamp > Number.MAX_SAFE_INTEGER) throw new NegentropyError("timestamp is too large");
    this.lastTimestamp = timestamp;
    const len = this.varint();
    if (len > ID_SIZE) throw new NegentropyError(`bound id prefix is ${len} bytes, more than ${ID_SIZE}`);
    return { timestamp, prefix: this.bytes(len) };
  }
}

// ---------------------------------------------------------------- storage

/**
 * A sealed, sorted set of records with prefix sums of the ids (8 little-endian 32-bit limbs per
 * entry), so the fingerprint of any range is one subtraction and one SHA-256.
 */
export class NegentropyStorage {
  private pending: Array<{ timestamp: number; id: Uint8Array }> | null = [];
  private timestamps = new Float64Array(0);
  private ids = new Uint8Array(0);
  private sums = new Uint32Array(8);

  /** Adds a record (id as 64 hex characters or 32 bytes). */
  insert(timestamp: number, id: string | Uint8Array): void {
    if (!this.pending) throw new NegentropyError("storage is sealed");
    if (!Number.isSafeInteger(timestamp) || timestamp < 0) throw new NegentropyError("timestamp must be a non-negative integer");
    const bytes = typeof id === "string" ? fromHex(id) : id;
    if (!bytes || bytes.length !== ID_SIZE) throw new NegentropyError("id must be 32 bytes");
    this.pending.push({ timestamp, id: bytes });
  }

  /** Sorts the records and computes the prefix sums. Duplicate ids at one timestamp are refused. */
  seal(): this {
    const items = this.pending;
    if (!items) throw new NegentropyError("storage is already sealed");
    this.pending = null;
    items.sort((a, b) => a.timestamp - b.timestamp || compareBytes(a.id, b.id));
    const n = items.length;
    this.timestamps = new Float64Array(n);
    this.ids = new Uint8Array(n * ID_SIZE);
    for (let i = 0; i < n; i++) {
      this.timestamps[i] = items[i]!.timestamp;
      this.ids.set(items[i]!.id, i * ID_SIZE);
      if (i > 0 && this.timestamps[i - 1] === this.timestamps[i] && compareBytes(items[i - 1]!.id, items[i]!.id) === 0)
        throw new NegentropyError("duplicate record");
    }
    this.computeSums();
    return this;
  }

  /**
   * A sealed storage from records already sorted by (timestamp, id), e.g. straight from an index:
   * `timestamps[i]` and `idsHex[i]` (64 lowercase hex characters). Order is checked, not assumed.
   */
  static fromSorted(timestamps: ArrayLike<number>, idsHex: ArrayLike<string>): NegentropyStorage {
    const s = new NegentropyStorage();
    s.pending = null;
    const n = timestamps.length;
    s.timestamps = Float64Array.from(timestamps);
    s.ids = new Uint8Array(n * ID_SIZE);
    for (let i = 0; i < n; i++) {
      const hex = idsHex[i]!;
      if (hex.length !== 64) throw new NegentropyError("id must be 32 bytes");
      for (let j = 0; j < ID_SIZE; j++) {
        const hi = nibble(hex.charCodeAt(2 * j));
        const lo = nibble(hex.charCodeAt(2 * j + 1));
        if (hi < 0 || lo < 0) throw new NegentropyError("id is not hex");
        s.ids[i * ID_SIZE + j] = (hi << 4) | lo;
      }
      if (i > 0 && (s.timestamps[i - 1]! > s.timestamps[i]! || (s.timestamps[i - 1] === s.timestamps[i] && s.compareAt(i - 1, i) >= 0)))
        throw new NegentropyError("records are not sorted by (timestamp, id) without duplicates");
    }
    s.computeSums();
    return s;
  }

  private compareAt(i: number, j: number): number {
    for (let k = 0; k < ID_SIZE; k++) {
      const d = this.ids[i * ID_SIZE + k]! - this.ids[j * ID_SIZE + k]!;
      if (d !== 0) return d;
    }
    return 0;
  }

  private computeSums(): void {
    const n = this.timestamps.length;
    const sums = new Uint32Array((n + 1) * 8);
    const ids = this.ids;
    for (let i = 0; i < n; i++) {
      let carry = 0;
      const o = i * ID_SIZE;
      for (let limb = 0; limb < 8; limb++) {
        const b = o + limb * 4;
        const word = (ids[b]! | (ids[b + 1]! << 8) | (ids[b + 2]! << 16) | (ids[b + 3]! << 24)) >>> 0;
        const s = sums[i * 8 + limb]! + word + carry;
        sums[(i + 1) * 8 + limb] = s >>> 0;
        carry = s > 0xffffffff ? 1 : 0;
      }
    }
    this.sums = sums;
  }

  get size(): number {
    if (this.pending) throw new NegentropyError("storage is not sealed");
    return this.timestamps.length;
  }

  timestampAt(i: number): number {
    return this.timestamps[i]!;
  }

  idAt(i: number): Uint8Array {
    return this.ids.subarray(i * ID_SIZE, (i + 1) * ID_SIZE);
  }

  /** The 16-byte fingerprint of records [begin, end). */
  fingerprint(begin: number, end: number): Uint8Array {
    const sum = new Uint8Array(ID_SIZE);
    let borrow = 0;
    for (let limb = 0; limb < 8; limb++) {
      let d = this.sums[end * 8 + limb]! - this.sums[begin * 8 + limb]! - borrow;
      borrow = d < 0 ? 1 : 0;
      if (d < 0) d += 0x100000000;
      sum[limb * 4] = d & 0xff;
      sum[limb * 4 + 1] = (d >>> 8) & 0xff;
      sum[limb * 4 + 2] = (d >>> 16) & 0xff;
      sum[limb * 4 + 3] = (d >>> 24) & 0xff;
    }
    const w = new Writer();
    w.bytes(sum);
    w.varint(end - begin);
    return sha256(w.result()).subarray(0, FINGERPRINT_SIZE);
  }

  /** The first index in [begin, end) whose record is not below `bound` (end if none). */
  lowerBound(begin: number, end: number, bound: Bound): number {
    let lo = begin;
    let hi = end;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.below(mid, bound)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Whether record i sorts before the bound (whose id prefix is padded with zero bytes). */
  private below(i: number, b: Bound): boolean {
    const t = this.timestamps[i]!;
    if (t !== b.timestamp) return t < b.timestamp;
    const o = i * ID_SIZE;
    for (let k = 0; k < ID_SIZE; k++) {
      const x = this.ids[o + k]!;
      const y = k < b.prefix.length ? b.prefix[k]! : 0;
      if (x !== y) return x < y;
    }
    return false;
  }

  /** The shortest bound separating record i-1 from record i. */
  minimalBound(i: number): Bound {
    const t = this.timestamps[i]!;
    if (this.timestamps[i - 1] !== t) return { timestamp: t, prefix: EMPTY };
    const a = (i - 1) * ID_SIZE;
    const b = i * ID_SIZE;
    let shared = 0;
    while (shared < ID_SIZE && this.ids[a + shared] === this.ids[b + shared]) shared++;
    return { timestamp: t, prefix: this.ids.slice(b, b + Math.min(shared + 1, ID_SIZE)) };
  }
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && compareBytes(a, b) === 0;
}

// ---------------------------------------------------------------- the protocol

export interface ReconcileResult {
  /** The next message to send; for the initiator, null once reconciliation is complete. */
  message: Uint8Array | null;
  /** Ids (hex) this side has and the other lacks. Filled on the initiator only. */
  have: string[];
  /** Ids (hex) the other side has and this one lacks. Filled on the initiator only. */
  need: string[];
}

/**
 * One side of a reconciliation. The initiator calls `initiate()` then `reconcile()` on each answer
 * until it returns a null message; the other side calls `reconcile()` on each message it gets.
 * `frameSizeLimit` (bytes, 0 = none, else ≥ 4096) bounds every message this side produces; what does
 * not fit is left for later rounds.
 */
export class Negentropy {
  private initiator = false;
  private storage: NegentropyStorage;
  private frameSizeLimit: number;

  constructor(storage: NegentropyStorage, frameSizeLimit = 0) {
    this.storage = storage;
    this.frameSizeLimit = frameSizeLimit;
    if (frameSizeLimit !== 0 && (!Number.isInteger(frameSizeLimit) || frameSizeLimit < 4096))
      throw new NegentropyError("frameSizeLimit must be 0 or at least 4096");
    storage.size; // throws unless sealed
  }

  initiate(): Uint8Array {
    if (this.initiator) throw new NegentropyError("already initiated");
    this.initiator = true;
    const out = new Writer();
    out.byte(PROTOCOL_VERSION);
    this.splitRange(0, this.storage.size, INFINITE, out);
    return out.result().slice();
  }

  reconcile(message: Uint8Array): ReconcileResult {
    const have: string[] = [];
    const need: string[] = [];
    const r = new Reader(message);
    const version = r.byte();
    if (version < 0x60 || version > 0x6f) throw new NegentropyError("not a negentropy message (bad protocol version byte)");
    if (version !== PROTOCOL_VERSION) {
      if (this.initiator) throw new NegentropyError(`peer wants unsupported protocol version ${version - 0x60}`);
      // The answer to a version we do not speak is the version we do: the client may retry with it.
      return { message: Uint8Array.of(PROTOCOL_VERSION), have, need };
    }

    const s = this.storage;
    const full = new Writer();
    full.byte(PROTOCOL_VERSION);
    let prevIndex = 0;
    let prevBound: Bound = { timestamp: 0, prefix: EMPTY };
    let skip = false;

    while (!r.done) {
      let o = new Writer();
      o.lastTimestamp = full.lastTimestamp;
      const flushSkip = () => {
        if (!skip) return;
        skip = false;
        o.bound(prevBound);
        o.varint(Mode.Skip);
      };
      const bound = r.bound();
      const mode = r.varint();
      const lower = prevIndex;
      let upper = s.lowerBound(prevIndex, s.size, bound);

      if (mode === Mode.Skip) {
        skip = true;
      } else if (mode === Mode.Fingerprint) {
        const theirs = r.bytes(FINGERPRINT_SIZE);
        if (sameBytes(theirs, s.fingerprint(lower, upper))) skip = true;
        else {
          flushSkip();
          this.splitRange(lower, upper, bound, o);
        }
      } else if (mode === Mode.IdList) {
        const count = r.varint();
        if (count * ID_SIZE > message.length) throw new NegentropyError("IdList is longer than the message");
        const theirs = new Set<string>();
        for (let i = 0; i < count; i++) theirs.add(toHex(r.bytes(ID_SIZE)));
        if (this.initiator) {
          for (let i = lower; i < upper; i++) {
            const id = toHex(s.idAt(i));
            if (!theirs.delete(id)) have.push(id);
          }
          for (const id of theirs) need.push(id);
          skip = true;
        } else {
          flushSkip();
          // The server answers with its own complete list, cut short (and bounded) at the frame limit.
          let end = upper;
          let endBound = bound;
          for (let i = lower; i < upper; i++) {
            if (this.exceeds(full.length + (i - lower) * ID_SIZE)) {
              end = i;
              endBound = { timestamp: s.timestampAt(i), prefix: s.idAt(i).slice() };
              break;
            }
          }
          upper = end;
          o.bound(endBound);
          o.varint(Mode.IdList);
          o.varint(end - lower);
          for (let i = lower; i < end; i++) o.bytes(s.idAt(i));
          // The list is kept even if it fills the frame; the limit check below then cuts after it.
          full.append(o);
          o = new Writer();
          o.lastTimestamp = full.lastTimestamp;
        }
      } else {
        throw new NegentropyError(`unknown range mode ${mode}`);
      }

      if (this.exceeds(full.length + o.length)) {
        // No room: one fingerprint for everything from here to the end, to be split next round.
        full.bound(INFINITE);
        full.varint(Mode.Fingerprint);
        full.bytes(s.fingerprint(upper, s.size));
        break;
      }
      full.append(o);
      prevIndex = upper;
      prevBound = bound;
    }

    const out = full.result().slice();
    return { message: this.initiator && out.length === 1 ? null : out, have, need };
  }

  private exceeds(n: number): boolean {
    return this.frameSizeLimit !== 0 && n > this.frameSizeLimit - FRAME_SLACK;
  }

  /** Describes records [lower, upper) ending at `upperBound`: an IdList when few, else 16 fingerprinted buckets. */
  private splitRange(lower: number, upper: number, upperBound: Bound, o: Writer): void {
    const n = upper - lower;
    if (n < ID_LIST_BELOW) {
      o.bound(upperBound);
      o.varint(Mode.IdList);
      o.varint(n);
      for (let i = lower; i < upper; i++) o.bytes(this.storage.idAt(i));
      return;
    }
    const per = Math.floor(n / BUCKETS);
    const extra = n % BUCKETS;
    let cur = lower;
    for (let b = 0; b < BUCKETS; b++) {
      const size = per + (b < extra ? 1 : 0);
      const fp = this.storage.fingerprint(cur, cur + size);
      cur += size;
      o.bound(cur === upper ? upperBound : this.storage.minimalBound(cur));
      o.varint(Mode.Fingerprint);
      o.bytes(fp);
    }
  }
}

/** Hex wrappers for NIP-77, whose messages are hex strings. */
export function reconcileHex(ne: Negentropy, hex: string): { message: string | null; have: string[]; need: string[] } {
  const bytes = fromHex(hex);
  if (!bytes) throw new NegentropyError("message is not hex");
  const r = ne.reconcile(bytes);
  return { message: r.message === null ? null : toHex(r.message), have: r.have, need: r.need };
}
