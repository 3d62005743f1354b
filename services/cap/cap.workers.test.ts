// The capability services run inside workerd too (platform-neutral: web fetch, no Node APIs), as
// the edge will mount them: a request/reply through the namespace, the offline model, and Workers
// AI through the provider interface.
import { describe, expect, it } from "vitest";
import { Namespace } from "../../runtime/namespace.ts";
import { LogsService } from "../logs.ts";
import { grantCaps } from "./grant.ts";
import { WorkersAiProvider } from "./llm-workers-ai.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

async function ask(ns: Namespace, path: string, body: string): Promise<string> {
  const h = await ns.open(path, { read: true, write: true });
  await h.write(enc(body));
  let out = "";
  for (;;) {
    const b = await h.read(65536);
    if (!b.length) break;
    out += dec(b);
  }
  await h.close();
  return out;
}

describe("capabilities in workerd", () => {
  it("http through an injected fetch, with the grant and secrets; llm offline and workers-ai", async () => {
    const logs = new LogsService();
    const ns = new Namespace().mount("/logs", logs);
    let seen = "";
    const fetcher = (async (input: RequestInfo | URL, init?: RequestInit) => {
      seen = new Headers(init?.headers).get("authorization") ?? "";
      return new Response(`hello from ${String(input)}`, { status: 200 });
    }) as typeof fetch;
    const ai = { run: async () => ({ response: "edge answer", usage: { prompt_tokens: 1, completion_tokens: 2 } }) };
    grantCaps(ns, { http: { hosts: "example.com" }, llm: { provider: new WorkersAiProvider(ai) } }, {
      fetch: fetcher, secrets: { K: { value: "s3cret", hosts: ["example.com"] } },
    });
    const r = JSON.parse(await ask(ns, "/cap/http/fetch", JSON.stringify({ url: "https://example.com/x", headers: { authorization: "$secret:K" } })));
    expect(r).toMatchObject({ status: 200, body: "hello from https://example.com/x" });
    expect(seen).toBe("s3cret");
    await expect(ask(ns, "/cap/http/fetch", JSON.stringify({ url: "https://evil.com/" }))).rejects.toMatchObject({ code: "EACCES" });
    expect(logs.events().filter((e) => e.event === "cap.error")).toHaveLength(1);
    expect(JSON.parse(await ask(ns, "/cap/llm/complete", "hi"))).toMatchObject({ text: "edge answer" });
    const off = new Namespace();
    grantCaps(off, { llm: { provider: "offline" } });
    expect(JSON.parse(await ask(off, "/cap/llm/complete", "hi")).text).toContain("VERDICT: GO");
  });
});
