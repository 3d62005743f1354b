// The workspace's secrets: values its agents use in requests ("$secret:NAME" in a header, put in
// on the way out only to the hosts the secret is bound to: services/cap/secrets.ts) and never
// read. Each value is sealed (seal.ts: AES-GCM, the workspace and secret names as additional
// data) before it reaches SQLite; the owner sets, lists (names and hosts) and deletes them, and
// only the edge runner opens them, for a run.
import { fail } from "./reply.ts";
import { seal, unseal } from "./seal.ts";

export const SECRET_TABLES = `
CREATE TABLE IF NOT EXISTS secrets(name TEXT PRIMARY KEY, hosts TEXT NOT NULL, iv BLOB NOT NULL, ct BLOB NOT NULL, updated INTEGER NOT NULL);
`;

export const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;
export const MAX_SECRET_BYTES = 8192;
export const MAX_SECRETS = 100;

export interface SecretInfo { name: string; hosts: string[]; updated: number }

const aad = (ws: string, name: string): string => `oanix/secret\0${ws}\0${name}`;
const bytes = (v: SqlStorageValue): Uint8Array => new Uint8Array(v as ArrayBuffer);

export class SecretStore {
  readonly #sql: SqlStorage;
  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  /** Seals the value (async, before any write), then stores it in place of any old one. */
  async put(key: CryptoKey, ws: string, name: string, value: string, hosts: string[]): Promise<() => SecretInfo> {
    if (!SECRET_NAME.test(name)) fail("EINVAL", `secret name "${name.slice(0, 80)}": 1-64 of letters, digits, _ . - (not starting with a digit, . or -)`);
    if (!value) fail("EINVAL", `secret ${name}: the value is empty`);
    if (new TextEncoder().encode(value).length > MAX_SECRET_BYTES) fail("EFBIG", `secret ${name}: the value is over ${MAX_SECRET_BYTES} bytes`);
    const s = await seal(key, value, aad(ws, name));
    // The write itself is synchronous, to run inside the caller's transaction.
    return () => {
      const exists = this.#sql.exec("SELECT 1 FROM secrets WHERE name = ?", name).toArray().length > 0;
      if (!exists && this.#sql.exec<{ n: number }>("SELECT count(*) AS n FROM secrets").one().n >= MAX_SECRETS) fail("ENOSPC", `at most ${MAX_SECRETS} secrets per workspace`);
      const updated = Date.now();
      this.#sql.exec("INSERT OR REPLACE INTO secrets VALUES(?, ?, ?, ?, ?)", name, JSON.stringify(hosts), s.iv, s.ct, updated);
      return { name, hosts, updated };
    };
  }

  list(): SecretInfo[] {
    return this.#sql.exec("SELECT name, hosts, updated FROM secrets ORDER BY name").toArray().map((r) => ({
      name: r.name as string, hosts: JSON.parse(r.hosts as string) as string[], updated: r.updated as number,
    }));
  }

  delete(name: string): void {
    if (!this.#sql.exec("SELECT 1 FROM secrets WHERE name = ?", name).toArray().length) fail("ENOENT", `no secret named ${name}`);
    this.#sql.exec("DELETE FROM secrets WHERE name = ?", name);
  }

  /** Every secret, or the one named, opened (for a run's /cap/* and an edge provider's wallet only). */
  async open(key: CryptoKey, ws: string, only?: string): Promise<Record<string, { value: string; hosts: string[] }>> {
    const out: Record<string, { value: string; hosts: string[] }> = {};
    const rows = only === undefined ? this.#sql.exec("SELECT name, hosts, iv, ct FROM secrets") : this.#sql.exec("SELECT name, hosts, iv, ct FROM secrets WHERE name = ?", only);
    for (const r of rows.toArray()) {
      const name = r.name as string;
      out[name] = { value: await unseal(key, { iv: bytes(r.iv!), ct: bytes(r.ct!) }, aad(ws, name), `secret ${name}`), hosts: JSON.parse(r.hosts as string) as string[] };
    }
    return out;
  }
}
