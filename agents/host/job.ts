// The NIP-90 customer behind `oanix job`: publishes a job request, follows its feedback and
// result, pays `payment-required` invoices through a NIP-47 wallet within a budget, and cancels
// with a kind-5 deletion.
import { decrypt, encrypt, tag, type Cipher, type Event, type Party } from "./nostr.ts";
import type { InputType } from "./spec.ts";
import type { WalletClient } from "./nwc.ts";

export interface JobRequest {
  kind: number;
  inputs: { data: string; type: InputType; relay?: string; marker?: string }[];
  params?: Record<string, string>;
  bid?: number;
  /** Providers the job is for (p tags); encryption needs exactly one. */
  providers?: string[];
  /** Encrypt inputs and params to the provider (NIP-44, or NIP-04 for older providers). */
  encrypted?: Cipher;
  output?: string;
  /** NIP-40 expiration (unix seconds). */
  expiration?: number;
}

export interface Feedback {
  status: string;
  /** The status tag's extra text or the content. */
  message: string;
  amount?: number;
  bolt11?: string;
  event: Event;
}

export interface JobResult {
  content: string;
  event: Event;
}

/** The provider said `error`. */
export class JobFailed extends Error {
  readonly event: Event;
  constructor(message: string, event: Event) {
    super(message);
    this.event = event;
  }
}
/** No result within the timeout. */
export class JobTimeout extends Error {}
/** An invoice past the budget: nothing was paid (EDQUOT). */
export class OverBudget extends Error {
  readonly code = "EDQUOT";
}

export interface JobOptions {
  timeoutMs: number;
  wallet?: WalletClient;
  /** msats the wallet may pay for this job (default: nothing without a wallet, the bid with one). */
  budget?: number;
  /** A budget shared with other jobs (payments draw from `left`); takes the place of `budget`. */
  purse?: { left: number };
  onFeedback?: (f: Feedback) => void;
  onPaid?: (amount: number) => void;
  /** Called with the signed request just before it is published. */
  onRequest?: (request: Event) => void;
}

export interface PendingJob {
  id: string;
  request: Event;
  result: Promise<JobResult>;
  cancel(): Promise<void>;
}

/** The request event, signed by the customer. */
export function jobRequestEvent(peer: Party, r: JobRequest): Event {
  const inner: string[][] = r.inputs.map((i) => ["i", i.data, i.type, ...(i.relay || i.marker ? [i.relay ?? "", ...(i.marker ? [i.marker] : [])] : [])]);
  for (const [k, v] of Object.entries(r.params ?? {})) inner.push(["param", k, v]);
  if (r.output) inner.push(["output", r.output]);
  const outer: string[][] = [];
  if (r.bid !== undefined) outer.push(["bid", String(r.bid)]);
  for (const p of r.providers ?? []) outer.push(["p", p]);
  if (r.expiration !== undefined) outer.push(["expiration", String(r.expiration)]);
  if (!r.encrypted) return peer.sign({ kind: r.kind, tags: [...inner, ...outer], content: "" });
  if (r.providers?.length !== 1) throw new Error("an encrypted job names exactly one provider");
  return peer.sign({ kind: r.kind, tags: [...outer, ["encrypted"]], content: encrypt(peer.secretKey, r.providers[0]!, JSON.stringify(inner), r.encrypted) });
}

export async function submitJob(peer: Party, r: JobRequest, o: JobOptions): Promise<PendingJob> {
  const request = jobRequestEvent(peer, r);
  const purse = o.purse ?? { left: o.budget ?? (o.wallet ? (r.bid ?? 0) : 0) };
  let settle!: { resolve: (v: JobResult) => void; reject: (e: Error) => void };
  const result = new Promise<JobResult>((resolve, reject) => (settle = { resolve, reject }));
  result.catch(() => {});
  let done = false;
  const paid = new Set<string>();
  const finish = (f: () => void) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    sub.close();
    f();
  };

  const onEvent = async (ev: Event): Promise<void> => {
    if (done || tag(ev, "e") !== request.id) return;
    if (ev.kind === request.kind + 1000) {
      let content = ev.content;
      if (ev.tags.some((t) => t[0] === "encrypted")) {
        try {
          content = decrypt(peer.secretKey, ev.pubkey, ev.content);
        } catch (e) {
          return finish(() => settle.reject(new JobFailed(`cannot decrypt the result: ${(e as Error).message}`, ev)));
        }
      }
      return finish(() => settle.resolve({ content, event: ev }));
    }
    if (ev.kind !== 7000) return;
    const st = ev.tags.find((t) => t[0] === "status");
    const amountTag = ev.tags.find((t) => t[0] === "amount");
    const f: Feedback = {
      status: st?.[1] ?? "",
      message: st?.[2] || ev.content,
      ...(amountTag?.[1] ? { amount: Number(amountTag[1]) } : {}),
      ...(amountTag?.[2] ? { bolt11: amountTag[2] } : {}),
      event: ev,
    };
    o.onFeedback?.(f);
    if (f.status === "error") return finish(() => settle.reject(new JobFailed(f.message || "the provider reported an error", ev)));
    // One payment per provider and job: a second invoice for the same job is not paid again.
    if ((f.status === "payment-required" || f.status === "payment_required") && f.bolt11 && o.wallet && !paid.has(ev.pubkey)) {
      paid.add(ev.pubkey);
      const amount = f.amount ?? 0;
      if (amount > purse.left) return finish(() => settle.reject(new OverBudget(`EDQUOT: the invoice asks ${amount} msats, over the budget of ${purse.left} msats; nothing was paid`)));
      purse.left -= amount;
      try {
        await o.wallet.payInvoice(f.bolt11);
        o.onPaid?.(amount);
      } catch (e) {
        purse.left += amount;
        paid.delete(ev.pubkey);
        finish(() => settle.reject(new JobFailed(`payment failed: ${(e as Error).message}`, ev)));
      }
    }
  };

  const sub = await peer.subscribe({ "#e": [request.id] }, (ev) => void onEvent(ev));
  const timer = setTimeout(() => finish(() => settle.reject(new JobTimeout(`no result within ${o.timeoutMs} ms`))), o.timeoutMs);
  o.onRequest?.(request);
  try {
    await peer.publish(request);
  } catch (e) {
    finish(() => settle.reject(new Error(`the relays refused the request: ${(e as Error).message}`)));
  }
  return {
    id: request.id,
    request,
    result,
    async cancel() {
      finish(() => settle.reject(new Error("cancelled")));
      await peer.publish(peer.sign({ kind: 5, tags: [["e", request.id], ["k", String(request.kind)]], content: "cancelled by the customer" }));
    },
  };
}
