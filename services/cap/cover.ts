// Whether one host grant stays inside another: what a host that lets an owner set a ceiling (the
// edge's per-workspace cap policy) checks before it grants a run. A pattern reaches a host:port
// when it matches it and the address is public by its spelling, or the pattern names that exact
// host:port (hosts.ts's rule without a resolver, as at the edge). `within` answers whether every
// host:port a pattern reaches, the allowed list reaches too; it is sound (never says yes wrongly)
// and, for a single pattern against a list, exact except where only several patterns of the list
// together would cover it (ports granted one by one never add up to "any port").
import { ipKind, isPublic, type HostPattern } from "./hosts.ts";

/** Judged by spelling only: an IP literal by its address, a name unless it is localhost. */
export function publicBySpelling(host: string): boolean {
  if (ipKind(host) !== "name") return isPublic(host);
  return host !== "localhost" && !host.endsWith(".localhost");
}

const under = (host: string, domain: string): boolean => ipKind(host) === "name" && host.endsWith("." + domain);

/** Does `q` match this host at every port (`port` undefined) or at `port`? */
function matches(q: HostPattern, host: string, port: number | undefined): boolean {
  if (q.port !== undefined && q.port !== port) return false;
  if (q.wildcard === "any") return true;
  if (q.wildcard === "subdomains") return under(host, q.host);
  return q.host === host;
}

/** Does the list reach host:port (every port, when `port` is undefined)? */
function reaches(list: HostPattern[], host: string, port: number | undefined): boolean {
  if (!list.some((q) => matches(q, host, port))) return false;
  if (publicBySpelling(host)) return true;
  return port !== undefined && list.some((q) => q.wildcard === "none" && q.host === host && q.port === port);
}

/** Is every host:port that `p` reaches also reached by `allowed`? */
export function within(p: HostPattern, allowed: HostPattern[]): boolean {
  if (p.wildcard === "any") return allowed.some((q) => q.wildcard === "any" && q.port === undefined);
  if (p.wildcard === "subdomains") {
    return allowed.some((q) => q.port === undefined && (q.wildcard === "any" || (q.wildcard === "subdomains" && (p.host === q.host || p.host.endsWith("." + q.host)))));
  }
  // A name or address: at one port it is reached even when not public; at every port only when public.
  if (p.port === undefined && !publicBySpelling(p.host)) return true; // reaches nothing
  return reaches(allowed, p.host, p.port);
}

/** The patterns of `asked` that reach beyond `allowed` (empty when the grant stays inside). */
export const beyond = (asked: HostPattern[], allowed: HostPattern[]): HostPattern[] => asked.filter((p) => !within(p, allowed));

/** A pattern as it was written ("*", "*.example.com", "host", "host:port"). */
export const patternText = (p: HostPattern): string =>
  p.wildcard === "any" ? "*" : p.wildcard === "subdomains" ? `*.${p.host}` : p.port === undefined ? p.host : `${p.host}:${p.port}`;
