// `oanix wallet`: the local NIP-47 wallet (a ledger file) for tests and development.
import { LedgerFile, LocalWallet } from "../agents/host/wallet.ts";
import { UsageError } from "./usage.ts";
import { integer, parseFlags, untilSignal, wantsHelp } from "./flags.ts";

export const WALLET_HELP = `oanix wallet --ledger FILE --relay URL [--account NAME[=MSATS]]...
oanix wallet --ledger FILE --balances

A local Nostr Wallet Connect (NIP-47) service: the stand-in for Lightning in tests and
development, speaking the protocol any NWC wallet speaks (pay_invoice, make_invoice,
lookup_invoice, get_balance, get_info; NIP-44 or NIP-04). Accounts, balances (msats) and invoices
live in the ledger FILE (created on first use). Its invoices (lnoanix1...) are payable only by it.

Options:
  --ledger FILE          the ledger (JSON, written atomically on every change)
  --relay URL            relay to answer on (repeatable)
  --account NAME[=MSATS] open the account NAME (or set its balance) and print
                         "NAME nostr+walletconnect://..." on stdout (repeatable)
  --balances             print each account's balance as JSON and exit

Serves until interrupted (exit 0). Exit 1 when the relays cannot be reached or the ledger cannot
be read, 2 for a usage error.
`;

export async function walletCommand(argv: string[]): Promise<number> {
  if (wantsHelp(argv)) {
    process.stdout.write(WALLET_HELP);
    return 0;
  }
  const f = parseFlags(argv, { ledger: "one", relay: "many", account: "many", balances: "bool" }, "wallet");
  if (f.one.ledger === undefined) throw new UsageError("needs --ledger FILE (try oanix wallet --help)");
  let ledger: LedgerFile;
  try {
    ledger = new LedgerFile(f.one.ledger);
  } catch (e) {
    process.stderr.write(`oanix wallet: ${f.one.ledger}: ${(e as Error).message}\n`);
    return 1;
  }
  if (f.bool.has("balances")) {
    process.stdout.write(JSON.stringify(ledger.balances()) + "\n");
    return 0;
  }
  const relays = f.many.relay ?? [];
  if (!relays.length) throw new UsageError("needs at least one --relay ws://HOST/relay");
  const accounts = (f.many.account ?? []).map((a) => {
    const eq = a.indexOf("=");
    const name = eq < 0 ? a : a.slice(0, eq);
    if (!/^[\w.-]{1,64}$/.test(name)) throw new UsageError(`--account takes NAME[=MSATS] with a plain name (got "${a}")`);
    return { name, balance: eq < 0 ? undefined : integer(a.slice(eq + 1), "account") };
  });
  for (const a of accounts) process.stdout.write(`${a.name} ${ledger.account(a.name, relays, a.balance)}\n`);
  const wallet = new LocalWallet(ledger, relays);
  try {
    await wallet.start();
  } catch (e) {
    process.stderr.write(`oanix wallet: cannot start on ${relays.join(", ")}: ${(e as Error).message}\n`);
    wallet.stop();
    return 1;
  }
  process.stderr.write(`oanix wallet: ${wallet.pubkey} answering NIP-47 on ${relays.join(", ")}\n`);
  await untilSignal();
  wallet.stop();
  return 0;
}
