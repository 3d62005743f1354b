// /cap/http against a real local HTTP server: replies, errors as errnos plus one logged line,
// redirects only to granted hosts, secrets that reach the server but never come back, budgets,
// and bodies streamed through clone.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { grantCaps, type CapGrants, type GrantOptions } from "./grant.ts";
import { ask, askJson, capNamespace, dec, enc, failsWith, readAll, readText } from "./testing.ts";

let server: Server;
let port: number;
let other: Server;
let otherPort: number;
let hung = 0;

const body = async (req: IncomingMessage): Promise<Buffer> => {
  const parts: Buffer[] = [];
  for await (const c of req) parts.push(c as Buffer);
  return Buffer.concat(parts);
};

async function handler(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url!, "http://x");
  const p = url.pathname;
  if (p === "/hello") {
    res.setHeader("X-Thing", "yes");
    res.end("hello, agent");
  } else if (p === "/echo") {
    const b = await body(req);
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ method: req.method, headers: req.headers, body: b.toString("utf8") }));
  } else if (p === "/binary") res.end(Buffer.from([0xff, 0x00, 0xfe, 0x80]));
  else if (p === "/missing") {
    res.statusCode = 404;
    res.end("no such thing");
  } else if (p === "/redirect") {
    res.statusCode = 302;
    res.setHeader("location", url.searchParams.get("to")!);
    res.end();
  } else if (p === "/big") {
    const n = Number(url.searchParams.get("n"));
    const chunk = Buffer.alloc(65536, 0x61);
    let sent = 0;
    const pump = (): void => {
      while (sent < n) {
        const c = chunk.subarray(0, Math.min(chunk.length, n - sent));
        sent += c.length;
        if (!res.write(c)) return void res.once("drain", pump);
      }
      res.end();
    };
    pump();
  } else if (p === "/hang") {
    hung++;
    req.on("close", () => hung--);
  } else if (p === "/upload") {
    const b = await body(req);
    res.end(`got ${b.length} bytes, sha ${(await import("node:crypto")).createHash("sha256").update(b).digest("hex").slice(0, 16)}`);
  } else {
    res.statusCode = 500;
    res.end();
  }
}

const listen = (s: Server): Promise<number> => new Promise((r) => s.listen(0, "127.0.0.1", () => r((s.address() as AddressInfo).port)));

beforeAll(async () => {
  server = createServer((req, res) => void handler(req, res));
  port = await listen(server);
  other = createServer((_req, res) => res.end("other server"));
  otherPort = await listen(other);
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
  other.close();
});

function setup(http: Partial<NonNullable<CapGrants["http"]>> = {}, o: GrantOptions = {}) {
  const t = capNamespace();
  const granted = grantCaps(t.ns, { http: { hosts: `127.0.0.1:${port}`, ...http } }, o);
  return { ...t, granted };
}
const at = (path: string): string => `http://127.0.0.1:${port}${path}`;

describe("/cap/http fetch", () => {
  it("answers status, final URL, lower-case headers and the body; a 404 is a reply", async () => {
    const { ns } = setup();
    const r = await askJson(ns, "/cap/http/fetch", { url: at("/hello") });
    expect(r).toMatchObject({ status: 200, statusText: "OK", url: at("/hello"), body: "hello, agent" });
    expect((r.headers as Record<string, string>)["x-thing"]).toBe("yes");
    const missing = await askJson(ns, "/cap/http/fetch", { url: at("/missing") });
    expect(missing).toMatchObject({ status: 404, body: "no such thing" });
  });

  it("sends method, headers and body; a body that is not UTF-8 comes back as bodyBase64", async () => {
    const { ns } = setup();
    const r = await askJson(ns, "/cap/http/fetch", { url: at("/echo"), method: "post", headers: { "X-Agent": "a1" }, body: "ping" });
    const echoed = JSON.parse(r.body as string);
    expect(echoed).toMatchObject({ method: "POST", body: "ping" });
    expect(echoed.headers["x-agent"]).toBe("a1");
    const up = await askJson(ns, "/cap/http/fetch", { url: at("/echo"), method: "PUT", bodyBase64: Buffer.from([1, 2, 3]).toString("base64") });
    expect(JSON.parse(up.body as string).body).toBe("\u0001\u0002\u0003");
    const bin = await askJson(ns, "/cap/http/fetch", { url: at("/binary") });
    expect(bin.body).toBeUndefined();
    expect(Buffer.from(bin.bodyBase64 as string, "base64")).toEqual(Buffer.from([0xff, 0x00, 0xfe, 0x80]));
  });

  it("a host outside the grant is EACCES on the read, with one cap.error line and nothing sent", async () => {
    const { ns, capErrors } = setup();
    expect(await failsWith(ask(ns, "/cap/http/fetch", JSON.stringify({ url: `http://127.0.0.1:${otherPort}/` })))).toBe("EACCES");
    expect(await failsWith(ask(ns, "/cap/http/fetch", JSON.stringify({ url: "http://localhost:" + port + "/hello" })))).toBe("EACCES");
    const errs = capErrors();
    expect(errs).toHaveLength(2);
    expect(errs[0]).toMatchObject({ event: "cap.error", cap: "http", file: "fetch", errno: "EACCES" });
    expect(String(errs[0]!.reason)).toContain(`127.0.0.1:${otherPort}`);
  });

  it("bad requests: malformed JSON, read before write, a second request, a GET with a body — EINVAL and logged", async () => {
    const { ns, capErrors } = setup();
    expect(await failsWith(ask(ns, "/cap/http/fetch", "{not json"))).toBe("EINVAL");
    expect(await failsWith(ask(ns, "/cap/http/fetch", JSON.stringify({ url: at("/hello"), body: "x" })))).toBe("EINVAL");
    expect(await failsWith(ask(ns, "/cap/http/fetch", JSON.stringify({ url: at("/hello"), headers: { host: "evil" } })))).toBe("EINVAL");
    const h = await ns.open("/cap/http/fetch", { read: true, write: true });
    expect(await failsWith(async () => h.read(10))).toBe("EINVAL");
    await h.write(enc(JSON.stringify({ url: at("/hello") })));
    expect(dec(await readAll(h))).toContain("hello, agent");
    expect(await failsWith(async () => h.write(enc("{}")))).toBe("EINVAL");
    await h.close();
    expect(capErrors().map((e) => e.errno)).toEqual(["EINVAL", "EINVAL", "EINVAL", "EINVAL", "EINVAL"]);
    expect(await failsWith(async () => ns.open("/cap/http/fetch", { read: true }))).toBe("EINVAL");
  });

  it("refused connections are ECONNREFUSED; a server that never answers is ETIMEDOUT and the request is dropped", async () => {
    const { ns, capErrors } = setup({ timeoutMs: 300 });
    // a port nobody listens on: take one and close it
    const s = createServer();
    const dead = await listen(s);
    s.close();
    const { ns: ns2 } = setup({ hosts: `127.0.0.1:${dead}` });
    expect(await failsWith(ask(ns2, "/cap/http/fetch", JSON.stringify({ url: `http://127.0.0.1:${dead}/` })))).toBe("ECONNREFUSED");
    expect(await failsWith(ask(ns, "/cap/http/fetch", JSON.stringify({ url: at("/hang") })))).toBe("ETIMEDOUT");
    expect(capErrors().at(-1)).toMatchObject({ errno: "ETIMEDOUT" });
    for (let i = 0; i < 50 && hung > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(hung).toBe(0);
  });

  it("closing the handle mid-request aborts it at the server", async () => {
    const { ns } = setup();
    const h = await ns.open("/cap/http/fetch", { read: true, write: true });
    await h.write(enc(JSON.stringify({ url: at("/hang") })));
    const pending = Promise.resolve(h.read(10)).catch((e: unknown) => e);
    for (let i = 0; i < 50 && hung === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(hung).toBe(1);
    await h.close();
    await pending;
    for (let i = 0; i < 50 && hung > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(hung).toBe(0);
  });

  it("a reply over the size limit is EFBIG, never half a reply", async () => {
    const { ns, capErrors } = setup({ maxReply: 100_000 });
    expect(await failsWith(ask(ns, "/cap/http/fetch", JSON.stringify({ url: at("/big?n=100001") })))).toBe("EFBIG");
    expect((await askJson(ns, "/cap/http/fetch", { url: at("/big?n=100000") })).body).toHaveLength(100_000);
    expect(capErrors()[0]).toMatchObject({ errno: "EFBIG" });
  });

  it("redirects are followed to granted hosts only", async () => {
    const { ns } = setup({ hosts: `127.0.0.1:${port}` });
    const ok = await askJson(ns, "/cap/http/fetch", { url: at(`/redirect?to=${encodeURIComponent("/hello")}`) });
    expect(ok).toMatchObject({ status: 200, body: "hello, agent", url: at("/hello") });
    for (const to of [`http://127.0.0.1:${otherPort}/`, `http://localhost:${otherPort}/`, `http://[::1]:${otherPort}/`, `http://x@127.0.0.1:${otherPort}/`]) {
      const code = await failsWith(ask(ns, "/cap/http/fetch", JSON.stringify({ url: at(`/redirect?to=${encodeURIComponent(to)}`) })));
      expect(["EACCES", "EINVAL"], to).toContain(code);
    }
    const both = setup({ hosts: `127.0.0.1:${port},127.0.0.1:${otherPort}` });
    expect((await askJson(both.ns, "/cap/http/fetch", { url: at(`/redirect?to=${encodeURIComponent(`http://127.0.0.1:${otherPort}/`)}`) })).body).toBe("other server");
  });
});

describe("secrets", () => {
  const secret = "sk-live-0123456789abcdef";
  const opts = (hosts: string[]): GrantOptions => ({ secrets: { API: { value: secret, hosts } } });

  it("is put in on the way out for a bound host, and never comes back in the reply", async () => {
    const { ns } = setup({}, opts([`127.0.0.1:${port}`]));
    const r = await ask(ns, "/cap/http/fetch", JSON.stringify({ url: at("/echo"), headers: { authorization: "Bearer $secret:API" } }));
    expect(r).not.toContain(secret);
    const echoed = JSON.parse(JSON.parse(r).body);
    expect(echoed.headers.authorization).toBe("Bearer $secret:API"); // the server got the value; the reply shows the name
  });

  it("the server really receives the value", async () => {
    let seen = "";
    const s = createServer((req, res) => { seen = String(req.headers["x-key"]); res.end("ok"); });
    const p = await listen(s);
    const t = capNamespace();
    grantCaps(t.ns, { http: { hosts: `127.0.0.1:${p}` } }, { secrets: { K: { value: secret, hosts: [`127.0.0.1:${p}`] } } });
    await askJson(t.ns, "/cap/http/fetch", { url: `http://127.0.0.1:${p}/`, headers: { "x-key": "$secret:K" } });
    s.close();
    expect(seen).toBe(secret);
  });

  it("is refused for a host it is not bound to, and never in an error or a log", async () => {
    const { ns, logs } = setup({ hosts: `127.0.0.1:${port},127.0.0.1:${otherPort}` }, opts([`127.0.0.1:${otherPort}`]));
    let message = "";
    try {
      await ask(ns, "/cap/http/fetch", JSON.stringify({ url: at("/echo"), headers: { authorization: "Bearer $secret:API" } }));
    } catch (e) {
      message = (e as Error).message;
      expect((e as { code: string }).code).toBe("EACCES");
    }
    expect(message).toContain("API");
    expect(message).not.toContain(secret);
    expect(logs.text("events.jsonl")).toContain("secret API is not bound");
    expect(logs.text("events.jsonl")).not.toContain(secret);
    expect(await failsWith(ask(ns, "/cap/http/fetch", JSON.stringify({ url: at("/echo"), headers: { a: "$secret:NOPE" } })))).toBe("EACCES");
  });

  it("is not carried across a redirect to a host it is not bound to", async () => {
    let seen: string | undefined = "unset";
    const s = createServer((req, res) => { seen = req.headers["x-key"] as string | undefined; res.end("there"); });
    const p = await listen(s);
    const { ns } = setup({ hosts: `127.0.0.1:${port},127.0.0.1:${p}` }, opts([`127.0.0.1:${port}`]));
    const r = await askJson(ns, "/cap/http/fetch", { url: at(`/redirect?to=${encodeURIComponent(`http://127.0.0.1:${p}/`)}`), headers: { "x-key": "$secret:API" } });
    s.close();
    expect(r.body).toBe("there");
    expect(seen).toBeUndefined();
  });
});

describe("budgets", () => {
  it("calls and bytes: EDQUOT once spent, before the network", async () => {
    const { ns, capErrors } = setup({ budget: { calls: 2 } });
    await askJson(ns, "/cap/http/fetch", { url: at("/hello") });
    await askJson(ns, "/cap/http/fetch", { url: at("/hello") });
    expect(await failsWith(ask(ns, "/cap/http/fetch", JSON.stringify({ url: at("/hello") })))).toBe("EDQUOT");
    expect(capErrors()[0]).toMatchObject({ errno: "EDQUOT" });
    const b = setup({ budget: { bytes: 1000 } });
    await askJson(b.ns, "/cap/http/fetch", { url: at("/big?n=900") });
    expect(await failsWith(ask(b.ns, "/cap/http/fetch", JSON.stringify({ url: at("/big?n=200") })))).toBe("EDQUOT");
  });
});

describe("/cap/http clone", () => {
  it("clone → N/ctl, N/status, N/body streams a body bigger than the fetch limit", async () => {
    const { ns } = setup({ maxReply: 1000 });
    const clone = await ns.open("/cap/http/clone", { read: true });
    const n = dec(await readAll(clone)).trim();
    expect(n).toMatch(/^\d+$/);
    expect((await ns.readdir("/cap/http")).map((e) => e.name)).toContain(n);
    const ctl = await ns.open(`/cap/http/${n}/ctl`, { write: true });
    await ctl.write(enc(JSON.stringify({ url: at("/big?n=3000000") })));
    const status = JSON.parse(await readText(ns, `/cap/http/${n}/status`));
    expect(status).toMatchObject({ status: 200, url: at("/big?n=3000000") });
    const bodyH = await ns.open(`/cap/http/${n}/body`, { read: true });
    const got = await readAll(bodyH);
    expect(got.length).toBe(3_000_000);
    expect(got.every((b) => b === 0x61)).toBe(true);
    await bodyH.close();
    await ctl.close();
    await clone.close();
    expect((await ns.readdir("/cap/http")).map((e) => e.name)).not.toContain(n);
  });

  it("uploads a body written to N/body, then reads the answer", async () => {
    const { ns } = setup();
    const clone = await ns.open("/cap/http/clone", { read: true });
    const n = dec(await readAll(clone)).trim();
    const ctl = await ns.open(`/cap/http/${n}/ctl`, { write: true });
    await ctl.write(enc(JSON.stringify({ url: at("/upload"), method: "POST" })));
    const b = await ns.open(`/cap/http/${n}/body`, { read: true, write: true });
    const data = new Uint8Array(1_000_000).map((_, i) => i % 251);
    for (let i = 0; i < data.length; i += 100_000) await b.write(data.subarray(i, i + 100_000));
    const answer = dec(await readAll(b));
    const { createHash } = await import("node:crypto");
    expect(answer).toBe(`got 1000000 bytes, sha ${createHash("sha256").update(data).digest("hex").slice(0, 16)}`);
    await b.close();
    await clone.close();
  });

  it("status before ctl is EINVAL; a host outside the grant fails the status read", async () => {
    const { ns, capErrors } = setup();
    const clone = await ns.open("/cap/http/clone", { read: true });
    const n = dec(await readAll(clone)).trim();
    expect(await failsWith(readText(ns, `/cap/http/${n}/status`))).toBe("EINVAL");
    const ctl = await ns.open(`/cap/http/${n}/ctl`, { write: true });
    await ctl.write(enc(JSON.stringify({ url: `http://127.0.0.1:${otherPort}/` })));
    expect(await failsWith(readText(ns, `/cap/http/${n}/status`))).toBe("EACCES");
    expect(capErrors().map((e) => e.file)).toEqual([`${n}/status`, `${n}/status`]);
    await clone.close();
  });

  it("an upload streams: the server reads while the agent writes, and a slow server holds the writer back", async () => {
    let received = 0;
    let paused: IncomingMessage | null = null;
    const s = createServer((req, res) => {
      req.pause();
      paused = req;
      req.on("data", (c: Buffer) => (received += c.length));
      req.on("end", () => res.end(`got ${received}`));
    });
    const p = await listen(s);
    const { ns } = setup({ hosts: `127.0.0.1:${p}` });
    const clone = await ns.open("/cap/http/clone", { read: true });
    const n = dec(await readAll(clone)).trim();
    const ctl = await ns.open(`/cap/http/${n}/ctl`, { write: true });
    await ctl.write(enc(JSON.stringify({ url: `http://127.0.0.1:${p}/`, method: "PUT" })));
    const b = await ns.open(`/cap/http/${n}/body`, { read: true, write: true });
    const chunk = new Uint8Array(512 * 1024).fill(7);
    let blocked = false;
    for (let i = 0; i < 64 && !blocked; i++) {
      const w = Promise.resolve(b.write(chunk));
      blocked = (await Promise.race([w.then(() => false), new Promise((r) => setTimeout(() => r(true), 200))])) as boolean;
      if (blocked) {
        for (let k = 0; k < 50 && !paused; k++) await new Promise((r) => setTimeout(r, 10));
        (paused as IncomingMessage | null)?.resume();
        await w;
      }
    }
    expect(blocked).toBe(true); // the server was not reading: the writer waited
    for (let i = 0; i < 4; i++) await b.write(chunk);
    const answer = dec(await readAll(b));
    expect(answer).toMatch(/^got \d+$/);
    expect(Number(answer.slice(4))).toBeGreaterThanOrEqual(4 * chunk.length);
    await b.close();
    await clone.close();
    s.close();
  });
});

describe("secrets in bodies", () => {
  it("a secret echoed in a streamed body or a binary body never reaches the agent, even cut across chunks", async () => {
    const secret = "tok-" + "x".repeat(40) + "-end";
    const s = createServer((req, res) => {
      const key = String(req.headers["x-key"]);
      if (req.url === "/bin") return void res.end(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(key)]));
      // The secret split across writes, many times over.
      res.setHeader("content-type", "text/plain");
      let i = 0;
      const tick = (): void => {
        if (i++ === 50) return void res.end();
        res.write(key.slice(0, 7));
        setImmediate(() => {
          res.write(key.slice(7) + " and more text; ");
          setImmediate(tick);
        });
      };
      tick();
    });
    const p = await listen(s);
    const { ns } = setup({ hosts: `127.0.0.1:${p}` }, { secrets: { K: { value: secret, hosts: [`127.0.0.1:${p}`] } } });
    const bin = await askJson(ns, "/cap/http/fetch", { url: `http://127.0.0.1:${p}/bin`, headers: { "x-key": "$secret:K" } });
    expect(Buffer.from(bin.bodyBase64 as string, "base64").toString("latin1")).toBe("\xff\xfe$secret:K");
    const clone = await ns.open("/cap/http/clone", { read: true });
    const n = dec(await readAll(clone)).trim();
    const ctl = await ns.open(`/cap/http/${n}/ctl`, { write: true });
    await ctl.write(enc(JSON.stringify({ url: `http://127.0.0.1:${p}/`, headers: { "x-key": "$secret:K" } })));
    const body = await ns.open(`/cap/http/${n}/body`, { read: true });
    const text = dec(await readAll(body, 5));
    expect(text).not.toContain(secret);
    expect(text).not.toContain("x".repeat(20));
    expect(text).toBe("$secret:K and more text; ".repeat(50));
    await clone.close();
    s.close();
  });
});

describe("clone ctl", () => {
  it("reading N/ctl shows the request once, then EOF", async () => {
    const { ns } = setup();
    const clone = await ns.open("/cap/http/clone", { read: true });
    const n = dec(await readAll(clone)).trim();
    const ctl = await ns.open(`/cap/http/${n}/ctl`, { read: true, write: true });
    await ctl.write(enc(JSON.stringify({ url: at("/hello"), headers: { authorization: "x" } })));
    expect(JSON.parse(dec(await readAll(ctl)))).toEqual({ url: at("/hello"), method: "GET" });
    await clone.close();
  });
});
