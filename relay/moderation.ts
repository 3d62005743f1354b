// What the relay's operators decided (NIP-86): banned and allowed pubkeys, banned events, blocked
// client addresses, each with its reason, in the object's SQLite. Held in memory too, because the
// checks run on every message before anything else.

export interface Entry {
  /** A pubkey, an event id or an address, depending on the list. */
  key: string;
  reason: string;
}

export type ListName = "banned_pubkeys" | "allowed_pubkeys" | "banned_events" | "blocked_ips";

/** One change to a list (what a sharded relay passes to its other connection shards). */
export interface ModerationChange {
  list: ListName;
  key: string;
  /** null: removed from the list. */
  reason: string | null;
}
const LISTS: ListName[] = ["banned_pubkeys", "allowed_pubkeys", "banned_events", "blocked_ips"];

export class Moderation {
  private sql: SqlStorage;
  private lists = new Map<ListName, Map<string, string>>();
  /** Told of every change made through add/remove (not of those applied with `apply`). */
  onChange: ((c: ModerationChange) => void) | null = null;

  constructor(sql: SqlStorage) {
    this.sql = sql;
    sql.exec("CREATE TABLE IF NOT EXISTS moderation (list TEXT NOT NULL, key TEXT NOT NULL, reason TEXT NOT NULL, PRIMARY KEY (list, key))");
    for (const l of LISTS) this.lists.set(l, new Map());
    for (const r of sql.exec<{ list: ListName; key: string; reason: string }>("SELECT list, key, reason FROM moderation")) this.lists.get(r.list)?.set(r.key, r.reason);
  }

  add(list: ListName, key: string, reason: string): void {
    this.put(list, key, reason);
    this.onChange?.({ list, key, reason });
  }

  remove(list: ListName, key: string): boolean {
    const had = this.delete(list, key);
    this.onChange?.({ list, key, reason: null });
    return had;
  }

  /** Changes made elsewhere (another connection shard), applied here without telling onChange. */
  apply(changes: ModerationChange[]): void {
    for (const c of changes) {
      if (c.reason === null) this.delete(c.list, c.key);
      else this.put(c.list, c.key, c.reason);
    }
  }

  private put(list: ListName, key: string, reason: string): void {
    this.sql.exec(
      "INSERT INTO moderation (list, key, reason) VALUES (?, ?, ?) ON CONFLICT (list, key) DO UPDATE SET reason = excluded.reason",
      list,
      key,
      reason,
    );
    this.lists.get(list)!.set(key, reason);
  }

  private delete(list: ListName, key: string): boolean {
    this.sql.exec("DELETE FROM moderation WHERE list = ? AND key = ?", list, key);
    return this.lists.get(list)!.delete(key);
  }

  has(list: ListName, key: string): boolean {
    return this.lists.get(list)!.has(key);
  }

  entries(list: ListName): Entry[] {
    return [...this.lists.get(list)!].map(([key, reason]) => ({ key, reason }));
  }

  /** Why an event from `pubkey` with this id is refused, or null. An allow list, when not empty, admits only its pubkeys. */
  refusal(id: string, pubkey: string): string | null {
    if (this.has("banned_events", id)) return "blocked: this event is banned by the relay's operators";
    if (this.has("banned_pubkeys", pubkey)) return "blocked: this pubkey is banned by the relay's operators";
    const allowed = this.lists.get("allowed_pubkeys")!;
    if (allowed.size > 0 && !allowed.has(pubkey)) return "blocked: this relay only accepts events from pubkeys its operators allowed";
    return null;
  }
}
