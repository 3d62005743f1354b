// workers-ai: the edge's `AI` binding (wrangler.toml [ai]) behind the provider interface. Workers
// AI cannot run offline, so it is tested with a stand-in object that speaks the binding's shape:
// run(model, {messages, max_tokens, temperature, stream}) answers {response, usage?}, or with
// stream: true a ReadableStream of `data: {"response": "…"}` events ending in `data: [DONE]`.
import { fsError } from "../../runtime/errors.ts";
import { countTokens, readSse, type LlmCall, type LlmProvider, type LlmReply, type LlmRequest } from "./llm-provider.ts";

export interface AiBinding {
  run(model: string, inputs: Record<string, unknown>, options?: Record<string, unknown>): Promise<unknown>;
}

export const DEFAULT_WORKERS_AI_MODEL = "@cf/meta/llama-3.1-8b-instruct";

export class WorkersAiProvider implements LlmProvider {
  readonly name = "workers-ai";
  readonly #ai: AiBinding;
  readonly #model: string;
  readonly #models: string[];

  constructor(ai: AiBinding, o: { model?: string; models?: string[] } = {}) {
    this.#ai = ai;
    this.#model = o.model ?? DEFAULT_WORKERS_AI_MODEL;
    this.#models = o.models ?? [this.#model];
  }

  async models(): Promise<string[]> {
    return this.#models;
  }

  async complete(req: LlmRequest, call: LlmCall): Promise<LlmReply> {
    const model = req.model ?? this.#model;
    if (!this.#models.includes(model)) throw fsError("EINVAL", `workers-ai: model ${model} is not offered here (${this.#models.join(", ")})`);
    const inputs: Record<string, unknown> = { messages: req.messages, stream: !!call.onDelta };
    if (req.max_tokens !== undefined) inputs.max_tokens = req.max_tokens;
    if (req.temperature !== undefined) inputs.temperature = req.temperature;
    let out: unknown;
    try {
      out = await this.#ai.run(model, inputs, { signal: call.signal });
    } catch (e) {
      if (call.signal.aborted) throw call.signal.reason;
      throw fsError("EIO", `workers-ai: ${(e as Error).message}`);
    }
    let text = "";
    let usage: { prompt_tokens?: number; completion_tokens?: number } | undefined;
    if (out instanceof ReadableStream) {
      await readSse(out as ReadableStream<Uint8Array>, (data) => {
        if (data === "[DONE]" || !data) return;
        const chunk = JSON.parse(data) as { response?: string; usage?: typeof usage };
        if (chunk.usage) usage = chunk.usage;
        if (chunk.response) {
          text += chunk.response;
          call.onDelta!(chunk.response);
        }
      });
    } else {
      const r = out as { response?: unknown; usage?: typeof usage };
      if (typeof r?.response !== "string") throw fsError("EIO", "workers-ai: the answer has no response text");
      text = r.response;
      usage = r.usage;
    }
    const prompt = usage?.prompt_tokens ?? req.messages.reduce((n, m) => n + countTokens(m.content), 0);
    const completion = usage?.completion_tokens ?? countTokens(text);
    const cut = req.max_tokens !== undefined && completion >= req.max_tokens;
    return { text, model, finish_reason: cut ? "length" : "stop", usage: { prompt_tokens: prompt, completion_tokens: completion } };
  }
}
