// Host grants: which hosts a capability may reach. A grant is a list of patterns:
//   example.com        that host, any port
//   example.com:8443   that host and port only
//   *.example.com      any subdomain (not example.com itself)
//   *                  any public host
// Loopback, private, link-local and other non-public addresses are refused unless the grant
// names the URL's exact host:port. A host is judged by its addresses, not its spelling: IP
// literals in every form the URL parser accepts (0x7f.1, [::ffff:127.0.0.1]) are normalised
// first, and a DNS name is resolved (through an injectable resolver) and refused if any of its
// addresses is non-public. Credentials in a URL (user:pass@) are refused outright.
import { fsError } from "../../runtime/errors.ts";

export interface HostPattern {
  /** Lower-case host ("example.com", "[::1]", "127.0.0.1"); for wildcards, the suffix after "*.". */
  host: string;
  port?: number;
  wildcard: "none" | "subdomains" | "any";
}

export type Resolver = (host: string) => Promise<string[]>;

export interface HostGrant {
  patterns: HostPattern[];
  /** Resolves DNS names to addresses; absent: names are judged by their spelling only (edge). */
  resolve?: Resolver;
}

/** Parses "a.com,*.b.org,127.0.0.1:8080" (commas or spaces). EINVAL for a malformed pattern. */
export function parseHosts(list: string | string[]): HostPattern[] {
  const items = (Array.isArray(list) ? list : list.split(/[\s,]+/)).map((s) => s.trim()).filter(Boolean);
  return items.map(parsePattern);
}

export function parsePattern(raw: string): HostPattern {
  const s = raw.toLowerCase();
  if (s === "*") return { host: "", wildcard: "any" };
  const sub = s.startsWith("*.");
  const body = sub ? s.slice(2) : s;
  let u: URL;
  try {
    u = new URL(`http://${body}`);
  } catch {
    throw fsError("EINVAL", `host pattern "${raw}": not a host or host:port`);
  }
  if (u.username || u.password || u.pathname !== "/" || u.search || u.hash || body.includes("*") || body.includes("@"))
    throw fsError("EINVAL", `host pattern "${raw}": only host, host:port, *.domain or *`);
  const hasPort = /:\d+$/.test(body);
  const port = hasPort ? Number(body.slice(body.lastIndexOf(":") + 1)) : undefined;
  if (port !== undefined && (port < 1 || port > 65535)) throw fsError("EINVAL", `host pattern "${raw}": bad port`);
  if (sub && (ipKind(u.hostname) !== "name" || hasPort)) throw fsError("EINVAL", `host pattern "${raw}": a wildcard takes a domain name, no port`);
  return { host: u.hostname, port, wildcard: sub ? "subdomains" : "none" };
}

const DEFAULT_PORT: Record<string, number> = { "http:": 80, "https:": 443, "ws:": 80, "wss:": 443 };

/** The URL's port, the scheme's default when absent. */
export const portOf = (u: URL): number => (u.port ? Number(u.port) : DEFAULT_PORT[u.protocol] ?? 0);

function matches(p: HostPattern, host: string, port: number): boolean {
  if (p.port !== undefined && p.port !== port) return false;
  if (p.wildcard === "any") return true;
  if (p.wildcard === "subdomains") return host.endsWith("." + p.host) && ipKind(host) === "name";
  return p.host === host;
}

/** True when the grant names this exact host and port (what a non-public address needs). */
const exact = (g: HostGrant, host: string, port: number): boolean =>
  g.patterns.some((p) => p.wildcard === "none" && p.host === host && p.port === port);

/**
 * Checks a URL against a grant: EINVAL for a URL that is not one of `schemes` or carries
 * credentials, EACCES for a host outside the grant or a non-public address not listed exactly.
 * Answers the parsed URL.
 */
export async function checkUrl(raw: string, g: HostGrant, schemes: string[]): Promise<URL> {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw fsError("EINVAL", `"${raw.slice(0, 200)}" is not a URL`);
  }
  if (!schemes.includes(u.protocol)) throw fsError("EINVAL", `${u.protocol} URLs are not allowed here (${schemes.join(" ")})`);
  if (u.username || u.password) throw fsError("EINVAL", "credentials in a URL (user@host) are not allowed: use a header");
  const host = u.hostname;
  const port = portOf(u);
  const where = `${host}:${port}`;
  if (!g.patterns.some((p) => matches(p, host, port))) throw fsError("EACCES", `${where} is not in the grant`);
  if (exact(g, host, port)) return u;
  const kind = ipKind(host);
  if (kind !== "name") {
    if (!isPublic(host)) throw fsError("EACCES", `${where} is a non-public address; grant it by exact host:port`);
    return u;
  }
  if (host === "localhost" || host.endsWith(".localhost")) throw fsError("EACCES", `${where} is loopback; grant it by exact host:port`);
  if (g.resolve) {
    let addrs: string[];
    try {
      addrs = await g.resolve(host);
    } catch (e) {
      throw fsError("ECONNREFUSED", `cannot resolve ${host}: ${(e as Error).message}`);
    }
    const bad = addrs.find((a) => !isPublic(a.includes(":") ? `[${a}]` : a));
    if (bad !== undefined) throw fsError("EACCES", `${host} resolves to the non-public address ${bad}; grant it by exact host:port`);
  }
  return u;
}

/** "v4", "v6" (bracketed, as URL.hostname gives it) or "name". */
export function ipKind(host: string): "v4" | "v6" | "name" {
  if (host.startsWith("[")) return "v6";
  if (/^\d+\.\d+\.\d+\.\d+$/.test(host)) return "v4";
  return "name";
}

function v4(host: string): number[] | null {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(host);
  if (!m) return null;
  const b = m.slice(1).map(Number);
  return b.every((x) => x <= 255) ? b : null;
}

function v4Public(b: number[]): boolean {
  const [a, x] = [b[0]!, b[1]!];
  if (a === 0 || a === 10 || a === 127 || a >= 224) return false; // this-network, private, loopback, multicast, reserved
  if (a === 100 && x >= 64 && x < 128) return false; // CGNAT
  if (a === 169 && x === 254) return false; // link-local (cloud metadata)
  if (a === 172 && x >= 16 && x < 32) return false;
  if (a === 192 && x === 168) return false;
  if (a === 192 && x === 0 && b[2] === 0) return false; // IETF protocol assignments
  if (a === 198 && (x === 18 || x === 19)) return false; // benchmarking
  return true;
}

/** The 16 bytes of an IPv6 address ("[…]" or bare), or null. */
export function v6Bytes(host: string): number[] | null {
  let s = host.startsWith("[") ? host.slice(1, -1) : host;
  s = s.replace(/%.*$/, "");
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (tail) {
    const b = v4(tail[1]!);
    if (!b) return null;
    s = s.slice(0, -tail[1]!.length) + `${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const part = (x: string): number[] => (x === "" ? [] : x.split(":").map((h) => (/^[0-9a-f]{1,4}$/i.test(h) ? parseInt(h, 16) : NaN)));
  const head = part(halves[0]!);
  const rest = halves.length === 2 ? part(halves[1]!) : [];
  const fill = 8 - head.length - rest.length;
  if ((halves.length === 1 && fill !== 0) || fill < 0 || [...head, ...rest].some(Number.isNaN)) return null;
  const words = [...head, ...new Array<number>(halves.length === 2 ? fill : 0).fill(0), ...rest];
  return words.flatMap((w) => [w >> 8, w & 0xff]);
}

/** Whether an address (IPv4 dotted, IPv6 bracketed or bare) is a public unicast address. */
export function isPublic(addr: string): boolean {
  const b4 = v4(addr);
  if (b4) return v4Public(b4);
  const b = v6Bytes(addr);
  if (!b) return false; // not an address we understand: not public
  const zero = (from: number, to: number): boolean => b.slice(from, to).every((x) => x === 0);
  const embedded = (at: number): number[] => b.slice(at, at + 4);
  if (zero(0, 15) && (b[15] === 0 || b[15] === 1)) return false; // :: and ::1
  if (zero(0, 10) && b[10] === 0xff && b[11] === 0xff) return v4Public(embedded(12)); // ::ffff:a.b.c.d
  if (zero(0, 12)) return v4Public(embedded(12)); // ::a.b.c.d (deprecated compatible form)
  if (b[0] === 0 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b) return v4Public(embedded(12)); // 64:ff9b::/96 NAT64
  if (b[0] === 0x20 && b[1] === 0x02) return v4Public(embedded(2)); // 2002::/16 6to4
  if ((b[0]! & 0xfe) === 0xfc) return false; // fc00::/7 unique local
  if (b[0] === 0xfe && (b[1]! & 0xc0) === 0x80) return false; // fe80::/10 link-local
  if (b[0] === 0xfe && (b[1]! & 0xc0) === 0xc0) return false; // fec0::/10 site-local (deprecated)
  if (b[0] === 0xff) return false; // multicast
  if (b[0] === 0x20 && b[1] === 0x01 && b[2] === 0x0d && b[3] === 0xb8) return false; // documentation
  if (b[0] === 0x01 && b[1] === 0 && zero(2, 8)) return false; // 100::/64 discard
  return true;
}
