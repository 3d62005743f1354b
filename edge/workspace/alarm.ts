// One Durable Object alarm serves several concerns (the audit outbox, log buffers, staged
// uploads). Each says when it is next due; the alarm is set to the earliest, so one concern's
// activity never postpones another's (a steady log writer cannot hold back the audit flush).
export type Due = () => number | null;

export class Alarm {
  readonly #storage: DurableObjectStorage;
  readonly #dues: Due[] = [];

  constructor(storage: DurableObjectStorage) {
    this.#storage = storage;
  }

  /** Adds a concern's due date. */
  add(due: Due): void {
    this.#dues.push(due);
  }

  /** Sets the alarm to the earliest due date (or leaves it unset when nothing is due). */
  arm(): void {
    let at: number | null = null;
    for (const d of this.#dues) {
      const t = d();
      if (t !== null && (at === null || t < at)) at = t;
    }
    if (at !== null) void this.#storage.setAlarm(Math.max(at, Date.now()));
  }
}
