// A priced edge provider with a wallet asks before it works (NIP-90 `payment-required`): it makes
// an invoice through its NWC wallet (edge/caps/wallet.ts, the workspace secret its `wallet` names),
// says so with the `amount` tag carrying the invoice, and the job goes on once a lookup says it is
// settled. ProviderJob polls between alarms; the invoice is kept with the job, so a restart asks
// the wallet about the same invoice and never makes the customer pay twice.
import { NwcError, type WalletClient } from "../../agents/host/nwc.ts";
import { BadRequest } from "../../agents/host/spec.ts";
import { FsError } from "../../runtime/errors.ts";
import { walletOf } from "../caps/wallet.ts";
import { ReplyError } from "../errors.ts";
import type { Provided } from "./run.ts";

export interface AskedInvoice {
  invoice: string;
  amount: number;
  /** ms: the job is refused after this. */
  until: number;
  /** What the customer was given to pay it in, in seconds. */
  seconds: number;
}

/** How long a job waits for its invoice to be paid (default), and how often the wallet is asked. */
export const PAYMENT_TIMEOUT_MS = 300_000;
export const PAYMENT_POLL_MS = 1000;

/** The provider's wallet; BadRequest (the job's error feedback) when its secret is missing or unfit. */
export async function openWallet(pv: Provided): Promise<WalletClient> {
  const name = pv.p.wallet!;
  const r = await pv.ws.secretOpen(pv.cred, name);
  if (!r.ok) {
    if (r.error.code === "ENOENT") throw new BadRequest(`provider error: the wallet secret ${name} is not set in workspace ${pv.p.workspace}`);
    throw new ReplyError(r);
  }
  try {
    return walletOf(name, r.value, pv.env.RELAY, pv.p.origin);
  } catch (e) {
    if (e instanceof FsError) throw new BadRequest(`provider error: ${e.message.replace(/^E[A-Z]+: /, "")}`);
    throw e;
  }
}

/** Makes the job's invoice. */
export async function askPayment(wallet: WalletClient, pv: Provided, request: string): Promise<AskedInvoice> {
  const timeout = pv.p.paymentTimeoutMs ?? PAYMENT_TIMEOUT_MS;
  const inv = await wallet.makeInvoice(pv.p.price!, `OANIX job ${request}`, Math.ceil(timeout / 1000));
  return { invoice: inv.invoice, amount: pv.p.price!, until: Date.now() + timeout, seconds: Math.ceil(timeout / 1000) };
}

/** True once the invoice is settled; false while it may still be; BadRequest past its time. */
export async function paid(wallet: WalletClient, asked: AskedInvoice): Promise<boolean> {
  // A lookup the wallet did not answer is asked again at the next poll, until the deadline.
  const state = await wallet.lookupInvoice({ invoice: asked.invoice }).catch((e: unknown) => {
    if (e instanceof NwcError && e.code !== "TIMEOUT") console.error(`edge provider: lookup_invoice: ${e.message}`);
    return null;
  });
  if (state?.settled_at) return true;
  if (Date.now() > asked.until) throw new BadRequest(`invoice of ${asked.amount} msats was not paid within ${asked.seconds} s`);
  return false;
}
