// The `meta` table: one row per setting of this workspace (name, owner, counters, audit head).
export const META_TABLES = `
CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v);
`;

export class Meta {
  readonly #sql: SqlStorage;
  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  get(k: string): string | number | null {
    const r = this.#sql.exec<{ v: string | number | null }>("SELECT v FROM meta WHERE k = ?", k).toArray()[0];
    return r ? r.v : null;
  }

  set(k: string, v: string | number): void {
    this.#sql.exec("INSERT INTO meta(k, v) VALUES(?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v", k, v);
  }

  get owner(): string | null {
    return this.get("owner") as string | null;
  }

  get name(): string {
    return (this.get("name") as string | null) ?? "?";
  }

  /** The current version (every committed change is one). */
  get version(): number {
    return (this.get("version") as number | null) ?? 0;
  }

  nextVersion(): number {
    const v = this.version + 1;
    this.set("version", v);
    return v;
  }

  newIno(): number {
    const i = (this.get("ino") as number) + 1;
    this.set("ino", i);
    return i;
  }
}
