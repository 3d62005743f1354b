// openai:BASE_URL[#MODEL]: any OpenAI-compatible Chat Completions server (OpenAI, Ollama,
// llama.cpp's server, vLLM). Streaming is SSE with `stream_options.include_usage`; a server that
// sends no usage gets a word count instead. HTTP errors map to errnos: 401/403 EACCES, 400/404/422
// EINVAL, 429 EAGAIN, 5xx EIO. The API key goes in the Authorization header and nowhere else.
import { FsError, fsError } from "../../runtime/errors.ts";
import { countTokens, readSse, type LlmCall, type LlmProvider, type LlmReply, type LlmRequest } from "./llm-provider.ts";

export interface OpenAiOptions {
  baseUrl: string;
  model?: string;
  apiKey?: string;
  fetch?: typeof fetch;
}

export class OpenAiProvider implements LlmProvider {
  readonly name: string;
  readonly #o: OpenAiOptions;
  readonly #base: string;

  constructor(o: OpenAiOptions) {
    this.#o = o;
    this.#base = o.baseUrl.replace(/\/+$/, "");
    this.name = `openai:${this.#base}`;
  }

  #headers(): Record<string, string> {
    const h: Record<string, string> = { "content-type": "application/json" };
    if (this.#o.apiKey) h.authorization = `Bearer ${this.#o.apiKey}`;
    return h;
  }

  async #call(path: string, init: RequestInit): Promise<Response> {
    let res: Response;
    try {
      res = await (this.#o.fetch ?? fetch)(`${this.#base}${path}`, { ...init, headers: this.#headers() });
    } catch (e) {
      if (init.signal?.aborted) throw init.signal.reason;
      throw fsError("ECONNREFUSED", `${this.#base}: cannot connect (${(e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message})`);
    }
    if (res.ok) return res;
    const text = (await res.text().catch(() => "")).slice(0, 300);
    let why = text;
    try {
      why = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? text;
    } catch {
      // not JSON
    }
    const code = res.status === 401 || res.status === 403 ? "EACCES" : res.status === 429 ? "EAGAIN"
      : res.status >= 400 && res.status < 500 ? "EINVAL" : "EIO";
    throw fsError(code, `${this.#base}${path}: ${res.status} ${why}`.trim());
  }

  async models(signal: AbortSignal): Promise<string[]> {
    const res = await this.#call("/models", { method: "GET", signal });
    const body = (await res.json()) as { data?: { id?: unknown }[] };
    return (body.data ?? []).map((m) => m.id).filter((id): id is string => typeof id === "string");
  }

  async complete(req: LlmRequest, call: LlmCall): Promise<LlmReply> {
    const model = req.model ?? this.#o.model;
    if (!model) throw fsError("EINVAL", `no model: name one in the request or as ${this.name}#MODEL`);
    const stream = !!call.onDelta;
    const payload: Record<string, unknown> = { model, messages: req.messages, stream };
    if (req.max_tokens !== undefined) payload.max_tokens = req.max_tokens;
    if (req.temperature !== undefined) payload.temperature = req.temperature;
    if (req.stop !== undefined) payload.stop = req.stop;
    if (stream) payload.stream_options = { include_usage: true };
    const res = await this.#call("/chat/completions", { method: "POST", body: JSON.stringify(payload), signal: call.signal });
    try {
      if (!stream) {
        const body = (await res.json()) as {
          model?: string; choices?: { message?: { content?: string }; finish_reason?: string }[];
          usage?: { prompt_tokens?: number; completion_tokens?: number };
        };
        const choice = body.choices?.[0];
        if (!choice) throw fsError("EIO", `${this.name}: the answer has no choices`);
        const text = choice.message?.content ?? "";
        return {
          text, model: body.model ?? model, finish_reason: choice.finish_reason ?? "stop",
          usage: usageOf(body.usage, req, text),
        };
      }
      let text = "";
      let finish = "stop";
      let answered = model;
      let usage: { prompt_tokens?: number; completion_tokens?: number } | undefined;
      await readSse(res.body!, (data) => {
        if (data === "[DONE]" || !data) return;
        const chunk = JSON.parse(data) as {
          model?: string; choices?: { delta?: { content?: string }; finish_reason?: string | null }[];
          usage?: { prompt_tokens?: number; completion_tokens?: number } | null;
        };
        if (chunk.model) answered = chunk.model;
        if (chunk.usage) usage = chunk.usage;
        const c = chunk.choices?.[0];
        if (c?.finish_reason) finish = c.finish_reason;
        const d = c?.delta?.content;
        if (d) {
          text += d;
          call.onDelta!(d);
        }
      });
      return { text, model: answered, finish_reason: finish, usage: usageOf(usage, req, text) };
    } catch (e) {
      if (e instanceof FsError) throw e;
      if (call.signal.aborted) throw call.signal.reason;
      throw fsError("EIO", `${this.name}: a malformed answer (${(e as Error).message})`);
    }
  }
}

function usageOf(u: { prompt_tokens?: number; completion_tokens?: number } | null | undefined, req: LlmRequest, text: string) {
  return {
    prompt_tokens: u?.prompt_tokens ?? req.messages.reduce((n, m) => n + countTokens(m.content), 0),
    completion_tokens: u?.completion_tokens ?? countTokens(text),
  };
}
