// One content change gathered from an atomic batch: its consecutive writes and truncates to one
// file (a client's fsync is one such batch) become ONE version, one history row and one audit
// entry, committed when the run of ops on that file ends (ops.ts `settle`). Nobody can see the
// states in between (the batch is all or nothing and runs in one turn of the object), so keeping
// only the last is no loss, and it spares the edge a version, a history row, an audit entry and a
// fold of the file's pieces per write: what made a 100,000-row SQLite take minutes per fsync.
import type { Extent } from "../extents.ts";
import type { WireStat } from "../../services/remote-wire.ts";

/** What one gathered op did: its action (write, truncate) and what its own version would record. */
export interface Step { action: string; detail: Record<string, unknown>; written: number }

export class Change {
  readonly path: string;
  /** The file's content as of the last gathered op (not yet stored). */
  ext: Extent[];
  size: number;
  readonly #steps: Step[] = [];
  /** The answers of the gathered ops: their stats learn the version when it is committed. */
  readonly #stats: WireStat[] = [];

  constructor(path: string, ext: Extent[], size: number) {
    this.path = path;
    this.ext = ext;
    this.size = size;
  }

  add(ext: Extent[], size: number, step: Step): void {
    this.ext = ext;
    this.size = size;
    this.#steps.push(step);
  }

  /** An answer to give the version, mtime and ctime of the commit. */
  answer(stat: WireStat): WireStat {
    this.#stats.push(stat);
    return stat;
  }

  /** One op: its own action and detail. Several: "write" (or "truncate" if all were), and how many and how much. */
  get action(): string {
    const first = this.#steps[0]?.action ?? "write";
    return this.#steps.every((s) => s.action === first) ? first : "write";
  }

  detail(): Record<string, unknown> {
    if (this.#steps.length === 1) return { size: this.size, ...this.#steps[0]!.detail };
    return { size: this.size, ops: this.#steps.length, bytes: this.#steps.reduce((n, s) => n + s.written, 0) };
  }

  /** Gives every gathered answer the committed version and times. */
  committed(version: number, mtime: string, ctime: string): void {
    for (const s of this.#stats) Object.assign(s, { version, mtime, ctime });
  }
}
