// The console's jobs panel, on the relay of the edge that serves the page: a NIP-90 job request
// (kind 5000–5999, an input, parameters, a bid, optionally one provider), its feedback (kind 7000)
// and result (kind + 1000) as they arrive, cancellation (a NIP-09 deletion of the request, which
// OANIX providers honour by stopping the agent); and the providers announced there (NIP-89,
// kind 31990), live. A job ends at its first result or error: one provider answers it.
import { npubEncode } from "nostr-tools/nip19";
import type { Event, EventTemplate } from "nostr-tools/pure";
import { Relay } from "nostr-tools/relay";
import type { Subscription } from "nostr-tools/abstract-relay";

export type SignEvent = (t: EventTemplate) => Promise<Event>;

export const INPUT_TYPES = ["text", "url", "event", "job"] as const;

export interface JobRequest {
  kind: number;
  input: string;
  inputType: (typeof INPUT_TYPES)[number];
  params: [string, string][];
  bidMsats?: number;
  /** Hex pubkey of the one provider asked, or none for any. */
  provider?: string;
}

/** "name=value" lines (blank lines skipped); anything else is an error naming the line. */
export function parseParams(text: string): [string, string][] {
  const out: [string, string][] = [];
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (!line) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) throw new Error(`parameter line ${i + 1} ("${line.slice(0, 40)}") is not name=value`);
    out.push([line.slice(0, eq).trim(), line.slice(eq + 1).trim()]);
  }
  return out;
}

/** The request's tags, checked: a bad kind, bid or input is an error before anything is signed. */
export function requestTags(r: JobRequest, relay: string): string[][] {
  if (!Number.isInteger(r.kind) || r.kind < 5000 || r.kind > 5999) throw new Error(`a job kind is a whole number from 5000 to 5999, not ${r.kind}`);
  if (!r.input.trim()) throw new Error("a job needs an input");
  if ((r.inputType === "event" || r.inputType === "job") && !/^[0-9a-f]{64}$/.test(r.input.trim()))
    throw new Error(`an ${r.inputType} input is an event id (64 hex digits)`);
  if (r.inputType === "url" && !URL.canParse(r.input.trim())) throw new Error("a url input must be an absolute URL");
  const tags: string[][] = [["i", r.inputType === "text" ? r.input : r.input.trim(), r.inputType], ...r.params.map(([k, v]) => ["param", k, v])];
  if (r.bidMsats !== undefined) {
    if (!Number.isInteger(r.bidMsats) || r.bidMsats < 0) throw new Error("a bid is a whole number of millisatoshis");
    tags.push(["bid", String(r.bidMsats)]);
  }
  if (r.provider) tags.push(["p", r.provider]);
  tags.push(["relays", relay]);
  return tags;
}

interface Provider { pubkey: string; d: string; name: string; about: string; kinds: number[]; at: number }

/** A provider's NIP-89 announcement, or null when it is not one OANIX can show. */
function providerOf(e: Event): Provider | null {
  let meta: { name?: unknown; about?: unknown } = {};
  try {
    meta = JSON.parse(e.content) as typeof meta;
  } catch {
    // an announcement without JSON metadata still names its kinds
  }
  const kinds = e.tags.filter((t) => t[0] === "k").map((t) => Number(t[1])).filter((k) => k >= 5000 && k <= 5999);
  if (!kinds.length) return null;
  const d = e.tags.find((t) => t[0] === "d")?.[1] ?? "";
  return { pubkey: e.pubkey, d, name: typeof meta.name === "string" ? meta.name : d || "(unnamed)", about: typeof meta.about === "string" ? meta.about : "", kinds, at: e.created_at };
}

const short = (pubkey: string): string => {
  const n = npubEncode(pubkey);
  return `${n.slice(0, 12)}…${n.slice(-6)}`;
};
const tagOf = (e: Event, name: string): string[] | undefined => e.tags.find((t) => t[0] === name);

export interface JobsContext {
  $: <T extends HTMLElement = HTMLElement>(id: string) => T;
  /** Runs a UI action, showing a failure on the page. */
  act: (fn: () => Promise<void> | void) => (ev?: globalThis.Event) => Promise<void>;
  /** Signs as whoever the page signs as now (the browser's key or the NIP-07 extension). */
  signEvent: SignEvent;
  relayUrl: string;
}

export function setupJobs(c: JobsContext): void {
  const { $ } = c;
  let relay: Promise<Relay> | null = null;
  const connect = (): Promise<Relay> => {
    relay ??= Relay.connect(c.relayUrl, { enableReconnect: true }).catch((e: unknown) => {
      relay = null;
      throw new Error(`the relay at ${c.relayUrl} cannot be reached: ${(e as Error)?.message ?? e}`);
    });
    return relay;
  };

  // --- providers (NIP-89) ----------------------------------------------------------------------
  const providers = new Map<string, Provider>();
  const showProviders = (): void => {
    const list = [...providers.values()].sort((a, b) => a.kinds[0]! - b.kinds[0]! || a.name.localeCompare(b.name));
    $("providers").replaceChildren(...list.map((p) => {
      const tr = document.createElement("tr");
      for (const text of [p.name, p.kinds.join(", "), p.about, short(p.pubkey)]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.append(td);
      }
      return tr;
    }));
    $("providers-none").hidden = list.length > 0;
    const pick = $<HTMLSelectElement>("job-provider");
    const chosen = pick.value;
    pick.replaceChildren(new Option("any provider", ""), ...[...new Map(list.map((p) => [p.pubkey, p])).values()].map((p) => new Option(`${p.name} (${short(p.pubkey)})`, p.pubkey)));
    pick.value = Array.from(pick.options).some((o) => o.value === chosen) ? chosen : "";
  };
  void c.act(async () => {
    (await connect()).subscribe([{ kinds: [31990] }], {
      onevent(e) {
        const p = providerOf(e);
        const key = `${e.pubkey}:${tagOf(e, "d")?.[1] ?? ""}`;
        const had = providers.get(key);
        if (had && had.at > e.created_at) return;
        if (p) providers.set(key, p);
        else providers.delete(key);
        showProviders();
      },
    });
  })();

  // --- a job (NIP-90) --------------------------------------------------------------------------
  let live: { id: string; kind: number; sub: Subscription } | null = null;
  const status = $("job-status");
  const feedback = $("job-feedback");
  const result = $("job-result");
  const say = (text: string, cls = ""): void => {
    status.textContent = text;
    status.className = cls;
  };
  const ended = (text: string, cls: string): void => {
    live?.sub.close();
    live = null;
    say(text, cls);
    $<HTMLButtonElement>("job-send").disabled = false;
    $<HTMLButtonElement>("job-cancel").disabled = true;
  };
  const note = (e: Event): void => {
    const [, state = "", extra] = tagOf(e, "status") ?? [];
    const amount = tagOf(e, "amount");
    const li = document.createElement("li");
    const parts = [new Date(e.created_at * 1000).toLocaleTimeString(), state, extra, e.content, amount ? `${amount[1]} msats${amount[2] ? ` (invoice ${amount[2]})` : ""}` : ""];
    li.textContent = parts.filter(Boolean).join(" · ");
    li.dataset.status = state;
    feedback.append(li);
    if (state === "error") ended(`error from ${short(e.pubkey)}: ${extra || e.content || "no reason given"}`, "bad");
    else if (state === "payment-required") say(`payment required by ${short(e.pubkey)}: pay the invoice with your wallet, then wait`);
    else say(`${state || "feedback"} from ${short(e.pubkey)}`);
  };

  $("job").addEventListener("submit", c.act(async () => {
    if (live) return;
    const bid = $<HTMLInputElement>("job-bid").value.trim();
    const tags = requestTags({
      kind: Number($<HTMLInputElement>("job-kind").value),
      input: $<HTMLTextAreaElement>("job-input").value,
      inputType: $<HTMLSelectElement>("job-input-type").value as JobRequest["inputType"],
      params: parseParams($<HTMLTextAreaElement>("job-params").value),
      bidMsats: bid ? Number(bid) : undefined,
      provider: $<HTMLSelectElement>("job-provider").value || undefined,
    }, c.relayUrl);
    const kind = Number($<HTMLInputElement>("job-kind").value);
    // The last job's view goes at once: nothing of it may pass for this one's.
    feedback.replaceChildren();
    result.textContent = "";
    $("job-id").textContent = "";
    $<HTMLButtonElement>("job-send").disabled = true;
    say("signing…");
    let request: Event;
    let r: Relay;
    try {
      r = await connect();
      request = await c.signEvent({ kind, tags, content: "", created_at: Math.floor(Date.now() / 1000) });
    } catch (e) {
      ended("not sent", "bad");
      throw e;
    }
    // Listen before publishing: a fast provider's feedback must not be missed.
    const sub = r.subscribe([{ kinds: [7000, kind + 1000], "#e": [request.id] }], {
      onevent(e) {
        if (live?.id !== request.id) return;
        if (e.kind === 7000) return note(e);
        result.textContent = e.content;
        ended(`result from ${short(e.pubkey)}`, "good");
      },
    });
    live = { id: request.id, kind, sub };
    $("job-id").textContent = request.id;
    try {
      await r.publish(request);
    } catch (e) {
      ended("not sent", "bad");
      throw new Error(`the relay refused the request: ${(e as Error)?.message ?? e}`);
    }
    if (live?.id === request.id) {
      say("sent: waiting for a provider…");
      $<HTMLButtonElement>("job-cancel").disabled = false;
    }
  }));

  $("job-cancel").addEventListener("click", c.act(async () => {
    if (!live) return;
    const { id, kind } = live;
    ended("cancelling…", "");
    const deletion = await c.signEvent({ kind: 5, tags: [["e", id], ["k", String(kind)]], content: "cancelled by the customer", created_at: Math.floor(Date.now() / 1000) });
    await (await connect()).publish(deletion);
    say("cancelled (the request was deleted)", "");
  }));
}
