// The namespace registry (this object is `@agent:<id>`): an agent id maps to its mounts. The
// entry is kept in meta here (the authority) and in KV (`reg:<id>`) for fast reads.
import type { AuditOutbox } from "./audit.ts";
import type { Meta } from "./meta.ts";

export const registryKey = (agent: string): string => `reg:${agent}`;

export class Registry {
  readonly #meta: Meta;
  readonly #audit: AuditOutbox;
  constructor(meta: Meta, audit: AuditOutbox) {
    this.#meta = meta;
    this.#audit = audit;
  }

  put(actor: string, agent: string, json: string): void {
    this.#meta.set("registry", json);
    this.#audit.append(actor, "register", { agent });
  }
}
