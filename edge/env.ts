// The Worker's bindings (declared in wrangler.toml). Kept in one place so every edge file agrees.
import type { Workspace } from "./workspace/index.ts";
import type { Runner } from "./runner.ts";
import type { NostrRelay } from "../relay/relay.ts";
import type { PlanningRun } from "./planning/run.ts";
import type { AiBinding } from "../services/cap/llm-workers-ai.ts";

export interface Env {
  /** One Durable Object per workspace (SQLite metadata + small pieces). */
  WORKSPACE: DurableObjectNamespace<Workspace>;
  /** Edge process runner: one Durable Object per run. */
  RUNNER: DurableObjectNamespace<Runner>;
  /** Large pieces, log segments. */
  BLOBS: R2Bucket;
  /** Jobs, job events, the audit log. */
  DB: D1Database;
  /** Task files (fast reads), namespace registry, workspace directory. */
  KV: KVNamespace;
  /** Comma-separated hex pubkeys that may list every workspace (the local edge's own key). */
  ADMIN_PUBKEYS?: string;
  /** The key that seals workspace secrets and agent identities (a Worker secret; workspace/seal.ts). */
  SECRETS_KEY?: string;
  /** Workers AI (wrangler.toml [ai]), for runs granted llm "workers-ai". Absent: such runs are refused. */
  AI?: AiBinding;
  /** The relay Durable Object (relay/): the edge's /cap/nostr reaches it by RPC. */
  RELAY: DurableObjectNamespace<NostrRelay>;
  /** Planning runs: one Durable Object per run, driven by its alarm (planning/run.ts). */
  PLANNING: DurableObjectNamespace<PlanningRun>;
  /** Development only (the local edge sets it): hosts the edge may call although they are
   * loopback or private (`host` or `host:port`, comma-separated), for webhooks and openai:URL. */
  ALLOW_PRIVATE_HOSTS?: string;
  /** First retry delay of a webhook delivery in ms (doubling each time); 30 s by default. */
  WEBHOOK_RETRY_MS?: string;
}

export type Reply<T> = { ok: true; value: T } | { ok: false; status: number; error: { code: string; message: string } };
