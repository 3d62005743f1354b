// `oanix serve`: a NIP-90 provider. Each job request of a served kind runs the kind's agent with
// the job at /task/spec.json; its /task/result.json becomes the result event.
import { readFileSync } from "node:fs";
import { ProgramError, loadProgram, type Program } from "../runtime/modules.ts";
import { Provider, type JobHandler } from "../agents/host/serve.ts";
import { planJob } from "../agents/host/planning/job.ts";
import { nodeDriver } from "../agents/host/planning/lock-node.ts";
import { providerFrom } from "../services/cap/llm-provider.ts";
import { secretBytes } from "../agents/host/nostr.ts";
import { loadSecret } from "../services/key.ts";
import { UsageError } from "./usage.ts";
import { walletFlag } from "./wallet-flag.ts";
import { addCapFlag, emptyCapArgs } from "./caps.ts";
import { capGrants } from "./cap-grants.ts";
import { integer, parseFlags, relays, untilSignal, wantsHelp } from "./flags.ts";

export const SERVE_HELP = `oanix serve --relay URL [--relay URL]... --kind KIND=MODULE.wasm [--kind ...] [options]

Serves NIP-90 jobs: announces the kinds (NIP-89, kind 31990), then runs MODULE.wasm for each job
request of KIND (5000-5999) with the job at /task/spec.json, a fresh /workspace and /logs:
  {"id","kind","customer","created_at","input":[{"data","type","relay"?,"marker"?}],
   "params":{name: value},"output"?,"bid"?,"request": <the event>}
When the agent exits 0, the "content" string of its /task/result.json (or the whole file) is
published as the result (kind + 1000); otherwise "error" feedback with the exit status and the end
of its stderr. A kind-5 deletion by the customer ends the agent. Requests of the last hour without
a result are picked up again on start. Signed with OANIX_KEY or ~/.config/oanix/key.

Options:
  --relay URL            relay to serve on (repeatable)
  --kind KIND=MODULE     serve job kind KIND with the agent MODULE.wasm (repeatable)
  --cap http=HOSTS       the agent may fetch from HOSTS (/cap/http; host, host:port, *.domain or *,
                         comma-separated; loopback/private addresses only as exact host:port), and
                         "url" inputs within HOSTS are fetched for it (otherwise passed through)
  --cap ws=HOSTS         WebSockets (/cap/ws), the same host rules
  --cap llm=PROVIDER     /cap/llm: offline or openai:BASE_URL[#MODEL] (key from OANIX_LLM_KEY or
                         OPENAI_API_KEY)
  --cap nostr[=RELAYS]   /cap/nostr with this provider's key, on its --relay list unless RELAYS are
                         named; /cap/nostr/jobs lets the agent hire other agents (requests signed
                         with this provider's key)
  --budget CAP:KIND=N    per job: each job starts with the whole budget (http:calls, http:bytes,
                         ws:calls, ws:bytes, llm:tokens, llm:calls, nostr:calls); nostr:msats=N is
                         the most one job may pay (through --wallet) for the agents it hires
  --kind 5060=plan[:LLM,...]  serve planning runs (agents/planning/README.md) with these models
                         (offline by default; openai:URL[#MODEL]); the first is the default
                         (default 0: a priced hire is EDQUOT)
  --secret NAME=ENV_VAR[@HOSTS]
                         "$secret:NAME" in an agent's request header becomes $ENV_VAR, only to
                         HOSTS (default: the http and ws grants); never readable by the agent
  A capability not granted is not there: an agent gets exactly these grants.
  --price MSATS          price per job: lower bids are refused; results carry an amount tag
  --wallet URI           nostr+walletconnect://... : with --price, each job first sends
                         payment-required with an invoice (make_invoice) and runs once it is paid
                         (lookup_invoice); with --cap nostr, hired agents are paid from it
  --concurrency N        jobs run at once (default: CPU count); more wait in a queue
  --timeout MS           wall time per agent (default 60000)
  --memory MB            memory per agent (default 256)
  --name NAME, --about TEXT   the NIP-89 announcement

Runs until interrupted (exit 0). Exit 1 when the relays cannot be reached, 2 for a usage error.
`;

export async function serveCommand(argv: string[]): Promise<number> {
  if (wantsHelp(argv)) {
    process.stdout.write(SERVE_HELP);
    return 0;
  }
  const f = parseFlags(argv, { relay: "many", kind: "many", cap: "many", budget: "many", secret: "many", price: "one", wallet: "one", concurrency: "one", timeout: "one", memory: "one", name: "one", about: "one" }, "serve");
  const relayList = relays(f);
  const programs = new Map<number, Program>();
  const handlers = new Map<number, JobHandler>();
  for (const spec of f.many.kind ?? []) {
    const eq = spec.indexOf("=");
    const kind = Number(spec.slice(0, eq));
    if (eq <= 0 || !Number.isInteger(kind) || kind < 5000 || kind > 5999) throw new UsageError(`--kind takes KIND=MODULE.wasm with KIND in 5000-5999 (got "${spec}")`);
    if (programs.has(kind) || handlers.has(kind)) throw new UsageError(`--kind ${kind} given twice`);
    const path = spec.slice(eq + 1);
    if (path === "plan" || path.startsWith("plan:")) {
      handlers.set(kind, await planHandler(path.slice(5)));
      continue;
    }
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(path);
    } catch {
      throw new UsageError(`${path}: cannot read the module`);
    }
    try {
      programs.set(kind, await loadProgram(bytes));
    } catch (e) {
      if (e instanceof ProgramError) throw new UsageError(`${path}: ${e.message}`);
      throw e;
    }
  }
  if (!programs.size && !handlers.size) throw new UsageError("needs at least one --kind KIND=MODULE.wasm (try oanix serve --help)");
  // The agents' capabilities: the flags and rules of `oanix run --cap` (cli/caps.ts), granted to
  // every served agent, each job with the whole of each budget.
  const capArgs = emptyCapArgs();
  for (const [flag, values] of [["--cap", f.many.cap], ["--budget", f.many.budget], ["--secret", f.many.secret]] as const)
    for (const v of values ?? []) addCapFlag(capArgs, flag, v);
  const hiring = capArgs.caps.has("nostr");
  // --wallet here is the provider's: invoices for --price, and paying what its agents hire.
  const msats = capArgs.budgets.find((b) => b.cap === "nostr" && b.kind === "msats");
  if (msats && !hiring) throw new UsageError("--budget nostr:msats=N needs --cap nostr");
  const { grants, secrets } = capGrants({ ...capArgs, budgets: capArgs.budgets.filter((b) => b !== msats) });
  // Served agents speak on the provider's relays unless --cap nostr=RELAYS names others.
  if (grants.nostr && capArgs.caps.get("nostr") === undefined) grants.nostr.relays = relayList;
  const wallet = walletFlag(f.one.wallet);
  if (wallet && f.one.price === undefined && !hiring) throw new UsageError("--wallet needs --price (invoices) or --cap nostr (paying hired agents)");
  const provider = new Provider({
    relays: relayList,
    secretKey: secretBytes(loadSecret()),
    programs,
    ...(Object.keys(grants).length ? { grants } : {}),
    ...(Object.keys(secrets).length ? { secrets } : {}),
    ...(hiring ? { hire: { budgetMsats: msats?.n ?? 0, ...(f.one.wallet !== undefined ? { wallet: f.one.wallet } : {}) } } : {}),
    handlers,
    ...(f.one.price !== undefined ? { price: integer(f.one.price, "price", 1) } : {}),
    ...(wallet && f.one.price !== undefined ? { wallet } : {}),
    ...(f.one.concurrency !== undefined ? { concurrency: integer(f.one.concurrency, "concurrency", 1) } : {}),
    timeoutMs: f.one.timeout !== undefined ? integer(f.one.timeout, "timeout", 1) : 60_000,
    memoryBytes: (f.one.memory !== undefined ? integer(f.one.memory, "memory", 1) : 256) * 2 ** 20,
    ...(f.one.name !== undefined ? { name: f.one.name } : {}),
    ...(f.one.about !== undefined ? { about: f.one.about } : {}),
    log: (line) => process.stderr.write(`oanix serve: ${line}\n`),
  });
  try {
    await provider.start();
  } catch (e) {
    process.stderr.write(`oanix serve: cannot start on ${relayList.join(", ")}: ${(e as Error).message}\n`);
    provider.stop();
    return 1;
  }
  process.stdout.write(`${provider.pubkey}\n`);
  await untilSignal();
  provider.stop();
  wallet?.close();
  return 0;
}

/** `--kind 5060=plan[:LLM,...]`: planning runs as jobs, with the phase and reviewer agents built here. */
async function planHandler(list: string): Promise<JobHandler> {
  const specs = list ? list.split(",").filter(Boolean) : ["offline"];
  const llms: Record<string, () => ReturnType<typeof providerFrom>> = {};
  for (const s of specs) {
    try {
      providerFrom(s);
    } catch (e) {
      throw new UsageError(`--kind …=plan: ${(e as Error).message}`);
    }
    llms[s] = () => providerFrom(s, { apiKey: process.env.OANIX_LLM_KEY || process.env.OPENAI_API_KEY || undefined });
  }
  const load = async (name: string): Promise<Program> => {
    try {
      return await loadProgram(readFileSync(new URL(`../agents/build/${name}.wasm`, import.meta.url)));
    } catch (e) {
      throw new UsageError(`agents/build/${name}.wasm: ${(e as Error).message} (run npm run build:agents)`);
    }
  };
  return planJob({ programs: { phase: await load("phase"), reviewer: await load("reviewer") }, llms, driver: nodeDriver() });
}
