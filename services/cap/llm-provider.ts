// The model interface every /cap/llm provider speaks: OpenAI's Chat Completions shape, trimmed to
// what agents use. Providers: offline (llm-offline.ts), openai:URL (llm-openai.ts), workers-ai
// (llm-workers-ai.ts, the edge's AI binding).
import { fsError } from "../../runtime/errors.ts";
import { OfflineProvider } from "./llm-offline.ts";
import { OpenAiProvider } from "./llm-openai.ts";

export interface LlmMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

export interface LlmRequest {
  messages: LlmMessage[];
  model?: string;
  max_tokens?: number;
  temperature?: number;
  stop?: string[];
}

export interface LlmReply {
  text: string;
  model: string;
  finish_reason: string;
  usage: { prompt_tokens: number; completion_tokens: number };
}

export interface LlmCall {
  signal: AbortSignal;
  /** Called with each text delta as it streams (the provider streams when this is given). */
  onDelta?: (text: string) => void;
}

export interface LlmProvider {
  readonly name: string;
  models(signal: AbortSignal): Promise<string[]>;
  complete(req: LlmRequest, call: LlmCall): Promise<LlmReply>;
}

/** "offline" or "openai:BASE_URL[#MODEL]". EINVAL for anything else. */
export function providerFrom(spec: string, o: { apiKey?: string; fetch?: typeof fetch } = {}): LlmProvider {
  if (spec === "offline") return new OfflineProvider();
  if (spec.startsWith("openai:")) {
    const rest = spec.slice("openai:".length);
    const hash = rest.indexOf("#");
    const base = hash < 0 ? rest : rest.slice(0, hash);
    const model = hash < 0 ? undefined : rest.slice(hash + 1) || undefined;
    try {
      new URL(base);
    } catch {
      throw fsError("EINVAL", `llm provider "${spec}": openai: takes a base URL, as in openai:http://127.0.0.1:11434/v1#llama3`);
    }
    return new OpenAiProvider({ baseUrl: base, model, apiKey: o.apiKey, fetch: o.fetch });
  }
  throw fsError("EINVAL", `llm provider "${spec}": use offline or openai:BASE_URL[#MODEL]`);
}

/** A rough token count (words and punctuation runs) for providers that do not report usage. */
export const countTokens = (text: string): number => text.match(/\S+/g)?.length ?? 0;

/** Reads a text/event-stream body, calling `onData` with each `data:` payload. */
export async function readSse(body: ReadableStream<Uint8Array>, onData: (data: string) => void): Promise<void> {
  const reader = body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl).replace(/\r$/, "");
      buf = buf.slice(nl + 1);
      if (line.startsWith("data:")) onData(line.slice(5).trim());
    }
  }
  if (buf.startsWith("data:")) onData(buf.slice(5).trim());
}
