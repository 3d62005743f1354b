// Capability flags of `oanix run`: --cap NAME[=CONFIG], --budget CAP:KIND=N, --secret
// NAME=ENV_VAR[@HOSTS]. Parsed here and turned into services/cap/grant.ts grants; run.ts only
// hands the flags over and calls applyCaps. No --cap, no /cap/*.
import type { Namespace } from "../runtime/namespace.ts";
import { nodeResolve } from "../services/cap/dns-node.ts";
import { pinnedFetch } from "../services/cap/fetch-node.ts";
import { grantCaps, type CapGrants, type Granted } from "../services/cap/grant.ts";
import { parseHosts } from "../services/cap/hosts.ts";
import type { Secret } from "../services/cap/secrets.ts";
import { loadSecret } from "../services/key.ts";
import { UsageError } from "./sources.ts";

export const CAP_FLAGS = new Set(["--cap", "--budget", "--secret"]);

export const CAPS_HELP = `
Capabilities (each one granted is mounted at /cap/NAME; none is there unless granted):
  --cap http=HOSTS      outbound HTTP(S) to HOSTS: host, host:port, *.domain or *, comma-separated;
                        loopback/private addresses only when listed as exact host:port
  --cap ws=HOSTS        WebSockets, the same host rules
  --cap nostr[=RELAYS]  the agent's Nostr identity (your key: OANIX_KEY or ~/.config/oanix/key)
                        and relays (default ws://127.0.0.1:8787/relay, the local edge's)
  --cap llm=PROVIDER    offline (default; deterministic, no network) or openai:BASE_URL[#MODEL]
                        (key from OANIX_LLM_KEY or OPENAI_API_KEY)
  --budget CAP:KIND=N   a limit past which the capability answers EDQUOT: http:calls, http:bytes,
                        ws:calls, ws:bytes, llm:tokens, llm:calls, nostr:calls
  --secret NAME=ENV_VAR[@HOSTS]
                        a header value "$secret:NAME" in a request is replaced by $ENV_VAR on the
                        way out, only to HOSTS (default: the http and ws grants); the agent never
                        reads it, and it never appears in a reply, a log or an error
`;

export const DEFAULT_RELAY = "ws://127.0.0.1:8787/relay";

const KINDS: Record<string, string[]> = { http: ["calls", "bytes"], ws: ["calls", "bytes"], llm: ["tokens", "calls"], nostr: ["calls"] };

export interface CapArgs {
  caps: Map<string, string | undefined>;
  budgets: { cap: string; kind: string; n: number }[];
  secrets: { name: string; env: string; hosts?: string }[];
}

export const emptyCapArgs = (): CapArgs => ({ caps: new Map(), budgets: [], secrets: [] });

/** Records one --cap, --budget or --secret flag and its value. */
export function addCapFlag(into: CapArgs, flag: string, value: string): void {
  if (flag === "--cap") {
    const eq = value.indexOf("=");
    const name = eq < 0 ? value : value.slice(0, eq);
    if (!Object.hasOwn(KINDS, name)) throw new UsageError(`--cap ${value}: unknown capability (http, ws, nostr, llm)`);
    if (into.caps.has(name)) throw new UsageError(`--cap ${name} is given twice`);
    into.caps.set(name, eq < 0 ? undefined : value.slice(eq + 1));
  } else if (flag === "--budget") {
    const m = /^([a-z]+):([a-z]+)=(\d+)$/.exec(value);
    if (!m) throw new UsageError(`--budget takes CAP:KIND=N, as in llm:tokens=20000 (got "${value}")`);
    const [, cap, kind, n] = m as unknown as [string, string, string, string];
    if (!KINDS[cap]?.includes(kind)) throw new UsageError(`--budget ${value}: ${cap} has no ${kind} budget (${Object.entries(KINDS).map(([c, ks]) => ks.map((k) => `${c}:${k}`).join(", ")).join(", ")})`);
    into.budgets.push({ cap, kind, n: Number(n) });
  } else {
    const m = /^([A-Za-z_][A-Za-z0-9_.-]*)=([A-Za-z_][A-Za-z0-9_]*)(?:@(.+))?$/.exec(value);
    if (!m) throw new UsageError(`--secret takes NAME=ENV_VAR[@HOSTS] (got "${value}")`);
    into.secrets.push({ name: m[1]!, env: m[2]!, hosts: m[3] });
  }
}

/** The grants and secrets the flags ask for; usage errors for what cannot be granted. */
export function capGrants(a: CapArgs, env: Record<string, string | undefined> = process.env): { grants: CapGrants; secrets: Record<string, Secret> } {
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
  const budget = (cap: string) => {
    const mine = a.budgets.filter((b) => b.cap === cap);
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
  return { grants, secrets };
}

/** Mounts the granted capabilities in the run's namespace. */
export function applyCaps(ns: Namespace, a: CapArgs): Granted {
  const { grants, secrets } = capGrants(a);
  try {
    return grantCaps(ns, grants, { secrets, resolve: nodeResolve, fetchFor: pinnedFetch });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}
