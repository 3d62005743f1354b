// The relay's sockets and their subscriptions: which connections are open (and how many per client
// address), where each one's subscriptions are kept so they survive hibernation and eviction, how
// replies are sent, and fan-out of a new event to every subscription that matches it.
//
// Subscriptions are kept per socket, never in a global list: in the socket's attachment while they
// fit in its 2 KB (no storage write, so a REQ's answer is never held for a commit), else as rows of
// `subs` in SQLite keyed by the connection id (state.ts).
import { matchAny, type Filter } from "./filter.ts";
import type { NostrEvent } from "./event.ts";
import type { RelayState, Attachment } from "./state.ts";
import { seenBy, type Position } from "./shard.ts";

/** An event fanned out while a sharded REQ waits for its stored events; sent after EOSE unless the query saw it. */
export interface Buffered {
  raw: string;
  at?: Position & { shard: number };
}

export interface Conn {
  ws: WebSocket;
  att: Attachment;
  subs: Map<string, Filter[]>;
  /** Messages refused for rate in a row (see RelayConfig.closeAfterRefusals). */
  refusals: number;
  /** Sharded relay: messages waiting their turn (the connection's messages are handled in order). */
  queue?: Array<string | ArrayBuffer>;
  /** Sharded relay: the queue is being worked through (front.ts). */
  pumping?: boolean;
  /** While set, replies are collected here instead of sent (a sharded EVENT group orders them). */
  hold?: string[];
  /** A sharded REQ waiting for the storage shards; matching events meanwhile are buffered. */
  pending?: { filters: Filter[]; buffered: Buffered[] };
  /**
   * Sharded: per subscription, how far each storage shard had been read for its stored events. An
   * event stored before that point and fanned out late was among them (or cut by the limit, or
   * deleted since): it is not sent again. In memory only; nothing is in flight across hibernation.
   */
  marks?: Map<string, Map<number, Position>>;
}

export class Connections {
  private byId = new Map<string, Conn>();
  private bySocket = new WeakMap<WebSocket, Conn>();
  /** Open connections per client address. */
  private perIp = new Map<string, number>();
  private state: RelayState;

  constructor(state: RelayState) {
    this.state = state;
  }

  /** After hibernation or eviction: sockets are still connected; subscriptions come from their attachments (or SQLite). */
  restore(sockets: WebSocket[]): void {
    const subs = this.state.loadSubs();
    const live = new Set<string>();
    for (const ws of sockets) {
      const att = ws.deserializeAttachment() as Attachment | null;
      if (!att) continue;
      live.add(att.id);
      this.track(ws, att, subs.get(att.id) ?? new Map());
    }
    for (const id of subs.keys()) if (!live.has(id)) this.state.deleteConn(id);
  }

  /** A new socket, accepted by the object; its attachment is written here. */
  open(ws: WebSocket, att: Attachment): Conn {
    ws.serializeAttachment(att);
    return this.track(ws, att, new Map());
  }

  private track(ws: WebSocket, att: Attachment, sqlSubs: Map<string, Filter[]>): Conn {
    const subs = att.subsInSql ? sqlSubs : new Map(att.subs ?? []);
    const conn: Conn = { ws, att, subs, refusals: 0 };
    this.byId.set(att.id, conn);
    this.bySocket.set(ws, conn);
    if (att.ip) this.perIp.set(att.ip, (this.perIp.get(att.ip) ?? 0) + 1);
    return conn;
  }

  /** The connection of a socket (tracked again if the object woke up without it), or undefined once it closed. */
  of(ws: WebSocket): Conn | undefined {
    const c = this.bySocket.get(ws);
    if (c) return c;
    if (ws.readyState !== WebSocket.OPEN) return undefined; // closed and dropped: do not resurrect
    const att = ws.deserializeAttachment() as Attachment | null;
    if (!att) return undefined;
    return this.byId.get(att.id) ?? this.track(ws, att, att.subsInSql ? (this.state.loadSubs().get(att.id) ?? new Map()) : new Map());
  }

  /** Forgets a socket that closed or failed; the connection it had, for the caller's own cleanup. */
  drop(ws: WebSocket): Conn | undefined {
    const conn = this.of(ws);
    if (!conn) return undefined;
    this.byId.delete(conn.att.id);
    this.bySocket.delete(ws);
    const ip = conn.att.ip;
    if (ip) {
      const n = (this.perIp.get(ip) ?? 1) - 1;
      if (n > 0) this.perIp.set(ip, n);
      else this.perIp.delete(ip);
    }
    if (conn.att.subsInSql) this.state.deleteConn(conn.att.id);
    return conn;
  }

  connectionsFrom(ip: string): number {
    return this.perIp.get(ip) ?? 0;
  }

  // ---------------------------------------------------------------- subscriptions

  /** Opens (or replaces) a subscription. */
  subscribe(conn: Conn, sub: string, filters: Filter[]): void {
    conn.subs.set(sub, filters);
    this.saveSub(conn, sub, filters);
  }

  /**
   * Stops a subscription's deliveries while a new REQ of the same id is answered (sharded), keeping
   * its place among the connection's subscriptions as a replaced one keeps it with one object.
   */
  pause(conn: Conn, sub: string): void {
    if (conn.subs.has(sub)) conn.subs.set(sub, []);
  }

  unsubscribe(conn: Conn, sub: string): void {
    conn.marks?.delete(sub);
    if (conn.subs.delete(sub)) this.saveSub(conn, sub, null);
  }

  private saveSub(conn: Conn, sub: string, filters: Filter[] | null): void {
    if (conn.att.subsInSql) {
      if (filters) this.state.putSub(conn.att.id, sub, filters);
      else this.state.deleteSub(conn.att.id, sub);
      return;
    }
    conn.att = { ...conn.att, subs: [...conn.subs] };
    this.saveAttachment(conn);
  }

  /** Serialises the attachment, first moving the subscriptions to SQLite if it would not fit. */
  saveAttachment(conn: Conn): void {
    if (!conn.att.subsInSql && attachmentFits(conn.att)) {
      try {
        conn.ws.serializeAttachment(conn.att);
        return;
      } catch {
        /* larger than the runtime allows after all: move the subscriptions out */
      }
    }
    if (!conn.att.subsInSql) for (const [id, f] of conn.subs) this.state.putSub(conn.att.id, id, f);
    const { subs: _moved, ...rest } = conn.att;
    conn.att = { ...rest, subsInSql: true };
    conn.ws.serializeAttachment(conn.att);
  }

  // ---------------------------------------------------------------- replies

  send(conn: Conn, text: string): void {
    if (conn.hold) {
      conn.hold.push(text);
      return;
    }
    try {
      conn.ws.send(text);
    } catch {
      /* socket closing: its close handler cleans up */
    }
  }

  notice(conn: Conn, text: string): void {
    this.send(conn, JSON.stringify(["NOTICE", text]));
  }

  ok(conn: Conn, id: string, accepted: boolean, text: string): void {
    this.send(conn, JSON.stringify(["OK", id, accepted, text]));
  }

  /** CLOSED ends the subscription id on both sides: an older REQ with this id is dropped too. */
  closed(conn: Conn, sub: string, text: string): void {
    this.unsubscribe(conn, sub);
    this.send(conn, JSON.stringify(["CLOSED", sub, text]));
  }

  // ---------------------------------------------------------------- fan-out

  /**
   * Sends a new event to every subscription (on any socket of this object) whose filters match it.
   * `at` is where a storage shard stored it (sharded relay; for REQs still waiting for their answer).
   */
  fanOut(e: NostrEvent, raw: string, at?: Buffered["at"]): void {
    for (const conn of this.byId.values()) {
      for (const [sub, filters] of conn.subs) {
        if (!matchAny(filters, e)) continue;
        const mark = at && conn.marks?.get(sub)?.get(at.shard);
        if (mark && seenBy(at, mark)) continue;
        this.send(conn, `["EVENT",${JSON.stringify(sub)},${raw}]`);
      }
      if (conn.pending && matchAny(conn.pending.filters, e)) conn.pending.buffered.push(at ? { raw, at } : { raw });
    }
  }

  /**
   * A deletion removed job requests: every subscription that matched one of them, and did not match
   * the deletion itself (so it did not receive it from fanOut), receives the deletion too.
   */
  fanOutCancellation(deletion: NostrEvent, jobs: NostrEvent[]): void {
    const raw = JSON.stringify(deletion);
    for (const conn of this.byId.values()) {
      for (const [sub, filters] of conn.subs) {
        if (matchAny(filters, deletion)) continue;
        if (jobs.some((j) => matchAny(filters, j))) this.send(conn, `["EVENT",${JSON.stringify(sub)},${raw}]`);
      }
    }
  }
}

/** Attachments are limited to 2,048 bytes serialised; stay well inside (two bytes per non-Latin-1 char). */
const ATTACHMENT_BUDGET = 1800;
function attachmentFits(att: Attachment): boolean {
  const json = JSON.stringify(att);
  // eslint-disable-next-line no-control-regex
  const wide = /[^\u0000-\u00ff]/.test(json);
  return (wide ? json.length * 2 : json.length) <= ATTACHMENT_BUDGET;
}
