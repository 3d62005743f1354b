// Mounts a run's granted capabilities at the edge: services/cap's grantCaps with the Worker's
// transports (edge/README.md, "Capabilities"):
//   http   the Worker's fetch with the Cache API for plain cacheable GETs (fetch.ts)
//   ws     outbound WebSockets through fetch + Upgrade (ws.ts)
//   nostr  the edge's relay object by RPC, other granted relays by outbound WebSocket (relay.ts);
//          the identity is the workspace's agent key (workspace/caps.ts); nostr/jobs hires other
//          agents on the edge's relay (agents/host/jobs-service.ts, as `oanix run --cap nostr`),
//          paying their invoices from the wallet `nostr.wallet` names, up to `nostr:msats`
//          (without one a priced job is EDQUOT and nothing is paid)
//   llm    offline, Workers AI (the AI binding), or an OpenAI-compatible URL whose key is the
//          workspace secret OANIX_LLM_KEY (or OPENAI_API_KEY) when bound to that URL's host
// Secrets are the workspace's (workspace/secrets.ts). No resolver: Workers cannot resolve names,
// so hosts are judged by their spelling (README: what the edge checks instead).
import { FsError } from "../../runtime/errors.ts";
import type { Namespace } from "../../runtime/namespace.ts";
import { grantCaps, type CapGrants, type Granted } from "../../services/cap/grant.ts";
import type { LlmProvider } from "../../services/cap/llm-provider.ts";
import { WorkersAiProvider } from "../../services/cap/llm-workers-ai.ts";
import { Secrets } from "../../services/cap/secrets.ts";
import type { Env } from "../env.ts";
import type { CapsMaterial } from "../workspace/caps.ts";
import { edgeFetch } from "./fetch.ts";
import { HIRE_BUDGET, llmProvider, type RunCaps } from "./policy.ts";
import { walletOf } from "./wallet.ts";
import { hexToBytes } from "@noble/hashes/utils.js";
import { JobsService } from "../../agents/host/jobs-service.ts";
import { LinkParty, relayUrlOf } from "./party.ts";
import { outboundRelayLink, relayObjectLink } from "./relay.ts";
import { fetchWsConnect } from "./ws.ts";

/** The names under which a workspace keeps an OpenAI-compatible key, tried in order. */
export const LLM_KEY_SECRETS = ["OANIX_LLM_KEY", "OPENAI_API_KEY"];

export function mountEdgeCaps(ns: Namespace, env: Env, caps: RunCaps, m: CapsMaterial, origin: string): Granted {
  const secrets = new Secrets(m.secrets);
  const budget = (cap: string): Record<string, number> | undefined => {
    const mine = Object.entries(m.budgets).filter(([k]) => k.startsWith(cap + ":"));
    return mine.length ? Object.fromEntries(mine.map(([k, n]) => [k.slice(cap.length + 1), n])) : undefined;
  };
  const grants: CapGrants = {};
  if (caps.http) grants.http = { hosts: caps.http, budget: budget("http") };
  if (caps.ws) grants.ws = { hosts: caps.ws, budget: budget("ws") };
  if (caps.nostr) {
    if (!m.nostrKey) throw new FsError("EIO", "nostr was granted but the workspace gave no agent key");
    const links = [relayObjectLink(env.RELAY, relayUrlOf(origin)), ...caps.nostr.relays.map(outboundRelayLink)];
    const { msats: _paid, ...calls } = budget("nostr") ?? {};
    grants.nostr = { secretKey: m.nostrKey, relays: [], links, budget: Object.keys(calls).length ? calls : undefined };
  }
  if (caps.llm) grants.llm = { provider: llmOf(caps.llm, env), apiKey: apiKeyOf(caps.llm, secrets), budget: budget("llm") };
  const cache = typeof caches === "undefined" ? undefined : caches.default;
  const granted = grantCaps(ns, grants, { secrets, fetch: edgeFetch({ secrets, cache }), wsConnect: fetchWsConnect() });
  if (!caps.nostr) return granted;
  const party = new LinkParty(relayObjectLink(env.RELAY, relayUrlOf(origin)), hexToBytes(m.nostrKey!));
  const wallet = caps.nostr.wallet && m.wallet ? walletOf(caps.nostr.wallet, m.wallet, env.RELAY, origin) : undefined;
  ns.mount("/cap/nostr/jobs", new JobsService({ peer: party, ...(wallet ? { wallet, budgetMsats: m.budgets[HIRE_BUDGET] ?? 0 } : {}) }));
  return { budgets: granted.budgets, close: () => (granted.close(), party.close(), wallet?.close()) };
}

function llmOf(spec: string, env: Env): string | LlmProvider {
  if (llmProvider(spec) !== "workers-ai") return spec; // offline, openai:URL[#MODEL]
  if (!env.AI) throw new FsError("ENOTSUP", "llm workers-ai: this edge has no AI binding (wrangler.toml [ai] binding = \"AI\")");
  const model = spec.includes("#") ? spec.slice(spec.indexOf("#") + 1) : undefined;
  return new WorkersAiProvider(env.AI, model ? { model } : {});
}

/** The workspace's key for an openai:URL provider, if one is bound to that URL's host. */
function apiKeyOf(spec: string, secrets: Secrets): string | undefined {
  if (!spec.startsWith("openai:")) return undefined;
  const url = new URL(llmProvider(spec).slice("openai:".length));
  for (const name of LLM_KEY_SECRETS) {
    try {
      return secrets.substitute({ k: `$secret:${name}` }, url).k;
    } catch {
      // not set, or not bound to this host
    }
  }
  return undefined;
}
