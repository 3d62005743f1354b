// NIP-77 negentropy syncing: the relay's NEG-OPEN / NEG-MSG / NEG-CLOSE sessions (answered with
// NEG-MSG or NEG-ERR), their limits and how NIP-11 advertises them, and the matching client loop
// over any message transport. The protocol itself is negentropy.ts.
//
// Sessions live in the object's memory, per connection: after hibernation or eviction a NEG-MSG
// gets `NEG-ERR closed:` and the client opens a new session (the protocol is stateless between
// sessions, so nothing is lost but a round trip).
import { parseFilter, type Filter, type FilterLimits } from "./filter.ts";
import { Negentropy, NegentropyError, NegentropyStorage, fromHex, toHex } from "./negentropy.ts";

export interface Nip77Limits {
  /** Most stored events one NEG-OPEN may cover; a filter matching more gets `NEG-ERR blocked:`. */
  negentropyMaxRecords: number;
  /** Open sessions per connection. */
  negentropyMaxSessions: number;
  /** Largest negentropy message the relay sends, in bytes before hex encoding (0 = no limit, else ≥ 4096). */
  negentropyFrameSize: number;
  /** A session unused for this many seconds is closed. */
  negentropyIdleSeconds: number;
}

export const NIP77_DEFAULTS: Nip77Limits = {
  // ~72 bytes of memory per record while a session is open: 250,000 records ≈ 18 MB.
  negentropyMaxRecords: 250_000,
  negentropyMaxSessions: 4,
  // 200 KB of binary is 400 KB of hex: still under a 512 KiB message limit like our own.
  negentropyFrameSize: 200_000,
  negentropyIdleSeconds: 120,
};

/** Records held by all open sessions of one object, as a multiple of the per-session maximum. */
const TOTAL_RECORDS_FACTOR = 2;
const MAX_SUBID = 64;

/** NIP-77 fields of a config patch (RELAY_CONFIG or `configure`) merged over `base`; bad values ignored. */
export function mergeNip77(base: Nip77Limits, patch: unknown): Nip77Limits {
  const out = { ...base };
  if (typeof patch !== "object" || patch === null) return out;
  const p = patch as Record<string, unknown>;
  for (const k of Object.keys(NIP77_DEFAULTS) as Array<keyof Nip77Limits>) {
    const v = p[k];
    if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) out[k] = v;
  }
  if (out.negentropyFrameSize !== 0 && out.negentropyFrameSize < 4096) out.negentropyFrameSize = 4096;
  return out;
}

/** Adds NIP-77 and its limits to a NIP-11 document. */
export function advertiseNip77(info: Record<string, unknown>, lim: Nip77Limits): Record<string, unknown> {
  const nips = [...((info.supported_nips as number[] | undefined) ?? []), 77].sort((a, b) => a - b);
  return {
    ...info,
    supported_nips: [...new Set(nips)],
    limitation: {
      ...(info.limitation as Record<string, unknown> | undefined),
      max_negentropy_records: lim.negentropyMaxRecords,
      max_negentropy_sessions: lim.negentropyMaxSessions,
      negentropy_frame_size: lim.negentropyFrameSize,
    },
  };
}

/** The stored events a session reconciles: (created_at, id) sorted, at most `max` of them (from SQLite, or gathered from storage shards). */
export type Items = { timestamps: number[]; ids: string[] };
export type ItemSource = (filter: Filter, max: number) => Items | Promise<Items>;

/** What the handler needs from the connection a message came on. */
export interface NegConn {
  id: string;
  /** False when the relay wants NIP-42 AUTH before reads and this connection has none. */
  mayRead: boolean;
  send(text: string): void;
}

interface Session {
  ne: Negentropy;
  records: number;
  lastUsed: number;
}

export class Nip77Sessions {
  limits: Nip77Limits = NIP77_DEFAULTS;
  private byConn = new Map<string, Map<string, Session>>();
  private held = 0;
  private source: ItemSource;

  constructor(source: ItemSource) {
    this.source = source;
  }

  /**
   * Handles one NEG-* message (already parsed as an array whose first element is the verb). A
   * promise when a NEG-OPEN waits for its items from storage shards.
   */
  handle(conn: NegConn, msg: unknown[], filterLimits: FilterLimits, now = Date.now()): void | Promise<void> {
    const [verb, sub] = msg;
    if (typeof sub !== "string" || sub.length === 0 || sub.length > MAX_SUBID)
      return conn.send(JSON.stringify(["NOTICE", `invalid: ${verb} needs a subscription id of 1 to ${MAX_SUBID} characters`]));
    const err = (text: string) => {
      this.close(conn.id, sub);
      conn.send(JSON.stringify(["NEG-ERR", sub, text]));
    };
    switch (verb) {
      case "NEG-OPEN":
        return this.open(conn, sub, msg, filterLimits, now, err);
      case "NEG-MSG": {
        const s = this.byConn.get(conn.id)?.get(sub);
        if (!s) return err("closed: no open negentropy session with this id");
        if (now - s.lastUsed > this.limits.negentropyIdleSeconds * 1000) return err("closed: session was idle too long; open a new one");
        if (msg.length !== 3 || typeof msg[2] !== "string") return err("invalid: NEG-MSG takes a subscription id and a hex message");
        s.lastUsed = now;
        return this.answer(conn, sub, s, msg[2], err);
      }
      case "NEG-CLOSE":
        this.close(conn.id, sub);
        return;
    }
  }

  private open(conn: NegConn, sub: string, msg: unknown[], filterLimits: FilterLimits, now: number, err: (t: string) => void): void | Promise<void> {
    this.close(conn.id, sub); // NIP-77: a NEG-OPEN for an open id first closes it
    this.sweep(now);
    if (msg.length !== 4 || typeof msg[3] !== "string")
      return err("invalid: NEG-OPEN takes a subscription id, one filter and a hex initial message");
    if (!conn.mayRead) return err("auth-required: this relay only serves authenticated clients");
    const lim = this.limits;
    const open = this.byConn.get(conn.id);
    if (open && open.size >= lim.negentropyMaxSessions)
      return err(`blocked: more than ${lim.negentropyMaxSessions} open negentropy sessions; close one first`);
    if (typeof msg[2] === "object" && msg[2] !== null && "search" in msg[2])
      return err("invalid: NEG-OPEN does not take a NIP-50 search filter (search results are ranked, not a set)");
    const filter = parseFilter(msg[2], filterLimits);
    if (typeof filter === "string") return err(`invalid: ${filter}`);
    const unlimited: Filter = { ...filter };
    delete unlimited.limit;
    const items = this.source(unlimited, lim.negentropyMaxRecords + 1);
    if (items instanceof Promise) return items.then((it) => this.start(conn, sub, it, msg[3] as string, now, err));
    this.start(conn, sub, items, msg[3] as string, now, err);
  }

  private start(conn: NegConn, sub: string, items: Items, initial: string, now: number, err: (t: string) => void): void {
    const lim = this.limits;
    const open = this.byConn.get(conn.id);
    if (open && open.size >= lim.negentropyMaxSessions)
      return err(`blocked: more than ${lim.negentropyMaxSessions} open negentropy sessions; close one first`);
    const n = items.ids.length;
    if (n > lim.negentropyMaxRecords)
      return err(`blocked: the filter matches more than ${lim.negentropyMaxRecords} events; sync a narrower one (e.g. with since/until)`);
    if (this.held + n > lim.negentropyMaxRecords * TOTAL_RECORDS_FACTOR) return err("blocked: the relay is busy with other syncs; retry later");
    let ne: Negentropy;
    try {
      ne = new Negentropy(NegentropyStorage.fromSorted(items.timestamps, items.ids), lim.negentropyFrameSize);
    } catch (e) {
      if (e instanceof NegentropyError) return err(`error: ${e.message}`);
      throw e;
    }
    const s: Session = { ne, records: n, lastUsed: now };
    let sessions = open;
    if (!sessions) this.byConn.set(conn.id, (sessions = new Map()));
    sessions.set(sub, s);
    this.held += n;
    this.answer(conn, sub, s, initial, err);
  }

  private answer(conn: NegConn, sub: string, s: Session, hex: string, err: (t: string) => void): void {
    const bytes = fromHex(hex);
    if (!bytes) return err("invalid: negentropy message is not hex");
    let out: Uint8Array;
    try {
      out = s.ne.reconcile(bytes).message!;
    } catch (e) {
      if (e instanceof NegentropyError) return err(`invalid: ${e.message}`);
      throw e;
    }
    conn.send(`["NEG-MSG",${JSON.stringify(sub)},"${toHex(out)}"]`);
  }

  private close(connId: string, sub: string): void {
    const sessions = this.byConn.get(connId);
    const s = sessions?.get(sub);
    if (!s) return;
    sessions!.delete(sub);
    this.held -= s.records;
    if (sessions!.size === 0) this.byConn.delete(connId);
  }

  /** Frees every session of a connection that went away. */
  dropConn(connId: string): void {
    for (const sub of [...(this.byConn.get(connId)?.keys() ?? [])]) this.close(connId, sub);
  }

  /** Closes sessions idle past the limit (run lazily, when a new one opens). */
  private sweep(now: number): void {
    const idle = this.limits.negentropyIdleSeconds * 1000;
    for (const [connId, sessions] of [...this.byConn]) {
      for (const [sub, s] of [...sessions]) if (now - s.lastUsed > idle) this.close(connId, sub);
    }
  }

  /** Records held by open sessions (for tests and metrics). */
  get heldRecords(): number {
    return this.held;
  }
}

// ---------------------------------------------------------------- client

/** A message transport to a relay: send a NIP-01 style array, await the next NEG-MSG/NEG-ERR for a subscription. */
export interface NegTransport {
  send(msg: unknown[]): void;
  next(sub: string): Promise<unknown[]>;
}

export interface SyncResult {
  /** Ids the client has and the relay lacks. */
  have: string[];
  /** Ids the relay has and the client lacks. */
  need: string[];
  rounds: number;
  /** Hex characters of negentropy payload sent and received. */
  sentBytes: number;
  receivedBytes: number;
}

/**
 * Runs a NIP-77 sync of `storage` (the client's records matching `filter`) against a relay and
 * closes the session. Throws with the relay's reason on NEG-ERR.
 */
export async function negentropySync(io: NegTransport, sub: string, filter: Record<string, unknown>, storage: NegentropyStorage, frameSizeLimit = 0): Promise<SyncResult> {
  const ne = new Negentropy(storage, frameSizeLimit);
  const have: string[] = [];
  const need: string[] = [];
  let out: string | null = toHex(ne.initiate());
  let rounds = 0;
  let sentBytes = 0;
  let receivedBytes = 0;
  io.send(["NEG-OPEN", sub, filter, out]);
  for (;;) {
    sentBytes += out.length;
    const m = await io.next(sub);
    if (m[0] === "NEG-ERR") throw new Error(`NEG-ERR: ${String(m[2])}`);
    const hex = String(m[2]);
    receivedBytes += hex.length;
    rounds++;
    const r = ne.reconcile(fromHex(hex) ?? new Uint8Array(0));
    for (const id of r.have) have.push(id);
    for (const id of r.need) need.push(id);
    if (r.message === null) break;
    out = toHex(r.message);
    io.send(["NEG-MSG", sub, out]);
  }
  io.send(["NEG-CLOSE", sub]);
  return { have, need, rounds, sentBytes, receivedBytes };
}
