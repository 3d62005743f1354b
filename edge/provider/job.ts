// One NIP-90 request served by one edge provider: a Durable Object per (provider, request), driven
// by its alarm, so a job outlives the relay object that handed it over and its own restarts. The
// relay's hook (handler.ts) only calls `accept`, which keeps the request and arms the alarm;
// everything slow happens in alarms, each doing what it can and waking again to wait:
//
//   read    the request (decrypted when encrypted), checked: malformed or under the price is `error`
//   pay     priced with a wallet: an invoice (`payment-required`, amount tag), polled until paid
//   inputs  `processing`; job inputs wait for their parent's result, event and url inputs are read
//   slot    one of the workspace's run slots (a second `processing` says it is queued)
//   run     the program in a Runner; its outcome read back from D1 (run.ts)
//   answer  the result (kind + 1000) or `error` feedback, signed once, kept, and published until
//           the relay has it (a restart publishes the same event again: the relay sees a duplicate)
//
// A kind-5 deletion by the customer (`cancel`) ends it at the next step: a waiting job never runs;
// a running one runs on to its exit (the Runner has no stop) and nothing is published for it.
import { DurableObject } from "cloudflare:workers";
import type { NostrEvent } from "../../relay/event.ts";
import { relayStub } from "../../relay/http.ts";
import { encrypt, type Cipher } from "../../agents/host/cipher.ts";
import { MAX_RESULT_CHARS, feedback, result, type Template } from "../../agents/host/answers.ts";
import { BadRequest, Cancelled, readRequest, requestTags, type JobSpec } from "../../agents/host/spec.ts";
import { FsError } from "../../runtime/errors.ts";
import { reason, type ProviderEnv } from "./config.ts";
import { resolveRelayInputs, resolveUrlInputs } from "./inputs.ts";
import { masterKey, providerKey, type ProviderKey } from "./keys.ts";
import { askPayment, openWallet, paid, PAYMENT_POLL_MS, type AskedInvoice } from "./payment.ts";
import { signWith } from "./relay.ts";
import { Provided, type RunTicket } from "./run.ts";
import { addEvent } from "../d1.ts";
import { cancelRequest, claim, providerNamed, settle } from "./store.ts";

/** How long a job waits for one of its workspace's run slots before it is refused. */
export const QUEUE_TIMEOUT_MS = 60_000;
/** A job waiting for a slot is woken when one is given back (run.ts release); this is the fallback. */
const SLOT_POLL_MS = 1000;
/** How long a `job` input waits for its parent's result (default), and how often it looks. */
export const CHAIN_TIMEOUT_MS = 60_000;
const CHAIN_POLL_MS = 500;
const RUN_POLL_MS = 2000;
/** Runs lost to restarts before the job is refused. */
const MAX_ATTEMPTS = 2;
/** Steps failing outside the job (D1, the relay, the wallet unreachable) before it is refused. */
const MAX_FAILURES = 5;
/** A finished job's object forgets it after this (D1's claim keeps a late hand-over out as long). */
const KEEP_MS = 7 * 24 * 3600 * 1000;

interface JobRecord {
  provider: string;
  request: NostrEvent;
  state: "active" | "cancelled" | "done";
  /** Read from the request: the spec, the plain tags, the cipher its answer uses. */
  spec?: JobSpec;
  tags?: string[][];
  cipher?: Cipher | null;
  invoice?: AskedInvoice;
  paid?: boolean;
  /** Feedback already said ("processing", "queued", "waiting"). */
  told: string[];
  inputsUntil?: number;
  slotUntil?: number;
  run?: RunTicket;
  attempts?: number;
  /** The final event, signed: published until the relay took it. */
  answer?: NostrEvent;
  failures?: number;
}

/** Why a step stops: wait `ms` and go on, or the job is over. */
type Step = { wait: number } | "done";

export const jobObjectName = (provider: string, request: string): string => `${provider}\n${request}`;

export class ProviderJob extends DurableObject<ProviderEnv> {
  #rec: JobRecord | undefined;

  constructor(ctx: DurableObjectState, env: ProviderEnv) {
    super(ctx, env);
    void ctx.blockConcurrencyWhile(async () => {
      this.#rec = await ctx.storage.get<JobRecord>("job");
    });
  }

  /** Takes the request for `provider` (idempotent: a second hand-over of it changes nothing). */
  async accept(provider: string, request: NostrEvent): Promise<void> {
    if (this.#rec) return;
    // D1's claim keeps it once even across this object's forgetting (KEEP_MS) and older edges.
    if (!(await claim(this.env.DB, provider, request.id))) return;
    if (this.#rec) return;
    await this.#save({ provider, request, state: "active", told: [] });
    await this.ctx.storage.setAlarm(Date.now());
  }

  /** The customer deleted the request (the relay only deletes for its author, NIP-09). */
  async cancel(provider: string, request: NostrEvent, deletion: NostrEvent): Promise<void> {
    if (deletion.pubkey !== request.pubkey) return;
    const rec = this.#rec ?? { provider, request, state: "active", told: [] };
    if (rec.state !== "active" || rec.answer) return;
    await this.#save({ ...rec, state: "cancelled" });
    const c = await cancelRequest(this.env.DB, provider, request.id);
    if (c?.job) await addEvent(this.env.DB, c.job, "cancel-requested", { deletion: deletion.id });
    // A waiting job ends at its next alarm (a running one once its run is over); none: forget it later.
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(Date.now() + KEEP_MS);
  }

  /** A run slot was given back in the workspace: a job waiting for one tries now. */
  async wake(): Promise<void> {
    const rec = this.#rec;
    if (rec?.state !== "active" || rec.run || rec.answer || rec.slotUntil === undefined) return;
    const at = await this.ctx.storage.getAlarm();
    if (at === null || at > Date.now()) await this.ctx.storage.setAlarm(Date.now());
  }

  override async alarm(): Promise<void> {
    const rec = this.#rec;
    if (!rec) return;
    if (rec.state === "done") return void (await this.ctx.storage.deleteAll());
    let next: Step;
    try {
      next = await this.#advance(rec);
      if (rec.failures) await this.#save({ ...this.#rec!, failures: 0 });
    } catch (e) {
      next = await this.#failed(rec, e);
    }
    await this.ctx.storage.setAlarm(Date.now() + (next === "done" ? KEEP_MS : next.wait));
  }

  /** One alarm's worth of the job: from wherever the record says it is, on until it must wait. */
  async #advance(rec: JobRecord): Promise<Step> {
    if (rec.answer) return this.#publishAnswer(rec.answer);
    const p = await providerNamed(this.env, rec.provider);
    const master = masterKey(this.env);
    if (!p || p.kind !== rec.request.kind || !master) {
      console.warn(`edge provider ${rec.provider}: gone (or PROVIDER_KEY unset); job ${rec.request.id} dropped`);
      return this.#finish();
    }
    const key = providerKey(master, p.name);
    const say = (t: Template) => this.#publish(signWith(key, t));
    try {
      const spec = rec.spec ?? (await this.#read(rec, key, p.price));
      const pv = await Provided.open(this.env, p);
      if (p.price && p.wallet && !rec.paid && !(await this.#pay(pv, spec, say))) return { wait: PAYMENT_POLL_MS };
      if (this.#cancelled() && !this.#rec!.run) return this.#finish();
      if (await this.#tell("processing")) await say(feedback(rec.request, "processing", ""));
      if (!this.#rec!.run) {
        const waiting = await this.#start(pv, spec, say);
        if (waiting) return waiting;
      }
      return await this.#ended(pv, key, spec);
    } catch (e) {
      if (this.#cancelled()) return this.#finish();
      if (!(e instanceof BadRequest) && !(e instanceof FsError)) throw e;
      const why = e instanceof BadRequest ? e.message : `provider error: ${reason(e)}`;
      console.error(`edge provider ${p.name}: job ${rec.request.id}: ${why}`);
      return this.#answer(signWith(key, feedback(rec.request, "error", why)), "failed");
    }
  }

  /** The request read and checked once; BadRequest says why it is refused. */
  async #read(rec: JobRecord, key: ProviderKey, price: number | undefined): Promise<JobSpec> {
    const read = requestTags(rec.request, key.secretKey, key.pubkey);
    if (!read) throw new BadRequest("the request is encrypted for another provider");
    const spec = readRequest(rec.request, read.tags);
    if (price && spec.bid !== undefined && spec.bid < price) throw new BadRequest(`bid of ${spec.bid} msats is below the price of ${price} msats`);
    await this.#save({ ...rec, spec, tags: read.tags, cipher: read.cipher });
    return spec;
  }

  /** The pay step: true once the job's invoice is settled; false to wait (the invoice asked for once). */
  async #pay(pv: Provided, spec: JobSpec, say: (t: Template) => Promise<void>): Promise<boolean> {
    const wallet = await openWallet(pv);
    try {
      if (!this.#rec!.invoice) {
        const invoice = await askPayment(wallet, pv, spec.id);
        await this.#save({ ...this.#rec!, invoice });
        await say(feedback(spec.request, "payment-required", `pay ${invoice.amount} msats to run this job`, { more: [["amount", String(invoice.amount), invoice.invoice]] }));
      }
      if (!(await paid(wallet, this.#rec!.invoice!))) return false;
    } finally {
      wallet.close();
    }
    await this.#save({ ...this.#rec!, paid: true });
    return true;
  }

  /** The inputs, a run slot, then the run (its ticket kept first); a Step while it must wait for one of them. */
  async #start(pv: Provided, spec: JobSpec, say: (t: Template) => Promise<void>): Promise<Step | null> {
    const inputs = await this.#inputs(pv, spec, say);
    if (inputs === null) return { wait: CHAIN_POLL_MS };
    if (!(await this.#slot(pv, spec, say))) return { wait: SLOT_POLL_MS };
    const slot = slotOf(pv.p.name, spec.id);
    let ticket: RunTicket;
    try {
      if (this.#cancelled()) throw new Cancelled();
      ticket = await pv.prepare({ ...spec, input: inputs }, (this.#rec!.attempts ?? 0) + 1);
    } catch (e) {
      await pv.release(slot);
      if (e instanceof Cancelled) return this.#finish();
      throw e;
    }
    await this.#save({ ...this.#rec!, run: ticket, attempts: ticket.attempt });
    await pv.run(ticket);
    return null;
  }

  /** After the run: its outcome (or a wait while it may still be going), the slot given back, the answer. */
  async #ended(pv: Provided, key: ProviderKey, spec: JobSpec): Promise<Step> {
    const ticket = this.#rec!.run!;
    const ended = await pv.outcome(ticket).then((out) => ({ out }), (error: unknown) => ({ error }));
    if ("out" in ended && ended.out === null) return { wait: RUN_POLL_MS };
    await pv.release(slotOf(pv.p.name, spec.id));
    if (this.#cancelled()) {
      await pv.note(ticket.job, "cancelled", { request: spec.id });
      return this.#finish();
    }
    if ("error" in ended) throw ended.error;
    const out = ended.out!;
    if (out === "lost") {
      if (ticket.attempt >= MAX_ATTEMPTS) throw new BadRequest(`provider error: the run was lost ${ticket.attempt} times to restarts`);
      const { run: _lost, ...rest } = this.#rec!;
      await this.#save(rest);
      return { wait: 0 };
    }
    if (out.length > MAX_RESULT_CHARS) throw new BadRequest(`result is ${out.length} characters, over the ${MAX_RESULT_CHARS} a result event may carry`);
    const r = this.#rec!;
    const body = r.cipher ? encrypt(key.secretKey, spec.request.pubkey, out, r.cipher) : out;
    const price = pv.p.price;
    return this.#answer(signWith(key, result(spec.request, body, { plainTags: r.tags!, encrypted: !!r.cipher, ...(price ? { price } : {}) })), "answered");
  }

  /** The inputs the agent gets, or null while a parent job has no result yet. */
  async #inputs(pv: Provided, spec: JobSpec, say: (t: Template) => Promise<void>) {
    const relayed = await resolveRelayInputs(relayStub(this.env.RELAY), spec.input);
    if ("waitingFor" in relayed) {
      const until = this.#rec!.inputsUntil ?? Date.now() + (pv.p.chainTimeoutMs ?? CHAIN_TIMEOUT_MS);
      if (Date.now() > until) throw new BadRequest(`input job ${relayed.waitingFor} gave no result within ${Math.round((pv.p.chainTimeoutMs ?? CHAIN_TIMEOUT_MS) / 1000)} s`);
      if (this.#rec!.inputsUntil === undefined) await this.#save({ ...this.#rec!, inputsUntil: until });
      if (await this.#tell(`waiting ${relayed.waitingFor}`)) await say(feedback(spec.request, "processing", `waiting for job ${relayed.waitingFor}`));
      return null;
    }
    await pv.checkCaps();
    return resolveUrlInputs(relayed.inputs, pv.p.caps, AbortSignal.timeout(20_000));
  }

  /** One of the workspace's run slots: true once held; false to wait; BadRequest past the queue's time. */
  async #slot(pv: Provided, spec: JobSpec, say: (t: Template) => Promise<void>): Promise<boolean> {
    if (await pv.admit(slotOf(pv.p.name, spec.id), jobObjectName(pv.p.name, spec.id))) return true;
    const until = this.#rec!.slotUntil ?? Date.now() + QUEUE_TIMEOUT_MS;
    if (Date.now() > until) throw new BadRequest(`no run slot came free within ${QUEUE_TIMEOUT_MS / 1000} s`);
    if (this.#rec!.slotUntil === undefined) await this.#save({ ...this.#rec!, slotUntil: until });
    if (await this.#tell("queued")) await say(feedback(spec.request, "processing", `queued: waiting for a run slot in workspace ${pv.p.workspace}`));
    return false;
  }

  async #finish(): Promise<Step> {
    await this.#save({ ...this.#rec!, state: "done" });
    return "done";
  }

  /** The one answer: kept before it is published, so a restart sends the same event. */
  async #answer(ev: NostrEvent, to: "answered" | "failed"): Promise<Step> {
    if (this.#cancelled() || !(await settle(this.env.DB, this.#rec!.provider, this.#rec!.request.id, to))) return this.#finish();
    await this.#save({ ...this.#rec!, answer: ev });
    return this.#publishAnswer(ev);
  }

  async #publishAnswer(ev: NostrEvent): Promise<Step> {
    await this.#publish(ev);
    return this.#finish();
  }

  async #publish(ev: NostrEvent): Promise<void> {
    const r = await relayStub(this.env.RELAY).publish(ev);
    if (!r.ok && !r.message.startsWith("duplicate")) console.error(`edge provider ${this.#rec?.provider}: job ${this.#rec?.request.id}: event refused: ${r.message}`);
  }

  /** True the first time `what` is to be said (kept, so a restart does not say it again). */
  async #tell(what: string): Promise<boolean> {
    if (this.#rec!.told.includes(what)) return false;
    await this.#save({ ...this.#rec!, told: [...this.#rec!.told, what] });
    return true;
  }

  #cancelled(): boolean {
    return this.#rec?.state === "cancelled";
  }

  /** A step broke outside the job (a binding did not answer): tried again later, then refused. */
  async #failed(rec: JobRecord, e: unknown): Promise<Step> {
    const n = (this.#rec?.failures ?? 0) + 1;
    console.error(`edge provider ${rec.provider}: job ${rec.request.id}: step failed (${n}): ${(e as Error).message}`);
    await this.#save({ ...this.#rec!, failures: n });
    if (n < MAX_FAILURES) return { wait: 1000 * 2 ** n };
    const master = masterKey(this.env);
    if (!master) return this.#finish();
    return this.#answer(signWith(providerKey(master, rec.provider), feedback(rec.request, "error", `provider error: ${reason(e)}`)), "failed").catch(() => this.#finish());
  }

  async #save(rec: JobRecord): Promise<void> {
    this.#rec = rec;
    await this.ctx.storage.put("job", rec);
  }
}

const slotOf = (provider: string, request: string): string => `nip90:${provider}:${request}`;
