// `url` inputs of a job served at the edge, by the rule of `oanix serve` (agents/host/serve.ts):
// with http granted to the provider, a url input inside the grant is fetched for the agent (its
// text in `data`, the URL in `ref`); a url outside it is refused with the grant's reason; without
// http, url inputs pass through as the customer sent them. The grant is judged as /cap/http judges
// it at the edge (services/cap/hosts.ts checkUrl, no resolver: by spelling), every redirect hop
// too, and the fetch is the edge's (caps/fetch.ts: the Worker's fetch, the Cache API in front).
// The fetch is the provider's, made before the run: it does not spend the agent's http budget.
//
// `job` and `event` inputs are read from the edge's own relay (its object, by RPC): an event by its
// id; a job by the first result (kind 6000-6999) naming it, which ProviderJob polls for until the
// chain's time runs out. A relay hint naming another relay is not followed: a customer does not
// get to make the edge dial a host of its choosing.
import { BadRequest, type JobInput } from "../../agents/host/spec.ts";
import { checkUrl, parseHosts, type HostGrant } from "../../services/cap/hosts.ts";
import { Secrets } from "../../services/cap/secrets.ts";
import { concat } from "../bytes.ts";
import { edgeFetch } from "../caps/fetch.ts";
import type { RunCaps } from "../caps/policy.ts";
import type { NostrRelay } from "../../relay/relay.ts";

export const MAX_INPUT_BYTES = 1 << 20;
const MAX_REDIRECTS = 10;
const FETCH_TIMEOUT_MS = 15_000;
const SCHEMES = ["http:", "https:"];

/** The inputs with every url input fetched (http granted) or as they were (not granted); BadRequest naming the one that failed. */
export async function resolveUrlInputs(inputs: JobInput[], caps: RunCaps | undefined, signal: AbortSignal): Promise<JobInput[]> {
  if (!caps?.http || !inputs.some((i) => i.type === "url")) return inputs;
  const grant: HostGrant = { patterns: parseHosts(caps.http) };
  const send = edgeFetch({ secrets: new Secrets({}), cache: typeof caches === "undefined" ? undefined : caches.default });
  const out: JobInput[] = [];
  for (const i of inputs) out.push(i.type === "url" ? { ...i, data: await fetchInput(i.data, grant, send, signal), ref: i.data } : i);
  return out;
}

async function fetchInput(raw: string, grant: HostGrant, send: typeof fetch, signal: AbortSignal): Promise<string> {
  const fail = (why: string) => new BadRequest(`input url ${raw}: ${why}`);
  const both = AbortSignal.any([signal, AbortSignal.timeout(FETCH_TIMEOUT_MS)]);
  let res: Response;
  try {
    let url = await checkUrl(raw, grant, SCHEMES);
    for (let hop = 0; ; hop++) {
      res = await send(url.href, { redirect: "manual", signal: both });
      const location = res.status >= 300 && res.status < 400 ? res.headers.get("location") : null;
      if (location === null) break;
      await res.body?.cancel();
      if (hop + 1 >= MAX_REDIRECTS) throw new Error(`more than ${MAX_REDIRECTS} redirects`);
      url = await checkUrl(new URL(location, url).href, grant, SCHEMES).catch((e: Error) => {
        throw new Error(`redirect from ${url.host}: ${e.message}`);
      });
    }
  } catch (e) {
    if (signal.aborted) throw e;
    throw fail((e as Error).message);
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw fail(`HTTP ${res.status}`);
  }
  return new TextDecoder().decode(await bounded(res, () => fail(`over ${MAX_INPUT_BYTES} bytes`)));
}

/** The body, read until MAX_INPUT_BYTES (the relay object holds it: a larger page is refused, not buffered). */
async function bounded(res: Response, tooBig: () => Error): Promise<Uint8Array> {
  if (Number(res.headers.get("content-length") ?? 0) > MAX_INPUT_BYTES) {
    await res.body?.cancel();
    throw tooBig();
  }
  const parts: Uint8Array[] = [];
  let size = 0;
  if (res.body) {
    const reader = res.body.getReader();
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      size += r.value.length;
      if (size > MAX_INPUT_BYTES) {
        await reader.cancel();
        throw tooBig();
      }
      parts.push(r.value);
    }
  }
  return concat(parts);
}

/**
 * The inputs with every `event` and `job` input read from the relay, or the id of the first job
 * input whose result is not there yet. BadRequest for an event that is not there, or a job whose
 * result is encrypted (for its own customer only).
 */
export async function resolveRelayInputs(relay: DurableObjectStub<NostrRelay>, inputs: JobInput[]): Promise<{ inputs: JobInput[] } | { waitingFor: string }> {
  const out: JobInput[] = [];
  for (const i of inputs) {
    if (i.type === "event") {
      const [ev] = await relay.query([{ ids: [i.data], limit: 1 }]);
      if (!ev) throw new BadRequest(`input event ${i.data} was not found on the relay`);
      out.push({ ...i, data: ev.content, ref: i.data });
    } else if (i.type === "job") {
      // The result kind is the request's + 1000; a request this relay does not hold may have any.
      const [parent] = await relay.query([{ ids: [i.data], limit: 1 }]);
      const filter = parent ? { kinds: [parent.kind + 1000], "#e": [i.data] } : { "#e": [i.data], limit: 500 };
      const results = (await relay.query([filter])).filter((e) => e.kind >= 6000 && e.kind < 7000);
      const res = results.sort((a, b) => a.created_at - b.created_at || (a.id < b.id ? -1 : 1))[0];
      if (!res) return { waitingFor: i.data };
      if (res.tags.some((t) => t[0] === "encrypted")) throw new BadRequest(`input job ${i.data} has an encrypted result`);
      out.push({ ...i, data: res.content, ref: i.data });
    } else out.push(i);
  }
  return { inputs: out };
}
