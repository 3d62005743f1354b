// NIP-40 expiry for an object that stores events (the single relay object, a storage shard): one
// Durable Object alarm, set for the earliest expiration stored; when it fires, expired events go
// and the alarm is set for the next one.
import type { EventStore } from "./store.ts";

export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

export class ExpiryAlarm {
  readonly #storage: DurableObjectStorage;
  readonly #store: EventStore;
  #next: number | null = null;

  constructor(storage: DurableObjectStorage, store: EventStore) {
    this.#storage = storage;
    this.#store = store;
  }

  /** An event expiring at `at` (unix seconds) was stored. */
  schedule(at: number): void {
    if (this.#next !== null && this.#next <= at) return;
    this.#next = at;
    void this.#storage.setAlarm(at * 1000);
  }

  /** The object's alarm fired. */
  fire(): void {
    this.#next = null;
    const next = this.#store.expire(nowSeconds());
    if (next !== null) this.schedule(Math.max(next, nowSeconds() + 1));
  }
}
