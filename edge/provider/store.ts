// D1 tables of the edge provider (edge/migrations/0002_edge_providers.sql, applied on first use too):
// - edge_providers: the providers added through the admin route. A removed one keeps its row
//   (config NULL), so its name, and with it its Nostr identity (keys.ts), stays with its owner.
// - edge_provider_jobs: one row per (provider, request): the claim that makes a job run once and
//   be answered once, whichever isolate or how many times the relay hands it over, and the state
//   a cancel writes (claimed → answered | failed | cancelled).
import { checkProvider, configured, type ProviderConfig, type ProviderEnv } from "./config.ts";
import { schemaOnce, statementsOf } from "../d1.ts";
import providersSql from "../migrations/0002_edge_providers.sql";

const PROVIDER_SCHEMA = statementsOf(providersSql);

/** Claims are kept this long (requests older than this are not served again anyway: NIP-90 jobs are short). */
const CLAIM_KEEP_MS = 7 * 24 * 3600 * 1000;

const schema = schemaOnce(PROVIDER_SCHEMA);

export interface StoredProvider {
  name: string;
  owner: string;
  /** null once removed. */
  config: ProviderConfig | null;
}

export async function storedProvider(db: D1Database, name: string): Promise<StoredProvider | null> {
  await schema(db);
  const r = await db.prepare("SELECT name, owner, config FROM edge_providers WHERE name = ?").bind(name).first<{ name: string; owner: string; config: string | null }>();
  return r ? { name: r.name, owner: r.owner, config: r.config ? checkProvider(JSON.parse(r.config)) : null } : null;
}

/** The provider a registration names: wrangler.toml first, then the admin route's. */
export async function providerNamed(env: ProviderEnv, name: string): Promise<ProviderConfig | null> {
  return configured(env).find((p) => p.name === name) ?? (await storedProvider(env.DB, name))?.config ?? null;
}

/** The live providers added through the admin route (all, or one owner's). */
export async function storedProviders(db: D1Database, owner?: string): Promise<ProviderConfig[]> {
  await schema(db);
  const q = owner
    ? db.prepare("SELECT config FROM edge_providers WHERE config IS NOT NULL AND owner = ? ORDER BY name").bind(owner)
    : db.prepare("SELECT config FROM edge_providers WHERE config IS NOT NULL ORDER BY name");
  return (await q.all<{ config: string }>()).results.map((r) => checkProvider(JSON.parse(r.config)));
}

/**
 * Adds or replaces `p` for `owner`. The conditional upsert is the lock: a name held by another key
 * is not taken (false).
 */
export async function putProvider(db: D1Database, owner: string, p: ProviderConfig): Promise<boolean> {
  await schema(db);
  const r = await db.prepare(
    `INSERT INTO edge_providers (name, owner, config, updated_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (name) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at WHERE owner = excluded.owner`,
  ).bind(p.name, owner, JSON.stringify({ ...p, owner }), Date.now()).run();
  return r.meta.changes > 0;
}

/** Marks a provider removed (its name stays with its owner). */
export async function removeProvider(db: D1Database, name: string): Promise<boolean> {
  await schema(db);
  const r = await db.prepare("UPDATE edge_providers SET config = NULL, updated_at = ? WHERE name = ? AND config IS NOT NULL").bind(Date.now(), name).run();
  return r.meta.changes > 0;
}

export type JobState = "claimed" | "answered" | "failed" | "cancelled";

/** Claims a request for a provider: true for the one caller that gets it, false for every other (or after a cancel). */
export async function claim(db: D1Database, provider: string, request: string): Promise<boolean> {
  await schema(db);
  const now = Date.now();
  const [, r] = await db.batch([
    db.prepare("DELETE FROM edge_provider_jobs WHERE updated_at < ?").bind(now - CLAIM_KEEP_MS),
    db.prepare("INSERT INTO edge_provider_jobs (provider, request, state, updated_at) VALUES (?, ?, 'claimed', ?) ON CONFLICT DO NOTHING").bind(provider, request, now),
  ]);
  return (r?.meta.changes ?? 0) > 0;
}

/** Records the edge job (D1 `jobs`) that runs a claimed request. */
export async function recordRun(db: D1Database, provider: string, request: string, job: string): Promise<void> {
  await schema(db);
  await db.prepare("UPDATE edge_provider_jobs SET job = ?, updated_at = ? WHERE provider = ? AND request = ?").bind(job, Date.now(), provider, request).run();
}

/**
 * Moves a claimed request to its end state. Only one move wins: true means this caller may
 * publish the answer; false means it was cancelled (or answered) meanwhile.
 */
export async function settle(db: D1Database, provider: string, request: string, to: Exclude<JobState, "claimed">): Promise<boolean> {
  await schema(db);
  const r = await db.prepare("UPDATE edge_provider_jobs SET state = ?, updated_at = ? WHERE provider = ? AND request = ? AND state = 'claimed'")
    .bind(to, Date.now(), provider, request).run();
  return r.meta.changes > 0;
}

/**
 * The customer cancelled: a claimed request becomes cancelled, and one not yet claimed can never be
 * claimed. Answers the edge job of the run, when one was started.
 */
export async function cancelRequest(db: D1Database, provider: string, request: string): Promise<{ job: string | null } | null> {
  await schema(db);
  const now = Date.now();
  await db.prepare(
    `INSERT INTO edge_provider_jobs (provider, request, state, updated_at) VALUES (?, ?, 'cancelled', ?)
     ON CONFLICT (provider, request) DO UPDATE SET state = 'cancelled', updated_at = excluded.updated_at WHERE state = 'claimed'`,
  ).bind(provider, request, now).run();
  return db.prepare("SELECT job FROM edge_provider_jobs WHERE provider = ? AND request = ? AND state = 'cancelled'").bind(provider, request).first<{ job: string | null }>();
}

export async function jobState(db: D1Database, provider: string, request: string): Promise<{ state: JobState; job: string | null } | null> {
  await schema(db);
  return db.prepare("SELECT state, job FROM edge_provider_jobs WHERE provider = ? AND request = ?").bind(provider, request).first<{ state: JobState; job: string | null }>();
}
