// The edge provider on the relay: its registration (a job kind bound to the `oanix-provider`
// handler, relay/nip90.ts) and its NIP-89 announcement, added and withdrawn together.
// Providers from wrangler.toml are registered by `ensureConfigured`, which the Worker calls on every
// relay connection (one RPC: a registration missing from the relay is added and announced);
// providers from the admin route are registered when they are added.
import { finalizeEvent } from "nostr-tools/pure";
import { relayStub } from "../../relay/http.ts";
import type { NostrEvent } from "../../relay/event.ts";
import type { AgentRegistration } from "../../relay/nip90.ts";
import { DELETION, HANDLER_INFO, announcement, type Template } from "../../agents/host/answers.ts";
import { configured, type ProviderConfig, type ProviderEnv } from "./config.ts";
import { masterKey, providerKey, type ProviderKey } from "./keys.ts";

/** The name the handler is defined under (defineEdgeAgent) and registrations name. */
export const HANDLER = "oanix-provider";

export const now = (): number => Math.floor(Date.now() / 1000);

export function signWith(key: ProviderKey, t: Template): NostrEvent {
  return finalizeEvent({ ...t, created_at: now() }, key.secretKey) as NostrEvent;
}

export function announcementOf(key: ProviderKey, p: ProviderConfig): NostrEvent {
  const about = p.about ?? `OANIX edge agent ${p.program}, serving kind ${p.kind} in a sandbox`;
  return signWith(key, announcement({ name: p.name, about, kinds: [p.kind], encryptionSupported: true }));
}

const registrationOf = (p: ProviderConfig, key: ProviderKey): AgentRegistration => ({ kind: p.kind, agent: p.name, handler: HANDLER, pubkey: key.pubkey });

/** Registers `p` with the relay and announces it (replacing an earlier registration of the name). */
export async function register(env: ProviderEnv, master: Uint8Array, p: ProviderConfig): Promise<ProviderKey> {
  const relay = relayStub(env.RELAY);
  const key = providerKey(master, p.name);
  // One registration per name: a provider that changed its kind leaves the old one.
  for (const r of await relay.listAgents()) if (r.handler === HANDLER && r.agent === p.name && r.kind !== p.kind) await withdraw(env, master, r);
  const reg = await relay.registerAgent(registrationOf(p, key));
  if (!reg.ok) throw new Error(reg.error);
  const a = await relay.publish(announcementOf(key, p));
  if (!a.ok) console.error(`edge provider ${p.name}: announcement refused: ${a.message}`);
  return key;
}

/** Unregisters a provider's kind and deletes its announcement (NIP-09, by its `a` address). */
export async function withdraw(env: ProviderEnv, master: Uint8Array, reg: Pick<AgentRegistration, "kind" | "agent">): Promise<void> {
  const relay = relayStub(env.RELAY);
  await relay.unregisterAgent(reg.kind, reg.agent);
  const key = providerKey(master, reg.agent);
  const del = await relay.publish(signWith(key, { kind: DELETION, tags: [["a", `${HANDLER_INFO}:${key.pubkey}:oanix-${reg.agent}`], ["k", String(HANDLER_INFO)]], content: "provider removed" }));
  if (!del.ok) console.error(`edge provider ${reg.agent}: withdrawal refused: ${del.message}`);
}

/**
 * Registers every wrangler.toml provider the relay does not have yet (or has with another kind or
 * key). Registrations of providers since removed from wrangler.toml are withdrawn by the handler
 * when a job reaches one (handler.ts), so this costs one RPC when nothing changed.
 */
export async function ensureConfigured(env: ProviderEnv): Promise<void> {
  const master = masterKey(env);
  const want = configured(env);
  if (!master || !want.length) return;
  const have = await relayStub(env.RELAY).listAgents();
  for (const p of want) {
    const key = providerKey(master, p.name);
    if (have.some((r) => r.handler === HANDLER && r.agent === p.name && r.kind === p.kind && r.pubkey === key.pubkey)) continue;
    await register(env, master, p);
  }
}
