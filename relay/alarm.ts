// One Durable Object has one alarm. Several needs share it (NIP-40 expiry, the job outbox): each
// asks for a time with `want`, the alarm is kept at the earliest, and when it fires every need is
// asked again (the object's alarm() calls `fired` first, then each need's own handler).
//
// The time set is read from storage once per instance (a fresh instance cannot know what its
// predecessor set, and must not push an earlier alarm back); after that it is known in memory.

export class AlarmClock {
  readonly #storage: DurableObjectStorage;
  /** The alarm set (ms), null for none, undefined until read from storage. */
  #at: number | null | undefined;
  /** Changes in order: each one sees what the one before set. */
  #queue: Promise<void> = Promise.resolve();

  constructor(storage: DurableObjectStorage) {
    this.#storage = storage;
  }

  /** Makes sure the alarm fires at `ms` (epoch ms) or earlier. */
  want(ms: number): void {
    if (this.#at !== undefined && this.#at !== null && this.#at <= ms) return;
    if (this.#at !== undefined) return this.#set(ms);
    this.#queue = this.#queue
      .then(async () => {
        if (this.#at === undefined) this.#at = await this.#storage.getAlarm();
        if (this.#at === null || this.#at > ms) this.#set(ms);
      })
      .catch((err: unknown) => console.error("relay: could not set the alarm", err));
  }

  /** The alarm fired: none is set until a need asks again. */
  fired(): void {
    this.#at = null;
  }

  #set(ms: number): void {
    this.#at = ms;
    void this.#storage.setAlarm(ms);
  }
}
