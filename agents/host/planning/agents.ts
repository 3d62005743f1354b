// Runs one planning agent (phase or reviewer) as a WASI process: /task is its spec, /workspace the
// run's workspace, /logs its own, /cap/llm the run's model with what is left of the token budget.
// The provider is metered here, so the host knows each agent's tokens and the provider's own error.
import type { Program } from "../../../runtime/modules.ts";
import { Namespace } from "../../../runtime/namespace.ts";
import { spawn } from "../../../runtime/process.ts";
import type { FileService } from "../../../runtime/types.ts";
import { fsError } from "../../../runtime/errors.ts";
import { grantCaps } from "../../../services/cap/grant.ts";
import { countTokens, type LlmCall, type LlmProvider, type LlmReply, type LlmRequest } from "../../../services/cap/llm-provider.ts";
import { LogsService } from "../../../services/logs.ts";
import { TaskService } from "../../../services/task.ts";

/** The prompt's size in the provider-neutral count (words and punctuation runs). */
const promptEstimate = (req: LlmRequest): number => req.messages.reduce((n, m) => n + countTokens(m.content), 0);

/**
 * Counts calls and tokens, keeps the provider's last error (the guest only sees an errno), and
 * holds the invocation's token budget: a call whose prompt alone would leave nothing of it is
 * refused (EDQUOT) before it reaches the provider, and max_tokens is clamped to what the prompt
 * leaves, so a run pauses at its budget instead of passing it by a whole call. The prompt's size
 * is estimated before the call, scaled by the highest ratio of the provider's own prompt count to
 * the estimate seen so far (a tokenizer that counts more than words is learned after one reply).
 */
export class Metered implements LlmProvider {
  readonly name: string;
  calls = 0;
  tokens = 0;
  lastError: Error | null = null;
  readonly #inner: LlmProvider;
  readonly #limit: number;
  #ratio = 1;
  constructor(inner: LlmProvider, o: { limit?: number } = {}) {
    this.#inner = inner;
    this.name = inner.name;
    this.#limit = o.limit ?? Infinity;
  }
  models(signal: AbortSignal): Promise<string[]> {
    return this.#inner.models(signal);
  }
  async complete(req: LlmRequest, call: LlmCall): Promise<LlmReply> {
    const estimate = promptEstimate(req);
    if (Number.isFinite(this.#limit)) {
      const left = this.#limit - this.tokens;
      const prompt = Math.ceil(estimate * this.#ratio);
      if (left - prompt < 1) {
        this.lastError = fsError("EDQUOT", `the token budget is spent (${Math.max(0, left)} tokens left, the prompt alone is about ${prompt})`);
        throw this.lastError;
      }
      req = { ...req, max_tokens: Math.min(req.max_tokens ?? Infinity, left - prompt) };
    }
    this.calls++;
    try {
      const r = await this.#inner.complete(req, call);
      this.tokens += r.usage.prompt_tokens + r.usage.completion_tokens;
      if (estimate > 0) this.#ratio = Math.max(this.#ratio, r.usage.prompt_tokens / estimate);
      return r;
    } catch (e) {
      this.lastError = e instanceof Error ? e : new Error(String(e));
      throw e;
    }
  }
}

export interface AgentEnv {
  workspace: FileService;
  /** The one workspace directory the agent may write (the run's); the rest is read-only. */
  writable: string;
  provider: Metered;
  /** Tokens the agent may still spend (Infinity: no budget). */
  tokensLeft: number;
  wallTimeMs: number;
  memoryBytes?: number;
}

export type AgentOutcome =
  | { ok: true; tokens: number }
  | { ok: false; code: string; message: string; tokens: number };

/** Spawns `program` with `spec` as /task/spec.json; what it did, in the host's terms. */
export async function runAgent(program: Program, name: string, spec: unknown, env: AgentEnv): Promise<AgentOutcome> {
  const task = new TaskService(spec);
  const logs = new LogsService();
  // /workspace read-only, but for the run's own directory: bound from a read-write mount that is
  // taken away again, so the agent's namespace holds no read-write path to anything else.
  const own = `/workspace/${env.writable}`;
  const ns = new Namespace().mount("/task", task).mount("/logs", logs).mount("/workspace", env.workspace, { access: "ro" });
  ns.mount("/.rw", env.workspace).bind(`/.rw/${env.writable}`, own).unmount("/.rw");
  const before = env.provider.tokens;
  env.provider.lastError = null;
  const budget = Number.isFinite(env.tokensLeft) ? { tokens: Math.max(0, env.tokensLeft) } : undefined;
  const caps = grantCaps(ns, { llm: { provider: env.provider, budget } });
  let stderr = "";
  const status = await spawn(program, {
    namespace: ns,
    name,
    limits: { wallTimeMs: env.wallTimeMs, memoryBytes: env.memoryBytes },
    onStderr: (b) => void (stderr += new TextDecoder().decode(b)),
  }).finally(() => caps.close());
  const tokens = env.provider.tokens - before;
  let result: { ok?: boolean; errno?: string; error?: string; step?: string } = {};
  try {
    result = JSON.parse(task.resultText());
  } catch {
    // No result: the exit status says what happened.
  }
  if (status.code === 0 && result.ok) return { ok: true, tokens };
  if (status.reason !== "exit") return { ok: false, code: status.reason, message: `${name}: ${status.message ?? status.reason}`, tokens };
  const code = result.errno ?? `exit ${status.code}`;
  // (lastError was reset before the spawn; the provider sets it while the agent runs.)
  const why = code === "EDQUOT" ? "the token budget is spent" : (env.provider.lastError as Error | null)?.message ?? result.error ?? (stderr.trim() || "no reason given");
  return { ok: false, code, message: `${name}: ${result.step ?? "run"}: ${why}`, tokens };
}
