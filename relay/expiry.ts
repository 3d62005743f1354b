// NIP-40 expiry for an object that stores events (the single relay object, a storage shard): the
// object's alarm (shared through an AlarmClock) is wanted at the earliest expiration stored; when it
// fires, expired events go and the alarm is wanted again for the next one.
import type { AlarmClock } from "./alarm.ts";
import type { EventStore } from "./store.ts";

export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

export class ExpiryAlarm {
  readonly #clock: AlarmClock;
  readonly #store: EventStore;

  constructor(clock: AlarmClock, store: EventStore) {
    this.#clock = clock;
    this.#store = store;
  }

  /** An event expiring at `at` (unix seconds) was stored. */
  schedule(at: number): void {
    this.#clock.want(at * 1000);
  }

  /** The object's alarm fired (after AlarmClock.fired). */
  fire(): void {
    const next = this.#store.expire(nowSeconds());
    if (next !== null) this.schedule(Math.max(next, nowSeconds() + 1));
  }
}
