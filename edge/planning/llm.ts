// A planning run's model at the edge: `offline`, `workers-ai[#MODEL]` (the AI binding, when the
// Worker has one) or `openai:URL[#MODEL]` (an OpenAI-compatible server the edge may reach:
// outbound.ts). Checked when the run is asked for, so a run never starts with a model it cannot use.
import { fsError } from "../../runtime/errors.ts";
import type { LlmProvider } from "../../services/cap/llm-provider.ts";
import { OfflineProvider } from "../../services/cap/llm-offline.ts";
import { OpenAiProvider } from "../../services/cap/llm-openai.ts";
import { WorkersAiProvider } from "../../services/cap/llm-workers-ai.ts";
import type { Env } from "../env.ts";
import { allowedPrivate, checkOutbound } from "./outbound.ts";

const split = (s: string): { base: string; model?: string } => {
  const hash = s.indexOf("#");
  return hash < 0 ? { base: s } : { base: s.slice(0, hash), ...(s.slice(hash + 1) ? { model: s.slice(hash + 1) } : {}) };
};

/** The provider `spec` names; EINVAL for an unknown spec, ENOTSUP for workers-ai without a binding. */
export function edgeProvider(env: Env, spec: string): LlmProvider {
  if (spec === "offline") return new OfflineProvider();
  if (spec === "workers-ai" || spec.startsWith("workers-ai#")) {
    if (!env.AI) throw fsError("ENOTSUP", "llm workers-ai: this edge has no AI binding (offline or openai:URL instead)");
    const { model } = split(spec);
    return new WorkersAiProvider(env.AI, model ? { model } : {});
  }
  if (spec.startsWith("openai:")) {
    const { base, model } = split(spec.slice("openai:".length));
    checkOutbound(base, allowedPrivate(env.ALLOW_PRIVATE_HOSTS), `llm ${spec}`);
    return new OpenAiProvider({ baseUrl: base, ...(model ? { model } : {}), fetch: (input, init) => fetch(input, { ...init, redirect: "manual" }) });
  }
  throw fsError("EINVAL", `llm "${spec.slice(0, 100)}": use offline, workers-ai[#MODEL] or openai:URL[#MODEL]`);
}
