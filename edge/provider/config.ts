// An edge provider's configuration: which job kind it serves, with which bundled program, over
// which workspace (as that workspace's owner), at what price and limits. Providers come from two
// places: `EDGE_PROVIDERS` in wrangler.toml ([vars], a JSON list, the operator's) and the admin
// route (/api/providers, stored in D1, a workspace owner's). Both are checked here, the same way.
import { FsError } from "../../runtime/errors.ts";
import { NAME_RE } from "../../services/remote-wire.ts";
import type { NostrRelay } from "../../relay/relay.ts";
import type { ProviderJob } from "./job.ts";
import { EDGE_LIMITS } from "../runner.ts";
import { SECRET_NAME } from "../workspace/secrets.ts";
import { PROGRAMS } from "../programs.ts";
import { parseBudgets, parseRunCaps, type Budgets, type RunCaps } from "../caps/policy.ts";
import type { Env } from "../env.ts";

/** The bindings the edge provider uses, beyond the edge's own. */
export type ProviderEnv = Env & {
  RELAY: DurableObjectNamespace<NostrRelay>;
  /** One object per (provider, request): the job's life (job.ts). */
  PROVIDER_JOBS: DurableObjectNamespace<ProviderJob>;
  /** JSON list of ProviderConfig, from wrangler.toml [vars]. */
  EDGE_PROVIDERS?: string;
  /** 64 hex digits, a Worker secret: every provider's Nostr key is derived from it (keys.ts). */
  PROVIDER_KEY?: string;
};

export interface ProviderConfig {
  /** 1-32 of [a-z0-9-], unique on this edge; the NIP-89 `d` tag is `oanix-<name>`. */
  name: string;
  /** The job request kind served (5000-5999). */
  kind: number;
  /** A program bundled with the Worker (edge/programs.ts). */
  program: string;
  /** The workspace the agent runs over (its /workspace), with the rights of the workspace's owner. */
  workspace: string;
  /** The workspace's owner (hex). Admin-added: the key that added it. Configured: optional, checked when given. */
  owner?: string;
  /** msats: bids below are refused with `error` feedback; results carry an `amount` tag. */
  price?: number;
  /**
   * A workspace secret holding the provider's wallet connect URI (NIP-47), bound to the wallet
   * relay's host. With a price, each job asks for payment first (`payment-required` with an
   * invoice) and runs once it is paid. Without one, a price is asked but not collected.
   */
  wallet?: string;
  /** How long a job waits for its invoice to be paid (default 300 s, at most 1 h). */
  paymentTimeoutMs?: number;
  /** How long a `job` input waits for its parent's result (default 60 s, at most 1 h). */
  chainTimeoutMs?: number;
  about?: string;
  /** Wall time per job (default 10 s, at most the edge runner's 30 s). */
  timeoutMs?: number;
  /** Memory per job (default 64, at most 128). */
  memoryMb?: number;
  /** What every job's agent is granted at /cap/* (a run's `caps`, edge/caps/policy.ts), within the workspace's cap policy. */
  caps?: RunCaps;
  /** "cap:kind" → N: each job starts with the whole of each. */
  budgets?: Budgets;
  /** The edge's public URL (https://HOST): names the edge's own relay in /cap/nostr. Required with caps.nostr. */
  origin?: string;
}

const NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;
const HEX64 = /^[0-9a-f]{64}$/;
const FIELDS = new Set(["name", "kind", "program", "workspace", "owner", "price", "wallet", "paymentTimeoutMs", "chainTimeoutMs", "about", "timeoutMs", "memoryMb", "caps", "budgets", "origin"]);
const HOUR_MS = 3_600_000;

const bad = (why: string): FsError => new FsError("EINVAL", why);
/** An FsError's message without its `CODE: ` prefix. */
export const reason = (e: unknown): string => (e as Error).message.replace(/^E[A-Z]+: /, "");

/** A checked configuration, or EINVAL (ENOENT for a program that is not bundled) naming the field. */
export function checkProvider(x: unknown): ProviderConfig {
  if (typeof x !== "object" || x === null || Array.isArray(x)) throw bad("a provider is a JSON object");
  const o = x as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!FIELDS.has(k)) throw bad(`unknown provider field ${JSON.stringify(k)} (${[...FIELDS].join(", ")})`);
  if (typeof o.name !== "string" || !NAME.test(o.name)) throw bad("name is 1-32 of a-z, 0-9 and -, starting with a letter or digit");
  if (typeof o.kind !== "number" || !Number.isInteger(o.kind) || o.kind < 5000 || o.kind > 5999) throw bad("kind is a job request kind (5000-5999)");
  if (typeof o.program !== "string" || !o.program) throw bad("program names a bundled program");
  if (!Object.hasOwn(PROGRAMS, o.program)) throw new FsError("ENOENT", `no bundled program "${o.program}" (have: ${Object.keys(PROGRAMS).join(", ")})`);
  if (typeof o.workspace !== "string" || !NAME_RE.test(o.workspace)) throw bad("workspace names a workspace");
  if (o.owner !== undefined && (typeof o.owner !== "string" || !HEX64.test(o.owner))) throw bad("owner is a hex pubkey (64 lowercase hex digits)");
  const natural = (k: string, max: number) => {
    const v = o[k];
    if (v !== undefined && (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1 || v > max)) throw bad(`${k} is a whole number from 1 to ${max}`);
  };
  natural("price", Number.MAX_SAFE_INTEGER);
  natural("timeoutMs", EDGE_LIMITS.wallTimeMs);
  natural("memoryMb", EDGE_LIMITS.memoryBytes >> 20);
  natural("paymentTimeoutMs", HOUR_MS);
  natural("chainTimeoutMs", HOUR_MS);
  if (o.wallet !== undefined && (typeof o.wallet !== "string" || !SECRET_NAME.test(o.wallet))) throw bad("wallet names a workspace secret (the wallet connect URI)");
  if (o.wallet !== undefined && o.price === undefined) throw bad("wallet is for a priced provider: give a price too");
  if (o.paymentTimeoutMs !== undefined && o.wallet === undefined) throw bad("paymentTimeoutMs is for a provider with a wallet");
  if (o.about !== undefined && (typeof o.about !== "string" || o.about.length > 1000)) throw bad("about is a text of at most 1000 characters");
  const out: ProviderConfig = { name: o.name, kind: o.kind, program: o.program, workspace: o.workspace };
  for (const k of ["owner", "price", "wallet", "paymentTimeoutMs", "chainTimeoutMs", "about", "timeoutMs", "memoryMb"] as const) if (o[k] !== undefined) (out as unknown as Record<string, unknown>)[k] = o[k];
  Object.assign(out, capsOf(o));
  return out;
}

/** The caps, budgets and origin fields, checked: the shapes of a run's (edge/caps/policy.ts). */
function capsOf(o: Record<string, unknown>): Pick<ProviderConfig, "caps" | "budgets" | "origin"> {
  const caps = parseRunCaps(o.caps);
  const budgets = parseBudgets(o.budgets);
  for (const k of Object.keys(budgets)) {
    const cap = k.split(":")[0] as keyof RunCaps;
    if (caps[cap] === undefined) throw bad(`budget ${k}: caps does not grant ${cap}`);
  }
  let origin: string | undefined;
  if (o.origin !== undefined) {
    let u: URL | undefined;
    try {
      u = typeof o.origin === "string" ? new URL(o.origin) : undefined;
    } catch {
      // said below
    }
    if (!u || (u.protocol !== "https:" && u.protocol !== "http:") || u.username || u.password) throw bad("origin is the edge's URL, as in https://edge.example.com");
    origin = u.origin;
  }
  if (caps.nostr && !origin) throw bad("origin (the edge's URL, naming its relay for caps.nostr) is required with caps.nostr");
  const out: Pick<ProviderConfig, "caps" | "budgets" | "origin"> = {};
  if (Object.keys(caps).length) out.caps = caps;
  if (Object.keys(budgets).length) out.budgets = budgets;
  if (origin) out.origin = origin;
  return out;
}

let parsed: { text: string; list: ProviderConfig[] } | undefined;

/** The providers of wrangler.toml's EDGE_PROVIDERS; a bad list is said once and serves nothing. */
export function configured(env: ProviderEnv): ProviderConfig[] {
  const text = env.EDGE_PROVIDERS ?? "";
  if (parsed?.text === text) return parsed.list;
  let list: ProviderConfig[] = [];
  try {
    const raw = text.trim() ? (JSON.parse(text) as unknown) : [];
    if (!Array.isArray(raw)) throw bad("EDGE_PROVIDERS is a JSON list of providers");
    list = raw.map((p, i) => {
      try {
        return checkProvider(p);
      } catch (e) {
        throw bad(`EDGE_PROVIDERS[${i}]: ${reason(e)}`);
      }
    });
    const names = new Set<string>();
    for (const p of list) {
      if (names.has(p.name)) throw bad(`EDGE_PROVIDERS: provider ${p.name} is listed twice`);
      names.add(p.name);
    }
  } catch (e) {
    console.error(`edge providers: ${reason(e)}; serving none from wrangler.toml`);
    list = [];
  }
  parsed = { text, list };
  return list;
}
