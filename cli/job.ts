// `oanix job`: asks the relays for a NIP-90 job and prints its result.
import { decode } from "nostr-tools/nip19";
import { JobFailed, JobTimeout, OverBudget, submitJob, type JobRequest } from "../agents/host/job.ts";
import { Peer, secretBytes } from "../agents/host/nostr.ts";
import { INPUT_TYPES, type InputType } from "../agents/host/spec.ts";
import { loadSecret } from "../services/key.ts";
import { UsageError } from "./usage.ts";
import { walletFlag } from "./wallet-flag.ts";
import { integer, parseFlags, relays, wantsHelp } from "./flags.ts";

export const JOB_HELP = `oanix job --relay URL --kind KIND --input TEXT [options]

Publishes a NIP-90 job request (kind 5000-5999), prints each feedback on stderr as it arrives
(status, amount, message) and the result's content on stdout. Signed with OANIX_KEY or
~/.config/oanix/key.

Options:
  --relay URL            relay to ask on (repeatable)
  --kind KIND            job kind, 5000-5999
  --input DATA           an input (repeatable, in order)
  --input-type TYPE      text, url, event or job (repeatable: the Nth applies to the Nth --input;
                         the last one given applies to the inputs after it; default text)
  --param K=V            a job parameter (repeatable)
  --bid MSATS            the most this job may cost
  --provider PUBKEY      ask only this provider (hex or npub; repeatable)
  --encrypt              encrypt inputs and params to the provider (NIP-44; needs one --provider)
  --wallet URI           nostr+walletconnect://... : pay payment-required invoices (pay_invoice)
  --budget MSATS         the most the wallet may pay (default: --bid); a larger invoice is refused
                         (EDQUOT) and nothing is paid
  --timeout S            give up after S seconds (default 60)
  --json                 print the whole result event as JSON instead of its content

Exit status: 0 with a result, 1 on error feedback (or a refused or failed payment), 124 when no
result came within --timeout, 2 for a usage error.
`;

function pubkeyOf(s: string): string {
  if (/^[0-9a-f]{64}$/.test(s)) return s;
  try {
    const d = decode(s);
    if (d.type === "npub") return d.data;
  } catch {
    // fall through
  }
  throw new UsageError(`--provider takes a hex pubkey or an npub (got "${s}")`);
}

export async function jobCommand(argv: string[]): Promise<number> {
  if (wantsHelp(argv)) {
    process.stdout.write(JOB_HELP);
    return 0;
  }
  const f = parseFlags(argv, {
    relay: "many", kind: "one", input: "many", "input-type": "many", param: "many", bid: "one", provider: "many",
    encrypt: "bool", wallet: "one", budget: "one", timeout: "one", json: "bool",
  }, "job");
  const relayList = relays(f);
  if (f.one.kind === undefined) throw new UsageError("needs --kind KIND (try oanix job --help)");
  const kind = integer(f.one.kind, "kind");
  if (kind < 5000 || kind > 5999) throw new UsageError(`--kind takes a job request kind, 5000-5999 (got ${kind})`);
  const data = f.many.input ?? [];
  if (!data.length) throw new UsageError("needs at least one --input");
  const types = f.many["input-type"] ?? [];
  for (const t of types) if (!(INPUT_TYPES as readonly string[]).includes(t)) throw new UsageError(`--input-type takes ${INPUT_TYPES.join(", ")} (got "${t}")`);
  const params: Record<string, string> = {};
  for (const p of f.many.param ?? []) {
    const eq = p.indexOf("=");
    if (eq <= 0) throw new UsageError(`--param takes K=V (got "${p}")`);
    params[p.slice(0, eq)] = p.slice(eq + 1);
  }
  const providers = (f.many.provider ?? []).map(pubkeyOf);
  if (f.bool.has("encrypt") && providers.length !== 1) throw new UsageError("--encrypt needs exactly one --provider");
  const wallet = walletFlag(f.one.wallet);
  const req: JobRequest = {
    kind,
    inputs: data.map((d, i) => ({ data: d, type: (types[i] ?? types[types.length - 1] ?? "text") as InputType })),
    params,
    ...(f.one.bid !== undefined ? { bid: integer(f.one.bid, "bid") } : {}),
    ...(providers.length ? { providers } : {}),
    ...(f.bool.has("encrypt") ? { encrypted: "nip44" as const } : {}),
  };
  const timeoutMs = (f.one.timeout !== undefined ? integer(f.one.timeout, "timeout", 1) : 60) * 1000;
  const budget = f.one.budget !== undefined ? integer(f.one.budget, "budget") : undefined;

  const peer = new Peer(relayList, secretBytes(loadSecret()));
  const say = (line: string) => process.stderr.write(`oanix job: ${line}\n`);
  try {
    const job = await submitJob(peer, req, {
      timeoutMs,
      ...(wallet ? { wallet } : {}),
      ...(budget !== undefined ? { budget } : {}),
      onRequest: (ev) => say(`request ${ev.id}`),
      onFeedback: (fb) => {
        if (fb.status === "error") return; // said once, below, as the reason of exit 1
        const who = fb.event.pubkey.slice(0, 8);
        say(`${fb.status}${fb.amount !== undefined ? ` ${fb.amount} msats` : ""}${fb.message ? `: ${fb.message}` : ""} (from ${who})`);
        if ((fb.status === "payment-required" || fb.status === "payment_required") && !wallet) say("no --wallet to pay with: waiting for a provider that does not ask");
      },
      onPaid: (amount) => say(`paid ${amount} msats`),
    });
    const r = await job.result;
    process.stdout.write(f.bool.has("json") ? JSON.stringify(r.event) + "\n" : r.content.endsWith("\n") ? r.content : r.content + "\n");
    return 0;
  } catch (e) {
    if (e instanceof JobTimeout) {
      say(`timeout: ${e.message}`);
      return 124;
    }
    if (e instanceof JobFailed) {
      say(`error: ${e.message} (from ${e.event.pubkey.slice(0, 8)})`);
      return 1;
    }
    if (e instanceof OverBudget) {
      say(`error: ${e.message}`);
      return 1;
    }
    say(`error: ${(e as Error).message}`);
    return 1;
  } finally {
    wallet?.close();
    peer.close();
  }
}
