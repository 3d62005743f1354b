// /cap/llm: the offline provider, a real local OpenAI-compatible server (JSON and SSE streaming),
// Workers AI through a stand-in binding, token budgets, and bad requests.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { grantCaps, type CapGrants } from "./grant.ts";
import { WorkersAiProvider, type AiBinding } from "./llm-workers-ai.ts";
import { startOpenAiStub, type OpenAiStub } from "./openai-stub.ts";
import { ask, askJson, capNamespace, dec, enc, failsWith, readAll, readText } from "./testing.ts";

let stub: OpenAiStub;
beforeAll(async () => {
  stub = await startOpenAiStub();
});
afterAll(() => stub.close());

function setup(llm: NonNullable<CapGrants["llm"]>) {
  const t = capNamespace();
  grantCaps(t.ns, { llm });
  return t;
}

async function stream(ns: ReturnType<typeof setup>["ns"], request: unknown): Promise<{ deltas: string[]; result: Record<string, unknown> }> {
  const clone = await ns.open("/cap/llm/clone", { read: true });
  const n = dec(await readAll(clone)).trim();
  const ctl = await ns.open(`/cap/llm/${n}/ctl`, { write: true });
  await ctl.write(enc(typeof request === "string" ? request : JSON.stringify(request)));
  const data = await ns.open(`/cap/llm/${n}/data`, { read: true });
  const deltas: string[] = [];
  for (;;) {
    const b = await data.read(65536);
    if (!b.length) break;
    deltas.push(dec(b));
  }
  const result = JSON.parse(await readText(ns, `/cap/llm/${n}/result`));
  await data.close();
  await ctl.close();
  await clone.close();
  return { deltas, result };
}

describe("offline provider", () => {
  it("is deterministic and answers in the marker format; plain text is one user message", async () => {
    const { ns } = setup({ provider: "offline" });
    const page = "<html><body><h1>Plan 9</h1><p>Everything is a file. Processes see namespaces.</p></body></html>";
    const a = await askJson(ns, "/cap/llm/complete", { messages: [{ role: "user", content: page }] });
    const b = await askJson(ns, "/cap/llm/complete", page);
    expect(a).toEqual(b);
    expect(a).toMatchObject({ model: "offline", finish_reason: "stop" });
    const text = a.text as string;
    expect(text).toMatch(/^SUMMARY: Plan 9 Everything is a file\. Processes see namespaces\.$/m);
    expect(text).toMatch(/^VERDICT: GO$/m);
    expect(text).toMatch(/^REVIEW: ACCEPT$/m);
    expect(text).toMatch(/^SCORE: [6-9]$/m);
    expect(a.usage).toMatchObject({ prompt_tokens: expect.any(Number), completion_tokens: text.split(/\s+/).filter(Boolean).length });
    expect(await readText(ns, "/cap/llm/models")).toBe("offline\n");
  });

  it("max_tokens cuts the answer (finish length); clone streams the same text in deltas", async () => {
    const { ns } = setup({ provider: "offline" });
    const cut = await askJson(ns, "/cap/llm/complete", { messages: [{ role: "user", content: "one two three" }], max_tokens: 3 });
    expect(cut).toMatchObject({ finish_reason: "length", usage: { completion_tokens: 3 } });
    expect((cut.text as string).split(/\s+/).filter(Boolean)).toHaveLength(3);
    const whole = await askJson(ns, "/cap/llm/complete", "stream me please");
    const s = await stream(ns, "stream me please");
    expect(s.deltas.join("")).toBe(whole.text);
    expect(s.deltas.length).toBeGreaterThan(3);
    expect(s.result).toEqual(whole);
  });
});

describe("openai provider against a local Chat Completions server", () => {
  it("sends model, messages, max_tokens and the key; answers text, usage and finish_reason", async () => {
    const { ns } = setup({ provider: `openai:${stub.url}#stub-small`, apiKey: "k-123" });
    stub.requests.length = 0;
    const r = await askJson(ns, "/cap/llm/complete", { messages: [{ role: "system", content: "be brief" }, { role: "user", content: "a b c d" }], max_tokens: 3, temperature: 0.2 });
    expect(r).toEqual({ text: "d c b", model: "stub-small", finish_reason: "length", usage: { prompt_tokens: 6, completion_tokens: 3 } });
    expect(stub.requests[0]).toMatchObject({ path: "/v1/chat/completions", authorization: "Bearer k-123", body: { model: "stub-small", max_tokens: 3, temperature: 0.2, stream: false } });
    const other = await askJson(ns, "/cap/llm/complete", { model: "stub-large", messages: [{ role: "user", content: "x y" }] });
    expect(other).toMatchObject({ model: "stub-large", text: "y x", finish_reason: "stop" });
    expect(await readText(ns, "/cap/llm/models")).toBe("stub-small\nstub-large\n");
  });

  it("streams through clone: SSE deltas as they come, usage from the final chunk", async () => {
    const { ns } = setup({ provider: `openai:${stub.url}#stub-small` });
    const s = await stream(ns, { messages: [{ role: "user", content: "one two three four five" }] });
    expect(s.deltas.join("")).toBe("five four three two one");
    expect(s.result).toMatchObject({ text: "five four three two one", usage: { prompt_tokens: 5, completion_tokens: 5 } });
    expect(stub.requests.at(-1)!.body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
  });

  it("provider errors map to errnos and are logged; no model is EINVAL; a dead server is ECONNREFUSED", async () => {
    const { ns, capErrors } = setup({ provider: `openai:${stub.url}#stub-small` });
    stub.failWith = 401;
    expect(await failsWith(ask(ns, "/cap/llm/complete", "hi"))).toBe("EACCES");
    stub.failWith = 429;
    expect(await failsWith(ask(ns, "/cap/llm/complete", "hi"))).toBe("EAGAIN");
    stub.failWith = 500;
    expect(await failsWith(ask(ns, "/cap/llm/complete", "hi"))).toBe("EIO");
    stub.failWith = 0;
    expect(capErrors().map((e) => e.errno)).toEqual(["EACCES", "EAGAIN", "EIO"]);
    expect(String(capErrors()[0]!.reason)).toContain("stub failure 401");
    const nomodel = setup({ provider: `openai:${stub.url}` });
    expect(await failsWith(ask(nomodel.ns, "/cap/llm/complete", "hi"))).toBe("EINVAL");
    const dead = setup({ provider: "openai:http://127.0.0.1:9/v1#m" });
    expect(await failsWith(ask(dead.ns, "/cap/llm/complete", "hi"))).toBe("ECONNREFUSED");
  });

  it("a slow provider is ETIMEDOUT at the capability's limit", async () => {
    const { ns } = setup({ provider: `openai:${stub.url}#stub-small`, timeoutMs: 100 });
    stub.delayMs = 1000;
    try {
      expect(await failsWith(ask(ns, "/cap/llm/complete", "hi"))).toBe("ETIMEDOUT");
    } finally {
      stub.delayMs = 0;
    }
  });
});

describe("token budget", () => {
  it("max_tokens never exceeds what is left; a spent budget fails before the provider is called", async () => {
    const { ns, capErrors } = setup({ provider: `openai:${stub.url}#stub-small`, budget: { tokens: 20 } });
    stub.requests.length = 0;
    await askJson(ns, "/cap/llm/complete", { messages: [{ role: "user", content: "w ".repeat(10) }], max_tokens: 100 });
    expect(stub.requests[0]!.body.max_tokens).toBe(20);
    const usage = JSON.parse(await readText(ns, "/cap/llm/usage"));
    expect(usage).toMatchObject({ prompt_tokens: 10, completion_tokens: 10, calls: 1, budget: { tokens: 20, left: 0 } });
    expect(await failsWith(ask(ns, "/cap/llm/complete", "more"))).toBe("EDQUOT");
    expect(stub.requests).toHaveLength(1);
    expect(capErrors()[0]).toMatchObject({ cap: "llm", errno: "EDQUOT" });

    const b = setup({ provider: `openai:${stub.url}#stub-small`, budget: { tokens: 12 } });
    stub.requests.length = 0;
    await askJson(b.ns, "/cap/llm/complete", "a b c d e");
    expect(stub.requests[0]!.body.max_tokens).toBe(12);
    await askJson(b.ns, "/cap/llm/complete", "f");
    expect(stub.requests[1]!.body.max_tokens).toBe(2);
  });
});

describe("bad requests", () => {
  it("EINVAL for malformed JSON, bad messages, bad fields, an empty request; each logged", async () => {
    const { ns, capErrors } = setup({ provider: "offline" });
    for (const r of ['{"messages": [', '{"messages": []}', '{"messages": [{"role": "robot", "content": "x"}]}',
      '{"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}', '{"messages": [{"role": "user", "content": "x"}], "temperature": 5}', "  "]) {
      expect(await failsWith(ask(ns, "/cap/llm/complete", r)), r).toBe("EINVAL");
    }
    expect(capErrors()).toHaveLength(6);
    expect(await failsWith(ask(ns, "/cap/llm/complete", new Uint8Array([0xff, 0xfe])))).toBe("EINVAL");
  });
});

describe("workers-ai provider (stand-in AI binding)", () => {
  const calls: { model: string; inputs: Record<string, unknown> }[] = [];
  const ai: AiBinding = {
    async run(model, inputs) {
      calls.push({ model, inputs });
      const last = (inputs.messages as { content: string }[]).at(-1)!.content;
      const answer = `echo: ${last}`;
      if (!inputs.stream) return { response: answer, usage: { prompt_tokens: 3, completion_tokens: 2 } };
      const enc = new TextEncoder();
      return new ReadableStream<Uint8Array>({
        start(c) {
          for (const w of answer.split(/(?<= )/)) c.enqueue(enc.encode(`data: ${JSON.stringify({ response: w })}\n\n`));
          c.enqueue(enc.encode("data: [DONE]\n\n"));
          c.close();
        },
      });
    },
  };

  it("runs the binding with messages and max_tokens, JSON and streaming", async () => {
    const { ns } = setup({ provider: new WorkersAiProvider(ai), budget: { tokens: 50 } });
    const r = await askJson(ns, "/cap/llm/complete", "hello there");
    expect(r).toMatchObject({ text: "echo: hello there", model: "@cf/meta/llama-3.1-8b-instruct", usage: { prompt_tokens: 3, completion_tokens: 2 } });
    expect(calls[0]!.inputs).toMatchObject({ max_tokens: 50, stream: false });
    const s = await stream(ns, "streamed words");
    expect(s.deltas.join("")).toBe("echo: streamed words");
    expect(await failsWith(ask(ns, "/cap/llm/complete", JSON.stringify({ model: "@cf/other", messages: [{ role: "user", content: "x" }] })))).toBe("EINVAL");
    expect(await readText(ns, "/cap/llm/models")).toBe("@cf/meta/llama-3.1-8b-instruct\n");
  });
});
