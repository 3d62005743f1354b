// The offline provider: no network, deterministic, so agents and tests run anywhere. It answers in
// the marker format the planning runs parse: a SUMMARY line (the first sentences of the last user
// message, markup stripped), then VERDICT: GO, REVIEW: ACCEPT and SCORE: n (6–9, from a hash of the
// conversation). Tokens are whitespace-separated words; max_tokens cuts the answer (finish
// "length"), a stop sequence ends it early (finish "stop").
import { countTokens, type LlmCall, type LlmProvider, type LlmReply, type LlmRequest } from "./llm-provider.ts";

const SUMMARY_WORDS = 40;

function fnv(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

export function offlineAnswer(req: LlmRequest): string {
  const last = [...req.messages].reverse().find((m) => m.role === "user")?.content ?? "";
  const plain = last.replace(/<(script|style)[\s\S]*?<\/\1>/gi, " ").replace(/<[^>]*>/g, " ").replace(/&[a-z]+;/g, " ").replace(/\s+/g, " ").trim();
  const words = plain.split(" ").filter(Boolean);
  const summary = words.length ? words.slice(0, SUMMARY_WORDS).join(" ") + (words.length > SUMMARY_WORDS ? " …" : "") : "(nothing to summarise)";
  const score = 6 + (fnv(JSON.stringify(req.messages)) % 4);
  return `SUMMARY: ${summary}\nVERDICT: GO\nREVIEW: ACCEPT\nSCORE: ${score}\n`;
}

export class OfflineProvider implements LlmProvider {
  readonly name = "offline";

  async models(): Promise<string[]> {
    return ["offline"];
  }

  async complete(req: LlmRequest, call: LlmCall): Promise<LlmReply> {
    let text = offlineAnswer(req);
    let finish = "stop";
    for (const s of req.stop ?? []) {
      const at = s ? text.indexOf(s) : -1;
      if (at >= 0) text = text.slice(0, at);
    }
    const pieces = text.match(/\S+\s*/g) ?? [];
    if (req.max_tokens !== undefined && pieces.length > req.max_tokens) {
      pieces.length = req.max_tokens;
      text = pieces.join("");
      finish = "length";
    }
    if (call.onDelta) for (const p of pieces) {
      if (call.signal.aborted) throw call.signal.reason;
      call.onDelta(p);
      await Promise.resolve();
    }
    const prompt = req.messages.reduce((n, m) => n + countTokens(m.content), 0);
    return { text, model: "offline", finish_reason: finish, usage: { prompt_tokens: prompt, completion_tokens: pieces.length } };
  }
}
