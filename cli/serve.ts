// `oanix serve`: a NIP-90 provider. Each job request of a served kind runs the kind's agent with
// the job at /task/spec.json; its /task/result.json becomes the result event.
import { readFileSync } from "node:fs";
import { ProgramError, loadProgram, type Program } from "../runtime/modules.ts";
import { Provider, type JobHandler } from "../agents/host/serve.ts";
import { planJob } from "../agents/host/planning/job.ts";
import { nodeDriver } from "../agents/host/planning/lock-node.ts";
import { providerFrom } from "../services/cap/llm-provider.ts";
import { NwcClient } from "../agents/host/wallet.ts";
import { secretBytes } from "../agents/host/nostr.ts";
import { loadSecret } from "../services/key.ts";
import { UsageError } from "./usage.ts";
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
  --kind 5060=plan[:LLM,...]  serve planning runs (agents/planning/README.md) with these models
                         (offline by default; openai:URL[#MODEL]); the first is the default
  --cap http             fetch "url" inputs for the agent (without it they are passed through)
  --cap nostr            the agent may hire other agents through /cap/nostr/jobs (requests signed
                         with this provider's key; the rest of /cap/nostr comes with the
                         capabilities)
  --budget nostr:msats=N the most one agent may pay (through --wallet) for the agents it hires
                         (default 0: a priced hire is EDQUOT)
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
  const f = parseFlags(argv, { relay: "many", kind: "many", cap: "many", budget: "many", price: "one", wallet: "one", concurrency: "one", timeout: "one", memory: "one", name: "one", about: "one" }, "serve");
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
  const caps = new Set(f.many.cap ?? []);
  for (const c of caps) if (c !== "http" && c !== "nostr") throw new UsageError(`--cap ${c}: oanix serve grants http (url inputs) and nostr (hiring) so far`);
  let hireBudget = 0;
  for (const b of f.many.budget ?? []) {
    const m = /^nostr:msats=(\d+)$/.exec(b);
    if (!m) throw new UsageError(`--budget takes nostr:msats=N so far (got "${b}")`);
    if (!caps.has("nostr")) throw new UsageError("--budget nostr:msats=N needs --cap nostr");
    hireBudget = integer(m[1]!, "budget");
  }
  let wallet: NwcClient | undefined;
  if (f.one.wallet !== undefined) {
    try {
      wallet = new NwcClient(f.one.wallet);
    } catch (e) {
      throw new UsageError(`--wallet: ${(e as Error).message}`);
    }
  }
  if (wallet && f.one.price === undefined && !caps.has("nostr")) throw new UsageError("--wallet needs --price (invoices) or --cap nostr (paying hired agents)");
  const provider = new Provider({
    relays: relayList,
    secretKey: secretBytes(loadSecret()),
    programs,
    handlers,
    fetchUrls: caps.has("http"),
    ...(caps.has("nostr") ? { hire: { budgetMsats: hireBudget, ...(f.one.wallet !== undefined ? { wallet: f.one.wallet } : {}) } } : {}),
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
