// The NIP-90 provider behind `oanix serve`: announces itself (NIP-89), follows job requests of its
// kinds on its relays, and answers each by running a WASI agent with the job at /task/spec.json.
//
// A request's life: ignored when it is for other providers, expired, already seen, or deleted by
// its author; `error` feedback when it is malformed, its bid is below the price or an input cannot
// be resolved; otherwise (after `payment-required` and a paid invoice, when priced with a wallet)
// `processing` feedback, a slot among `concurrency` (queued jobs get a `processing` feedback
// saying so), inputs resolved (job: the parent's result; event: fetched; url: fetched when http is
// granted), the agent run, and a result event (kind + 1000) or `error` feedback. A kind-5
// deletion by the customer ends the agent and nothing more is published. On start, requests of
// the last `pickupWindowS` seconds that nobody answered (and that this provider did not refuse)
// are picked up again; the seen-set makes live and picked-up copies one job.
import { cpus } from "node:os";
import type { Program } from "../../runtime/modules.ts";
import { Peer, encrypt, now, tag, tags, type Cipher, type Event } from "./nostr.ts";
import { WorkerPool, type HireGrant } from "./pool.ts";
import type { CapGrants } from "../../services/cap/grant.ts";
import { checkUrl, parseHosts, type HostGrant } from "../../services/cap/hosts.ts";
import { nodeResolve } from "../../services/cap/dns-node.ts";
import { pinnedFetch } from "../../services/cap/fetch-node.ts";
import type { Secret } from "../../services/cap/secrets.ts";
import { bytesToHex } from "@noble/hashes/utils.js";
import { BadRequest, Cancelled, sleepUnlessCancelled, DEFAULT_MAX_REQUEST_BYTES, expiration, readRequest, requestTags, type JobInput, type JobSpec } from "./spec.ts";
import { DELETION, FEEDBACK, HANDLER_INFO, MAX_RESULT_CHARS, announcement, feedback, result } from "./answers.ts";
import { NwcError, type NwcClient } from "./wallet.ts";

export { FEEDBACK, HANDLER_INFO };
const MAX_FETCH_BYTES = 1 << 20;

export interface ProviderOptions {
  relays: string[];
  secretKey: Uint8Array;
  /** Job kind (5000–5999) → the agent that serves it. */
  programs: Map<number, Program>;
  /** Job kind → host code that serves it instead of one agent (planning: planning/job.ts). */
  handlers?: Map<number, JobHandler>;
  name?: string;
  about?: string;
  /** Jobs run at once; the rest wait in a queue (default: CPU count). */
  concurrency?: number;
  timeoutMs?: number;
  memoryBytes?: number;
  /** Price per job in msats; with `wallet`, the job waits for its invoice to be paid. */
  price?: number;
  wallet?: NwcClient;
  /** How long a payment-required job waits for its invoice (default 5 minutes). */
  paymentTimeoutMs?: number;
  /** How often a pending invoice is looked up (default 500 ms). */
  paymentPollMs?: number;
  /**
   * The capabilities every agent gets (services/cap grants, as `oanix run --cap` makes them), with
   * the whole of each budget per job. With http, `url` inputs within the http grant are fetched
   * for the agent (the same host rules, the address checked at connect); without it they pass through.
   */
  grants?: CapGrants;
  /** Secrets the granted capabilities may send ("$secret:NAME" in a header), each bound to hosts. */
  secrets?: Record<string, Secret>;
  /**
   * Agents may hire other agents: /cap/nostr/jobs is mounted for them, signing with this provider's
   * key; invoices are paid through `hireWallet` (a wallet connect URI) up to `budgetMsats` per job.
   */
  hire?: { budgetMsats?: number; wallet?: string; timeoutMs?: number };
  maxRequestBytes?: number;
  /** How long a `job` input waits for its parent's result (default: timeoutMs or 60 s). */
  chainTimeoutMs?: number;
  /** On start, requests this recent without a result are picked up (default 3600 s). */
  pickupWindowS?: number;
  /** One line per event worth telling the operator. */
  log?: (line: string) => void;
}

/** A kind served by host code; `progress` lines go out as `processing` feedback. */
export type JobHandler = (spec: JobSpec, o: { signal: AbortSignal; progress: (line: string) => void }) => Promise<HandlerOutcome>;
export type HandlerOutcome = { ok: true; content: string; tags?: string[][] } | { ok: false; cancelled: boolean; reason: string };

interface Job {
  spec: JobSpec;
  /** The request's plain tags (decrypted when it came encrypted). */
  tags: string[][];
  cipher: Cipher | null;
  ctl: AbortController;
  /** An invoice this provider already asked for this job (found on the relay after a restart). */
  invoice?: { invoice: string; amount: number };
}


export class Provider {
  readonly #o: Required<Pick<ProviderOptions, "concurrency" | "paymentTimeoutMs" | "paymentPollMs" | "maxRequestBytes" | "pickupWindowS" | "chainTimeoutMs">> & ProviderOptions;
  readonly #peer: Peer;
  /** Request id → its created_at; pruned past the pickup window (older requests never come again). */
  readonly #seen = new Map<string, number>();
  /** Request id → authors of deletions seen for it (a deletion may arrive before its request). */
  readonly #deleted = new Map<string, { by: Set<string>; at: number }>();
  readonly #jobs = new Map<string, Job>();
  /** Request id → the invoice of our payment-required feedback seen on the relay at pickup. */
  readonly #invoices = new Map<string, { invoice: string; amount: number }>();
  readonly #waiting: (() => void)[] = [];
  readonly #pool = new WorkerPool();
  #running = 0;
  #subs: { close(): void }[] = [];
  #stopped = false;
  /** Jobs answered with a result since start (for tests and the bench). */
  answered = 0;

  constructor(o: ProviderOptions) {
    for (const k of [...o.programs.keys(), ...(o.handlers?.keys() ?? [])]) if (!Number.isInteger(k) || k < 5000 || k > 5999) throw new Error(`kind ${k} is not a job request kind (5000-5999)`);
    this.#o = {
      concurrency: cpus().length || 1, paymentTimeoutMs: 300_000, paymentPollMs: 500, maxRequestBytes: DEFAULT_MAX_REQUEST_BYTES,
      pickupWindowS: 3600, chainTimeoutMs: o.timeoutMs ?? 60_000, ...o,
    };
    this.#peer = new Peer(o.relays, o.secretKey);
  }

  get pubkey(): string {
    return this.#peer.pubkey;
  }
  get kinds(): number[] {
    return [...new Set([...this.#o.programs.keys(), ...(this.#o.handlers?.keys() ?? [])])];
  }

  /** The NIP-89 handler announcement: a `k` tag per kind, content {name, about, encryptionSupported}. */
  announcement(): Event {
    const name = this.#o.name ?? "oanix";
    const about = this.#o.about ?? `OANIX agents serving kinds ${this.kinds.join(", ")} in a sandbox`;
    return this.#peer.sign(announcement({ name, about, kinds: this.kinds, encryptionSupported: true }));
  }

  async start(): Promise<void> {
    await this.#peer.publish(this.announcement());
    const since = now();
    // Deletions first, so a request and its cancellation picked up together are seen in order.
    this.#subs.push(await this.#peer.subscribe({ kinds: [DELETION], since: since - this.#o.pickupWindowS }, (e) => this.#onDeletion(e)));
    // Live requests wait until pickup has read what the relay holds (answers, invoices asked before
    // a restart): a request of this very second arrives both ways and must meet that knowledge.
    const early: Event[] = [];
    let live = false;
    this.#subs.push(await this.#peer.subscribe({ kinds: this.kinds, since }, (e) => (live ? this.#handleSafely(e) : early.push(e))));
    await this.#pickUp(since);
    live = true;
    for (const e of early) this.#handleSafely(e);
    this.#log(`serving kinds ${this.kinds.join(", ")} as ${this.pubkey} on ${this.#o.relays.join(", ")}`);
  }

  /** Stops following requests and ends running agents without answering them (like a crash). */
  stop(): void {
    this.#stopped = true;
    for (const s of this.#subs) s.close();
    for (const j of this.#jobs.values()) j.ctl.abort();
    this.#pool.close();
    this.#peer.close();
  }

  // ---- requests -----------------------------------------------------------------------------

  async #pickUp(until: number): Promise<void> {
    const reqs = (await this.#peer.query({ kinds: this.kinds, since: until - this.#o.pickupWindowS, until, limit: 500 })).filter((e) => this.#forMe(e));
    if (!reqs.length) return;
    const answered = new Set<string>();
    for (let i = 0; i < reqs.length; i += 200) {
      const ids = reqs.slice(i, i + 200).map((e) => e.id);
      for (const ev of await this.#peer.query({ "#e": ids, limit: 5000 })) {
        const ref = tag(ev, "e");
        if (!ref) continue;
        const isResult = ev.kind >= 6000 && ev.kind < 7000;
        const refusedByMe = ev.kind === FEEDBACK && ev.pubkey === this.pubkey && tag(ev, "status") === "error";
        if (isResult || refusedByMe) answered.add(ref);
        const amount = ev.tags.find((t) => t[0] === "amount");
        if (ev.kind === FEEDBACK && ev.pubkey === this.pubkey && tag(ev, "status") === "payment-required" && amount?.[2])
          this.#invoices.set(ref, { invoice: amount[2], amount: Number(amount[1]) });
      }
    }
    // Answered requests are remembered, so the same request arriving live is not answered again.
    for (const e of reqs) if (answered.has(e.id)) this.#remember(e);
    const todo = reqs.filter((e) => !answered.has(e.id)).sort((a, b) => a.created_at - b.created_at);
    if (todo.length) this.#log(`picking up ${todo.length} unanswered request(s)`);
    for (const e of todo) this.#handleSafely(e);
  }

  #remember(e: Event): void {
    this.#seen.set(e.id, e.created_at);
    if (this.#seen.size % 1024 !== 0) return;
    // Live requests are newer than the start and pickup only looks back one window: older ids can go.
    const horizon = now() - this.#o.pickupWindowS - 600;
    for (const [id, at] of this.#seen) if (at < horizon && !this.#jobs.has(id)) this.#seen.delete(id);
    for (const [id, d] of this.#deleted) if (d.at < horizon) this.#deleted.delete(id);
  }

  #forMe(e: Event): boolean {
    if (!this.#o.programs.has(e.kind) && !this.#o.handlers?.has(e.kind)) return false;
    const exp = expiration(e);
    if (exp !== undefined && exp <= now()) return false;
    const to = tags(e, "p").map((t) => t[1]);
    return to.length === 0 || to.includes(this.pubkey);
  }

  #onDeletion(d: Event): void {
    for (const [, id] of tags(d, "e")) {
      if (!id) continue;
      const job = this.#jobs.get(id);
      if (job) {
        // NIP-09: only the author may delete; anyone else's deletion changes nothing.
        if (job.spec.customer === d.pubkey) {
          this.#log(`job ${short(id)}: cancelled by its customer`);
          job.ctl.abort();
        }
      } else {
        let entry = this.#deleted.get(id);
        if (!entry) this.#deleted.set(id, (entry = { by: new Set(), at: d.created_at }));
        entry.by.add(d.pubkey);
      }
    }
  }

  /** A job's trouble is answered as feedback inside #handle; anything else is logged, never fatal. */
  #handleSafely(e: Event): void {
    this.#handle(e).catch((err) => this.#log(`job ${short(e.id)}: ${(err as Error).stack ?? err}`));
  }

  async #handle(e: Event): Promise<void> {
    if (this.#stopped || this.#seen.has(e.id) || !this.#forMe(e)) return;
    this.#remember(e);
    if (this.#deleted.get(e.id)?.by.has(e.pubkey)) return;

    let plain: string[][];
    let cipher: Cipher | null;
    let spec: JobSpec;
    try {
      // An encrypted request is only readable by the provider it names (null: not this one).
      const read = requestTags(e, this.#peer.secretKey, this.pubkey);
      if (!read) return;
      ({ tags: plain, cipher } = read);
      spec = readRequest(e, plain, this.#o.maxRequestBytes);
      if (this.#o.price && spec.bid !== undefined && spec.bid < this.#o.price) throw new BadRequest(`bid of ${spec.bid} msats is below the price of ${this.#o.price} msats`);
    } catch (err) {
      if (err instanceof BadRequest) return this.#fail(e, err.message);
      throw err;
    }

    const invoice = this.#invoices.get(e.id);
    const job: Job = { spec, tags: plain, cipher, ctl: new AbortController(), ...(invoice ? { invoice } : {}) };
    this.#log(`job ${short(e.id)}: kind ${e.kind} from ${short(e.pubkey)}${spec.bid !== undefined ? `, bid ${spec.bid} msats` : ""}`);
    this.#jobs.set(e.id, job);
    try {
      if (this.#o.price && this.#o.wallet) {
        await this.#collect(job);
        this.#log(`job ${short(e.id)}: paid ${this.#o.price} msats`);
      }
      const queued = this.#running >= this.#o.concurrency;
      this.#feedback(job.spec.request, "processing", queued ? `queued: ${this.#waiting.length + 1} ahead` : "");
      // Inputs first: a chained job waiting for its parent must not hold a slot the parent needs.
      await this.#resolveInputs(job);
      await this.#slot(job);
      let out: HandlerOutcome;
      try {
        const limits = { wallTimeMs: this.#o.timeoutMs, memoryBytes: this.#o.memoryBytes };
        const handler = this.#o.handlers?.get(job.spec.kind);
        const hire = this.#hireGrant();
        out = handler
          ? await handler(job.spec, { signal: job.ctl.signal, progress: (line) => this.#feedback(job.spec.request, "processing", line) })
          : await this.#pool.run(this.#program(job), job.spec, limits, job.ctl.signal, {
            ...(this.#o.grants ? { grants: this.#o.grants } : {}), ...(this.#o.secrets ? { secrets: this.#o.secrets } : {}), ...(hire ? { hire } : {}),
          });
      } finally {
        // The slot is the agent's: publishing the answer waits for the relays, not for a core.
        this.#release();
      }
      if (!out.ok) {
        if (out.cancelled) throw new Cancelled();
        throw new BadRequest(out.reason);
      }
      await this.#answer(job, out.content, out.tags);
    } catch (err) {
      if (err instanceof Cancelled || job.ctl.signal.aborted) return;
      const why = err instanceof BadRequest ? err.message : `provider error: ${(err as Error).message}`;
      this.#log(`job ${short(e.id)}: error: ${why}`);
      await this.#fail(e, why);
    } finally {
      this.#jobs.delete(e.id);
    }
  }

  #hireGrant(): HireGrant | undefined {
    const h = this.#o.hire;
    if (!h) return undefined;
    return {
      relays: this.#o.relays, secretKey: bytesToHex(this.#o.secretKey), budgetMsats: h.budgetMsats ?? 0,
      timeoutMs: h.timeoutMs ?? this.#o.timeoutMs ?? 60_000, ...(h.wallet ? { wallet: h.wallet } : {}),
    };
  }

  #program(job: Job): Program {
    return this.#o.programs.get(job.spec.kind)!;
  }

  async #slot(job: Job): Promise<void> {
    if (this.#running < this.#o.concurrency) {
      this.#running++;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const go = () => {
        job.ctl.signal.removeEventListener("abort", drop);
        this.#running++;
        resolve();
      };
      const drop = () => {
        const i = this.#waiting.indexOf(go);
        if (i >= 0) this.#waiting.splice(i, 1);
        reject(new Cancelled());
      };
      this.#waiting.push(go);
      job.ctl.signal.addEventListener("abort", drop, { once: true });
    });
  }

  #release(): void {
    this.#running--;
    this.#waiting.shift()?.();
  }

  // ---- payment ------------------------------------------------------------------------------

  async #collect(job: Job): Promise<void> {
    const wallet = this.#o.wallet!;
    const price = this.#o.price!;
    // Picked up after a restart: the invoice asked for before the crash may already be paid.
    let invoice = job.invoice?.invoice;
    if (invoice) {
      // Only a wallet that says "no such invoice" or "expired" earns a new one: a wallet that did
      // not answer this time must not make the customer pay twice.
      const before = await wallet.lookupInvoice({ invoice }).catch((e: unknown) => (e instanceof NwcError && e.code === "NOT_FOUND" ? null : undefined));
      if (before?.settled_at) return;
      if (before === null || (before && before.expires_at <= now())) invoice = undefined;
    }
    if (!invoice) {
      invoice = (await wallet.makeInvoice(price, `OANIX job ${job.spec.id}`, Math.ceil(this.#o.paymentTimeoutMs / 1000))).invoice;
      this.#feedback(job.spec.request, "payment-required", `pay ${price} msats to run this job`, [["amount", String(price), invoice]]);
    }
    const deadline = Date.now() + this.#o.paymentTimeoutMs;
    for (;;) {
      await sleepUnlessCancelled(this.#o.paymentPollMs, job.ctl.signal);
      // A lookup the wallet did not answer is asked again at the next poll, until the deadline.
      const state = await wallet.lookupInvoice({ invoice }).catch((e: unknown) => this.#log(`job ${short(job.spec.id)}: lookup_invoice: ${(e as Error).message}`));
      if (state?.settled_at) return;
      if (Date.now() > deadline) throw new BadRequest(`invoice of ${price} msats was not paid within ${Math.round(this.#o.paymentTimeoutMs / 1000)} s`);
    }
  }

  // ---- inputs -------------------------------------------------------------------------------

  async #resolveInputs(job: Job): Promise<void> {
    job.spec.input = await Promise.all(job.spec.input.map((i) => this.#resolve(job, i)));
  }

  async #resolve(job: Job, i: JobInput): Promise<JobInput> {
    const relays = i.relay ? [...new Set([...this.#o.relays, i.relay])] : this.#o.relays;
    if (i.type === "job") {
      this.#feedback(job.spec.request, "processing", `waiting for job ${i.data}`);
      const res = await this.#waitForResult(i.data, relays, job.ctl.signal);
      if (res.tags.some((t) => t[0] === "encrypted")) throw new BadRequest(`input job ${i.data} has an encrypted result`);
      return { ...i, data: res.content, ref: i.data };
    }
    if (i.type === "event") {
      const ev = await this.#peer.pool.get(relays, { ids: [i.data] }, { maxWait: 5000 });
      if (!ev) throw new BadRequest(`input event ${i.data} was not found on the relays`);
      return { ...i, data: ev.content, ref: i.data };
    }
    const http = this.#urlGrant();
    if (i.type === "url" && http) {
      let r: Response;
      try {
        // The agent's own rules: a host outside the grant, or a non-public address it does not name exactly, is refused.
        await checkUrl(i.data, http, ["http:", "https:"]);
        r = await http.fetch(i.data, { signal: AbortSignal.any([job.ctl.signal, AbortSignal.timeout(15_000)]) });
      } catch (err) {
        if (job.ctl.signal.aborted) throw new Cancelled();
        throw new BadRequest(`input url ${i.data}: ${(err as Error).message}`);
      }
      if (!r.ok) throw new BadRequest(`input url ${i.data}: HTTP ${r.status}`);
      const body = new Uint8Array(await r.arrayBuffer());
      if (body.length > MAX_FETCH_BYTES) throw new BadRequest(`input url ${i.data}: ${body.length} bytes, over ${MAX_FETCH_BYTES}`);
      return { ...i, data: new TextDecoder().decode(body), ref: i.data };
    }
    return i;
  }

  #urlGrantMemo: (HostGrant & { fetch: typeof fetch }) | null | undefined;

  /** The http grant url inputs are fetched under (null: not granted, they pass through). */
  #urlGrant(): (HostGrant & { fetch: typeof fetch }) | null {
    if (this.#urlGrantMemo !== undefined) return this.#urlGrantMemo;
    const h = this.#o.grants?.http;
    if (!h) return (this.#urlGrantMemo = null);
    const grant: HostGrant = { patterns: parseHosts(h.hosts), resolve: nodeResolve };
    return (this.#urlGrantMemo = { ...grant, fetch: pinnedFetch(grant) });
  }

  /** The first result event (6000–6999) naming `id`, within the chain timeout. */
  #waitForResult(id: string, relays: string[], signal: AbortSignal): Promise<Event> {
    return new Promise((resolve, reject) => {
      const limit = this.#o.chainTimeoutMs;
      const sub = this.#peer.pool.subscribeMany(relays, { "#e": [id] }, {
        onevent: (ev) => {
          if (ev.kind >= 6000 && ev.kind < 7000) finish(() => resolve(ev));
        },
      });
      const timer = setTimeout(() => finish(() => reject(new BadRequest(`input job ${id} gave no result within ${Math.round(limit / 1000)} s`))), limit);
      const abort = () => finish(() => reject(new Cancelled()));
      signal.addEventListener("abort", abort, { once: true });
      let done = false;
      const finish = (f: () => void) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal.removeEventListener("abort", abort);
        sub.close();
        f();
      };
    });
  }

  // ---- answers ------------------------------------------------------------------------------

  async #answer(job: Job, content: string, more: string[][] = []): Promise<void> {
    if (content.length > MAX_RESULT_CHARS) throw new BadRequest(`result is ${content.length} characters, over the ${MAX_RESULT_CHARS} a result event may carry`);
    if (job.ctl.signal.aborted) throw new Cancelled();
    const req = job.spec.request;
    const body = job.cipher ? encrypt(this.#peer.secretKey, req.pubkey, content, job.cipher) : content;
    const t = result(req, body, { plainTags: job.tags, encrypted: job.cipher !== null, relay: this.#o.relays[0]!, ...(this.#o.price ? { price: this.#o.price } : {}), more });
    await this.#peer.publish(this.#peer.sign(t));
    this.answered++;
    this.#log(`job ${short(req.id)}: result published`);
  }

  /** Feedback, published in the background (its order against the result does not matter to NIP-90). */
  #feedback(req: Event, status: string, extra: string, more: string[][] = []): void {
    const ev = this.#feedbackEvent(req, status, extra, more);
    this.#peer.publish(ev).catch((err) => this.#log(`job ${short(req.id)}: ${status} feedback not published: ${(err as Error).message}`));
  }

  #feedbackEvent(req: Event, status: string, extra: string, more: string[][] = []): Event {
    return this.#peer.sign(feedback(req, status, extra, { relay: this.#o.relays[0]!, more }));
  }

  async #fail(req: Event, why: string): Promise<void> {
    if (this.#stopped) return;
    await this.#peer.publish(this.#feedbackEvent(req, "error", why)).catch((err) => this.#log(`job ${short(req.id)}: error feedback not published: ${(err as Error).message}`));
  }

  #log(line: string): void {
    this.#o.log?.(line);
  }
}

const short = (id: string): string => id.slice(0, 8);

