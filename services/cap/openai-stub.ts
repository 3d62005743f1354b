// A small OpenAI-compatible Chat Completions server for tests and the bench: POST
// /v1/chat/completions (JSON or SSE streaming with usage), GET /v1/models. It answers with the
// reversed words of the last user message, honours max_tokens (words), records every request, and
// can be told to fail or to wait.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface StubRequest {
  path: string;
  authorization?: string;
  body: Record<string, unknown>;
}

export interface OpenAiStub {
  url: string;
  requests: StubRequest[];
  /** Next answers fail with this status (0: answer normally). */
  failWith: number;
  /** Milliseconds to wait before answering. */
  delayMs: number;
  close(): Promise<void>;
}

export async function startOpenAiStub(): Promise<OpenAiStub> {
  const stub: OpenAiStub = { url: "", requests: [], failWith: 0, delayMs: 0, close: async () => {} };
  const server: Server = createServer(async (req, res) => {
    const parts: Buffer[] = [];
    for await (const c of req) parts.push(c as Buffer);
    const raw = Buffer.concat(parts).toString("utf8");
    const body = raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
    stub.requests.push({ path: req.url!, authorization: req.headers.authorization, body });
    if (stub.delayMs) await new Promise((r) => setTimeout(r, stub.delayMs));
    if (stub.failWith) {
      res.statusCode = stub.failWith;
      res.setHeader("content-type", "application/json");
      return void res.end(JSON.stringify({ error: { message: `stub failure ${stub.failWith}` } }));
    }
    if (req.url === "/v1/models") return void res.end(JSON.stringify({ object: "list", data: [{ id: "stub-small" }, { id: "stub-large" }] }));
    if (req.url !== "/v1/chat/completions") {
      res.statusCode = 404;
      return void res.end("{}");
    }
    const messages = body.messages as { role: string; content: string }[];
    const last = [...messages].reverse().find((m) => m.role === "user")?.content ?? "";
    let words = last.split(/\s+/).filter(Boolean).reverse();
    const max = body.max_tokens as number | undefined;
    const cut = max !== undefined && words.length > max;
    if (cut) words = words.slice(0, max);
    const prompt = messages.reduce((n, m) => n + m.content.split(/\s+/).filter(Boolean).length, 0);
    const usage = { prompt_tokens: prompt, completion_tokens: words.length, total_tokens: prompt + words.length };
    const finish = cut ? "length" : "stop";
    const model = body.model as string;
    if (!body.stream) {
      res.setHeader("content-type", "application/json");
      return void res.end(JSON.stringify({
        id: "chatcmpl-1", object: "chat.completion", model,
        choices: [{ index: 0, message: { role: "assistant", content: words.join(" ") }, finish_reason: finish }], usage,
      }));
    }
    res.setHeader("content-type", "text/event-stream");
    const send = (o: unknown): boolean => res.write(`data: ${JSON.stringify(o)}\n\n`);
    send({ id: "c", object: "chat.completion.chunk", model, choices: [{ index: 0, delta: { role: "assistant" }, finish_reason: null }] });
    for (let i = 0; i < words.length; i++) {
      send({ id: "c", object: "chat.completion.chunk", model, choices: [{ index: 0, delta: { content: (i ? " " : "") + words[i] }, finish_reason: null }] });
      await new Promise((r) => setImmediate(r));
    }
    send({ id: "c", object: "chat.completion.chunk", model, choices: [{ index: 0, delta: {}, finish_reason: finish }] });
    if ((body.stream_options as { include_usage?: boolean } | undefined)?.include_usage) send({ id: "c", object: "chat.completion.chunk", model, choices: [], usage });
    res.end("data: [DONE]\n\n");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  stub.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  stub.close = () => new Promise((r) => {
    server.closeAllConnections();
    server.close(() => r());
  });
  return stub;
}
