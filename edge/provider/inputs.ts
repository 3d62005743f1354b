// `url` inputs of a job served at the edge, by the rule of `oanix serve` (agents/host/serve.ts):
// with http granted to the provider, a url input inside the grant is fetched for the agent (its
// text in `data`, the URL in `ref`); a url outside it is refused with the grant's reason; without
// http, url inputs pass through as the customer sent them. The grant is judged as /cap/http judges
// it at the edge (services/cap/hosts.ts checkUrl, no resolver: by spelling), every redirect hop
// too, and the fetch is the edge's (caps/fetch.ts: the Worker's fetch, the Cache API in front).
// The fetch is the provider's, made before the run: it does not spend the agent's http budget.
import { BadRequest, type JobInput } from "../../agents/host/spec.ts";
import { checkUrl, parseHosts, type HostGrant } from "../../services/cap/hosts.ts";
import { Secrets } from "../../services/cap/secrets.ts";
import { concat } from "../bytes.ts";
import { edgeFetch } from "../caps/fetch.ts";
import type { RunCaps } from "../caps/policy.ts";

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
