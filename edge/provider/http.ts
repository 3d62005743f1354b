// The admin route of edge providers (NIP-98 signed, like every edge route):
//   GET    /api/providers        the providers you own (ADMIN_PUBKEYS: every provider, wrangler.toml's too)
//   POST   /api/providers        {name, kind, program, workspace, price?, wallet?, paymentTimeoutMs?,
//                                 chainTimeoutMs?, about?, timeoutMs?, memoryMb?, caps?, budgets?, origin?}
//                                → 201 (200 when replaced) {name, ..., pubkey, npub, source}
//   DELETE /api/providers/NAME   → {removed: NAME}
// Who may: a provider runs its program over a workspace with the rights of the workspace's owner,
// so only that owner adds one (a relay admin adding one over someone else's workspace would be
// acting with their rights). The owner, or an ADMIN_PUBKEYS key (to stop abuse), removes one. A
// name stays with the key that first used it; names from wrangler.toml belong to the operator.
// Caps beyond the workspace's cap policy are refused here (403 EACCES naming them), and checked
// again at every job (job.ts): the owner may narrow the policy later. A wallet names a workspace
// secret that must hold a wallet connect URI bound to its relay's host (checked here and at each job).
// The provider's Nostr key is never in a reply, only its pubkey (keys.ts).
import { Hono } from "hono";
import { npubEncode } from "nostr-tools/nip19";
import { FsError } from "../../runtime/errors.ts";
import { AuthError, type Cred, type Principal } from "../auth.ts";
import { llmProvider } from "../caps/policy.ts";
import { unwrap } from "../errors.ts";
import { authFor, body, credOf, jsonOf, keyStub, stubOf, type AppEnv, type C } from "../http/request.ts";
import { checkProvider, configured, type ProviderConfig, type ProviderEnv } from "./config.ts";
import { masterKey, providerKey } from "./keys.ts";
import { register, withdraw } from "./relay.ts";
import { putProvider, removeProvider, storedProvider, storedProviders } from "./store.ts";
import { BadRequest } from "../../agents/host/spec.ts";
import { openWallet } from "./payment.ts";
import { Provided } from "./run.ts";

export const providers = new Hono<AppEnv>();

const envOf = (c: C): ProviderEnv => c.env as ProviderEnv;

/** The signing key of a NIP-98 request (tokens do not manage providers); its nonce is recorded once. */
async function signer(c: C): Promise<string> {
  const cred = await credOf(c);
  if (cred.type !== "key") throw new AuthError(403, "providers are managed with a key (NIP-98), not a token");
  unwrap(await keyStub(c.env, cred.pubkey).touch(cred));
  return (cred as Extract<Cred, { type: "key" }>).pubkey;
}

const isAdmin = (env: ProviderEnv, pubkey: string): boolean => (env.ADMIN_PUBKEYS ?? "").split(/[\s,]+/).includes(pubkey);

function master(env: ProviderEnv): Uint8Array {
  const m = masterKey(env);
  if (!m) throw new FsError("ENOTSUP", "edge providers are off: set the PROVIDER_KEY secret (64 hex digits; wrangler secret put PROVIDER_KEY)");
  return m;
}

function view(env: ProviderEnv, p: ProviderConfig, source: "config" | "admin") {
  const m = masterKey(env);
  const pubkey = m ? providerKey(m, p.name).pubkey : null;
  return { ...p, source, pubkey, npub: pubkey ? npubEncode(pubkey) : null };
}

providers.get("/", async (c) => {
  const env = envOf(c);
  const me = await signer(c);
  const admin = isAdmin(env, me);
  const stored = await storedProviders(env.DB, admin ? undefined : me);
  return c.json({
    enabled: masterKey(env) !== null,
    providers: [...(admin ? configured(env).map((p) => view(env, p, "config")) : []), ...stored.map((p) => view(env, p, "admin"))],
  });
});

providers.post("/", body(16 * 1024), async (c) => {
  const env = envOf(c);
  const p = checkProvider(withOrigin(jsonOf(c), new URL(c.req.url).origin));
  const cred = await credOf(c);
  if (cred.type !== "key") throw new AuthError(403, "providers are managed with a key (NIP-98), not a token");
  // The workspace object checks the signature's nonce and who the signer is there.
  const { principal } = await authFor(c, p.workspace, cred, true);
  if (principal.kind !== "owner") throw new AuthError(403, `only the owner of workspace ${p.workspace} may serve jobs over it`);
  const owner = principal.pubkey;
  if (p.owner !== undefined && p.owner !== owner) throw new FsError("EINVAL", "owner, when given, is the signer (the workspace's owner)");
  await admitCaps(c, p, principal);
  await admitWallet(env, p, owner);
  const m = master(env);
  if (configured(env).some((x) => x.name === p.name)) throw new FsError("EEXIST", `provider ${p.name} is configured in wrangler.toml`);
  const before = await storedProvider(env.DB, p.name);
  if (!(await putProvider(env.DB, owner, p))) throw new AuthError(403, `provider name ${p.name} belongs to another key`);
  const saved = { ...p, owner };
  try {
    await register(env, m, saved);
  } catch (e) {
    // Not served: the stored row goes back to what it was, so the list never shows a provider the relay does not have.
    if (before?.config) await putProvider(env.DB, owner, before.config);
    else await removeProvider(env.DB, p.name);
    throw e;
  }
  return c.json(view(env, saved, "admin"), before?.config ? 200 : 201);
});

/** A provider granted nostr, or with a wallet, names the edge's relay: by default, the edge as this request reached it. */
function withOrigin(raw: unknown, origin: string): unknown {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return raw;
  const o = raw as Record<string, unknown>;
  const nostr = typeof o.caps === "object" && o.caps !== null && (o.caps as Record<string, unknown>).nostr;
  return (nostr || o.wallet !== undefined) && o.origin === undefined ? { ...o, origin } : o;
}

/** The wallet secret is there, holds a wallet connect URI, and is bound to the wallet relay's host. */
async function admitWallet(env: ProviderEnv, p: ProviderConfig, owner: string): Promise<void> {
  if (!p.wallet) return;
  try {
    (await openWallet(new Provided(env, p, owner))).close();
  } catch (e) {
    if (e instanceof BadRequest) throw new FsError("EINVAL", e.message.replace(/^provider error: /, ""));
    throw e;
  }
}

/** The provider's caps against its workspace's cap policy, now (each job is checked again): EACCES naming what is refused. */
async function admitCaps(c: C, p: ProviderConfig, principal: Principal): Promise<void> {
  if (!p.caps && !p.budgets) return;
  if (p.caps?.llm && llmProvider(p.caps.llm) === "workers-ai" && !c.env.AI) throw new FsError("ENOTSUP", "llm workers-ai: this edge has no AI binding (wrangler.toml [ai] binding = \"AI\")");
  unwrap(await stubOf(c.env, p.workspace).capsAdmit({ type: "internal", principal }, p.caps ?? {}, p.budgets ?? {}));
}

providers.delete("/:name", async (c) => {
  const env = envOf(c);
  const name = c.req.param("name");
  const me = await signer(c);
  if (configured(env).some((x) => x.name === name)) throw new AuthError(403, `provider ${name} is configured in wrangler.toml; remove it there`);
  const stored = await storedProvider(env.DB, name);
  if (!stored?.config) throw new FsError("ENOENT", `no provider ${name}`);
  if (stored.owner !== me && !isAdmin(env, me)) throw new AuthError(403, `provider ${name} belongs to another key`);
  await removeProvider(env.DB, name);
  const m = masterKey(env);
  if (m) await withdraw(env, m, { kind: stored.config.kind, agent: name });
  return c.json({ removed: name });
});
