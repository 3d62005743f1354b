// /cap/ws against a real WebSocket echo server (package ws): text and binary messages whole, one
// per read; EMSGSIZE for a small buffer; close with code and reason; grants, secrets and budgets.
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocketServer, type WebSocket as ServerSocket } from "ws";
import { grantCaps, type CapGrants, type GrantOptions } from "./grant.ts";
import type { Resolver } from "./hosts.ts";
import { pinnedWsConnect } from "./ws-node.ts";
import { capNamespace, dec, enc, failsWith, readAll, readText } from "./testing.ts";

let wss: WebSocketServer;
let port: number;
const seenHeaders: Record<string, string | undefined>[] = [];
const closes: { code: number; reason: string }[] = [];

beforeAll(async () => {
  wss = new WebSocketServer({ host: "127.0.0.1", port: 0, handleProtocols: (ps) => (ps.has("chat.v1") ? "chat.v1" : false) });
  await new Promise((r) => wss.once("listening", r));
  port = (wss.address() as AddressInfo).port;
  wss.on("connection", (s: ServerSocket, req) => {
    seenHeaders.push({ "x-key": req.headers["x-key"] as string | undefined, host: req.headers.host });
    s.on("message", (data, isBinary) => {
      const text = isBinary ? null : data.toString();
      if (text === "bye") return s.close(4001, "as asked");
      if (text === "burst") {
        s.send("one");
        s.send(Buffer.from([1, 2, 3]));
        s.send("two");
        return;
      }
      s.send(data, { binary: isBinary });
    });
    s.on("close", (code, reason) => closes.push({ code, reason: reason.toString() }));
  });
});
afterAll(() => new Promise<void>((r) => {
  for (const c of wss.clients) c.terminate();
  wss.close(() => r());
}));

function setup(ws: Partial<NonNullable<CapGrants["ws"]>> = {}, o: GrantOptions = {}) {
  const t = capNamespace();
  const granted = grantCaps(t.ns, { ws: { hosts: `127.0.0.1:${port}`, ...ws } }, o);
  return { ...t, granted };
}

async function connect(ns: ReturnType<typeof setup>["ns"], request: unknown) {
  const clone = await ns.open("/cap/ws/clone", { read: true });
  const n = dec(await readAll(clone)).trim();
  const ctl = await ns.open(`/cap/ws/${n}/ctl`, { write: true });
  await ctl.write(enc(JSON.stringify(request)));
  const data = await ns.open(`/cap/ws/${n}/data`, { read: true, write: true });
  const binary = await ns.open(`/cap/ws/${n}/binary`, { read: true, write: true });
  return { n, clone, ctl, data, binary };
}

describe("/cap/ws", () => {
  it("one whole message per read, text and binary apart; status; close with code and reason; EOF after", async () => {
    const { ns } = setup();
    const c = await connect(ns, { url: `ws://127.0.0.1:${port}/echo`, protocols: ["chat.v1"] });
    expect(JSON.parse(await readText(ns, `/cap/ws/${c.n}/status`))).toMatchObject({ state: "open", protocol: "chat.v1", closeCode: null });
    await c.data.write(enc("hello"));
    expect(dec(await c.data.read(65536))).toBe("hello");
    await c.binary.write(new Uint8Array([9, 8, 7]));
    expect([...(await c.binary.read(65536))]).toEqual([9, 8, 7]);
    await c.data.write(enc("burst"));
    expect(dec(await c.data.read(65536))).toBe("one");
    expect(dec(await c.data.read(65536))).toBe("two");
    expect([...(await c.binary.read(65536))]).toEqual([1, 2, 3]);
    await c.data.write(enc("a long message"));
    expect(await failsWith(async () => c.data.read(4))).toBe("EMSGSIZE");
    expect(dec(await c.data.read(100))).toBe("a long message"); // it stayed
    await c.ctl.write(enc("close 4000 done here"));
    expect((await c.data.read(100)).length).toBe(0);
    expect(JSON.parse(await readText(ns, `/cap/ws/${c.n}/status`))).toMatchObject({ state: "closed", closeCode: 4000, closeReason: "done here" });
    for (let i = 0; i < 50 && !closes.some((x) => x.code === 4000); i++) await new Promise((r) => setTimeout(r, 10));
    expect(closes).toContainEqual({ code: 4000, reason: "done here" });
    expect(await failsWith(async () => c.data.write(enc("late")))).toBe("ENOTCONN");
    await c.clone.close();
  });

  it("the server closing ends the streams; closing the last handle closes the socket", async () => {
    const { ns } = setup();
    const c = await connect(ns, { url: `ws://127.0.0.1:${port}/` });
    await c.data.write(enc("bye"));
    expect((await c.data.read(100)).length).toBe(0);
    expect(JSON.parse(await readText(ns, `/cap/ws/${c.n}/status`))).toMatchObject({ closeCode: 4001, closeReason: "as asked" });
    const d = await connect(ns, { url: `ws://127.0.0.1:${port}/` });
    const before = closes.length;
    for (const h of [d.data, d.binary, d.ctl, d.clone]) await h.close();
    for (let i = 0; i < 50 && closes.length === before; i++) await new Promise((r) => setTimeout(r, 10));
    expect(closes.at(-1)).toEqual({ code: 1000, reason: "" });
  });

  it("grants, refused connections and bad requests fail the ctl write with an errno and a log line", async () => {
    const { ns, capErrors } = setup();
    const bad = async (req: string): Promise<string> => {
      const clone = await ns.open("/cap/ws/clone", { read: true });
      const n = dec(await readAll(clone)).trim();
      const ctl = await ns.open(`/cap/ws/${n}/ctl`, { write: true });
      try {
        return await failsWith(async () => ctl.write(enc(req)));
      } finally {
        await clone.close();
      }
    };
    expect(await bad(JSON.stringify({ url: `ws://127.0.0.1:${port + 1}/` }))).toBe("EACCES");
    expect(await bad(JSON.stringify({ url: `http://127.0.0.1:${port}/` }))).toBe("EINVAL");
    expect(await bad("{nope")).toBe("EINVAL");
    expect(await bad("close")).toBe("ENOTCONN");
    const dead = setup({ hosts: "127.0.0.1:9" });
    const clone = await dead.ns.open("/cap/ws/clone", { read: true });
    const n = dec(await readAll(clone)).trim();
    const ctl = await dead.ns.open(`/cap/ws/${n}/ctl`, { write: true });
    expect(await failsWith(async () => ctl.write(enc(JSON.stringify({ url: "ws://127.0.0.1:9/" }))))).toBe("ECONNREFUSED");
    expect(capErrors().map((e) => e.errno)).toEqual(["EACCES", "EINVAL", "EINVAL", "ENOTCONN"]);
    expect(dead.capErrors()[0]).toMatchObject({ cap: "ws", errno: "ECONNREFUSED" });
  });

  it("a secret in a connect header reaches the server for a bound host only", async () => {
    const { ns } = setup({}, { secrets: { K: { value: "ws-secret-42", hosts: [`127.0.0.1:${port}`] } } });
    const c = await connect(ns, { url: `ws://127.0.0.1:${port}/`, headers: { "X-Key": "$secret:K" } });
    expect(seenHeaders.at(-1)).toMatchObject({ "x-key": "ws-secret-42" });
    await c.clone.close();
    const { ns: other } = setup({}, { secrets: { K: { value: "ws-secret-42", hosts: ["example.com"] } } });
    const clone = await other.open("/cap/ws/clone", { read: true });
    const n = dec(await readAll(clone)).trim();
    const ctl = await other.open(`/cap/ws/${n}/ctl`, { write: true });
    expect(await failsWith(async () => ctl.write(enc(JSON.stringify({ url: `ws://127.0.0.1:${port}/`, headers: { "X-Key": "$secret:K" } }))))).toBe("EACCES");
  });

  it("budget: bytes both ways, then EDQUOT", async () => {
    const { ns } = setup({ budget: { bytes: 10 } });
    const c = await connect(ns, { url: `ws://127.0.0.1:${port}/` });
    await c.data.write(enc("12345"));
    expect(dec(await c.data.read(100))).toBe("12345");
    expect(await failsWith(async () => c.data.write(enc("x")))).toBe("EDQUOT");
    await c.clone.close();
  });
});

describe("/cap/ws with pinnedWsConnect (Node: the address is checked where the socket connects)", () => {
  const pinned = (hosts: string, resolve: Resolver) => setup({ hosts }, { resolve, wsConnectFor: pinnedWsConnect });

  it("a name that rebinds to loopback between the check and the connect is refused at the connect", async () => {
    let calls = 0;
    const rebinding: Resolver = async () => (calls++ === 0 ? ["93.184.215.14"] : ["127.0.0.1"]);
    const { ns, capErrors } = pinned("rebind.test", rebinding);
    const before = seenHeaders.length;
    const clone = await ns.open("/cap/ws/clone", { read: true });
    const n = dec(await readAll(clone)).trim();
    const ctl = await ns.open(`/cap/ws/${n}/ctl`, { write: true });
    expect(await failsWith(async () => ctl.write(enc(JSON.stringify({ url: `ws://rebind.test:${port}/` }))))).toBe("EACCES");
    await clone.close();
    expect(calls).toBe(2); // the check, then the connect's own lookup: the second answer is the one judged
    expect(seenHeaders.length).toBe(before); // nothing reached the server
    expect(String(capErrors()[0]!.reason)).toContain("127.0.0.1");
  });

  it("connects to the address the resolver gave, with the name kept in the Host header", async () => {
    const { ns } = pinned(`echo.test:${port}`, async () => ["127.0.0.1"]);
    const c = await connect(ns, { url: `ws://echo.test:${port}/`, headers: { "X-Key": "plain" } });
    expect(seenHeaders.at(-1)).toEqual({ "x-key": "plain", host: `echo.test:${port}` });
    await c.data.write(enc("through the pinned socket"));
    expect(dec(await c.data.read(100))).toBe("through the pinned socket");
    await c.binary.write(new Uint8Array([4, 5]));
    expect([...(await c.binary.read(100))]).toEqual([4, 5]);
    await c.ctl.write(enc("close 4002 bye"));
    expect((await c.data.read(100)).length).toBe(0);
    expect(JSON.parse(await readText(ns, `/cap/ws/${c.n}/status`))).toMatchObject({ state: "closed", closeCode: 4002, closeReason: "bye" });
    await c.clone.close();
  });
});
