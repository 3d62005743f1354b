// The relay Durable Object: hibernatable WebSockets speaking NIP-01 (EVENT/REQ/CLOSE/COUNT/AUTH) and
// NIP-77, the NIP-11 document and NIP-86 management on the same URL, and RPC methods for the Worker
// (edge agents, publishing, configuration).
//
// One object (the default): message handling is synchronous from parse to reply (verification and
// SQLite are both synchronous), so every message is handled atomically.
// A connection shard of a sharded relay (its name says so, see shards.ts): events are stored on
// storage shards and queries asked of them (sharded.ts), so EVENT, REQ, COUNT and NEG-OPEN wait for
// RPC; each connection's messages are then handled in order, one after the other, and consecutive
// EVENTs of a connection as one group.
//
// Its parts: sockets and subscriptions in conns.ts, the acceptance rules in admission.ts, storage in
// store.ts, NIP-90 hooks in jobs.ts, NIP-77 sessions in nip77.ts.
import { DurableObject } from "cloudflare:workers";
import { canonicalEvent, checkEventShape, expirationOf, isEphemeral, type NostrEvent } from "./event.ts";
import { parseSubscription, type Filter, type Subscription } from "./filter.ts";
import { DEFAULT_CONFIG, mergeConfig, type RelayConfig } from "./config.ts";
import { CORS_HEADERS, preflight } from "./cors.ts";
import { Moderation } from "./moderation.ts";
import { relayInfo } from "./nip11.ts";
import { checkAuthEvent, relayUrlKey } from "./nip42.ts";
import { handleManagement, isManagementRequest, parseAdmins, type Managed } from "./nip86.ts";
import { BucketMap, overMessageRate } from "./ratelimit.ts";
import { checkRegistration, edgeAgentHandler, type AgentRegistration, type PublishResult } from "./nip90.ts";
import { NIP77_DEFAULTS, Nip77Sessions, advertiseNip77, mergeNip77, type Nip77Limits } from "./nip77.ts";
import { RelayState, type Attachment } from "./state.ts";
import { ExpiryAlarm, nowSeconds } from "./expiry.ts";
import { AlarmClock } from "./alarm.ts";
import { JobOutbox } from "./job-outbox.ts";
import { BackgroundIndexer, EventStore } from "./store.ts";
import { defaultVerifier, type Verifier } from "./verify.ts";
import { isObjectWithId, refusalFor, refusalForOversized, storageReply, type Refusal } from "./replies.ts";
import { published, queryStored, type Published } from "./rpc.ts";
import { Connections, type Conn } from "./conns.ts";
import { JobRouter } from "./jobs.ts";
import { refusal, type Gate } from "./admission.ts";
import { parseConnShardName } from "./shards.ts";
import { ShardRouter, type ShardMessage } from "./sharded.ts";
import type { Position, RelayStorageShard } from "./shard.ts";
import { ShardFront, type FrontHost, type Ingested } from "./front.ts";

export interface RelayEnv {
  /** JSON object of RelayConfig fields overriding the defaults (e.g. from `wrangler dev --var`). */
  RELAY_CONFIG?: string;
  /** NIP-86: hex pubkeys (comma or space separated) allowed to manage the relay. */
  ADMIN_PUBKEYS?: string;
  /** Storage shards by author (read by the Worker, relay/http.ts); unset = one object. */
  RELAY_SHARDS?: string;
  /** This class's own namespace: connection shards reach each other through it. */
  RELAY?: DurableObjectNamespace<NostrRelay>;
  /** The storage shards (shard.ts), used when RELAY_SHARDS > 1. */
  RELAY_STORAGE?: DurableObjectNamespace<RelayStorageShard>;
}

/** An EVENT arriving within this many ms of the previous one joins a batch (see webSocketMessage). */
const BATCH_IDLE_MS = 2;
const EVENT_MESSAGE = /^\s*\[\s*"EVENT"/;
const encoder = new TextEncoder();


/** The client address Cloudflare puts on every request; absent for requests made inside the Worker. */
export const CLIENT_IP_HEADER = "CF-Connecting-IP";

export class NostrRelay extends DurableObject<RelayEnv> {
  private store: EventStore;
  private state: RelayState;
  private cfg: RelayConfig;
  private verifier: Verifier;
  private conns: Connections;
  /** Token buckets of connections (`c:<id>`), client addresses (`ip:<addr>`) and authors (`pk:<hex>`), kept in SQLite. */
  private buckets: BucketMap;
  private moderation: Moderation;
  private admins: Set<string>;
  private jobs: JobRouter;
  /** The object's one alarm, shared by NIP-40 expiry and the job outbox. */
  private clock: AlarmClock;
  private expiry: ExpiryAlarm;
  private neg: Nip77Sessions;
  private indexer: BackgroundIndexer;
  /** Set on a connection shard of a sharded relay (front.ts); null for the single object. */
  private front: ShardFront | null;
  private router: ShardRouter | null;
  /** Work a NIP-86 call started on other objects (sharded relay), awaited before it answers. */
  private outbox: Array<Promise<unknown>> = [];

  constructor(ctx: DurableObjectState, env: RelayEnv) {
    super(ctx, env);
    this.store = new EventStore(ctx.storage);
    const clock = (this.clock = new AlarmClock(ctx.storage));
    this.expiry = new ExpiryAlarm(clock, this.store);
    this.indexer = new BackgroundIndexer(this.store);
    this.state = new RelayState(ctx.storage.sql);
    this.buckets = new BucketMap(10_000, ctx.storage.sql);
    this.moderation = new Moderation(ctx.storage.sql);
    this.admins = parseAdmins(env.ADMIN_PUBKEYS);
    this.verifier = defaultVerifier();
    const layout = parseConnShardName(ctx.id.name);
    const router = (this.router = layout ? new ShardRouter(env, layout) : null);
    this.neg = new Nip77Sessions((f, max) => (router ?? this.store).negentropyItems(f, nowSeconds(), max));
    this.jobs = new JobRouter({
      agents: (kind) => this.state.agents(kind),
      publish: (e) => this.publish(e),
      waitUntil: (p) => ctx.waitUntil(p),
      outbox: new JobOutbox(ctx.storage.sql, clock),
      // Edge agents are registered on connection shard 0, which runs their hooks.
      ...(router && !router.isRegistry ? { forward: (jobs) => router.registry.shardCall({ jobs }) } : {}),
    });
    if (router) this.moderation.onChange = (c) => this.outbox.push(router.broadcast({ moderation: [c] }));
    this.cfg = this.loadConfig();
    this.conns = new Connections(this.state);
    this.conns.restore(ctx.getWebSockets());
    this.front = router ? new ShardFront(this.frontHost(), router) : null;
    // Hand-overs to edge agents an earlier instance did not finish (job-outbox.ts), now that all is set up.
    this.jobs.resume();
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

  /** What the connection-shard front (front.ts) uses of this object. */
  private frontHost(): FrontHost {
    const relay = this;
    return {
      conns: this.conns,
      get gate() {
        return relay.gate;
      },
      get defaultLimit() {
        return relay.cfg.defaultLimit;
      },
      parse: (conn, message) => this.parse(conn, message),
      dispatch: (conn, msg) => this.dispatch(conn, msg),
      eventOf: (conn, msg) => this.eventOf(conn, msg),
      afterStored: (e, raw, cancelled, at) => this.afterStored(e, raw, cancelled, at),
      jobsAccepted: (e, cancelled) => this.jobs.accepted(e, cancelled),
    };
  }

  private get gate(): Gate {
    return { cfg: this.cfg, moderation: this.moderation, verifier: this.verifier, buckets: this.buckets };
  }

  // ---------------------------------------------------------------- HTTP: upgrade, NIP-11, NIP-86

  override async fetch(request: Request): Promise<Response> {
    if (request.method === "OPTIONS") return preflight();
    if (isManagementRequest(request)) return handleManagement(request, this.admins, this.managed(), this.verifier);
    if ((request.headers.get("Upgrade") ?? "").toLowerCase() === "websocket") return this.accept(request);
    if ((request.headers.get("Accept") ?? "").includes("application/nostr+json")) {
      return new Response(JSON.stringify(this.info()), {
        headers: { ...CORS_HEADERS, "Content-Type": "application/nostr+json" },
      });
    }
    return new Response(`${this.cfg.name}: connect with a Nostr client (WebSocket), or ask for application/nostr+json.\n`, {
      headers: { ...CORS_HEADERS, "Content-Type": "text/plain; charset=utf-8" },
    });
  }

  private accept(request: Request): Response {
    const ip = request.headers.get(CLIENT_IP_HEADER)?.toLowerCase() ?? "";
    if (ip && this.moderation.has("blocked_ips", ip)) return text(403, "blocked: this address is blocked by the relay's operators\n");
    // Checked before anything is allocated: one address cannot hold every socket of the object.
    if (ip && this.cfg.maxConnectionsPerIp > 0 && this.conns.connectionsFrom(ip) >= this.cfg.maxConnectionsPerIp)
      return text(429, `rate-limited: more than ${this.cfg.maxConnectionsPerIp} connections from this address\n`, { "Retry-After": "10" });
    const pair = new WebSocketPair();
    const client = pair[0];
    const server = pair[1];
    const att: Attachment = { id: crypto.randomUUID(), challenge: crypto.randomUUID(), authed: [], url: relayUrlKey(request.url) ?? "" };
    if (ip) att.ip = ip;
    this.ctx.acceptWebSocket(server);
    this.conns.open(server, att);
    server.send(JSON.stringify(["AUTH", att.challenge]));
    return new Response(null, { status: 101, webSocket: client });
  }

  // ---------------------------------------------------------------- the message loop

  /**
   * Under load, events are queued and handled in batches: the first EVENT of a batch schedules a
   * drain on the next turn, and whatever arrives before it runs is handled with it. All writes of a
   * batch then share one SQLite commit (one fsync), and the replies of the batch are released
   * together once it is durable (output gate). Other messages (REQ, CLOSE, COUNT, AUTH) write
   * nothing worth sharing, so they are handled at once unless messages are already queued: order
   * per socket is kept. A connection shard queues per connection instead (front.ts).
   */
  override webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): void {
    if (this.front) {
      const conn = this.conns.of(ws);
      return conn && this.front.enqueue(conn, message);
    }
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
    const conn = this.conns.of(ws);
    if (!conn) return;
    const msg = this.parse(conn, message);
    if (msg) void this.dispatch(conn, msg);
  }

  /** Size, rate and JSON checks of a message: the parsed message, or null after replying. */
  private parse(conn: Conn, message: string | ArrayBuffer): unknown[] | null {
    const c = this.conns;
    if (typeof message !== "string") return c.notice(conn, "invalid: binary messages are not supported; send JSON text"), null;
    if (message.length > this.cfg.maxMessageLength || (message.length * 3 > this.cfg.maxMessageLength && encoder.encode(message).length > this.cfg.maxMessageLength))
      return this.refuse(conn, refusalForOversized(message), `invalid: message is larger than ${this.cfg.maxMessageLength} bytes`), null;
    // Rate limits come before parsing and verification: a flood is refused at the cost of a counter.
    const limited = overMessageRate(this.buckets, this.cfg, conn, Date.now());
    conn.refusals = limited === null ? 0 : conn.refusals + 1;
    if (limited !== null) return this.rateLimited(conn, message, limited), null;
    let msg: unknown;
    try {
      msg = JSON.parse(message);
    } catch {
      return c.notice(conn, "invalid: message is not valid JSON"), null;
    }
    if (!Array.isArray(msg) || typeof msg[0] !== "string") return c.notice(conn, "invalid: a message must be a JSON array starting with a verb"), null;
    return msg;
  }

  /** Handles a parsed message; a promise on a connection shard while storage shards are asked. */
  private dispatch(conn: Conn, msg: unknown[]): void | Promise<void> {
    const failed = (err: unknown) => {
      console.error("relay: error handling message", err);
      const sub = msg[1];
      if (msg[0] === "EVENT" && isObjectWithId(sub)) return this.conns.ok(conn, sub.id, false, "error: internal error, please retry");
      if ((msg[0] === "REQ" || msg[0] === "COUNT") && typeof sub === "string") return this.conns.closed(conn, sub, "error: internal error, please retry");
      this.conns.notice(conn, "error: internal error");
    };
    try {
      const done = this.route(conn, msg);
      return done instanceof Promise ? done.catch(failed) : done;
    } catch (err) {
      failed(err);
    }
  }

  private route(conn: Conn, msg: unknown[]): void | Promise<void> {
    switch (msg[0]) {
      case "EVENT":
        return this.front ? this.front.eventsNow(conn, [msg]) : this.onEvent(conn, msg);
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
        return this.neg.handle({ id: conn.att.id, mayRead: !this.cfg.authRead || conn.att.authed.length > 0, send: (t) => this.conns.send(conn, t) }, msg, this.cfg);
      default:
        return this.conns.notice(conn, `invalid: unknown message type ${JSON.stringify(msg[0]).slice(0, 40)}`);
    }
  }

  /** Messages from the other connection shards (the fan-out hop, shared settings, job hooks). */
  shardCall(msg: ShardMessage): void {
    if (!this.front) throw new Error("relay: shardCall on an object that is not a connection shard");
    if ("deliver" in msg) this.front.deliver(msg.deliver);
    else if ("config" in msg) {
      this.state.putSetting("config", msg.config);
      this.cfg = this.loadConfig();
    } else if ("moderation" in msg) {
      this.moderation.apply(msg.moderation);
    } else if ("jobs" in msg) {
      this.jobs.run(msg.jobs);
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
    const conn = this.conns.drop(ws);
    if (!conn) return;
    this.neg.dropConn(conn.att.id);
    this.buckets.forget(`c:${conn.att.id}`);
  }

  // ---------------------------------------------------------------- rate limits and refusals

  /** Sends a refusal in the shape the message asked for (replies.ts decides which). */
  private refuse(conn: Conn, r: Refusal, text: string): void {
    if (r.verb === "OK") return this.conns.ok(conn, r.id, false, text);
    if (r.verb === "CLOSED") return this.conns.closed(conn, r.sub, text);
    return this.conns.notice(conn, text);
  }

  /** A connection that keeps sending into a refusal is told so and closed (policy violation). */
  private rateLimited(conn: Conn, message: string, text: string): void {
    const max = this.cfg.closeAfterRefusals;
    if (max > 0 && conn.refusals >= max) {
      this.conns.notice(conn, `rate-limited: ${conn.refusals} messages refused in a row; closing`);
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
    const e = this.eventOf(conn, msg);
    if (!e) return;
    const r = this.ingest(e, conn);
    this.conns.ok(conn, e.id, r.ok, r.message);
    if (r.ok && r.after) r.after();
  }

  /** The event of an EVENT message in its canonical form, or null after refusing its shape. */
  private eventOf(conn: Conn, msg: unknown[]): NostrEvent | null {
    const raw = msg[1];
    const invalid = msg.length !== 2 ? "EVENT takes exactly one event" : checkEventShape(raw);
    if (invalid === null) return canonicalEvent(raw as NostrEvent);
    if (isObjectWithId(raw)) this.conns.ok(conn, raw.id, false, `invalid: ${invalid}`);
    else this.conns.notice(conn, `invalid: ${invalid}`);
    return null;
  }

  /**
   * The single object's acceptance path for a canonical event: admission (verification and the
   * relay's rules), then storage. `after` (fan-out, routing) runs once the OK has been sent.
   * `conn` is null for events published over RPC by code in the Worker (edge agents).
   */
  private ingest(e: NostrEvent, conn: Conn | null): Ingested {
    const refused = refusal(this.gate, e, conn ? conn.att.authed : null, nowSeconds());
    if (refused !== null) return { ok: false, message: refused };
    const raw = JSON.stringify(e);
    if (isEphemeral(e.kind)) return { ok: true, message: "", after: () => this.conns.fanOut(e, raw) };
    const saved = this.store.save(e, raw);
    if (saved.status !== "stored") return storageReply(e.kind, saved.status);
    const exp = expirationOf(e);
    const cancelled = JobRouter.jobsAmong(saved.deleted);
    const handOver = this.jobs.accepted(e, cancelled); // written with the event, before its OK
    return {
      ok: true,
      message: "",
      after: () => {
        this.afterStored(e, raw, cancelled);
        handOver();
        this.indexer.poke();
        if (exp !== null) this.expiry.schedule(exp);
      },
    };
  }

  /** After a stored event's OK: fan-out here and to subscribers of cancelled jobs (edge agents: jobs.accepted). */
  private afterStored(e: NostrEvent, raw: string, cancelled: NostrEvent[], at?: Position & { shard: number }): void {
    this.conns.fanOut(e, raw, at);
    if (cancelled.length > 0) this.conns.fanOutCancellation(e, cancelled);
  }

  // ---------------------------------------------------------------- REQ / CLOSE / COUNT

  /** Checks the subscription id and filters of a REQ or COUNT. Returns the filters, or null after replying. */
  private parseSubscription(conn: Conn, msg: unknown[], verb: string): Subscription | null {
    const p = parseSubscription(msg, verb, this.cfg, conn.att.authed.length > 0);
    if ("filters" in p) return p;
    if ("notice" in p) this.conns.notice(conn, p.notice);
    else this.conns.closed(conn, p.closed, p.text);
    return null;
  }

  private onReq(conn: Conn, msg: unknown[]): void | Promise<void> {
    const p = this.parseSubscription(conn, msg, "REQ");
    if (!p) return;
    if (!conn.subs.has(p.sub) && conn.subs.size >= this.cfg.maxSubscriptions) {
      return this.conns.closed(conn, p.sub, `rate-limited: more than ${this.cfg.maxSubscriptions} open subscriptions; close one first`);
    }
    if (this.front) return this.front.req(conn, p.sub, p.filters);
    const sub = JSON.stringify(p.sub);
    for (const m of this.store.messages(p.filters, nowSeconds(), this.cfg.defaultLimit, `["EVENT",${sub},`)) this.conns.send(conn, m);
    this.conns.send(conn, `["EOSE",${sub}]`);
    this.conns.subscribe(conn, p.sub, p.filters);
  }

  private onClose(conn: Conn, msg: unknown[]): void {
    const sub = msg[1];
    if (typeof sub !== "string" || msg.length !== 2) return this.conns.notice(conn, "invalid: CLOSE takes one subscription id");
    this.conns.unsubscribe(conn, sub);
  }

  private onCount(conn: Conn, msg: unknown[]): void | Promise<void> {
    const p = this.parseSubscription(conn, msg, "COUNT");
    if (!p) return;
    const reply = (count: number) => this.conns.send(conn, JSON.stringify(["COUNT", p.sub, { count }]));
    if (this.router) return this.router.count(p.filters, nowSeconds()).then(reply);
    reply(this.store.count(p.filters, nowSeconds()));
  }

  // ---------------------------------------------------------------- AUTH (NIP-42)

  private onAuth(conn: Conn, msg: unknown[]): void {
    const raw = msg[1];
    const shape = msg.length === 2 ? checkEventShape(raw) : "AUTH takes exactly one event";
    if (shape !== null) {
      if (isObjectWithId(raw)) return this.conns.ok(conn, raw.id, false, `invalid: ${shape}`);
      return this.conns.notice(conn, `invalid: ${shape}`);
    }
    const e = canonicalEvent(raw as NostrEvent);
    const fail = (text: string) => this.conns.ok(conn, e.id, false, text);
    const v = this.verifier.verify(e);
    if (v !== "ok") return fail(v === "bad-id" ? "invalid: event id does not match its sha256 serialisation" : "invalid: bad signature");
    const refused = checkAuthEvent(e, conn.att.challenge, conn.att.url, nowSeconds());
    if (refused !== null) return fail(refused);
    if (!conn.att.authed.includes(e.pubkey)) {
      conn.att.authed.push(e.pubkey);
      if (conn.att.authed.length > 8) conn.att.authed.shift();
      this.conns.saveAttachment(conn);
    }
    this.conns.ok(conn, e.id, true, "");
  }

  // ---------------------------------------------------------------- the alarm: NIP-40 expiry, job outbox

  override async alarm(): Promise<void> {
    this.clock.fired();
    this.expiry.fire();
    this.jobs.resume();
  }


  // ---------------------------------------------------------------- RPC for the Worker

  /** Publishes a signed event as a client would (verified, stored, fanned out, routed). */
  publish(event: NostrEvent): Published | Promise<Published> {
    const shape = checkEventShape(event);
    if (shape !== null) return published({ ok: false, message: `invalid: ${shape}` });
    const e = canonicalEvent(event);
    const done = (r: Ingested): Published => {
      if (r.ok && r.after) r.after();
      return published(r);
    };
    if (!this.router) return done(this.ingest(e, null));
    const refused = refusal(this.gate, e, null, nowSeconds());
    if (refused !== null) return published({ ok: false, message: refused });
    return this.front!.store([e]).then(([r]) => done(r!));
  }

  /** The stored events matching a filter or a list of filters, as a REQ gets them before EOSE (rpc.ts); from the storage shards on a connection shard. */
  query(filters: unknown): NostrEvent[] | Promise<NostrEvent[]> {
    return queryStored((checked) => this.readStored(checked), this.cfg, filters);
  }

  /**
   * Registers an edge-hosted agent for a job kind (see nip90.ts). Survives eviction. Answers
   * `{ok:false, error}` for a bad registration rather than throwing across RPC. (Sharded: kept by
   * connection shard 0, which runs the hooks; the other shards pass these calls on.)
   */
  registerAgent(reg: AgentRegistration): { ok: true } | { ok: false; error: string } | Promise<{ ok: true } | { ok: false; error: string }> {
    if (this.router && !this.router.isRegistry) return this.router.registry.registerAgent(reg);
    const err = checkRegistration(reg);
    if (err !== null) return { ok: false, error: `registerAgent: ${err}` };
    const clean: AgentRegistration = { kind: reg.kind, agent: reg.agent, handler: reg.handler };
    if (reg.pubkey !== undefined) clean.pubkey = reg.pubkey;
    this.state.putAgent(clean);
    if (!edgeAgentHandler(reg.handler)) console.warn(`relay: agent ${reg.agent} registered with handler ${reg.handler}, not (yet) defined in this bundle`);
    return { ok: true };
  }

  unregisterAgent(kind: number, agent: string): boolean | Promise<boolean> {
    if (this.router && !this.router.isRegistry) return this.router.registry.unregisterAgent(kind, agent);
    return this.state.deleteAgent(kind, agent);
  }

  listAgents(kind?: number): AgentRegistration[] | Promise<AgentRegistration[]> {
    if (this.router && !this.router.isRegistry) return this.router.registry.listAgents(kind);
    return this.state.agents(kind);
  }

  /** NIP-89: handler announcements (31990) declaring `kind`, plus the edge agents registered for it. */
  async providers(kind: number): Promise<{ announcements: NostrEvent[]; edgeAgents: AgentRegistration[] }> {
    const [raws, edgeAgents] = await Promise.all([this.readStored([{ kinds: [31990], tags: [["k", [String(kind)]]], limit: 500 }]), this.listAgents(kind)]);
    return { announcements: raws.map((raw) => JSON.parse(raw) as NostrEvent), edgeAgents };
  }

  /**
   * Stored events matching checked filters, as raw JSON in the order a REQ serves them: from this
   * object's SQLite, or on a connection shard from the storage shards (what an RPC `query` reads).
   */
  private readStored(filters: Filter[]): string[] | Promise<string[]> {
    if (!this.router) return this.store.query(filters, nowSeconds(), this.cfg.defaultLimit);
    return this.router.query(filters, nowSeconds(), this.cfg.defaultLimit).then((answer) => answer.raws);
  }

  /** Changes configuration (persisted; merged over defaults and RELAY_CONFIG; on every connection shard). Returns the result. */
  configure(patch: Partial<RelayConfig & Nip77Limits>): RelayConfig | Promise<RelayConfig> {
    const spread = this.applyConfig(patch);
    return spread ? spread.then(() => this.cfg) : this.cfg;
  }

  /** Stores a config patch here; on a connection shard, also the promise of it reaching the others. */
  private applyConfig(patch: Partial<RelayConfig & Nip77Limits>): Promise<void> | null {
    const stored = JSON.parse(this.state.getSetting("config") ?? "{}") as Record<string, unknown>;
    const config = JSON.stringify({ ...stored, ...patch });
    this.state.putSetting("config", config);
    this.cfg = this.loadConfig();
    return this.router ? this.router.broadcast({ config }) : null;
  }

  info(): Record<string, unknown> {
    return advertiseNip77(relayInfo(this.cfg, { management: this.admins.size > 0 }), this.neg.limits);
  }

  /** What NIP-86 calls act on. On a connection shard, their effects on other objects finish in settle(). */
  private managed(): Managed {
    const router = this.router;
    if (!router) {
      return { moderation: this.moderation, removeEvent: (id) => this.store.remove(id), configure: (patch) => this.configure(patch) as RelayConfig, info: () => this.info() };
    }
    return {
      moderation: this.moderation,
      removeEvent: (id) => {
        const removed = router.remove(id);
        this.outbox.push(removed);
        return removed;
      },
      configure: (patch) => {
        this.outbox.push(this.applyConfig(patch)!);
        return this.cfg;
      },
      info: () => this.info(),
      settle: async () => {
        const work = this.outbox;
        this.outbox = [];
        await Promise.all(work);
      },
    };
  }
}

function text(status: number, body: string, headers: Record<string, string> = {}): Response {
  return new Response(body, { status, headers: { ...CORS_HEADERS, "Content-Type": "text/plain; charset=utf-8", ...headers } });
}
