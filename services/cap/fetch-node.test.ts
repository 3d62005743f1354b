// pinnedFetch: the address check happens where the socket connects, so a name that resolves to a
// public address for the grant check and to loopback a moment later (DNS rebinding) is refused.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { grantCaps } from "./grant.ts";
import { pinnedFetch } from "./fetch-node.ts";
import type { Resolver } from "./hosts.ts";
import { ask, askJson, capNamespace, dec, enc, failsWith, readAll } from "./testing.ts";

let server: Server;
let port: number;
let hits = 0;
beforeAll(async () => {
  server = createServer((req, res) => {
    hits++;
    if (req.url === "/gz") {
      res.setHeader("content-encoding", "gzip");
      return void res.end(gzipSync("unzipped text ".repeat(100)));
    }
    if (req.url === "/up") {
      let n = 0;
      req.on("data", (c: Buffer) => (n += c.length));
      return void req.on("end", () => res.end(`got ${n} ${req.headers.host}`));
    }
    res.end(`hello ${req.headers.host}`);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});

function setup(hosts: string, resolve: Resolver) {
  const t = capNamespace();
  grantCaps(t.ns, { http: { hosts } }, { resolve, fetchFor: pinnedFetch });
  return t;
}

describe("pinnedFetch", () => {
  it("a name that rebinds to loopback between the check and the connect is refused at the connect", async () => {
    let calls = 0;
    const rebinding: Resolver = async () => (calls++ === 0 ? ["93.184.215.14"] : ["127.0.0.1"]);
    const { ns, capErrors } = setup(`rebind.test`, rebinding);
    hits = 0;
    expect(await failsWith(ask(ns, "/cap/http/fetch", JSON.stringify({ url: `http://rebind.test:${port}/` })))).toBe("EACCES");
    expect(calls).toBe(2);
    expect(hits).toBe(0);
    expect(String(capErrors()[0]!.reason)).toContain("127.0.0.1");
  });

  it("connects to the address the checked resolver gave; an exact host:port grant may be loopback", async () => {
    const { ns } = setup(`api.test:${port}`, async () => ["127.0.0.1"]);
    expect(await askJson(ns, "/cap/http/fetch", { url: `http://api.test:${port}/` })).toMatchObject({ status: 200, body: `hello api.test:${port}` });
    const gz = await askJson(ns, "/cap/http/fetch", { url: `http://api.test:${port}/gz` });
    expect(gz.body).toBe("unzipped text ".repeat(100));
  });

  it("IP literals, streamed uploads and refused connections behave as with fetch", async () => {
    const { ns } = setup(`127.0.0.1:${port},127.0.0.1:1`, async () => []);
    expect((await askJson(ns, "/cap/http/fetch", { url: `http://127.0.0.1:${port}/` })).body).toBe(`hello 127.0.0.1:${port}`);
    expect(await failsWith(ask(ns, "/cap/http/fetch", JSON.stringify({ url: "http://127.0.0.1:1/" })))).toBe("ECONNREFUSED");
    const clone = await ns.open("/cap/http/clone", { read: true });
    const n = dec(await readAll(clone)).trim();
    const ctl = await ns.open(`/cap/http/${n}/ctl`, { write: true });
    await ctl.write(enc(JSON.stringify({ url: `http://127.0.0.1:${port}/up`, method: "POST" })));
    const b = await ns.open(`/cap/http/${n}/body`, { read: true, write: true });
    for (let i = 0; i < 10; i++) await b.write(new Uint8Array(100_000));
    expect(dec(await readAll(b))).toBe(`got 1000000 127.0.0.1:${port}`);
    await clone.close();
  });
});
