// Capabilities, side by side with what they wrap (bench/run.ts module "caps"):
//   cap-http-fetch     (ms, lower)   a small GET through /cap/http/fetch from a guest vs Node's own
//                                    fetch of the same local URL. Target: ≤ 1.5× the direct call.
//   cap-http-stream    (MB/s, higher) 50 MB through clone → N/body vs a direct fetch reading the
//                                    body. Target: ≥ 0.8×.
//   cap-llm-overhead   (ms, lower)   a guest's complete round trip minus the provider's own time,
//                                    on the local OpenAI-compatible stub. Target: < 1 ms.
// The guest is agents/build/captest.wasm; it times its own loop with the monotonic clock, so the
// spawn is not counted. Medians of interleaved repetitions.
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { loadProgram, type Program } from "../runtime/modules.ts";
import { Namespace } from "../runtime/namespace.ts";
import { spawn } from "../runtime/process.ts";
import { grantCaps, type CapGrants } from "../services/cap/grant.ts";
import { OpenAiProvider } from "../services/cap/llm-openai.ts";
import type { LlmCall, LlmProvider, LlmRequest } from "../services/cap/llm-provider.ts";
import { startOpenAiStub } from "../services/cap/openai-stub.ts";
import { LogsService } from "../services/logs.ts";
import type { BenchResult } from "./types.ts";

const STREAM_BYTES = 50_000_000;
const FETCHES = 200;
const LLM_CALLS = 200;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
const fmt = (x: number): string => Number(x.toPrecision(3)).toString();

/** Runs captest with args under the grants; answers its stdout. */
async function guest(program: Program, grants: CapGrants, args: string[]): Promise<string> {
  const ns = new Namespace().mount("/logs", new LogsService());
  const g = grantCaps(ns, grants);
  let out = "";
  let err = "";
  const st = await spawn(program, { namespace: ns, args, onStdout: (b) => void (out += new TextDecoder().decode(b)), onStderr: (b) => void (err += new TextDecoder().decode(b)) });
  g.close();
  if (st.code !== 0) throw new Error(`captest ${args.join(" ")}: exit ${st.code}: ${err}`);
  return out;
}

/** The provider, timed: the bench subtracts its own time from the guest's round trip. */
class Timed implements LlmProvider {
  readonly name: string;
  readonly inner: LlmProvider;
  totalMs = 0;
  constructor(inner: LlmProvider) {
    this.inner = inner;
    this.name = inner.name;
  }
  models(signal: AbortSignal): Promise<string[]> {
    return this.inner.models(signal);
  }
  async complete(req: LlmRequest, call: LlmCall) {
    const t0 = performance.now();
    try {
      return await this.inner.complete(req, call);
    } finally {
      this.totalMs += performance.now() - t0;
    }
  }
}

export async function run(): Promise<BenchResult[]> {
  const program = await loadProgram(readFileSync(new URL("../agents/build/captest.wasm", import.meta.url)));
  const big = Buffer.alloc(1 << 20, 0x61);
  const server: Server = createServer((req, res) => {
    if (req.url === "/small") return void res.end("hello, agent");
    let left = STREAM_BYTES;
    res.setHeader("content-length", String(STREAM_BYTES));
    const pump = (): void => {
      while (left > 0) {
        const c = big.subarray(0, Math.min(big.length, left));
        left -= c.length;
        if (!res.write(c)) return void res.once("drain", pump);
      }
      res.end();
    };
    pump();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  const http: CapGrants = { http: { hosts: `127.0.0.1:${port}` } };
  const small = `http://127.0.0.1:${port}/small`;
  const large = `http://127.0.0.1:${port}/large`;
  const results: BenchResult[] = [];
  try {
    // cap-http-fetch
    const viaCap: number[] = [];
    const direct: number[] = [];
    const directFetch = async (): Promise<number> => {
      const t0 = performance.now();
      for (let i = 0; i < FETCHES; i++) await (await fetch(small)).text();
      return (performance.now() - t0) / FETCHES;
    };
    const capFetch = async (): Promise<number> => {
      const [, n, ns] = (await guest(program, http, ["fetchloop", small, String(FETCHES)])).trim().split(" ");
      return Number(ns) / 1e6 / Number(n);
    };
    await directFetch();
    await capFetch();
    for (let r = 0; r < 7; r++) {
      if (r % 2) direct.push(await directFetch()), viaCap.push(await capFetch());
      else viaCap.push(await capFetch()), direct.push(await directFetch());
    }
    results.push({
      name: "cap-http-fetch", unit: "ms", better: "lower", oanix: median(viaCap), peers: { "node fetch": median(direct) },
      note: `a ${FETCHES}-GET loop of a 12-byte local page; guest (captest fetchloop, timed inside) vs Node's fetch in the same process; medians of 7 interleaved runs (guest ${viaCap.map(fmt).join(", ")}; direct ${direct.map(fmt).join(", ")}). Target ≤ 1.5× the direct call.`,
    });

    // cap-http-stream
    const capMBs: number[] = [];
    const directMBs: number[] = [];
    const directStream = async (): Promise<number> => {
      const t0 = performance.now();
      const res = await fetch(large);
      const reader = res.body!.getReader();
      let n = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        n += value.length;
      }
      if (n !== STREAM_BYTES) throw new Error(`direct stream got ${n}`);
      return STREAM_BYTES / 1e6 / ((performance.now() - t0) / 1000);
    };
    const capStream = async (): Promise<number> => {
      const [, bytes, ns] = (await guest(program, http, ["stream", large])).trim().split(" ");
      if (Number(bytes) !== STREAM_BYTES) throw new Error(`guest stream got ${bytes}`);
      return STREAM_BYTES / 1e6 / (Number(ns) / 1e9);
    };
    await directStream();
    for (let r = 0; r < 5; r++) {
      if (r % 2) directMBs.push(await directStream()), capMBs.push(await capStream());
      else capMBs.push(await capStream()), directMBs.push(await directStream());
    }
    results.push({
      name: "cap-http-stream", unit: "MB/s", better: "higher", oanix: median(capMBs), peers: { "node fetch": median(directMBs) },
      note: `50 MB from a local server: the guest reads clone → N/body in 1 MiB reads (captest stream) vs Node's fetch reading the body stream; medians of 5 interleaved runs (guest ${capMBs.map(fmt).join(", ")}; direct ${directMBs.map(fmt).join(", ")}). Target ≥ 0.8×.`,
    });

    // cap-llm-overhead
    const stub = await startOpenAiStub();
    try {
      const overhead: number[] = [];
      const providerMs: number[] = [];
      for (let r = 0; r < 6; r++) {
        const timed = new Timed(new OpenAiProvider({ baseUrl: stub.url, model: "stub-small" }));
        const [, n, ns] = (await guest(program, { llm: { provider: timed } }, ["llmloop", String(LLM_CALLS)])).trim().split(" ");
        if (r === 0) continue; // warm-up
        const guestMs = Number(ns) / 1e6 / Number(n);
        const own = timed.totalMs / Number(n);
        overhead.push(guestMs - own);
        providerMs.push(own);
      }
      results.push({
        name: "cap-llm-overhead", unit: "ms", better: "lower", oanix: median(overhead), peers: {},
        note: `per complete call: the guest's round trip (captest llmloop, ${LLM_CALLS} calls of "ping") minus the provider's own time (the openai provider against the local stub, ${fmt(median(providerMs))} ms per call); medians of 5 runs (${overhead.map(fmt).join(", ")}). Target < 1 ms.`,
      });
    } finally {
      await stub.close();
    }
  } finally {
    server.closeAllConnections();
    server.close();
  }
  return results;
}
