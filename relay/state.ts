// Relay state besides events: what each socket carries in its attachment (id, NIP-42 state and,
// while they fit in its 2 KB, its subscriptions), and in the same SQLite the subscriptions that
// outgrew the attachment, edge-agent registrations, and configuration overrides.
import type { Filter } from "./filter.ts";
import type { AgentRegistration } from "./nip90.ts";

/** What each hibernatable socket carries in its attachment. */
export interface Attachment {
  /** Connection id (the key of its subscriptions). */
  id: string;
  /** NIP-42 challenge for this connection. */
  challenge: string;
  /** Pubkeys authenticated on this connection. */
  authed: string[];
  /** host + path of the relay URL the client connected to (for the NIP-42 relay tag). */
  url: string;
  /** The client's address (CF-Connecting-IP), for the per-address limits; absent inside the Worker. */
  ip?: string;
  /** The socket's subscriptions, while they fit in the attachment. */
  subs?: Array<[string, Filter[]]>;
  /** Set once the subscriptions outgrew the attachment: they are rows of `subs` in SQLite. */
  subsInSql?: boolean;
}

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS subs (
     conn TEXT NOT NULL,
     sub TEXT NOT NULL,
     filters TEXT NOT NULL,
     PRIMARY KEY (conn, sub))`,
  `CREATE TABLE IF NOT EXISTS agents (
     kind INTEGER NOT NULL,
     agent TEXT NOT NULL,
     handler TEXT NOT NULL,
     pubkey TEXT,
     PRIMARY KEY (kind, agent))`,
  `CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
];

export class RelayState {
  private sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.sql = sql;
    for (const stmt of SCHEMA) this.sql.exec(stmt);
  }

  putSub(conn: string, sub: string, filters: Filter[]): void {
    this.sql.exec(
      "INSERT INTO subs (conn, sub, filters) VALUES (?, ?, ?) ON CONFLICT (conn, sub) DO UPDATE SET filters = excluded.filters",
      conn,
      sub,
      JSON.stringify(filters),
    );
  }

  deleteSub(conn: string, sub: string): void {
    this.sql.exec("DELETE FROM subs WHERE conn = ? AND sub = ?", conn, sub);
  }

  deleteConn(conn: string): void {
    this.sql.exec("DELETE FROM subs WHERE conn = ?", conn);
  }

  /** All subscriptions, grouped by connection. */
  loadSubs(): Map<string, Map<string, Filter[]>> {
    const out = new Map<string, Map<string, Filter[]>>();
    for (const row of this.sql.exec<{ conn: string; sub: string; filters: string }>("SELECT conn, sub, filters FROM subs")) {
      let m = out.get(row.conn);
      if (m === undefined) out.set(row.conn, (m = new Map()));
      m.set(row.sub, JSON.parse(row.filters) as Filter[]);
    }
    return out;
  }

  putAgent(r: AgentRegistration): void {
    this.sql.exec(
      "INSERT INTO agents (kind, agent, handler, pubkey) VALUES (?, ?, ?, ?) ON CONFLICT (kind, agent) DO UPDATE SET handler = excluded.handler, pubkey = excluded.pubkey",
      r.kind,
      r.agent,
      r.handler,
      r.pubkey ?? null,
    );
  }

  deleteAgent(kind: number, agent: string): boolean {
    return this.sql.exec("DELETE FROM agents WHERE kind = ? AND agent = ?", kind, agent).rowsWritten > 0;
  }

  agents(kind?: number): AgentRegistration[] {
    const rows =
      kind === undefined
        ? this.sql.exec<{ kind: number; agent: string; handler: string; pubkey: string | null }>("SELECT * FROM agents ORDER BY kind, agent")
        : this.sql.exec<{ kind: number; agent: string; handler: string; pubkey: string | null }>(
            "SELECT * FROM agents WHERE kind = ? ORDER BY agent",
            kind,
          );
    return rows.toArray().map((r) => (r.pubkey === null ? { kind: r.kind, agent: r.agent, handler: r.handler } : { kind: r.kind, agent: r.agent, handler: r.handler, pubkey: r.pubkey }));
  }

  getSetting(key: string): string | undefined {
    const rows = this.sql.exec<{ value: string }>("SELECT value FROM settings WHERE key = ?", key).toArray();
    return rows[0]?.value;
  }

  putSetting(key: string, value: string): void {
    this.sql.exec("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", key, value);
  }
}
