// A storage shard (RELAY_SHARDS > 1): the Durable Object holding the events of the authors hashed to
// it, behind RPC. It is an EventStore (store.ts) and nothing else: connection shards verify and
// admit events before they get here, and merge what several shards answer (shards.ts). Because
// replaceable/addressable versions and NIP-09 deletions only ever concern one author's events, those
// rules hold here exactly as in the single object. NIP-40 expiry runs on this shard's own alarm.
//
// Every stored event gets a position (this instance's start, a counter); a query answers the
// position it read up to, so that a connection shard can tell, for an event fanned out while its REQ
// was being answered, whether the query already saw it (see sharded.ts).
import { DurableObject } from "cloudflare:workers";
import { expirationOf, type NostrEvent } from "./event.ts";
import type { Filter } from "./filter.ts";
import type { Row } from "./shards.ts";
import { AlarmClock } from "./alarm.ts";
import { ExpiryAlarm } from "./expiry.ts";
import { BackgroundIndexer, EventStore, type SaveResult } from "./store.ts";

/** Where a save landed in a shard's history: instance start (ms) and a counter within it. */
export interface Position {
  epoch: number;
  n: number;
}

/** True when the event at `p` was stored before (or at) the moment `mark` was read. */
export function seenBy(p: Position, mark: Position): boolean {
  return p.epoch < mark.epoch || (p.epoch === mark.epoch && p.n <= mark.n);
}

export type ShardSaveResult = SaveResult & { at?: Position };


export class RelayStorageShard extends DurableObject<Record<string, unknown>> {
  private store: EventStore;
  private indexer: BackgroundIndexer;
  private clock: AlarmClock;
  private expiry: ExpiryAlarm;
  private epoch = Date.now();
  private n = 0;

  constructor(ctx: DurableObjectState, env: Record<string, unknown>) {
    super(ctx, env);
    this.store = new EventStore(ctx.storage);
    this.clock = new AlarmClock(ctx.storage);
    this.expiry = new ExpiryAlarm(this.clock, this.store);
    this.indexer = new BackgroundIndexer(this.store);
  }

  /** Stores verified, admitted events (their canonical JSON), in order. */
  save(raws: string[]): ShardSaveResult[] {
    const out = raws.map((raw): ShardSaveResult => {
      const e = JSON.parse(raw) as NostrEvent;
      const r = this.store.save(e, raw);
      if (r.status !== "stored") return r;
      const exp = expirationOf(e);
      if (exp !== null) this.expiry.schedule(exp);
      return { ...r, at: { epoch: this.epoch, n: ++this.n } };
    });
    this.indexer.poke();
    return out;
  }

  /** Per filter, the matching events (EventStore.rows), and how far this shard's history was read. */
  rows(filters: Filter[], now: number, defaultLimit: number): { rows: Row[][]; mark: Position } {
    return { rows: this.store.rows(filters, now, defaultLimit), mark: { epoch: this.epoch, n: this.n } };
  }

  count(filters: Filter[], now: number): number {
    return this.store.count(filters, now);
  }

  negentropyItems(f: Filter, now: number, max: number): { timestamps: number[]; ids: string[] } {
    return this.store.negentropyItems(f, now, max);
  }

  remove(id: string): boolean {
    return this.store.remove(id);
  }

  override async alarm(): Promise<void> {
    this.clock.fired();
    this.expiry.fire();
  }

}
