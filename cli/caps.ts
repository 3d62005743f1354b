// Capability flags of `oanix run`: --cap NAME[=CONFIG], --budget CAP:KIND=N, --secret
// NAME=ENV_VAR[@HOSTS]. Parsed here, and this module is loaded only for a run that has one of
// them (cli/run.ts collects them); cli/cap-grants.ts turns them into services/cap/grant.ts grants.
// No --cap, no /cap/*.
import { BUDGET_KINDS } from "../services/cap/budgets.ts";
import { UsageError } from "./usage.ts";

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
                        ws:calls, ws:bytes, llm:tokens, llm:calls, nostr:calls, and nostr:msats
                        (the most the agent pays, through --wallet, for the jobs it hires)
  --wallet URI          nostr+walletconnect://... : with --cap nostr, the agent's hired jobs that
                        ask for payment (payment-required) are paid from this wallet (NIP-47
                        pay_invoice), up to --budget nostr:msats=N; past it EDQUOT, nothing paid
  --secret NAME=ENV_VAR[@HOSTS]
                        a header value "$secret:NAME" in a request is replaced by $ENV_VAR on the
                        way out, only to HOSTS (default: the http and ws grants); the agent never
                        reads it, and it never appears in a reply, a log or an error
`;

export const DEFAULT_RELAY = "ws://127.0.0.1:8787/relay";

/** The capabilities' budgets, and nostr:msats: what --wallet may pay for the jobs an agent hires (Node only). */
export const KINDS: Record<string, string[]> = { ...BUDGET_KINDS, nostr: [...(BUDGET_KINDS.nostr ?? []), "msats"] };

export interface CapArgs {
  caps: Map<string, string | undefined>;
  budgets: { cap: string; kind: string; n: number }[];
  secrets: { name: string; env: string; hosts?: string }[];
  /** A NIP-47 wallet connect URI paying the agent's hired jobs (--wallet). */
  wallet?: string;
}

export const emptyCapArgs = (): CapArgs => ({ caps: new Map(), budgets: [], secrets: [] });

/** The flags of a run, in order. */
export function parseCapFlags(flags: Array<[flag: string, value: string]>): CapArgs {
  const out = emptyCapArgs();
  for (const [flag, value] of flags) addCapFlag(out, flag, value);
  return out;
}

/** Records one --cap, --budget, --secret or --wallet flag and its value. */
export function addCapFlag(into: CapArgs, flag: string, value: string): void {
  if (flag === "--wallet") {
    if (into.wallet !== undefined) throw new UsageError("--wallet is given twice");
    if (!value.startsWith("nostr+walletconnect://")) throw new UsageError(`--wallet takes a nostr+walletconnect:// URI (got "${value.slice(0, 40)}")`);
    into.wallet = value;
  } else if (flag === "--cap") {
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
    if (into.budgets.some((b) => b.cap === cap && b.kind === kind)) throw new UsageError(`--budget ${cap}:${kind} is given twice`);
    into.budgets.push({ cap, kind, n: Number(n) });
  } else {
    const m = /^([A-Za-z_][A-Za-z0-9_.-]*)=([A-Za-z_][A-Za-z0-9_]*)(?:@(.+))?$/.exec(value);
    if (!m) throw new UsageError(`--secret takes NAME=ENV_VAR[@HOSTS] (got "${value}")`);
    into.secrets.push({ name: m[1]!, env: m[2]!, hosts: m[3] });
  }
}
