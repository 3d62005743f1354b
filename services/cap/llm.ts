// /cap/llm: a model as files.
//   complete   request/reply: {"messages":[{role,content}],"model"?,"max_tokens"?,"temperature"?,"stop"?}
//              or plain text (one user message) → {"text","model","finish_reason","usage"}.
//   clone → N/ ctl (the request), data (text deltas as they stream; EOF at the end), result (the
//              complete reply JSON, once the stream ends).
//   models     the provider's model ids, one per line.   usage   tokens spent and budget left.
// Budget: `tokens` (prompt + completion, as the provider reports them) and `calls`. A spent budget
// fails with EDQUOT before anything reaches the provider, and max_tokens sent is never more than
// what is left. Time limit: 120 s per call (ETIMEDOUT).
import { FsError, fsError } from "../../runtime/errors.ts";
import type { Budget } from "../../runtime/namespace.ts";
import { cloneDir, handle, type Conn } from "./clone.ts";
import { report, type CapContext } from "./events.ts";
import type { LlmMessage, LlmProvider, LlmReply, LlmRequest } from "./llm-provider.ts";
import { Pipe } from "./pipe.ts";
import { isRecord, jsonReply, reqReplyFile } from "./reqreply.ts";
import { CapFs, textFile } from "./tree.ts";

export interface LlmCapOptions {
  provider: LlmProvider;
  budget?: Budget;
  timeoutMs?: number;
  ctx: CapContext;
}

const ROLES = new Set(["system", "user", "assistant"]);

/** The request: a JSON object, or any other text as one user message. */
export function parseLlmRequest(bytes: Uint8Array): LlmRequest {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw fsError("EINVAL", "complete: the request is not UTF-8");
  }
  let v: unknown;
  const t = text.trimStart();
  if (t.startsWith("{")) {
    try {
      v = JSON.parse(text);
    } catch (e) {
      throw fsError("EINVAL", `complete: the request starts like JSON but is not (${(e as Error).message})`);
    }
  }
  if (!isRecord(v)) {
    if (!text.trim()) throw fsError("EINVAL", "complete: an empty request");
    return { messages: [{ role: "user", content: text }] };
  }
  if (!Array.isArray(v.messages) || v.messages.length === 0) throw fsError("EINVAL", '"messages" must be a non-empty array of {role, content}');
  const messages: LlmMessage[] = v.messages.map((m, i) => {
    if (!isRecord(m) || typeof m.role !== "string" || !ROLES.has(m.role) || typeof m.content !== "string")
      throw fsError("EINVAL", `messages[${i}] must be {"role": "system"|"user"|"assistant", "content": string}`);
    return { role: m.role as LlmMessage["role"], content: m.content };
  });
  const req: LlmRequest = { messages };
  if (v.model !== undefined) {
    if (typeof v.model !== "string" || !v.model) throw fsError("EINVAL", '"model" must be a string');
    req.model = v.model;
  }
  if (v.max_tokens !== undefined) {
    if (!Number.isSafeInteger(v.max_tokens) || (v.max_tokens as number) < 1) throw fsError("EINVAL", '"max_tokens" must be a positive integer');
    req.max_tokens = v.max_tokens as number;
  }
  if (v.temperature !== undefined) {
    if (typeof v.temperature !== "number" || v.temperature < 0 || v.temperature > 2) throw fsError("EINVAL", '"temperature" must be a number from 0 to 2');
    req.temperature = v.temperature;
  }
  if (v.stop !== undefined) {
    const stop = typeof v.stop === "string" ? [v.stop] : v.stop;
    if (!Array.isArray(stop) || !stop.every((s) => typeof s === "string")) throw fsError("EINVAL", '"stop" must be a string or an array of strings');
    req.stop = stop as string[];
  }
  return req;
}

export class LlmCap {
  readonly #o: LlmCapOptions;
  readonly #spent = { calls: 0, prompt_tokens: 0, completion_tokens: 0 };

  constructor(o: LlmCapOptions) {
    this.#o = o;
  }

  /** Runs one completion under the budget and the time limit. */
  async complete(req: LlmRequest, signal: AbortSignal, onDelta?: (t: string) => void): Promise<LlmReply> {
    const b = this.#o.budget;
    if (b) {
      const left = b.remaining("tokens");
      if (left <= 0) throw fsError("EDQUOT", `the token budget is spent (${b.limits.tokens} tokens)`);
      if (Number.isFinite(left)) req = { ...req, max_tokens: Math.min(req.max_tokens ?? left, left) };
      b.charge("calls", 1);
    }
    const ms = this.#o.timeoutMs ?? 120_000;
    // One controller for the caller's signal and the time limit, let go when the call ends (an
    // abort reaching a finished fetch costs as much as the fetch).
    const both = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      both.abort(fsError("ETIMEDOUT", `${this.#o.provider.name}: no answer within ${ms} ms`));
    }, ms);
    const follow = (): void => both.abort(signal.reason);
    if (signal.aborted) follow();
    else signal.addEventListener("abort", follow, { once: true });
    try {
      const reply = await this.#o.provider.complete(req, { signal: both.signal, onDelta });
      this.#spent.calls++;
      this.#spent.prompt_tokens += reply.usage.prompt_tokens;
      this.#spent.completion_tokens += reply.usage.completion_tokens;
      if (b) b.used.tokens += reply.usage.prompt_tokens + reply.usage.completion_tokens;
      return reply;
    } catch (e) {
      if (timedOut) throw both.signal.reason;
      if (e instanceof FsError) throw e;
      throw fsError("EIO", `${this.#o.provider.name}: ${(e as Error).message}`);
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", follow);
    }
  }

  usage(): Record<string, unknown> {
    const b = this.#o.budget;
    const limit = b?.limits.tokens;
    return {
      provider: this.#o.provider.name, ...this.#spent,
      budget: { tokens: limit ?? null, left: limit === undefined ? null : b!.remaining("tokens") },
    };
  }

  service(): CapFs {
    const fail = (file: string) => (e: unknown) => report(this.#o.ctx, "llm", file, e);
    return new CapFs(cloneDir((id) => this.#conn(id, fail), {
      complete: reqReplyFile(async (r, signal) => jsonReply(await this.complete(parseLlmRequest(r), signal)), { fail: fail("complete") }),
      models: textFile(async () => {
        try {
          return (await this.#o.provider.models(AbortSignal.timeout(this.#o.timeoutMs ?? 120_000))).map((m) => m + "\n").join("");
        } catch (e) {
          throw fail("models")(e);
        }
      }),
      usage: textFile(() => JSON.stringify(this.usage()) + "\n"),
    }));
  }

  #conn(id: number, failOf: (file: string) => (e: unknown) => FsError): Conn {
    const abort = new AbortController();
    const deltas = new Pipe();
    const enc = new TextEncoder();
    let started: Promise<LlmReply> | null = null;
    const fail = failOf(`${id}/data`);
    return {
      files: {
        ctl: () => handle({
          write: (data) => {
            if (started) throw failOf(`${id}/ctl`)(fsError("EINVAL", "one request per connection: read clone again for another"));
            let req: LlmRequest;
            try {
              req = parseLlmRequest(data);
            } catch (e) {
              throw failOf(`${id}/ctl`)(e);
            }
            started = this.complete(req, abort.signal, (t) => deltas.push(enc.encode(t)));
            started.then(() => deltas.end(), (e) => deltas.fail(fail(e)));
            return data.length;
          },
        }),
        data: () => handle({
          read: (n) => {
            if (!started) throw fail(fsError("EINVAL", `write the request to ${id}/ctl first`));
            return deltas.read(n);
          },
        }),
        result: () => {
          let text: Uint8Array | null = null;
          let at = 0;
          return handle({
            read: async (n) => {
              if (!started) throw failOf(`${id}/result`)(fsError("EINVAL", `write the request to ${id}/ctl first`));
              text ??= jsonReply(await started.catch((e) => { throw failOf(`${id}/result`)(e); }));
              const out = text.subarray(at, at + n);
              at += out.length;
              return out;
            },
          });
        },
      },
      close: () => abort.abort(fsError("ECANCELED", "the connection was closed")),
    };
  }
}
