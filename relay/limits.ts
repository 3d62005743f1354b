// Relay configuration, the limits it enforces, the NIP-11 document that advertises exactly those
// limits, and the token buckets behind the rate limits. Pure logic.

export interface RelayConfig {
  name: string;
  description: string;
  /** Administrative contact pubkey (hex), advertised in NIP-11 when set. */
  pubkey?: string;
  contact?: string;
  /** Largest WebSocket message accepted, in bytes (UTF-8). */
  maxMessageLength: number;
  /** Open subscriptions per connection. */
  maxSubscriptions: number;
  /** Filters in one REQ or COUNT. */
  maxFilters: number;
  /** Values in one filter array (ids, authors, kinds, one #x). */
  maxFilterValues: number;
  /** Largest `limit` honoured (larger ones are clamped). */
  maxLimit: number;
  /** `limit` applied to a filter that has none. */
  defaultLimit: number;
  maxSubidLength: number;
  maxEventTags: number;
  /** Characters of `content`. */
  maxContentLength: number;
  /** Events older than now - this (seconds) are refused. */
  createdAtLowerLimit: number;
  /** Events newer than now + this (seconds) are refused. */
  createdAtUpperLimit: number;
  /** NIP-42: REQ/COUNT need an authenticated connection. */
  authRead: boolean;
  /** NIP-42: EVENT needs the event's author to be authenticated on the connection. */
  authWrite: boolean;
  /** Messages per second per connection (sustained; 0 disables) and the burst allowed above it. */
  messagesPerSecond: number;
  messageBurst: number;
  /** Events per second per author (sustained; 0 disables) and burst. */
  eventsPerSecondPerPubkey: number;
  eventBurstPerPubkey: number;
}

export const DEFAULT_CONFIG: RelayConfig = {
  name: "OANIX relay",
  description: "Nostr relay for OANIX agents: NIP-01/09/11/40/42/45 and NIP-90 job routing, in a Cloudflare Durable Object.",
  maxMessageLength: 512 * 1024,
  maxSubscriptions: 50,
  maxFilters: 10,
  maxFilterValues: 1000,
  maxLimit: 5000,
  defaultLimit: 500,
  maxSubidLength: 64,
  maxEventTags: 2500,
  maxContentLength: 256 * 1024,
  createdAtLowerLimit: 10 * 365 * 24 * 3600,
  createdAtUpperLimit: 15 * 60,
  authRead: false,
  authWrite: false,
  messagesPerSecond: 50,
  messageBurst: 500,
  eventsPerSecondPerPubkey: 20,
  eventBurstPerPubkey: 200,
};

const NUMERIC_KEYS = [
  "maxMessageLength",
  "maxSubscriptions",
  "maxFilters",
  "maxFilterValues",
  "maxLimit",
  "defaultLimit",
  "maxSubidLength",
  "maxEventTags",
  "maxContentLength",
  "createdAtLowerLimit",
  "createdAtUpperLimit",
  "messagesPerSecond",
  "messageBurst",
  "eventsPerSecondPerPubkey",
  "eventBurstPerPubkey",
] as const;

/** Merges a partial config (from env JSON or the configure RPC) over `base`, ignoring bad values. */
export function mergeConfig(base: RelayConfig, patch: unknown): RelayConfig {
  const out: RelayConfig = { ...base };
  if (typeof patch !== "object" || patch === null) return out;
  const p = patch as Record<string, unknown>;
  for (const k of NUMERIC_KEYS) {
    const v = p[k];
    if (typeof v === "number" && Number.isFinite(v) && v >= 0) out[k] = v;
  }
  if (typeof p.authRead === "boolean") out.authRead = p.authRead;
  if (typeof p.authWrite === "boolean") out.authWrite = p.authWrite;
  for (const k of ["name", "description", "pubkey", "contact"] as const) {
    const v = p[k];
    if (typeof v === "string") out[k] = v;
  }
  out.maxSubidLength = Math.min(out.maxSubidLength, 64);
  return out;
}

export const SUPPORTED_NIPS = [1, 9, 11, 40, 42, 45, 89, 90];
export const SOFTWARE = "oanix-relay";
export const VERSION = "0.1.0";

/** The NIP-11 relay information document for this configuration. */
export function relayInfo(cfg: RelayConfig): Record<string, unknown> {
  const doc: Record<string, unknown> = {
    name: cfg.name,
    description: cfg.description,
    supported_nips: SUPPORTED_NIPS,
    software: SOFTWARE,
    version: VERSION,
    limitation: {
      max_message_length: cfg.maxMessageLength,
      max_subscriptions: cfg.maxSubscriptions,
      max_filters: cfg.maxFilters,
      max_limit: cfg.maxLimit,
      default_limit: cfg.defaultLimit,
      max_subid_length: cfg.maxSubidLength,
      max_event_tags: cfg.maxEventTags,
      max_content_length: cfg.maxContentLength,
      min_pow_difficulty: 0,
      auth_required: cfg.authRead,
      payment_required: false,
      restricted_writes: cfg.authWrite,
      created_at_lower_limit: cfg.createdAtLowerLimit,
      created_at_upper_limit: cfg.createdAtUpperLimit,
    },
  };
  if (cfg.pubkey) doc.pubkey = cfg.pubkey;
  if (cfg.contact) doc.contact = cfg.contact;
  return doc;
}

export const CORS_HEADERS: Record<string, string> = {
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Allow-Headers": "Accept, Content-Type, Authorization",
  "Access-Control-Allow-Methods": "GET, OPTIONS",
};

/** A token bucket: `rate` tokens per second, holding at most `burst`. */
export class TokenBucket {
  tokens: number;
  last: number;
  rate: number;
  burst: number;
  constructor(rate: number, burst: number, now: number) {
    this.rate = rate;
    this.burst = Math.max(1, burst);
    this.tokens = this.burst;
    this.last = now;
  }
  /** Takes one token if there is one. `now` in milliseconds. */
  take(now: number): boolean {
    if (this.rate <= 0) return true; // a rate of 0 disables the limit
    const elapsed = Math.max(0, now - this.last) / 1000;
    this.tokens = Math.min(this.burst, this.tokens + elapsed * this.rate);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** Buckets keyed by a string (pubkey), forgetting the least recently used beyond `max` keys. */
export class BucketMap {
  private map = new Map<string, TokenBucket>();
  private max: number;
  constructor(max = 10_000) {
    this.max = max;
  }
  take(key: string, rate: number, burst: number, now: number): boolean {
    let b = this.map.get(key);
    if (b === undefined) {
      b = new TokenBucket(rate, burst, now);
      if (this.map.size >= this.max) this.map.delete(this.map.keys().next().value!);
    } else {
      this.map.delete(key);
      b.rate = rate;
      b.burst = Math.max(1, burst);
    }
    this.map.set(key, b);
    return b.take(now);
  }
}
