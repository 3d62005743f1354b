// What an edge run may be granted, and who decides: the run asks (`caps`, `budgets` of
// POST /w/NAME/run), the workspace's owner sets a ceiling (the cap policy, PUT /w/NAME/caps), and
// a run asking for anything beyond it is refused whole, naming each thing refused.
//
//   caps    {http?: [HOST…], ws?: [HOST…], nostr?: true | {relays?: [URL…], wallet?: SECRET},
//            llm?: "offline" | "workers-ai[#MODEL]" | "openai:URL[#MODEL]"}
//   budgets {"llm:tokens"?: N, "http:calls"?: N, …}    (services/cap/budgets.ts, and nostr:msats)
//   policy  {http?: [HOST…], ws?: [HOST…], nostr?: boolean | {relays?: [URL…], wallet?: SECRET},
//            llm?: [PROVIDER…], budgets?: {"cap:kind": N}}
//
// Defaults (no policy set): nothing but the offline model, which needs no network and costs
// nothing. Host lists are checked with services/cap/cover.ts (a loopback or private address is
// inside the policy only when the policy names that exact host:port). `nostr: true` is the edge's
// own relay; other relays must be listed. An llm entry allows a provider with any model
// ("workers-ai", "openai:https://api.openai.com/v1") or one model ("workers-ai#@cf/…"). Budgets in
// the policy are ceilings and the defaults: a run gets the ceiling unless it asks for less.
// `nostr.wallet` names the workspace secret holding a NIP-47 wallet connect URI that pays for the
// jobs a run hires (/cap/nostr/jobs), at most `nostr:msats` per run; a run may use only the wallet
// the policy names, and only with that budget.
import { FsError } from "../../runtime/errors.ts";
import { BUDGET_KINDS, budgetNames } from "../../services/cap/budgets.ts";
import { beyond, patternText } from "../../services/cap/cover.ts";
import { parseHosts } from "../../services/cap/hosts.ts";
import { SECRET_NAME } from "../workspace/secrets.ts";

/** The edge's budgets: the capabilities' own, and what a run's wallet may pay for hired jobs. */
const KINDS: Record<string, string[]> = { ...BUDGET_KINDS, nostr: [...BUDGET_KINDS.nostr!, "msats"] };
const kindNames = (): string => `${budgetNames()}, nostr:msats`;
export const HIRE_BUDGET = "nostr:msats";

export interface RunCaps {
  http?: string[];
  ws?: string[];
  /** The edge's own relay always; `relays` are others, by outbound WebSocket; `wallet` pays for hired jobs. */
  nostr?: { relays: string[]; wallet?: string };
  llm?: string;
}

/** "cap:kind" → a natural number. */
export type Budgets = Record<string, number>;

export interface CapPolicy {
  http: string[];
  ws: string[];
  nostr: { relays: string[]; wallet?: string } | null;
  llm: string[];
  budgets: Budgets;
}

export const NO_POLICY: CapPolicy = { http: [], ws: [], nostr: null, llm: [], budgets: {} };

const MAX_LIST = 64;
const bad = (m: string): FsError => new FsError("EINVAL", m);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function only(v: Record<string, unknown>, keys: string[], what: string): void {
  for (const k of Object.keys(v)) if (!keys.includes(k)) throw bad(`${what}: unknown field "${k}" (have: ${keys.join(", ")})`);
}

function strings(v: unknown, what: string): string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) throw bad(`${what} is an array of strings`);
  if (v.length > MAX_LIST) throw bad(`${what}: at most ${MAX_LIST} entries`);
  return v as string[];
}

function hosts(v: unknown, what: string): string[] {
  const list = strings(v, what);
  try {
    parseHosts(list);
  } catch (e) {
    throw bad(`${what}: ${(e as Error).message.replace(/^EINVAL: /, "")}`);
  }
  return list;
}

function relays(v: unknown, what: string): string[] {
  return strings(v, what).map((r) => {
    let u: URL;
    try {
      u = new URL(r);
    } catch {
      throw bad(`${what}: "${r}" is not a URL`);
    }
    if (u.protocol !== "ws:" && u.protocol !== "wss:") throw bad(`${what}: ${r} is not a ws:// or wss:// relay`);
    if (u.username || u.password) throw bad(`${what}: credentials in a relay URL are not allowed`);
    return u.href;
  });
}

/** A provider spec, normalised: "offline", "workers-ai[#MODEL]", "openai:URL[#MODEL]" (URL without trailing slashes). */
export function llmSpec(v: unknown, what: string): string {
  if (typeof v !== "string") throw bad(`${what} is a string: offline, workers-ai[#MODEL] or openai:URL[#MODEL]`);
  if (v === "offline" || v === "workers-ai") return v;
  if (v.startsWith("workers-ai#") && v.length > "workers-ai#".length) return v;
  if (v.startsWith("openai:")) {
    const rest = v.slice("openai:".length);
    const hash = rest.indexOf("#");
    const base = hash < 0 ? rest : rest.slice(0, hash);
    let u: URL;
    try {
      u = new URL(base);
    } catch {
      throw bad(`${what}: openai: takes a base URL, as in openai:https://api.openai.com/v1`);
    }
    if (u.protocol !== "http:" && u.protocol !== "https:") throw bad(`${what}: ${base} is not http(s)`);
    if (u.username || u.password) throw bad(`${what}: credentials in a URL are not allowed (keep the key in the secret OANIX_LLM_KEY)`);
    return `openai:${base.replace(/\/+$/, "")}${hash < 0 ? "" : rest.slice(hash)}`;
  }
  throw bad(`${what} "${v.slice(0, 100)}": use offline, workers-ai[#MODEL] or openai:URL[#MODEL]`);
}

/** The provider without its model ("workers-ai", "openai:URL"). */
export const llmProvider = (spec: string): string => (spec.includes("#") ? spec.slice(0, spec.indexOf("#")) : spec);

export function parseRunCaps(v: unknown): RunCaps {
  if (v === undefined) return {};
  if (!isObject(v)) throw bad("caps is an object {http?, ws?, nostr?, llm?}");
  only(v, ["http", "ws", "nostr", "llm"], "caps");
  const out: RunCaps = {};
  if (v.http !== undefined) out.http = hosts(v.http, "caps.http");
  if (v.ws !== undefined) out.ws = hosts(v.ws, "caps.ws");
  if (v.nostr !== undefined) {
    if (v.nostr === true) out.nostr = { relays: [] };
    else if (isObject(v.nostr)) out.nostr = nostrOf(v.nostr, "caps.nostr");
    else if (v.nostr !== false) throw bad("caps.nostr is true or {relays?: [ws URL…], wallet?: SECRET}");
  }
  if (v.llm !== undefined) out.llm = llmSpec(v.llm, "caps.llm");
  return out;
}

function nostrOf(v: Record<string, unknown>, what: string): { relays: string[]; wallet?: string } {
  only(v, ["relays", "wallet"], what);
  const out: { relays: string[]; wallet?: string } = { relays: v.relays === undefined ? [] : relays(v.relays, `${what}.relays`) };
  if (v.wallet !== undefined) {
    if (typeof v.wallet !== "string" || !SECRET_NAME.test(v.wallet)) throw bad(`${what}.wallet names a workspace secret (a wallet connect URI)`);
    out.wallet = v.wallet;
  }
  return out;
}

export function parseBudgets(v: unknown, what = "budgets"): Budgets {
  if (v === undefined) return {};
  if (!isObject(v)) throw bad(`${what} is an object {"cap:kind": n}`);
  const out: Budgets = {};
  for (const [k, n] of Object.entries(v)) {
    const [cap, kind] = k.split(":");
    if (!cap || !kind || !KINDS[cap]?.includes(kind)) throw bad(`${what}: no budget "${k}" (have: ${kindNames()})`);
    if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) throw bad(`${what}.${k} must be a natural number`);
    out[k] = n;
  }
  return out;
}

export function parsePolicy(v: unknown): CapPolicy {
  if (!isObject(v)) throw bad("the cap policy is an object {http?, ws?, nostr?, llm?, budgets?}");
  only(v, ["http", "ws", "nostr", "llm", "budgets"], "policy");
  let nostr: CapPolicy["nostr"] = null;
  if (v.nostr === true) nostr = { relays: [] };
  else if (isObject(v.nostr)) nostr = nostrOf(v.nostr, "policy.nostr");
  else if (v.nostr !== undefined && v.nostr !== false) throw bad("policy.nostr is a boolean or {relays?: [ws URL…], wallet?: SECRET}");
  return {
    http: v.http === undefined ? [] : hosts(v.http, "policy.http"),
    ws: v.ws === undefined ? [] : hosts(v.ws, "policy.ws"),
    nostr,
    llm: v.llm === undefined ? [] : strings(v.llm, "policy.llm").map((s, i) => llmSpec(s, `policy.llm[${i}]`)),
    budgets: parseBudgets(v.budgets, "policy.budgets"),
  };
}

/**
 * Checks a run's caps and budgets against the policy. Answers the budgets the run gets (its own,
 * else the policy's ceilings, for the capabilities it asked for); EACCES naming everything refused.
 * Budgets for a capability the run does not ask for are EINVAL.
 */
export function admit(policy: CapPolicy, caps: RunCaps, budgets: Budgets, workspace: string): Budgets {
  const refused: string[] = [];
  for (const cap of ["http", "ws"] as const) {
    const asked = caps[cap];
    if (asked) for (const p of beyond(parseHosts(asked), parseHosts(policy[cap]))) refused.push(`${cap} ${patternText(p)}`);
  }
  if (caps.nostr) {
    if (!policy.nostr) refused.push("nostr");
    else {
      for (const r of caps.nostr.relays) if (!policy.nostr.relays.includes(r)) refused.push(`nostr relay ${r}`);
      if (caps.nostr.wallet !== undefined && caps.nostr.wallet !== policy.nostr.wallet) refused.push(`nostr wallet ${caps.nostr.wallet}`);
    }
  }
  if (caps.llm && caps.llm !== "offline" && !policy.llm.includes(caps.llm) && !policy.llm.includes(llmProvider(caps.llm))) refused.push(`llm ${caps.llm}`);
  const granted = new Set(Object.keys(caps).filter((k) => caps[k as keyof RunCaps] !== undefined));
  for (const k of Object.keys(budgets)) {
    const cap = k.split(":")[0]!;
    if (!granted.has(cap)) throw bad(`budget ${k}: the run does not ask for ${cap}`);
    const ceiling = policy.budgets[k];
    if (ceiling !== undefined && budgets[k]! > ceiling) refused.push(`budget ${k}=${budgets[k]} (at most ${ceiling})`);
  }
  if (refused.length) {
    throw new FsError("EACCES", `the cap policy of workspace ${workspace} does not allow: ${refused.join("; ")}. Its owner sets the policy with PUT /w/${workspace}/caps`);
  }
  const out: Budgets = {};
  for (const [k, n] of Object.entries(policy.budgets)) if (granted.has(k.split(":")[0]!)) out[k] = n;
  const given = { ...out, ...budgets };
  // A wallet is always spent within a stated limit; a limit without a wallet spends nothing.
  if (caps.nostr?.wallet !== undefined && given[HIRE_BUDGET] === undefined) throw bad(`caps.nostr.wallet needs the budget ${HIRE_BUDGET}, the most the run may pay`);
  if (caps.nostr?.wallet === undefined && budgets[HIRE_BUDGET] !== undefined) throw bad(`budget ${HIRE_BUDGET}: the run names no wallet (caps.nostr.wallet)`);
  if (caps.nostr?.wallet === undefined) delete given[HIRE_BUDGET];
  return given;
}
