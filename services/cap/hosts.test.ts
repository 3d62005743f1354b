// Host grants: no host outside the list is ever reached, whatever the URL's spelling — IPv4 and
// IPv6 forms, userinfo tricks, and DNS names that resolve to loopback or private addresses.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isFsError } from "../../runtime/errors.ts";
import { checkUrl, isPublic, parseHosts, type HostGrant } from "./hosts.ts";

const grant = (list: string, resolve?: HostGrant["resolve"]): HostGrant => ({ patterns: parseHosts(list), resolve });
const verdict = async (url: string, g: HostGrant): Promise<string> => {
  try {
    await checkUrl(url, g, ["http:", "https:"]);
    return "ok";
  } catch (e) {
    if (isFsError(e)) return e.code;
    throw e;
  }
};
const publicDns = async (): Promise<string[]> => ["93.184.215.14"];

describe("host patterns", () => {
  it("host (any port), host:port, *.domain (not the apex), *", async () => {
    const g = grant("example.com, api.test.org:8443, *.wiki.org", publicDns);
    expect(await verdict("https://example.com/a", g)).toBe("ok");
    expect(await verdict("http://example.com:8080/", g)).toBe("ok");
    expect(await verdict("https://api.test.org:8443/", g)).toBe("ok");
    expect(await verdict("https://api.test.org/", g)).toBe("EACCES");
    expect(await verdict("https://en.wiki.org/", g)).toBe("ok");
    expect(await verdict("https://a.b.wiki.org/", g)).toBe("ok");
    expect(await verdict("https://wiki.org/", g)).toBe("EACCES");
    expect(await verdict("https://evilwiki.org/", g)).toBe("EACCES");
    expect(await verdict("https://example.com.evil.net/", g)).toBe("EACCES");
    expect(await verdict("https://anything.net/", grant("*", publicDns))).toBe("ok");
  });

  it("malformed patterns and URLs are EINVAL; other schemes and credentials are refused", async () => {
    for (const p of ["a.com/path", "*.", "*.1.2.3.4", "user@a.com", "a.com:99999", "*.a.com:80", "a*b.com"]) expect(() => parseHosts(p), p).toThrow();
    const g = grant("example.com", publicDns);
    expect(await verdict("not a url", g)).toBe("EINVAL");
    expect(await verdict("file:///etc/passwd", g)).toBe("EINVAL");
    expect(await verdict("https://user:pw@example.com/", g)).toBe("EINVAL");
    expect(await verdict("https://example.com@127.0.0.1/", grant("*"))).toBe("EINVAL");
  });

  it("loopback and private addresses need the exact host:port, in every spelling", async () => {
    const star = grant("*", publicDns);
    for (const u of [
      "http://127.0.0.1/", "http://127.1/", "http://0x7f.1/", "http://2130706433/", "http://017700000001/", "http://0.0.0.0/",
      "http://10.1.2.3/", "http://192.168.1.1/", "http://172.16.0.1/", "http://169.254.169.254/latest/meta-data",
      "http://[::1]/", "http://[0:0:0:0:0:0:0:1]/", "http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/", "http://[::127.0.0.1]/",
      "http://[fe80::1]/", "http://[fd00::1]/", "http://[64:ff9b::7f00:1]/", "http://[2002:7f00:1::]/", "http://[::]/",
      "http://localhost:8080/", "http://sub.localhost/",
    ]) expect(await verdict(u, star), u).toBe("EACCES");
    expect(await verdict("http://127.0.0.1:8080/x", grant("127.0.0.1:8080"))).toBe("ok");
    expect(await verdict("http://127.0.0.1:8081/x", grant("127.0.0.1:8080"))).toBe("EACCES");
    expect(await verdict("http://127.0.0.1:8080/x", grant("127.0.0.1"))).toBe("EACCES"); // host alone is not exact
    expect(await verdict("http://[::1]:9000/", grant("[::1]:9000"))).toBe("ok");
    expect(await verdict("http://localhost:9000/", grant("localhost:9000"))).toBe("ok");
  });

  it("a DNS name that resolves to a non-public address is refused unless listed by host:port", async () => {
    const rebinding = async (): Promise<string[]> => ["93.184.215.14", "127.0.0.1"];
    expect(await verdict("http://evil.test/", grant("*", rebinding))).toBe("EACCES");
    expect(await verdict("http://evil.test/", grant("evil.test", async () => ["::1"]))).toBe("EACCES");
    expect(await verdict("http://evil.test/", grant("evil.test", async () => ["::ffff:10.0.0.1"]))).toBe("EACCES");
    expect(await verdict("http://evil.test:81/", grant("evil.test:81", rebinding))).toBe("ok");
    expect(await verdict("http://gone.test/", grant("*", async () => { throw new Error("ENOTFOUND"); }))).toBe("ECONNREFUSED");
  });
});

// ---- properties ----

const label = fc.stringMatching(/^[a-z][a-z0-9-]{0,8}[a-z0-9]$/);
const domain = fc.array(label, { minLength: 2, maxLength: 4 }).map((l) => l.join("."));
const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((b) => b.join("."));
const hex = fc.nat(0xffff).map((n) => n.toString(16));
const v6 = fc.array(hex, { minLength: 8, maxLength: 8 }).map((w) => `[${w.join(":")}]`);
const host = fc.oneof(domain, v4, v6, fc.constantFrom("localhost", "127.0.0.1", "[::1]", "[::ffff:127.0.0.1]", "0x7f.1", "2130706433"));
const port = fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined });
const trick = fc.constantFrom("", "user@", "user:pw@", "a.com@", "%40@");
const urlArb = fc.tuple(fc.constantFrom("http", "https"), trick, host, port, fc.constantFrom("/", "/a?b=1", "/@evil.com", "#x"))
  .map(([s, t, h, p, path]) => `${s}://${t}${h}${p ? ":" + p : ""}${path}`);

describe("grant matching (properties)", () => {
  it("an allowed URL's host is in the list, it carries no credentials, and a non-public address is listed exactly", async () => {
    await fc.assert(fc.asyncProperty(fc.array(fc.tuple(domain, port), { minLength: 1, maxLength: 4 }), urlArb, fc.boolean(), async (items, url, resolvesLocal) => {
      const list = items.map(([h, p]) => (p ? `${h}:${p}` : h));
      const g = grant(list.join(","), async () => (resolvesLocal ? ["127.0.0.1"] : ["93.184.215.14"]));
      if ((await verdict(url, g)) !== "ok") return;
      const u = new URL(url);
      expect(u.username + u.password).toBe("");
      const p = u.port ? Number(u.port) : u.protocol === "https:" ? 443 : 80;
      const exact = items.some(([h, ip]) => h === u.hostname && ip === p);
      expect(items.some(([h, ip]) => h === u.hostname && (ip === undefined || ip === p))).toBe(true);
      if (resolvesLocal) expect(exact).toBe(true);
    }), { numRuns: 500 });
  });

  it("with *, no loopback, private or link-local address is ever allowed", async () => {
    const g = grant("*", async () => ["93.184.215.14"]);
    await fc.assert(fc.asyncProperty(urlArb, async (url) => {
      if ((await verdict(url, g)) !== "ok") return;
      const h = new URL(url).hostname;
      if (h.startsWith("[") || /^\d+\.\d+\.\d+\.\d+$/.test(h)) expect(isPublic(h)).toBe(true);
      expect(h).not.toBe("localhost");
    }), { numRuns: 1000 });
  });

  it("isPublic agrees for an IPv4 address and its IPv4-mapped IPv6 forms", () => {
    fc.assert(fc.property(fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)), (b) => {
      const dotted = b.join(".");
      const mapped = new URL(`http://[::ffff:${dotted}]/`).hostname;
      expect(isPublic(mapped)).toBe(isPublic(dotted));
      expect(isPublic(`[::ffff:${dotted}]`)).toBe(isPublic(dotted));
    }), { numRuns: 2000 });
  });
});
