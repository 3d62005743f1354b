// The relay Durable Object: hibernatable WebSockets speaking NIP-01 (EVENT/REQ/CLOSE/COUNT/AUTH),
// the NIP-11 document on the same URL, and RPC methods for the Worker (edge agents, publishing,
// configuration). Message handling is synchronous from parse to reply (verification and SQLite are
// both synchronous), so every message is handled atomically.
import { DurableObject } from "cloudflare:workers";
import {
  canonicalEvent,
  checkEventShape,
  expirationOf,
  isEphemeral,
  isReplaceable,
  isAddressable,
  isProtected,
  type NostrEvent,
} from "./event.ts";
import { matchAny, parseFilter, type Filter } from "./filter.ts";
import { DEFAULT_CONFIG, mergeConfig, powRequired, type RelayConfig } from "./config.ts";
import { CORS_HEADERS, preflight } from "./cors.ts";
import { Moderation } from "./moderation.ts";
import { checkPow } from "./nip13.ts";
import { relayInfo } from "./nip11.ts";
import { AUTH_KIND, checkAuthEvent, relayUrlKey } from "./nip42.ts";
import { handleManagement, isManagementRequest, parseAdmins } from "./nip86.ts";
import { BucketMap } from "./ratelimit.ts";
import {
  checkJobEvent,
  checkRegistration,
  edgeAgentHandler,
  isJobRequest,
  routeJob,
  type AgentRegistration,
  type JobContext,
  type PublishResult,
} from "./nip90.ts";
import { NIP77_DEFAULTS, Nip77Sessions, advertiseNip77, mergeNip77, type Nip77Limits } from "./nip77.ts";
import { RelayState, type Attachment } from "./state.ts";
import { EventStore } from "./store.ts";
import { defaultVerifier, type Verifier } from "./verify.ts";
import { isObjectWithId, refusalFor, refusalForOversized, type Refusal } from "./replies.ts";
import { published, queryStored, type Published } from "./rpc.ts";

export interface RelayEnv {
  /** JSON object of RelayConfig fields overriding the defaults (e.g. from `wrangler dev --var`). */
  RELAY_CONFIG?: string;
  /** NIP-86: hex pubkeys (comma or space separated) allowed to manage the relay. */
  ADMIN_PUBKEYS?: string;
}

interface Conn {
  ws: WebSocket;
  att: Attachment;
  subs: Map<string, Filter[]>;
  /** Messages refused for rate in a row (see closeAfterRefusals). */
  refusals: number;
}

/** An EVENT arriving within this many ms of the previous one joins a batch (see webSocketMessage). */
const BATCH_IDLE_MS = 2;
const EVENT_MESSAGE = /^\s*\[\s*"EVENT"/;
const encoder = new TextEncoder();

const nowSeconds = () => Math.floor(Date.now() / 1000);

/** The client address Cloudflare puts on every request; absent for requests made inside the Worker. */
export const CLIENT_IP_HEADER = "CF-Connecting-IP";

export class NostrRelay extends DurableObject<RelayEnv> {
  private store: EventStore;
  private state: RelayState;
  private cfg: RelayConfig;
  private verifier: Verifier;
  private conns = new Map<string, Conn>();
  private bySocket = new WeakMap<WebSocket, Conn>();
  /** Token buckets of connections (`c:<id>`), client addresses (`ip:<addr>`) and authors (`pk:<hex>`), kept in SQLite. */
  private buckets: BucketMap;
  /** Open connections per client address. */
  private perIp = new Map<string, number>();
  private moderation: Moderation;
  private admins: Set<string>;
  private nextExpiry: number | null = null;
  private neg: Nip77Sessions;

  constructor(ctx: DurableObjectState, env: RelayEnv) {
    super(ctx, env);
    this.store = new EventStore(ctx.storage);
    this.state = new RelayState(ctx.storage.sql);
    this.buckets = new BucketMap(10_000, ctx.storage.sql);
    this.moderation = new Moderation(ctx.storage.sql);
    this.admins = parseAdmins(env.ADMIN_PUBKEYS);
    this.verifier = defaultVerifier();
    this.neg = new Nip77Sessions((f, max) => this.store.negentropyItems(f, nowSeconds(), max));
    this.cfg = this.loadConfig();
    this.restoreConnections();
  }

  private loadConfig(): RelayConfig {
    let cfg = DEFAULT_CONFIG;
    let neg = NIP77_DEFAULTS;
    if (this.env.RELAY_CONFIG) {
      try {
        cfg = mergeConfig(cfg, JSON.parse(this.env.RELAY_CONFIG));
        neg = mergeNip77(neg, JSON.parse(this.env.RELAY_CONFIG));
      } catch {
        console.error("relay: RELAY_CONFIG is not JSON; using defaults");
      }
    }
    const stored = this.state.getSetting("config");
    if (stored !== undefined) {
      cfg = mergeConfig(cfg, JSON.parse(stored));
      neg = mergeNip77(neg, JSON.parse(stored));
    }
    this.neg.limits = neg;
    return cfg;
  }

  /** After hibernation or eviction: sockets are still connected; subscriptions come from their attachments (or SQLite). */
  private restoreConnections(): void {
    const subs = this.state.loadSubs();
    const live = new Set<string>();
    for (const ws of this.ctx.getWebSockets()) {
      const att = ws.deserializeAttachment() as Attachment | null;
      if (!att) continue;
      live.add(att.id);
      this.track(ws, att, subs.get(att.id) ?? new Map());
    }
    for (const id of subs.keys()) if (!live.has(id)) this.state.deleteConn(id);
  }

  private track(ws: WebSocket, att: Attachment, sqlSubs: Map<string, Filter[]>): Conn {
    const subs = att.subsInSql ? sqlSubs : new Map(att.subs ?? []);
    const conn: Conn = { ws, att, subs, refusals: 0 };
    this.conns.set(att.id, conn);
    this.bySocket.set(ws, conn);
    if (att.ip) this.perIp.set(att.ip, (this.perIp.get(att.ip) ?? 0) + 1);
    return conn;
  }

  private connOf(ws: WebSocket): Conn | undefined {
    const c = this.bySocket.get(ws);
    if (c) return c;
    if (ws.readyState !== WebSocket.OPEN) return undefined; // closed and dropped: do not resurrect
    const att = ws.deserializeAttachment() as Attachment | null;
    if (!att) return undefined;
    return this.conns.get(att.id) ?? this.track(ws, att, att.subsInSql ? (this.state.loadSubs().get(att.id) ?? new Map()) : new Map());
  }

  // ---------------------------------------------------------------- HTTP: upgrade, NIP-11, NIP-86

  override async fetch(request: Request): Promise<Response> {
    if (request.method === "OPTIONS") return preflight();
    if (isManagementRequest(request)) return handleManagement(request, this.admins, this.managed(), this.verifier);
    if ((request.headers.get("Upgrade") ?? "").toLowerCase() === "websocket") {
      const ip = request.headers.get(CLIENT_IP_HEADER)?.toLowerCase() ?? "";
      if (ip && this.moderation.has("blocked_ips", ip)) return text(403, "blocked: this address is blocked by the relay's operators\n");
      // Checked before anything is allocated: one address cannot hold every socket of the object.
      if (ip && this.cfg.maxConnectionsPerIp > 0 && (this.perIp.get(ip) ?? 0) >= this.cfg.maxConnectionsPerIp)
        return text(429, `rate-limited: more than ${this.cfg.maxConnectionsPerIp} connections from this address\n`, { "Retry-After": "10" });
      const pair = new WebSocketPair();
      const client = pair[0];
      const server = pair[1];
      const att: Attachment = {
        id: crypto.randomUUID(),
        challenge: crypto.randomUUID(),
        authed: [],
        url: relayUrlKey(request.url) ?? "",
      };
      if (ip) att.ip = ip;
      this.ctx.acceptWebSocket(server);
      server.serializeAttachment(att);
      this.track(server, att, new Map());
      server.send(JSON.stringify(["AUTH", att.challenge]));
      return new Response(null, { status: 101, webSocket: client });
    }
    if ((request.headers.get("Accept") ?? "").includes("application/nostr+json")) {
      return new Response(JSON.stringify(this.info()), {
        headers: { ...CORS_HEADERS, "Content-Type": "application/nostr+json" },
      });
    }
    return new Response(`${this.cfg.name}: connect with a Nostr client (WebSocket), or ask for application/nostr+json.\n`, {
      headers: { ...CORS_HEADERS, "Content-Type": "text/plain; charset=utf-8" },
    });
  }

  // ---------------------------------------------------------------- WebSocket handlers

  /**
   * Under load, events are queued and handled in batches: the first EVENT of a batch schedules a
   * drain on the next turn, and whatever arrives before it runs is handled with it. All writes of a
   * batch then share one SQLite commit (one fsync), and the replies of the batch are released
   * together once it is durable (output gate). Other messages (REQ, CLOSE, COUNT, AUTH) write
   * nothing worth sharing, so they are handled at once unless messages are already queued: order
   * per socket is kept.
   */
  override webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): void {
    if (typeof message !== "string" || !EVENT_MESSAGE.test(message)) {
      if (this.inbox.length === 0) return this.handleMessage(ws, message);
      this.inbox.push({ ws, message });
      return;
    }
    const now = Date.now();
    const idle = now - this.lastEventAt > BATCH_IDLE_MS;
    this.lastEventAt = now;
    // An isolated event (nothing queued, no other event recently) is handled at once: no added latency.
    if (idle && this.inbox.length === 0) return this.handleMessage(ws, message);
    this.inbox.push({ ws, message });
    if (this.inbox.length === 1) setTimeout(() => this.drain(), 0);
  }

  private inbox: Array<{ ws: WebSocket; message: string | ArrayBuffer }> = [];
  private lastEventAt = 0;

  private drain(): void {
    const batch = this.inbox;
    this.inbox = [];
    for (const { ws, message } of batch) this.handleMessage(ws, message);
  }

  private handleMessage(ws: WebSocket, message: string | ArrayBuffer): void {
    const conn = this.connOf(ws);
    if (!conn) return;
    if (typeof message !== "string") return this.notice(conn, "invalid: binary messages are not supported; send JSON text");
    if (message.length > this.cfg.maxMessageLength || (message.length * 3 > this.cfg.maxMessageLength && encoder.encode(message).length > this.cfg.maxMessageLength))
      return this.refuse(conn, refusalForOversized(message), `invalid: message is larger than ${this.cfg.maxMessageLength} bytes`);
    // Rate limits come before parsing and verification: a flood is refused at the cost of a counter.
    const limited = this.overRate(conn);
    if (limited !== null) return this.rateLimited(conn, message, limited);
    let msg: unknown;
    try {
      msg = JSON.parse(message);
    } catch {
      return this.notice(conn, "invalid: message is not valid JSON");
    }
    if (!Array.isArray(msg) || typeof msg[0] !== "string") return this.notice(conn, "invalid: a message must be a JSON array starting with a verb");
    try {
      switch (msg[0]) {
        case "EVENT":
          return this.onEvent(conn, msg);
        case "REQ":
          return this.onReq(conn, msg);
        case "CLOSE":
          return this.onClose(conn, msg);
        case "COUNT":
          return this.onCount(conn, msg);
        case "AUTH":
          return this.onAuth(conn, msg);
        case "NEG-OPEN":
        case "NEG-MSG":
        case "NEG-CLOSE":
          return this.neg.handle({ id: conn.att.id, mayRead: !this.cfg.authRead || conn.att.authed.length > 0, send: (t) => this.send(conn, t) }, msg, this.cfg);
        default:
          return this.notice(conn, `invalid: unknown message type ${JSON.stringify(msg[0]).slice(0, 40)}`);
      }
    } catch (err) {
      console.error("relay: error handling message", err);
      const id = msg[0] === "EVENT" && isObjectWithId(msg[1]) ? msg[1].id : undefined;
      if (id) return this.ok(conn, id, false, "error: internal error, please retry");
      return this.notice(conn, "error: internal error");
    }
  }

  override webSocketClose(ws: WebSocket, code: number, _reason: string, _wasClean: boolean): void {
    this.drop(ws);
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, "closing");
    } catch {
      /* already closed */
    }
  }

  override webSocketError(ws: WebSocket, _error: unknown): void {
    this.drop(ws);
  }

  private drop(ws: WebSocket): void {
    const conn = this.connOf(ws);
    if (!conn) return;
    this.conns.delete(conn.att.id);
    this.bySocket.delete(ws);
    this.neg.dropConn(conn.att.id);
    this.buckets.forget(`c:${conn.att.id}`);
    const ip = conn.att.ip;
    if (ip) {
      const n = (this.perIp.get(ip) ?? 1) - 1;
      if (n > 0) this.perIp.set(ip, n);
      else this.perIp.delete(ip);
    }
    if (conn.att.subsInSql) this.state.deleteConn(conn.att.id);
  }

  // ---------------------------------------------------------------- rate limits

  /** Takes a token from the connection's bucket and its address's; the text of the refusal, or null. */
  private overRate(conn: Conn): string | null {
    const now = Date.now();
    const cfg = this.cfg;
    let limited: string | null = null;
    if (!this.buckets.take(`c:${conn.att.id}`, cfg.messagesPerSecond, cfg.messageBurst, now))
      limited = `rate-limited: more than ${cfg.messagesPerSecond} messages/s; slow down`;
    else if (conn.att.ip && !this.buckets.take(`ip:${conn.att.ip}`, cfg.messagesPerSecondPerIp, cfg.messageBurstPerIp, now))
      limited = `rate-limited: more than ${cfg.messagesPerSecondPerIp} messages/s from this address; slow down`;
    conn.refusals = limited === null ? 0 : conn.refusals + 1;
    return limited;
  }

  // ---------------------------------------------------------------- replies

  private send(conn: Conn, text: string): void {
    try {
      conn.ws.send(text);
    } catch {
      /* socket closing: its close handler cleans up */
    }
  }
  private notice(conn: Conn, text: string): void {
    this.send(conn, JSON.stringify(["NOTICE", text]));
  }
  private ok(conn: Conn, id: string, accepted: boolean, text: string): void {
    this.send(conn, JSON.stringify(["OK", id, accepted, text]));
  }
  /** CLOSED ends the subscription id on both sides: an older REQ with this id is dropped too. */
  private closed(conn: Conn, sub: string, text: string): void {
    if (conn.subs.delete(sub)) this.saveSub(conn, sub, null);
    this.send(conn, JSON.stringify(["CLOSED", sub, text]));
  }

  /** Sends a refusal in the shape the message asked for (replies.ts decides which). */
  private refuse(conn: Conn, r: Refusal, text: string): void {
    if (r.verb === "OK") return this.ok(conn, r.id, false, text);
    if (r.verb === "CLOSED") return this.closed(conn, r.sub, text);
    return this.notice(conn, text);
  }

  /** A connection that keeps sending into a refusal is told so and closed (policy violation). */
  private rateLimited(conn: Conn, message: string, text: string): void {
    const max = this.cfg.closeAfterRefusals;
    if (max > 0 && conn.refusals >= max) {
      this.notice(conn, `rate-limited: ${conn.refusals} messages refused in a row; closing`);
      try {
        conn.ws.close(1008, "rate-limited");
      } catch {
        /* already closing */
      }
      this.drop(conn.ws);
      return;
    }
    this.refuse(conn, refusalFor(message), text);
  }

  // ---------------------------------------------------------------- EVENT

  private onEvent(conn: Conn, msg: unknown[]): void {
    const raw = msg[1];
    if (msg.length !== 2) {
      if (isObjectWithId(raw)) return this.ok(conn, raw.id, false, "invalid: EVENT takes exactly one event");
      return this.notice(conn, "invalid: EVENT takes exactly one event");
    }
    const shape = checkEventShape(raw);
    if (shape !== null) {
      if (isObjectWithId(raw)) return this.ok(conn, raw.id, false, `invalid: ${shape}`);
      return this.notice(conn, `invalid: ${shape}`);
    }
    const r = this.ingest(raw as NostrEvent, conn);
    this.ok(conn, (raw as NostrEvent).id, r.ok, r.message);
    if (r.ok && r.after) r.after();
  }

  /**
   * The whole acceptance path for an event whose shape is valid: verification first, then the
   * relay's rules, then storage. `after` (fan-out, routing) runs once the OK has been sent.
   * `conn` is null for events published over RPC by code in the Worker (edge agents).
   */
  private ingest(input: NostrEvent, conn: Conn | null): PublishResult & { after?: () => void } {
    const e = canonicalEvent(input);
    // The operators' bans cost a lookup, verification a signature check: bans first.
    const banned = this.moderation.refusal(e.id, e.pubkey);
    if (banned !== null) return { ok: false, message: banned };
    const v = this.verifier.verify(e);
    if (v === "bad-id") return { ok: false, message: "invalid: event id does not match its sha256 serialisation" };
    if (v === "bad-sig") return { ok: false, message: "invalid: bad signature" };
    if (e.kind === AUTH_KIND) return { ok: false, message: "invalid: kind 22242 events are only accepted in AUTH messages" };
    const cfg = this.cfg;
    if (e.content.length > cfg.maxContentLength) return { ok: false, message: `invalid: content is longer than ${cfg.maxContentLength} characters` };
    if (e.tags.length > cfg.maxEventTags) return { ok: false, message: `invalid: more than ${cfg.maxEventTags} tags` };
    const now = nowSeconds();
    if (e.created_at > now + cfg.createdAtUpperLimit)
      return { ok: false, message: `invalid: created_at is more than ${cfg.createdAtUpperLimit} seconds in the future` };
    if (e.created_at < now - cfg.createdAtLowerLimit)
      return { ok: false, message: `invalid: created_at is more than ${cfg.createdAtLowerLimit} seconds in the past` };
    const exp = expirationOf(e);
    if (exp !== null && exp <= now) return { ok: false, message: "invalid: event has expired" };
    if (conn && cfg.authWrite && !conn.att.authed.includes(e.pubkey)) {
      if (conn.att.authed.length === 0) return { ok: false, message: "auth-required: this relay only accepts events from authenticated authors" };
      return { ok: false, message: "restricted: the event's author is not the authenticated pubkey" };
    }
    // NIP-70: a protected event is accepted only from its authenticated author (code in the Worker is trusted).
    if (conn && isProtected(e) && !conn.att.authed.includes(e.pubkey)) {
      if (conn.att.authed.length === 0) return { ok: false, message: "auth-required: this event is protected; authenticate as its author to publish it" };
      return { ok: false, message: "restricted: this event is protected; only its author may publish it" };
    }
    const pow = checkPow(e, powRequired(cfg, e.kind));
    if (pow !== null) return { ok: false, message: pow };
    if (conn && !this.buckets.take(`pk:${e.pubkey}`, cfg.eventsPerSecondPerPubkey, cfg.eventBurstPerPubkey, Date.now()))
      return { ok: false, message: `rate-limited: more than ${cfg.eventsPerSecondPerPubkey} events/s from this author; slow down` };
    const jobError = checkJobEvent(e);
    if (jobError !== null) return { ok: false, message: `invalid: ${jobError}` };

    const raw = JSON.stringify(e);
    if (isEphemeral(e.kind)) return { ok: true, message: "", after: () => this.fanOut(e, raw) };
    const saved = this.store.save(e, raw);
    switch (saved.status) {
      case "duplicate":
        return { ok: true, message: "duplicate: already have this event" };
      case "superseded":
        return { ok: false, message: `duplicate: a newer version of this ${isReplaceable(e.kind) ? "replaceable" : isAddressable(e.kind) ? "addressable" : ""} event is stored` };
      case "deleted":
        return { ok: false, message: "blocked: this event was deleted by its author" };
    }
    return {
      ok: true,
      message: "",
      after: () => {
        this.fanOut(e, raw);
        if (saved.deleted.length > 0) this.cancelJobs(e, saved.deleted);
        if (isJobRequest(e.kind)) this.dispatchJob(e);
        if (exp !== null) this.scheduleExpiry(exp);
      },
    };
  }

  /** Sends a new event to every subscription (on any socket) whose filters match it. */
  private fanOut(e: NostrEvent, raw: string): void {
    for (const conn of this.conns.values()) {
      for (const [sub, filters] of conn.subs) {
        if (matchAny(filters, e)) this.send(conn, `["EVENT",${JSON.stringify(sub)},${raw}]`);
      }
    }
  }

  // ---------------------------------------------------------------- REQ / CLOSE / COUNT

  /** Checks the subscription id and filters of a REQ or COUNT. Returns the filters, or null after replying. */
  private parseSubscription(conn: Conn, msg: unknown[], verb: string): { sub: string; filters: Filter[] } | null {
    const sub = msg[1];
    if (typeof sub !== "string") {
      this.notice(conn, `invalid: ${verb} needs a subscription id string`);
      return null;
    }
    if (sub.length === 0 || sub.length > this.cfg.maxSubidLength) {
      this.closed(conn, sub, `invalid: subscription id must be 1 to ${this.cfg.maxSubidLength} characters`);
      return null;
    }
    if (this.cfg.authRead && conn.att.authed.length === 0) {
      this.closed(conn, sub, "auth-required: this relay only serves authenticated clients");
      return null;
    }
    const rawFilters = msg.slice(2);
    if (rawFilters.length === 0) {
      this.closed(conn, sub, `invalid: ${verb} needs at least one filter`);
      return null;
    }
    if (rawFilters.length > this.cfg.maxFilters) {
      this.closed(conn, sub, `invalid: more than ${this.cfg.maxFilters} filters`);
      return null;
    }
    const filters: Filter[] = [];
    for (const rf of rawFilters) {
      const f = parseFilter(rf, this.cfg);
      if (typeof f === "string") {
        this.closed(conn, sub, `invalid: ${f}`);
        return null;
      }
      filters.push(f);
    }
    return { sub, filters };
  }

  private onReq(conn: Conn, msg: unknown[]): void {
    const p = this.parseSubscription(conn, msg, "REQ");
    if (!p) return;
    if (!conn.subs.has(p.sub) && conn.subs.size >= this.cfg.maxSubscriptions) {
      return this.closed(conn, p.sub, `rate-limited: more than ${this.cfg.maxSubscriptions} open subscriptions; close one first`);
    }
    const sub = JSON.stringify(p.sub);
    for (const m of this.store.messages(p.filters, nowSeconds(), this.cfg.defaultLimit, `["EVENT",${sub},`)) this.send(conn, m);
    this.send(conn, `["EOSE",${sub}]`);
    conn.subs.set(p.sub, p.filters);
    this.saveSub(conn, p.sub, p.filters);
  }

  private onClose(conn: Conn, msg: unknown[]): void {
    const sub = msg[1];
    if (typeof sub !== "string" || msg.length !== 2) return this.notice(conn, "invalid: CLOSE takes one subscription id");
    if (conn.subs.delete(sub)) this.saveSub(conn, sub, null);
  }

  /**
   * Keeps a socket's subscriptions where they survive hibernation and eviction. Small sets live in
   * the socket's attachment (no storage write, so replies are not held for a commit); a set too
   * large for the 2 KB attachment moves to SQLite rows keyed by the connection id.
   */
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
  private saveAttachment(conn: Conn): void {
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


  private onCount(conn: Conn, msg: unknown[]): void {
    const p = this.parseSubscription(conn, msg, "COUNT");
    if (!p) return;
    const count = this.store.count(p.filters, nowSeconds());
    this.send(conn, JSON.stringify(["COUNT", p.sub, { count }]));
  }

  // ---------------------------------------------------------------- AUTH (NIP-42)

  private onAuth(conn: Conn, msg: unknown[]): void {
    const raw = msg[1];
    const shape = msg.length === 2 ? checkEventShape(raw) : "AUTH takes exactly one event";
    if (shape !== null) {
      if (isObjectWithId(raw)) return this.ok(conn, raw.id, false, `invalid: ${shape}`);
      return this.notice(conn, `invalid: ${shape}`);
    }
    const e = canonicalEvent(raw as NostrEvent);
    const fail = (text: string) => this.ok(conn, e.id, false, text);
    const v = this.verifier.verify(e);
    if (v !== "ok") return fail(v === "bad-id" ? "invalid: event id does not match its sha256 serialisation" : "invalid: bad signature");
    const refused = checkAuthEvent(e, conn.att.challenge, conn.att.url, nowSeconds());
    if (refused !== null) return fail(refused);
    if (!conn.att.authed.includes(e.pubkey)) {
      conn.att.authed.push(e.pubkey);
      if (conn.att.authed.length > 8) conn.att.authed.shift();
      this.saveAttachment(conn);
    }
    this.ok(conn, e.id, true, "");
  }

  // ---------------------------------------------------------------- NIP-90 routing

  private jobContext(reg: AgentRegistration): JobContext {
    return { registration: reg, publish: async (event) => this.publish(event) };
  }

  /** Runs an edge agent's hook after the reply: a failing agent is logged, never fatal. */
  private inBackground(reg: AgentRegistration, failure: string, call: () => unknown): void {
    this.ctx.waitUntil(Promise.resolve().then(call).then(() => undefined, (err) => console.error(`relay: edge agent ${reg.agent} ${failure}`, err)));
  }

  /** Hands an accepted job request to the edge agents registered for its kind. */
  private dispatchJob(job: NostrEvent): void {
    for (const reg of routeJob(job, this.state.agents(job.kind))) {
      const h = edgeAgentHandler(reg.handler);
      if (!h) {
        console.warn(`relay: no edge agent handler named ${reg.handler} in this bundle (agent ${reg.agent})`);
        continue;
      }
      this.inBackground(reg, `failed on job ${job.id}`, () => h.onJob(job, this.jobContext(reg)));
    }
  }

  /**
   * A kind-5 deletion removed events. For deleted job requests, providers are told: every
   * subscription that matched the request (and did not already receive the deletion itself) gets
   * the deletion event, and the edge agents it was routed to get onCancel.
   */
  private cancelJobs(deletion: NostrEvent, deleted: NostrEvent[]): void {
    const jobs = deleted.filter((d) => isJobRequest(d.kind));
    if (jobs.length === 0) return;
    const raw = JSON.stringify(deletion);
    for (const conn of this.conns.values()) {
      for (const [sub, filters] of conn.subs) {
        if (matchAny(filters, deletion)) continue;
        if (jobs.some((j) => matchAny(filters, j))) this.send(conn, `["EVENT",${JSON.stringify(sub)},${raw}]`);
      }
    }
    for (const job of jobs) {
      for (const reg of routeJob(job, this.state.agents(job.kind))) {
        const h = edgeAgentHandler(reg.handler);
        if (!h?.onCancel) continue;
        const onCancel = h.onCancel.bind(h);
        this.inBackground(reg, `failed to cancel ${job.id}`, () => onCancel(job, deletion, this.jobContext(reg)));
      }
    }
  }

  // ---------------------------------------------------------------- NIP-40 expiry

  private scheduleExpiry(at: number): void {
    if (this.nextExpiry !== null && this.nextExpiry <= at) return;
    this.nextExpiry = at;
    void this.ctx.storage.setAlarm(at * 1000);
  }

  override async alarm(): Promise<void> {
    this.nextExpiry = null;
    const next = this.store.expire(nowSeconds());
    if (next !== null) this.scheduleExpiry(Math.max(next, nowSeconds() + 1));
  }

  // ---------------------------------------------------------------- RPC for the Worker

  /** Publishes a signed event as a client would (verified, stored, fanned out, routed). */
  publish(event: NostrEvent): Published {
    const shape = checkEventShape(event);
    if (shape !== null) return published({ ok: false, message: `invalid: ${shape}` });
    const r = this.ingest(event, null);
    if (r.ok && r.after) r.after();
    return published(r);
  }

  /** The stored events matching a filter or a list of filters, as a REQ gets them before EOSE (rpc.ts). */
  query(filters: unknown): NostrEvent[] {
    return queryStored(this.store, this.cfg, filters, nowSeconds());
  }

  /**
   * Registers an edge-hosted agent for a job kind (see nip90.ts). Survives eviction. Answers
   * `{ok:false, error}` for a bad registration rather than throwing across RPC.
   */
  registerAgent(reg: AgentRegistration): { ok: true } | { ok: false; error: string } {
    const err = checkRegistration(reg);
    if (err !== null) return { ok: false, error: `registerAgent: ${err}` };
    const clean: AgentRegistration = { kind: reg.kind, agent: reg.agent, handler: reg.handler };
    if (reg.pubkey !== undefined) clean.pubkey = reg.pubkey;
    this.state.putAgent(clean);
    if (!edgeAgentHandler(reg.handler)) console.warn(`relay: agent ${reg.agent} registered with handler ${reg.handler}, not (yet) defined in this bundle`);
    return { ok: true };
  }

  unregisterAgent(kind: number, agent: string): boolean {
    return this.state.deleteAgent(kind, agent);
  }

  listAgents(kind?: number): AgentRegistration[] {
    return this.state.agents(kind);
  }

  /** NIP-89: handler announcements (31990) declaring `kind`, plus the edge agents registered for it. */
  providers(kind: number): { announcements: NostrEvent[]; edgeAgents: AgentRegistration[] } {
    return { announcements: this.store.handlersFor(kind, nowSeconds()), edgeAgents: this.state.agents(kind) };
  }

  /** Changes configuration (persisted; merged over defaults and RELAY_CONFIG). Returns the result. */
  configure(patch: Partial<RelayConfig & Nip77Limits>): RelayConfig {
    const stored = JSON.parse(this.state.getSetting("config") ?? "{}") as Record<string, unknown>;
    this.state.putSetting("config", JSON.stringify({ ...stored, ...patch }));
    this.cfg = this.loadConfig();
    return this.cfg;
  }

  info(): Record<string, unknown> {
    return advertiseNip77(relayInfo(this.cfg, { management: this.admins.size > 0 }), this.neg.limits);
  }

  /** What NIP-86 calls act on. */
  private managed() {
    return {
      moderation: this.moderation,
      removeEvent: (id: string) => this.store.remove(id),
      configure: (patch: Partial<RelayConfig>) => this.configure(patch),
      info: () => this.info(),
    };
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

function text(status: number, body: string, headers: Record<string, string> = {}): Response {
  return new Response(body, { status, headers: { ...CORS_HEADERS, "Content-Type": "text/plain; charset=utf-8", ...headers } });
}


