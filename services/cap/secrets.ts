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

  #needles(): { value: Uint8Array; ref: Uint8Array }[] {
    const enc = new TextEncoder();
    return [...this.#items].map(([name, s]) => ({ value: enc.encode(s.value), ref: enc.encode(`$secret:${name}`) }));
  }

  /** The bytes with every secret value replaced by its reference (for bodies that are not text). */
  scrubBytes(b: Uint8Array): Uint8Array {
    if (this.#items.size === 0) return b;
    const s = this.scrubber();
    const head = s.push(b);
    const tail = s.end();
    return join(head, tail);
  }

  /**
   * A scrubber for a byte stream: push() answers what is safe to pass on, holding back the bytes
   * that could be the start of a secret cut by a chunk boundary; end() answers the rest.
   */
  scrubber(): { push(b: Uint8Array): Uint8Array; end(): Uint8Array } {
    const needles = this.#needles();
    const keep = Math.max(0, ...needles.map((n) => n.value.length - 1));
    let carry = new Uint8Array(0);
    const run = (data: Uint8Array, final: boolean): Uint8Array => {
      const safe = final ? data.length : data.length - keep;
      const out: Uint8Array[] = [];
      let from = 0;
      let p = 0;
      while (p < safe) {
        // The next place any needle could start: the nearest of their first bytes.
        let next = -1;
        for (const n of needles) {
          const at = data.indexOf(n.value[0]!, p);
          if (at >= 0 && (next < 0 || at < next)) next = at;
        }
        if (next < 0 || next >= safe) {
          p = safe;
          break;
        }
        const hit = needles.find((n) => n.value.every((x, i) => data[next + i] === x));
        if (hit) {
          out.push(data.subarray(from, next), hit.ref);
          p = from = next + hit.value.length;
        } else p = next + 1;
      }
      out.push(data.subarray(from, Math.max(from, p)));
      carry = data.slice(Math.max(from, p));
      return join(...out);
    };
    return {
      push: (b) => (needles.length ? run(join(carry, b), false) : b),
      end: () => (needles.length ? run(carry, true) : new Uint8Array(0)),
    };
  }
}

function join(...parts: Uint8Array[]): Uint8Array {
  const live = parts.filter((x) => x.length);
  if (live.length === 1) return live[0]!;
  const out = new Uint8Array(live.reduce((n, x) => n + x.length, 0));
  let o = 0;
  for (const x of live) {
    out.set(x, o);
    o += x.length;
  }
  return out;
}

export const noSecrets = new Secrets();
