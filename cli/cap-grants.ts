// The grants `oanix run --cap/--budget/--secret` asks for, mounted in the run's namespace.
// Loaded only when a run is granted a capability (cli/caps.ts parses the flags).
import type { Namespace } from "../runtime/namespace.ts";
import { nodeResolve } from "../services/cap/dns-node.ts";
import { pinnedFetch } from "../services/cap/fetch-node.ts";
import { pinnedWsConnect } from "../services/cap/ws-node.ts";
import { grantCaps, type CapGrants, type Granted } from "../services/cap/grant.ts";
import { parseHosts } from "../services/cap/hosts.ts";
import type { Secret } from "../services/cap/secrets.ts";
import { loadSecret } from "../services/key.ts";
import { DEFAULT_RELAY, type CapArgs } from "./caps.ts";
import { UsageError } from "./usage.ts";

/**
 * The grants and secrets the flags ask for; usage errors for what cannot be granted. `hireMsats`
 * is `--budget nostr:msats=N`, what the agent may pay for the jobs it hires (a purse for the
 * wallet, not a limit of the nostr capability itself).
 */
export function capGrants(a: CapArgs, env: Record<string, string | undefined> = process.env): { grants: CapGrants; secrets: Record<string, Secret>; hireMsats?: number } {
  const grants: CapGrants = {};
  const hosts = (name: string): string => {
    const v = a.caps.get(name);
    if (!v) throw new UsageError(`--cap ${name} needs hosts, as in --cap ${name}=example.com,*.wikipedia.org`);
    try {
      parseHosts(v);
    } catch (e) {
      throw new UsageError(`--cap ${name}=${v}: ${(e as Error).message.replace(/^EINVAL: /, "")}`);
    }
    return v;
  };
  for (const b of a.budgets) if (!a.caps.has(b.cap)) throw new UsageError(`--budget ${b.cap}:${b.kind}: ${b.cap} is not granted (add --cap ${b.cap})`);
  const hireMsats = a.budgets.find((b) => b.cap === "nostr" && b.kind === "msats")?.n;
  if (a.wallet !== undefined && !a.caps.has("nostr")) throw new UsageError("--wallet pays the jobs an agent hires: it needs --cap nostr");
  if (a.wallet !== undefined && hireMsats === undefined) throw new UsageError("--wallet needs --budget nostr:msats=N, the most the agent may pay");
  if (a.wallet === undefined && hireMsats !== undefined) throw new UsageError("--budget nostr:msats=N needs --wallet (the wallet that pays)");
  const budget = (cap: string) => {
    const mine = a.budgets.filter((b) => b.cap === cap && !(cap === "nostr" && b.kind === "msats"));
    return mine.length ? Object.fromEntries(mine.map((b) => [b.kind, b.n])) : undefined;
  };
  if (a.caps.has("http")) grants.http = { hosts: hosts("http"), budget: budget("http") };
  if (a.caps.has("ws")) grants.ws = { hosts: hosts("ws"), budget: budget("ws") };
  if (a.caps.has("nostr")) {
    const relays = (a.caps.get("nostr") || DEFAULT_RELAY).split(",").map((s) => s.trim()).filter(Boolean);
    for (const r of relays) if (!/^wss?:\/\//.test(r)) throw new UsageError(`--cap nostr: ${r} is not a ws:// or wss:// relay URL`);
    let secretKey: string;
    try {
      secretKey = loadSecret();
    } catch (e) {
      throw new UsageError(`--cap nostr: ${(e as Error).message}`);
    }
    grants.nostr = { secretKey, relays, budget: budget("nostr") };
  }
  if (a.caps.has("llm")) {
    const provider = a.caps.get("llm") || "offline";
    if (provider !== "offline" && !provider.startsWith("openai:")) throw new UsageError(`--cap llm=${provider}: use offline or openai:BASE_URL[#MODEL]`);
    grants.llm = { provider, apiKey: env.OANIX_LLM_KEY || env.OPENAI_API_KEY || undefined, budget: budget("llm") };
  }
  const secrets: Record<string, Secret> = {};
  const granted = [a.caps.get("http"), a.caps.get("ws")].filter((v): v is string => !!v).join(",");
  for (const s of a.secrets) {
    const value = env[s.env];
    if (!value) throw new UsageError(`--secret ${s.name}: the environment variable ${s.env} is not set`);
    const to = s.hosts ?? granted;
    if (!to) throw new UsageError(`--secret ${s.name}: bind it to hosts (${s.name}=${s.env}@HOST) or grant --cap http`);
    try {
      parseHosts(to);
    } catch (e) {
      throw new UsageError(`--secret ${s.name}: ${(e as Error).message.replace(/^EINVAL: /, "")}`);
    }
    secrets[s.name] = { value, hosts: to.split(",") };
  }
  return { grants, secrets, ...(hireMsats !== undefined ? { hireMsats } : {}) };
}

/**
 * Mounts the granted capabilities in the run's namespace; with nostr, also the customer side of
 * NIP-90 at /cap/nostr/jobs (agents/host/jobs-service.ts). With --wallet, a hired job that asks for
 * payment is paid through it up to --budget nostr:msats=N for the run; without, it answers EDQUOT.
 */
export async function applyCaps(ns: Namespace, a: CapArgs): Promise<Granted> {
  const { grants, secrets, hireMsats } = capGrants(a);
  let granted: Granted;
  try {
    granted = grantCaps(ns, grants, { secrets, resolve: nodeResolve, fetchFor: pinnedFetch, wsConnectFor: pinnedWsConnect });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (!grants.nostr) return granted;
  const [{ JobsService }, { Peer, secretBytes }, { walletFlag }] = await Promise.all([
    import("../agents/host/jobs-service.ts"), import("../agents/host/nostr.ts"), import("./wallet-flag.ts"),
  ]);
  let wallet: ReturnType<typeof walletFlag>;
  try {
    wallet = walletFlag(a.wallet);
  } catch (e) {
    granted.close();
    throw e;
  }
  const peer = new Peer(grants.nostr.relays, secretBytes(grants.nostr.secretKey));
  ns.mount("/cap/nostr/jobs", new JobsService({ peer, ...(wallet ? { wallet, budgetMsats: hireMsats ?? 0 } : {}) }));
  return { budgets: granted.budgets, close: () => { granted.close(); wallet?.close(); peer.pool.destroy(); } };
}
