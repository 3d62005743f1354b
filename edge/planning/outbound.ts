// Where the edge may send a request a user asked for (a webhook destination, an openai:URL model):
// SSRF protection. http and https only, no credentials in the URL, and a host that names a public
// service: IP literals are refused (whatever their form: the URL parser normalises 0x7f.1 and
// [::ffff:127.0.0.1] first, and a host ending in a numeric label is taken as one), and so are names that only mean something inside a network
// (localhost, *.localhost, *.local, *.internal — the cloud metadata names —, *.home.arpa, *.lan,
// and single-label names). The local edge lets development servers through by the var
// ALLOW_PRIVATE_HOSTS (`host` or `host:port`, comma-separated; never `*`); a deployed edge has no
// such var. Names are judged by their spelling (a Worker cannot resolve DNS), and redirects are
// never followed by the callers, so a public name cannot bounce a request inward by a Location.
import { fsError } from "../../runtime/errors.ts";
import { ipKind, parseHosts, portOf, type HostPattern } from "../../services/cap/hosts.ts";

const INTERNAL_SUFFIXES = [".localhost", ".local", ".internal", ".home.arpa", ".lan", ".intranet", ".corp"];

/** The var's patterns (EINVAL for `*` or a wildcard: development opens single hosts, not everything). */
export function allowedPrivate(v: string | undefined): HostPattern[] {
  const ps = v ? parseHosts(v) : [];
  if (ps.some((p) => p.wildcard !== "none")) throw fsError("EINVAL", "ALLOW_PRIVATE_HOSTS takes host or host:port entries, no wildcards");
  return ps;
}

/** The URL if the edge may call it; EINVAL for a malformed or non-http URL, EACCES for an inward host. */
export function checkOutbound(raw: string, allow: HostPattern[], what: string): URL {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw fsError("EINVAL", `${what}: "${raw.slice(0, 200)}" is not a URL`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw fsError("EINVAL", `${what}: ${u.protocol} URLs are not allowed (http or https)`);
  if (u.username || u.password) throw fsError("EINVAL", `${what}: credentials in a URL (user@host) are not allowed`);
  const host = u.hostname.toLowerCase().replace(/\.+$/, ""); // "localhost." is localhost
  const port = portOf(u);
  if (allow.some((p) => p.host === host && (p.port === undefined || p.port === port))) return u;
  const where = `${host}:${port}`;
  // A host whose last label is a number is an IPv4 address in some spelling (WHATWG URL; and
  // inet_aton reads 0x7f.1 as 127.0.0.1 where a parser leaves it as it is).
  const last = host.slice(host.lastIndexOf(".") + 1);
  if (ipKind(host) !== "name" || /^(0x[0-9a-f]*|\d+)$/i.test(last)) throw fsError("EACCES", `${what}: ${where} is an IP address; name the host (addresses are refused, so no private or metadata address can be reached)`);
  if (host === "localhost" || !host.includes(".") || INTERNAL_SUFFIXES.some((s) => host.endsWith(s)))
    throw fsError("EACCES", `${what}: ${where} names a host inside a network (loopback, local or internal names are refused)`);
  return u;
}
