// How a connection shard (RELAY_SHARDS > 1) handles its sockets' messages. Events are stored on
// storage shards and queries asked of them, so EVENT, REQ, COUNT and NEG-OPEN wait for RPC; to keep
// what a client sees the same as with one object:
//  - each connection's messages are handled in order, one after the other (a REQ sees the events its
//    connection sent before it); consecutive EVENTs at the head of its queue form one group, stored
//    with one call per storage shard and handed on with one call per connection shard, and groups
//    are pipelined two deep (the next one is stored while this one is handed on);
//  - replies go out in message order, each OK followed by its local fan-out, as one object sends them;
//  - an accepted event reaches every other connection shard before its OK (so OK true means every
//    subscriber of the relay has been sent it);
//  - a REQ buffers what is fanned out while the storage shards answer, and after EOSE sends what their
//    answers did not see; events stored before its answer but fanned out after it are not sent
//    again (conns.ts, marks): nothing is lost or sent twice.
import { isEphemeral, type NostrEvent } from "./event.ts";
import type { Filter } from "./filter.ts";
import { refusal, type Gate } from "./admission.ts";
import type { Buffered, Conn, Connections } from "./conns.ts";
import { JobRouter } from "./jobs.ts";
import type { PublishResult } from "./nip90.ts";
import { storageReply } from "./replies.ts";
import { seenBy, type Position } from "./shard.ts";
import { nowSeconds } from "./expiry.ts";
import type { Delivery, ShardRouter } from "./sharded.ts";

/** The OK to send, and what runs once it is sent (fan-out, routing). */
export type Ingested = PublishResult & { after?: () => void };

/** What the front needs of the relay object. */
export interface FrontHost {
  conns: Connections;
  readonly gate: Gate;
  readonly defaultLimit: number;
  /** Size, rate and JSON checks: the parsed message, or null after replying. */
  parse(conn: Conn, message: string | ArrayBuffer): unknown[] | null;
  /** Handles any parsed message (EVENTs come back here, to `events`). */
  dispatch(conn: Conn, msg: unknown[]): void | Promise<void>;
  /** The canonical event of an EVENT message, or null after refusing its shape. */
  eventOf(conn: Conn, msg: unknown[]): NostrEvent | null;
  /** After a stored event's OK: fan-out here, cancellations. */
  afterStored(e: NostrEvent, raw: string, cancelled: NostrEvent[], at?: Position & { shard: number }): void;
  /** A stored event's hand-overs to edge agents, written now (before its OK); what starts them (jobs.ts). */
  jobsAccepted(e: NostrEvent, cancelled: NostrEvent[]): () => void;
}

/** Most consecutive EVENTs of one connection handled as one group. */
const MAX_GROUP = 256;
const EVENT_MESSAGE = /^\s*\[\s*"EVENT"/;
const isEvent = (m: string | ArrayBuffer | undefined) => typeof m === "string" && EVENT_MESSAGE.test(m);

/** One message of an EVENT group: replies held while it was checked, and the event if admitted. */
type Slot = { held: string[]; event: NostrEvent | null };

export class ShardFront {
  readonly router: ShardRouter;
  private host: FrontHost;

  constructor(host: FrontHost, router: ShardRouter) {
    this.host = host;
    this.router = router;
  }

  enqueue(conn: Conn, message: string | ArrayBuffer): void {
    (conn.queue ??= []).push(message);
    if (conn.pumping) return;
    conn.pumping = true;
    void this.pump(conn, conn.queue);
  }

  /**
   * A connection's messages in order. EVENT groups are pipelined two deep: the next group is
   * stored once this one is stored (an author's events reach their shard in order) while this one
   * is handed to the other connection shards; replies stay in message order, and any other message
   * waits until everything before it is done.
   */
  private async pump(conn: Conn, queue: Array<string | ArrayBuffer>): Promise<void> {
    let replied: Promise<void> = Promise.resolve();
    try {
      for (;;) {
        if (queue.length === 0) {
          await replied;
          if (queue.length === 0) break;
        }
        try {
          if (isEvent(queue[0])) {
            let n = 1;
            while (n < queue.length && n < MAX_GROUP && isEvent(queue[n])) n++;
            const group = this.events(conn, queue.splice(0, n) as string[], replied);
            replied = group.replied;
            await group.stored;
            // The socket's messages that arrived meanwhile are delivered as events of their own, after
            // this continuation: one turn lets them in, so the next group takes them all (without it,
            // groups of 1-2 events: 280 events/s instead of 930 in bench/relay-shards.ts).
            await new Promise((resolve) => setTimeout(resolve, 0));
            continue;
          }
          await replied;
          const msg = this.host.parse(conn, queue.shift()!);
          if (msg) await this.host.dispatch(conn, msg);
        } catch (err) {
          console.error("relay: error handling a message", err);
        }
      }
    } finally {
      conn.pumping = false;
    }
  }

  /** EVENTs from one connection (raw, or already parsed), handled as one group. */
  async eventsNow(conn: Conn, messages: Array<string | unknown[]>): Promise<void> {
    await this.events(conn, messages, Promise.resolve()).replied;
  }

  /**
   * A group of EVENTs: each is checked and admitted now, with its replies held; the admitted ones are
   * stored (`stored`) and handed on; then, once the replies of the group before (`before`) are out,
   * this group's go out in message order, each OK followed by its local fan-out (`replied`).
   */
  private events(conn: Conn, messages: Array<string | unknown[]>, before: Promise<void>): { stored: Promise<unknown>; replied: Promise<void> } {
    const { conns, gate } = this.host;
    const slots: Slot[] = [];
    const now = nowSeconds();
    for (const m of messages) {
      conn.hold = [];
      const msg = typeof m === "string" ? this.host.parse(conn, m) : m;
      let e = msg ? this.host.eventOf(conn, msg) : null;
      const refused = e ? refusal(gate, e, conn.att.authed, now) : null;
      if (e && refused !== null) {
        conns.ok(conn, e.id, false, refused);
        e = null;
      }
      slots.push({ held: conn.hold, event: e });
    }
    conn.hold = undefined;
    const admitted = slots.flatMap((s) => (s.event ? [s.event] : []));
    const work = admitted.length === 0 ? null : this.save(admitted);
    const results = (work?.results ?? Promise.resolve([])).catch((err: unknown): Ingested[] => {
      console.error("relay: storage shards failed", err);
      return admitted.map(() => ({ ok: false, message: "error: storage is unavailable, please retry" }));
    });
    const replied = Promise.all([results, before.catch(() => undefined)]).then(([res]) => {
      let k = 0;
      for (const s of slots) {
        for (const text of s.held) conns.send(conn, text);
        if (!s.event) continue;
        const r = res[k++]!;
        conns.ok(conn, s.event.id, r.ok, r.message);
        try {
          if (r.ok && r.after) r.after();
        } catch (err) {
          console.error("relay: error after an OK", err);
        }
      }
    }).catch((err: unknown) => console.error("relay: error replying to EVENTs", err));
    return { stored: work ? work.stored.catch(() => undefined) : Promise.resolve(), replied };
  }

  /** Admitted events (from a socket or published by code in the Worker): the OK of each, once stored and handed on. */
  store(events: NostrEvent[]): Promise<Ingested[]> {
    return this.save(events).results;
  }

  /**
   * Stores admitted events on their authors' storage shards (`stored`), then hands them to every
   * other connection shard; `results`: the OK of each, with what runs here once it is sent.
   */
  private save(events: NostrEvent[]): { stored: Promise<unknown>; results: Promise<Ingested[]> } {
    const raws = events.map((e) => JSON.stringify(e));
    const durable = events.flatMap((e, i) => (isEphemeral(e.kind) ? [] : [i]));
    const stored = this.router.save(
      durable.map((i) => events[i]!),
      durable.map((i) => raws[i]!),
    );
    const results = stored.then(async (saved) => {
      const deliveries: Delivery[] = [];
      // Hand-overs are written here, a turn before the OKs go out, so the output gate holds them.
      const handOvers: Array<() => void> = [];
      let k = 0;
      const out = events.map((e, i): Ingested => {
        const raw = raws[i]!;
        if (isEphemeral(e.kind)) {
          deliveries.push({ raw });
          return { ok: true, message: "", after: () => this.host.conns.fanOut(e, raw) };
        }
        const s = saved[k++]!;
        if (s.status !== "stored") return storageReply(e.kind, s.status);
        const at = { ...s.at!, shard: s.shard };
        const cancels = JobRouter.jobsAmong(s.deleted);
        deliveries.push(cancels.length > 0 ? { raw, at, cancels } : { raw, at });
        const handOver = this.host.jobsAccepted(e, cancels);
        handOvers.push(handOver);
        return {
          ok: true,
          message: "",
          after: () => {
            this.host.afterStored(e, raw, cancels, at);
            handOver();
          },
        };
      });
      try {
        if (deliveries.length > 0) await this.router.broadcast({ deliver: deliveries });
      } catch (err) {
        // The events are stored (their OK says to retry, which finds them there): hand them over anyway.
        handOvers.forEach((h) => h());
        throw err;
      }
      return out;
    });
    return { stored, results };
  }

  /** Events another connection shard accepted: to the subscriptions here. */
  deliver(deliveries: Delivery[]): void {
    for (const d of deliveries) {
      const e = JSON.parse(d.raw) as NostrEvent;
      this.host.conns.fanOut(e, d.raw, d.at);
      if (d.cancels) this.host.conns.fanOutCancellation(e, d.cancels);
    }
  }

  /** A REQ whose id and filters were checked. The old subscription of that id ends now. */
  async req(conn: Conn, sub: string, filters: Filter[]): Promise<void> {
    const { conns } = this.host;
    conns.pause(conn, sub);
    const pending = (conn.pending = { filters, buffered: [] as Buffered[] });
    let answer: Awaited<ReturnType<ShardRouter["query"]>>;
    try {
      answer = await this.router.query(filters, nowSeconds(), this.host.defaultLimit);
    } finally {
      conn.pending = undefined;
    }
    if (conn.ws.readyState !== WebSocket.OPEN) return;
    const prefix = `["EVENT",${JSON.stringify(sub)},`;
    for (const raw of answer.raws) conns.send(conn, prefix + raw + "]");
    conns.send(conn, `["EOSE",${JSON.stringify(sub)}]`);
    conns.subscribe(conn, sub, filters);
    (conn.marks ??= new Map()).set(sub, answer.marks);
    for (const b of pending.buffered) {
      const mark = b.at && answer.marks.get(b.at.shard);
      if (!mark || !seenBy(b.at!, mark)) conns.send(conn, prefix + b.raw + "]");
    }
  }
}
