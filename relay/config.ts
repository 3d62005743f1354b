// Relay configuration: every limit the relay enforces, its defaults, and how overrides (the
// RELAY_CONFIG variable, the configure RPC, NIP-86 calls) are merged over them. Pure logic.

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
  /** Messages per second from one client address over all its connections (0 disables) and burst. */
  messagesPerSecondPerIp: number;
  messageBurstPerIp: number;
  /** Open connections from one client address (0 disables): more are refused with 429 at upgrade. */
  maxConnectionsPerIp: number;
  /** A connection whose messages are refused this many times in a row for rate is closed (0: never). */
  closeAfterRefusals: number;
  /** NIP-13: leading zero bits an event id needs (0: none), and per kind (overrides the global value). */
  minPowDifficulty: number;
  powByKind: Record<string, number>;
}

export const DEFAULT_CONFIG: RelayConfig = {
  name: "OANIX relay",
  description: "Nostr relay for OANIX agents: search, protected events and NIP-90 job routing, in a Cloudflare Durable Object.",
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
  messagesPerSecondPerIp: 100,
  messageBurstPerIp: 1000,
  maxConnectionsPerIp: 32,
  closeAfterRefusals: 200,
  minPowDifficulty: 0,
  powByKind: {},
};

export const NUMERIC_KEYS = [
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
  "messagesPerSecondPerIp",
  "messageBurstPerIp",
  "maxConnectionsPerIp",
  "closeAfterRefusals",
  "minPowDifficulty",
] as const;

/** NIP-13 difficulty is counted in bits of a 256-bit id. */
const MAX_POW = 256;

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
  if (typeof p.powByKind === "object" && p.powByKind !== null && !Array.isArray(p.powByKind)) {
    const pow: Record<string, number> = {};
    for (const [kind, bits] of Object.entries(p.powByKind)) {
      if (/^\d{1,5}$/.test(kind) && Number(kind) <= 65535 && typeof bits === "number" && Number.isInteger(bits) && bits >= 0 && bits <= MAX_POW)
        pow[String(Number(kind))] = bits;
    }
    out.powByKind = pow;
  }
  out.maxSubidLength = Math.min(out.maxSubidLength, 64);
  out.minPowDifficulty = Math.min(Math.floor(out.minPowDifficulty), MAX_POW);
  return out;
}

/** The NIP-13 difficulty required of an event of `kind`. */
export function powRequired(cfg: RelayConfig, kind: number): number {
  return cfg.powByKind[String(kind)] ?? cfg.minPowDifficulty;
}

/**
 * Checks a patch before it is applied (NIP-86 changes): the names of unknown or ill-typed fields,
 * so that an operator's typo is an error rather than silently ignored.
 */
export function checkConfigPatch(patch: unknown): string | null {
  if (typeof patch !== "object" || patch === null || Array.isArray(patch)) return "limits must be a JSON object";
  for (const [k, v] of Object.entries(patch)) {
    if ((NUMERIC_KEYS as readonly string[]).includes(k)) {
      if (typeof v !== "number" || !Number.isFinite(v) || v < 0) return `${k} must be a non-negative number`;
    } else if (k === "authRead" || k === "authWrite") {
      if (typeof v !== "boolean") return `${k} must be true or false`;
    } else if (k === "name" || k === "description" || k === "pubkey" || k === "contact") {
      if (typeof v !== "string") return `${k} must be a string`;
    } else if (k === "powByKind") {
      if (typeof v !== "object" || v === null || Array.isArray(v)) return "powByKind must map kinds to difficulties";
      for (const [kind, bits] of Object.entries(v))
        if (!/^\d{1,5}$/.test(kind) || Number(kind) > 65535 || typeof bits !== "number" || !Number.isInteger(bits) || bits < 0 || bits > MAX_POW)
          return "powByKind must map kinds (0-65535) to difficulties (0-256 bits)";
    } else return `unknown limit ${JSON.stringify(k)}`;
  }
  return null;
}
