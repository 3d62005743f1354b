// What this workspace's agents may be granted at the edge, and who they are on Nostr:
// - the cap policy the owner sets (edge/caps/policy.ts: a ceiling every run is checked against;
//   none set means the offline model only);
// - the agent identity: a Nostr key made for this workspace on first use (a policy that allows
//   nostr, or a run asking for it), sealed like a secret (seal.ts), opened only for a run's
//   /cap/nostr. Its pubkey is public (GET /w/NAME/caps). A fork is a new workspace and gets its
//   own identity; the key never leaves the edge.
// - the secrets (secrets.ts), set by the owner and opened for a run.
// Every change is audited (never a secret's value).
import { bytesToHex } from "@noble/hashes/utils.js";
import { npubEncode } from "nostr-tools/nip19";
import { generateSecretKey, getPublicKey } from "nostr-tools/pure";
import { admit, NO_POLICY, type Budgets, type CapPolicy, type RunCaps } from "../caps/policy.ts";
import type { AuditOutbox } from "./audit.ts";
import type { Meta } from "./meta.ts";
import { seal, sealKey, unseal } from "./seal.ts";
import type { SecretInfo, SecretStore } from "./secrets.ts";
import { fail } from "./reply.ts";

export const CAP_TABLES = `
CREATE TABLE IF NOT EXISTS cap_policy(id INTEGER PRIMARY KEY CHECK (id = 1), policy TEXT NOT NULL, updated INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS agent_identity(id INTEGER PRIMARY KEY CHECK (id = 1), pubkey TEXT NOT NULL, iv BLOB NOT NULL, ct BLOB NOT NULL, created INTEGER NOT NULL);
`;

/** The cap policy as its owner sees it, with the agents' Nostr identity (null until first made). */
export interface CapsView { policy: CapPolicy; set: boolean; identity: { pubkey: string; npub: string } | null }

/** What a run's /cap/* needs from this workspace: its budgets, the secrets, the agents' key. */
export interface CapsMaterial {
  budgets: Budgets;
  secrets: Record<string, { value: string; hosts: string[] }>;
  nostrKey?: string;
  /** The secret `caps.nostr.wallet` names, opened. */
  wallet?: { value: string; hosts: string[] };
}

const aad = (ws: string): string => `oanix/agent-identity\0${ws}`;

export class Caps {
  readonly #storage: DurableObjectStorage;
  readonly #sql: SqlStorage;
  readonly #meta: Meta;
  readonly #audit: AuditOutbox;
  readonly #secrets: SecretStore;
  readonly #sealingKey: string | undefined;

  constructor(storage: DurableObjectStorage, meta: Meta, audit: AuditOutbox, secrets: SecretStore, sealingKey: string | undefined) {
    this.#storage = storage;
    this.#sql = storage.sql;
    this.#meta = meta;
    this.#audit = audit;
    this.#secrets = secrets;
    this.#sealingKey = sealingKey;
  }

  get policy(): CapPolicy {
    const r = this.#sql.exec<{ policy: string }>("SELECT policy FROM cap_policy WHERE id = 1").toArray()[0];
    return r ? (JSON.parse(r.policy) as CapPolicy) : NO_POLICY;
  }

  view(): CapsView {
    const pubkey = this.#pubkey();
    const set = this.#sql.exec("SELECT 1 FROM cap_policy WHERE id = 1").toArray().length > 0;
    return { policy: this.policy, set, identity: pubkey ? { pubkey, npub: npubEncode(pubkey) } : null };
  }

  /** Sets the policy; one that allows nostr makes the identity now, so its pubkey is known before any run. */
  async setPolicy(actor: string, policy: CapPolicy): Promise<CapsView> {
    if (policy.nostr && !this.#pubkey()) await this.#secretKey(await this.#key());
    this.#storage.transactionSync(() => {
      this.#sql.exec("INSERT OR REPLACE INTO cap_policy VALUES(1, ?, ?)", JSON.stringify(policy), Date.now());
      this.#audit.append(actor, "caps", policy);
    });
    return this.view();
  }

  /** Seals and stores a secret; answers its name and hosts, never its value. */
  async putSecret(actor: string, name: string, value: string, hosts: string[]): Promise<SecretInfo> {
    const write = await this.#secrets.put(await this.#key(), this.#meta.name, name, value, hosts);
    return this.#storage.transactionSync(() => {
      const info = write();
      this.#audit.append(actor, "secret.put", { name, hosts });
      return info;
    });
  }

  /** One secret, opened (ENOENT when there is none by that name). */
  async openSecret(name: string): Promise<{ value: string; hosts: string[] }> {
    const s = (await this.#secrets.open(await this.#key(), this.#meta.name, name))[name];
    return s ?? fail("ENOENT", `no secret named ${name}`);
  }

  listSecrets(): SecretInfo[] {
    return this.#secrets.list();
  }

  deleteSecret(actor: string, name: string): void {
    this.#storage.transactionSync(() => {
      this.#secrets.delete(name);
      this.#audit.append(actor, "secret.delete", { name });
    });
  }

  /** A run's caps checked against the policy: the budgets it gets, or EACCES naming what is refused. */
  admit(caps: RunCaps, budgets: Budgets): Budgets {
    return admit(this.policy, caps, budgets, this.#meta.name);
  }

  /** For a run: the policy checked again, the secrets (when a capability could send one) and the key opened. */
  async open(caps: RunCaps, budgets: Budgets): Promise<CapsMaterial> {
    const out: CapsMaterial = { budgets: this.admit(caps, budgets), secrets: {} };
    const sends = !!(caps.http?.length || caps.ws?.length || caps.llm?.startsWith("openai:"));
    if (!caps.nostr && !(sends && this.#secrets.list().length)) return out;
    const key = await this.#key();
    if (sends) out.secrets = await this.#secrets.open(key, this.#meta.name);
    if (caps.nostr) out.nostrKey = await this.#secretKey(key);
    if (caps.nostr?.wallet) out.wallet = await this.openSecret(caps.nostr.wallet);
    return out;
  }

  #key(): Promise<CryptoKey> {
    return sealKey(this.#sealingKey);
  }

  #pubkey(): string | null {
    const r = this.#sql.exec<{ pubkey: string }>("SELECT pubkey FROM agent_identity WHERE id = 1").toArray()[0];
    return r ? r.pubkey : null;
  }

  /** The identity's secret key (hex), made and sealed on first use. */
  async #secretKey(key: CryptoKey): Promise<string> {
    const ws = this.#meta.name;
    const r = this.#sql.exec("SELECT iv, ct FROM agent_identity WHERE id = 1").toArray()[0];
    if (r) return unseal(key, { iv: new Uint8Array(r.iv as ArrayBuffer), ct: new Uint8Array(r.ct as ArrayBuffer) }, aad(ws), "the agent identity");
    const sk = generateSecretKey();
    const s = await seal(key, bytesToHex(sk), aad(ws));
    // Another request may have made one while this one sealed: the first one stays.
    if (this.#pubkey()) return this.#secretKey(key);
    this.#sql.exec("INSERT INTO agent_identity VALUES(1, ?, ?, ?, ?)", getPublicKey(sk), s.iv, s.ct, Date.now());
    return bytesToHex(sk);
  }
}
