// A connection shard's view of the other objects of a sharded relay (RELAY_SHARDS > 1): it sends each
// event to the storage shard of its author, asks the storage shards a query could concern and merges
// their answers (shards.ts), and passes messages to the other connection shards (the fan-out hop).
import type { NostrEvent } from "./event.ts";
import type { Filter } from "./filter.ts";
import type { ModerationChange } from "./moderation.ts";
import type { JobCall } from "./jobs.ts";
import type { NostrRelay, RelayEnv } from "./relay.ts";
import type { Position, RelayStorageShard, ShardSaveResult } from "./shard.ts";
import { connShardName, mergeItems, mergeQuery, shardOfAuthor, storageShardName, type Layout } from "./shards.ts";

/** An accepted event on its way to the subscriptions of every connection shard. */
export interface Delivery {
  raw: string;
  /** Where it was stored (absent for ephemeral events): a pending REQ uses it to tell old from new. */
  at?: Position & { shard: number };
  /** Job requests this event (a deletion) removed: their subscribers are told too (conns.ts). */
  cancels?: NostrEvent[];
}

/** What connection shards tell each other (NostrRelay.shardCall). */
export type ShardMessage =
  | { deliver: Delivery[] }
  | { config: string }
  | { moderation: ModerationChange[] }
  | { jobs: JobCall[] };

/** Marks of the storage shards a query read: shard index → how far. */
export type Marks = Map<number, Position>;

export class ShardRouter {
  readonly layout: Layout;
  private storage: Array<DurableObjectStub<RelayStorageShard>>;
  private conns: Array<DurableObjectStub<NostrRelay>>;

  constructor(env: RelayEnv, layout: Layout) {
    if (!env.RELAY || !env.RELAY_STORAGE) throw new Error("relay: a sharded relay needs the RELAY and RELAY_STORAGE Durable Object bindings");
    const { base, shards } = layout;
    const storageNs = env.RELAY_STORAGE;
    const connNs = env.RELAY;
    this.layout = layout;
    this.storage = Array.from({ length: shards }, (_, j) => storageNs.getByName(storageShardName(base, j, shards)));
    this.conns = Array.from({ length: shards }, (_, i) => connNs.getByName(connShardName(base, i, shards)));
  }

  /** Stores admitted events (canonical JSON) on their authors' shards: one call per shard, answers in input order. */
  async save(events: NostrEvent[], raws: string[]): Promise<Array<ShardSaveResult & { shard: number }>> {
    const byShard = new Map<number, number[]>();
    events.forEach((e, i) => {
      const j = shardOfAuthor(e.pubkey, this.layout.shards);
      const list = byShard.get(j);
      if (list) list.push(i);
      else byShard.set(j, [i]);
    });
    const out = new Array<ShardSaveResult & { shard: number }>(events.length);
    await Promise.all(
      [...byShard].map(async ([j, idx]) => {
        const results = (await this.storage[j]!.save(idx.map((i) => raws[i]!))) as ShardSaveResult[];
        idx.forEach((i, k) => (out[i] = { ...results[k]!, shard: j }));
      }),
    );
    return out;
  }

  /** The storage shards that may hold events matching any of the filters: those of the authors named, unless some filter names none. */
  private shardsFor(filters: Filter[]): number[] {
    const k = this.layout.shards;
    const set = new Set<number>();
    for (const f of filters) {
      if (!f.authors) return Array.from({ length: k }, (_, j) => j);
      for (const a of f.authors) set.add(shardOfAuthor(a, k));
    }
    return [...set].sort((a, b) => a - b);
  }

  /** A REQ's stored events in the single object's order, and how far each shard asked was read. */
  async query(filters: Filter[], now: number, defaultLimit: number): Promise<{ raws: string[]; marks: Marks }> {
    const asked = this.shardsFor(filters);
    const answers = await Promise.all(asked.map((j) => this.storage[j]!.rows(filters, now, defaultLimit)));
    const marks: Marks = new Map(asked.map((j, i) => [j, answers[i]!.mark]));
    return { raws: mergeQuery(filters, answers.map((a) => a.rows), defaultLimit), marks };
  }

  /** NIP-45: every event lives on exactly one shard, so the per-shard counts add up exactly. */
  async count(filters: Filter[], now: number): Promise<number> {
    const counts = await Promise.all(this.shardsFor(filters).map((j) => this.storage[j]!.count(filters, now)));
    return counts.reduce((a, b) => a + b, 0);
  }

  async negentropyItems(f: Filter, now: number, max: number): Promise<{ timestamps: number[]; ids: string[] }> {
    const parts = await Promise.all(this.shardsFor([f]).map((j) => this.storage[j]!.negentropyItems(f, now, max)));
    return mergeItems(parts, max);
  }

  /** Removes an event wherever it is (an operator's ban names an id, not its author). */
  async remove(id: string): Promise<boolean> {
    const removed = await Promise.all(this.storage.map((s) => s.remove(id)));
    return removed.some(Boolean);
  }

  /** Sends a message to every other connection shard and waits until each has handled it. */
  async broadcast(msg: ShardMessage): Promise<void> {
    await Promise.all(this.conns.filter((_, i) => i !== this.layout.index).map((c) => c.shardCall(msg)));
  }

  /** Connection shard 0 keeps what is not per connection: edge-agent registrations and their hooks. */
  get registry(): DurableObjectStub<NostrRelay> {
    return this.conns[0]!;
  }

  get isRegistry(): boolean {
    return this.layout.index === 0;
  }
}
