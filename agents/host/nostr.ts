// Small nostr plumbing shared by the provider, the customer and the wallet: one SimplePool per
// party, publishing that reports the relays' answers, live subscriptions that resolve once the
// relays have them (EOSE), and (from cipher.ts) the two encryptions NIP-90 and NIP-47 name.
import { SimplePool } from "nostr-tools/pool";
import { finalizeEvent, getPublicKey, type Event, type EventTemplate } from "nostr-tools/pure";
import type { Filter } from "nostr-tools/filter";
import { hexToBytes } from "@noble/hashes/utils.js";

export type { Event, Filter };
export { cipherOf, decrypt, encrypt, type Cipher } from "./cipher.ts";

export const secretBytes = (hex: string): Uint8Array => hexToBytes(hex);

export const tag = (e: { tags: string[][] }, name: string): string | undefined => e.tags.find((t) => t[0] === name)?.[1];
export const tags = (e: { tags: string[][] }, name: string): string[][] => e.tags.filter((t) => t[0] === name);

export const now = (): number => Math.floor(Date.now() / 1000);

/**
 * A party on some relays, as the customer side (job.ts, jobs-service.ts) and the wallet client
 * (wallet.ts) use it: Peer over a SimplePool in Node, the edge's relay links at the edge
 * (edge/caps/party.ts).
 */
export interface Party {
  readonly pubkey: string;
  readonly secretKey: Uint8Array;
  sign(t: Omit<EventTemplate, "created_at"> & { created_at?: number }): Event;
  /** Resolves when a relay accepted it; rejects with the relays' reasons if none did. */
  publish(e: Event): Promise<void>;
  /** A live subscription; resolves once the relays sent EOSE (or maxWait passed). */
  subscribe(filter: Filter, onevent: (e: Event) => void, maxWait?: number): Promise<{ close(): void }>;
  query(filter: Filter, maxWait?: number): Promise<Event[]>;
  close(): void;
}

/** A party on some relays: its key, its pool. */
export class Peer implements Party {
  readonly pool: SimplePool;
  readonly pubkey: string;
  readonly relays: string[];
  readonly secretKey: Uint8Array;
  constructor(relays: string[], secretKey: Uint8Array) {
    this.relays = relays;
    this.secretKey = secretKey;
    this.pool = new SimplePool({ enableReconnect: true });
    this.pubkey = getPublicKey(secretKey);
  }

  sign(t: Omit<EventTemplate, "created_at"> & { created_at?: number }): Event {
    return finalizeEvent({ created_at: now(), ...t }, this.secretKey);
  }

  /** Publishes to every relay; resolves when one accepted it, rejects with the relays' reasons if none did. */
  async publish(e: Event): Promise<void> {
    const answers = await Promise.allSettled(this.pool.publish(this.relays, e, { maxWait: 10_000 }));
    if (answers.some((a) => a.status === "fulfilled")) return;
    throw new Error(answers.map((a) => (a.status === "rejected" ? String((a.reason as Error)?.message ?? a.reason) : "")).join("; "));
  }

  /** A live subscription; resolves once every relay sent EOSE (or maxWait passed). */
  subscribe(filter: Filter, onevent: (e: Event) => void, maxWait = 10_000): Promise<{ close(): void }> {
    return new Promise((resolve) => {
      let done = false;
      const sub = this.pool.subscribeMany(this.relays, filter, {
        onevent,
        maxWait,
        oneose: () => {
          if (!done) (done = true), resolve(sub);
        },
      });
      const timer = setTimeout(() => {
        if (!done) (done = true), resolve(sub);
      }, maxWait) as unknown as { unref?: () => void };
      timer.unref?.();
    });
  }

  query(filter: Filter, maxWait = 10_000): Promise<Event[]> {
    return this.pool.querySync(this.relays, filter, { maxWait });
  }

  close(): void {
    this.pool.close(this.relays);
    this.pool.destroy();
  }
}
