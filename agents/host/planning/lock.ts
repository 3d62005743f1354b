// The driver's lock: one process drives a run at a time, wherever the workspace is (a directory,
// memory, an edge workspace shared by a CLI and the edge's Durable Object).
//
// A lock is a lease in the run's directory: plans/RUN/lock.N holds {owner, expires}. N only grows,
// so taking the lock is creating lock.(N+1) with O_EXCL: of two racers exactly one succeeds, on
// every FileService that honours `exclusive` (mem, dir, the edge's workspace object). A live lease
// held by someone else refuses; an expired one (or one whose owner the host knows is dead, or a
// released one) is taken by creating the next generation. The holder renews the lease while it
// drives and checks, before each checkpoint, that no newer generation exists; a driver that lost
// the lease (it stalled past the expiry and someone took over) stops without writing.
import { FsError } from "../../../runtime/errors.ts";
import type { FileService } from "../../../runtime/types.ts";
import { list, readText, writeText } from "./files.ts";
import { runDir } from "./record.ts";

export interface LockOptions {
  /** Who drives ("cli:PID@HOST#…", "edge:RUN"): the same owner may take its own live lease back. */
  owner: string;
  /** How long a lease lasts without renewal (default 90 s); renewed every third of it. */
  ttlMs?: number;
  now?: () => number;
  /** Whether the owner of a live lease is still alive: false takes it at once (a crashed CLI on
   * this host); undefined when the host cannot tell. */
  alive?: (owner: string) => boolean | undefined;
}

interface Lease { owner: string; expires: number; released?: boolean }

type Resolved = Required<Omit<LockOptions, "alive">> & Pick<LockOptions, "alive">;

/** Another driver holds the run. */
export class LockBusy extends Error {
  readonly run: string;
  readonly holder: string;
  readonly expires: number;
  constructor(run: string, holder: string, expires: number) {
    super(`run ${run} is being driven by ${holder} (its lease runs until ${new Date(expires).toISOString()})`);
    this.run = run;
    this.holder = holder;
    this.expires = expires;
  }
}

/** This driver's lease was taken over: it must stop without writing the record. */
export class LockLost extends Error {}

const GEN = /^lock\.(\d+)$/;

async function generations(fs: FileService, run: string): Promise<number[]> {
  return (await list(fs, runDir(run))).flatMap((e) => {
    const m = GEN.exec(e.name);
    return m ? [Number(m[1])] : [];
  }).sort((a, b) => a - b);
}

const leasePath = (run: string, n: number): string => `${runDir(run)}/lock.${n}`;

async function readLease(fs: FileService, run: string, n: number): Promise<Lease | null> {
  try {
    const v = JSON.parse((await readText(fs, leasePath(run, n))) ?? "null") as Lease | null;
    return v && typeof v.owner === "string" && typeof v.expires === "number" ? v : null;
  } catch {
    return null; // A lease cut by a crash is no lease.
  }
}

export class RunLock {
  readonly #fs: FileService;
  readonly #run: string;
  readonly #o: Resolved;
  readonly #gen: number;
  #timer: ReturnType<typeof setInterval> | undefined;
  #lost = false;

  private constructor(fs: FileService, run: string, o: Resolved, gen: number) {
    this.#fs = fs;
    this.#run = run;
    this.#o = o;
    this.#gen = gen;
  }

  /** Takes the run's lease, or throws LockBusy naming who holds it. */
  static async acquire(fs: FileService, run: string, opts: LockOptions): Promise<RunLock> {
    const o: Resolved = { ttlMs: 90_000, now: Date.now, ...opts };
    for (let tries = 0; tries < 8; tries++) {
      const gens = await generations(fs, run);
      const top = gens.at(-1) ?? 0;
      if (top) {
        const cur = await readLease(fs, run, top);
        const live = cur && !cur.released && cur.expires > o.now() && cur.owner !== o.owner && o.alive?.(cur.owner) !== false;
        if (live) throw new LockBusy(run, cur.owner, cur.expires);
      }
      const lock = new RunLock(fs, run, o, top + 1);
      try {
        const h = await fs.open(leasePath(run, top + 1), { write: true, create: true, exclusive: true });
        try {
          await h.write(new TextEncoder().encode(lock.#lease(false)), 0);
          await h.sync();
        } finally {
          await h.close();
        }
      } catch (e) {
        if (e instanceof FsError && e.code === "EEXIST") continue; // a racer took this generation: look again
        throw e;
      }
      // Older generations are history now; removing them keeps the directory to one lease.
      for (const g of gens) await Promise.resolve(fs.remove(leasePath(run, g))).catch(() => {});
      lock.#timer = setInterval(() => void lock.renew().catch(() => {}), Math.max(1000, Math.floor(o.ttlMs / 3)));
      return lock;
    }
    throw new LockBusy(run, "another driver (the lock kept changing hands)", o.now());
  }

  get generation(): number {
    return this.#gen;
  }

  #lease(released: boolean): string {
    const l: Lease = { owner: this.#o.owner, expires: this.#o.now() + this.#o.ttlMs, ...(released ? { released: true } : {}) };
    return JSON.stringify(l) + "\n";
  }

  /** Throws LockLost if a newer generation exists (someone took over an expired lease). */
  async check(): Promise<void> {
    if (this.#lost) throw new LockLost(`run ${this.#run}: the lease was taken over; this driver stops`);
    const top = (await generations(this.#fs, this.#run)).at(-1) ?? 0;
    if (top !== this.#gen) {
      this.#lost = true;
      this.#stop();
      throw new LockLost(`run ${this.#run}: the lease was taken over (generation ${top}, this driver held ${this.#gen}); this driver stops`);
    }
  }

  /** Extends the lease (only while this driver still holds it). */
  async renew(): Promise<void> {
    await this.check();
    await writeText(this.#fs, leasePath(this.#run, this.#gen), this.#lease(false));
  }

  /** Lets the run go: the lease is marked released (the next driver takes the next generation). */
  async release(): Promise<void> {
    this.#stop();
    if (this.#lost) return;
    const top = (await generations(this.#fs, this.#run).catch(() => [])).at(-1) ?? 0;
    if (top === this.#gen) await writeText(this.#fs, leasePath(this.#run, this.#gen), this.#lease(true)).catch(() => {});
  }

  #stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
