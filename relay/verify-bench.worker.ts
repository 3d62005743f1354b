// A bench-only Worker (not part of the relay): measures the event verifiers inside workerd.
// POST a JSON array of signed events to /?verifier=wasm|noble; answers {verifier, n, ms, perSecond}.
// Run by bench/relay.ts with `wrangler dev -c relay/verify-bench.wrangler.toml`.
import type { NostrEvent } from "./event.ts";
import { nobleVerifier, wasmVerifier, type Verifier } from "./verify.ts";

// One instance of each per isolate, as the relay keeps one (defaultVerifier).
const verifiers: Record<string, Verifier> = {};

export default {
  async fetch(request: Request): Promise<Response> {
    if (request.method !== "POST") return new Response("POST events\n", { status: 405 });
    const which = new URL(request.url).searchParams.get("verifier") ?? "wasm";
    const v: Verifier = (verifiers[which] ??= which === "noble" ? nobleVerifier() : wasmVerifier());
    const events = (await request.json()) as NostrEvent[];
    for (const e of events.slice(0, 50)) if (v.verify(e) !== "ok") return new Response("a valid event was refused\n", { status: 500 });
    const t0 = performance.now();
    let ok = 0;
    for (const e of events) if (v.verify(e) === "ok") ok++;
    const ms = performance.now() - t0;
    return Response.json({ verifier: v.name, n: events.length, ok, ms, perSecond: ms > 0 ? Math.round(events.length / (ms / 1000)) : null });
  },
};
