// Secrets an agent uses but never reads. A header value may name one as "$secret:NAME"; the host
// puts the value in on the way out, and only when the request goes to a host the secret is bound
// to (the same patterns as host grants; a secret with no hosts binds to nothing). The value never
// comes back: `scrub` replaces it in replies, logs and errors with the reference.
import { fsError } from "../../runtime/errors.ts";
import { parseHosts, portOf, type HostPattern } from "./hosts.ts";

export interface Secret {
  value: string;
  /** Host patterns the secret may be sent to. */
  hosts: string[];
}

const REF = /\$secret:([A-Za-z_][A-Za-z0-9_.-]*)/g;

export class Secrets {
  readonly #items = new Map<string, { value: string; hosts: HostPattern[] }>();

  constructor(items: Record<string, Secret> = {}) {
    for (const [name, s] of Object.entries(items)) this.set(name, s);
  }

  set(name: string, s: Secret): void {
    if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(name)) throw fsError("EINVAL", `secret name "${name}": letters, digits, _ . -`);
    if (!s.value) throw fsError("EINVAL", `secret ${name}: empty value`);
    this.#items.set(name, { value: s.value, hosts: parseHosts(s.hosts) });
  }

  get size(): number {
    return this.#items.size;
  }

  /**
   * Headers with every "$secret:NAME" replaced for a request to `url`. EACCES when a named secret
   * does not exist or is not bound to the URL's host (the reason names the secret, never its value).
   */
  substitute(headers: Record<string, string>, url: URL): Record<string, string> {
    const out: Record<string, string> = {};
    const host = url.hostname;
    const port = portOf(url);
    for (const [k, v] of Object.entries(headers)) {
      out[k] = v.replace(REF, (_, name: string) => {
        const s = this.#items.get(name);
        if (!s) throw fsError("EACCES", `no secret named ${name}`);
        const bound = s.hosts.some((p) =>
          (p.port === undefined || p.port === port) &&
          (p.wildcard === "any" || (p.wildcard === "subdomains" ? host.endsWith("." + p.host) : p.host === host)));
        if (!bound) throw fsError("EACCES", `secret ${name} is not bound to ${host}:${port}`);
        return s.value;
      });
    }
    return out;
  }

  /** The text with every secret value replaced by its reference. */
  scrub = (text: string): string => {
    if (this.#items.size === 0) return text;
    for (const [name, s] of this.#items) if (text.includes(s.value)) text = text.split(s.value).join(`$secret:${name}`);
    return text;
  };

  /** Whether bytes hold any secret value (for binary replies, which cannot be rewritten safely). */
  longest(): number {
    let n = 0;
    for (const s of this.#items.values()) n = Math.max(n, new TextEncoder().encode(s.value).length);
    return n;
  }
}

export const noSecrets = new Secrets();
