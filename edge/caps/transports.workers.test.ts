// The edge's transports for /cap/* one by one (edge/caps/): outbound WebSockets, the relay object
// by RPC and by an in-process socket (subscriptions, inbox), the OpenAI-compatible provider with
// the workspace's key, Workers AI behind a stand-in binding, the cache rules, and the sealing key.
import { env } from "cloudflare:workers";
import { describe, expect, inject, it } from "vitest";
import { finalizeEvent, generateSecretKey, getPublicKey } from "nostr-tools/pure";
import { bytesToHex } from "@noble/hashes/utils.js";
import { Namespace } from "../../runtime/namespace.ts";
import { relayStub } from "../../relay/http.ts";
import { LogsService } from "../../services/logs.ts";
import { Secrets } from "../../services/cap/secrets.ts";
import { call, createWs, errCode, json, newKey } from "../testing.ts";
import { sealKey, seal, unseal } from "../workspace/seal.ts";
import { cacheableRequest, cacheableResponse } from "./fetch.ts";
import { mountEdgeCaps } from "./mount.ts";

const servers = inject("capServers");
const wsHost = new URL(servers.ws).host;
const openaiHost = new URL(servers.openai).host;
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

async function readAll(h: { read(n: number): Uint8Array | Promise<Uint8Array> }): Promise<string> {
  let out = "";
  for (;;) {
    const b = await h.read(65536);
    if (!b.length) return out;
    out += dec(b);
  }
}

async function ask(ns: Namespace, path: string, body: unknown): Promise<string> {
  const h = await ns.open(path, { read: true, write: true });
  try {
    await h.write(enc(typeof body === "string" ? body : JSON.stringify(body)));
    return await readAll(h);
  } finally {
    await h.close();
  }
}

describe("ws at the edge", () => {
  it("a run's /cap/ws reaches a granted echo server through an outbound WebSocket", async () => {
    const a = newKey();
    const ws = await createWs(a);
    await call(a, "PUT", `/w/${ws}/caps`, { ws: [wsHost] });
    const r = await json(call(a, "POST", `/w/${ws}/run`, { program: "captest", args: ["ws", `${servers.ws}/echo`, "hello", "edge"], caps: { ws: [wsHost] } }));
    expect(r.status).toMatchObject({ code: 0, reason: "exit" });
    expect(await (await call(a, "GET", `/w/${ws}/logs/${r.job}.stdout`)).text()).toBe("hello\nedge\n");
    const refused = await json(call(a, "POST", `/w/${ws}/run`, { program: "captest", args: ["ws", "ws://127.0.0.1:9/", "x"], caps: { ws: [wsHost] } }));
    expect(refused.status.code).toBe(1);
    expect(await (await call(a, "GET", `/w/${ws}/logs/${refused.job}.stderr`)).text()).toContain("EACCES");
  });
});

describe("nostr at the edge: the relay object by RPC, subscriptions over an in-process socket", () => {
  const mount = (sk: string) => {
    const ns = new Namespace().mount("/logs", new LogsService());
    const granted = mountEdgeCaps(ns, env, { nostr: { relays: [] } }, { budgets: {}, secrets: {}, nostrKey: sk }, "http://edge.test");
    return { ns, granted };
  };

  it("publish, query, a live subscription and the inbox", async () => {
    const sk = bytesToHex(generateSecretKey());
    const { ns, granted } = mount(sk);
    try {
      const me = (await readAll(await ns.open("/cap/nostr/pubkey", { read: true }))).trim();
      expect(me).toBe(getPublicKey(Uint8Array.from(sk.match(/../g)!.map((h) => parseInt(h, 16)))));
      expect(await readAll(await ns.open("/cap/nostr/relays", { read: true }))).toBe("ws://edge.test/relay\n");
      const tag = crypto.randomUUID();
      const pub = JSON.parse(await ask(ns, "/cap/nostr/publish", { kind: 1, content: "first", tags: [["t", tag]] }));
      expect(pub).toMatchObject({ accepted: true, relays: { "ws://edge.test/relay": { ok: true } } });
      const got = JSON.parse(await ask(ns, "/cap/nostr/query", { "#t": [tag] }));
      expect(got.map((e: { content: string }) => e.content)).toEqual(["first"]);
      // A live subscription: stored events, then one published by someone else, as it arrives.
      const clone = await ns.open("/cap/nostr/subscriptions/clone", { read: true });
      const n = (await readAll(clone)).trim();
      const filter = await ns.open(`/cap/nostr/subscriptions/${n}/filter`, { write: true });
      await filter.write(enc(JSON.stringify({ "#t": [tag] })));
      const events = await ns.open(`/cap/nostr/subscriptions/${n}/events`, { read: true });
      expect(JSON.parse(dec(await events.read(65536))).content).toBe("first");
      const other = generateSecretKey();
      const theirs = finalizeEvent({ kind: 1, content: "from elsewhere", tags: [["t", tag], ["p", me]], created_at: Math.floor(Date.now() / 1000) }, other);
      expect(await relayStub(env.RELAY).publish(theirs)).toEqual({ ok: true, accepted: true, message: "" });
      expect(JSON.parse(dec(await events.read(65536))).content).toBe("from elsewhere");
      // The inbox: events that p-tag the agent since the mount.
      const inbox = await ns.open("/cap/nostr/inbox", { read: true });
      expect(JSON.parse(dec(await inbox.read(65536))).id).toBe(theirs.id);
      for (const h of [inbox, events, filter, clone]) await h.close();
    } finally {
      granted.close();
    }
  });

  it("bad filters and someone else's protected events are refused", async () => {
    const { ns, granted } = mount(bytesToHex(generateSecretKey()));
    try {
      await expect(ask(ns, "/cap/nostr/query", { kinds: ["one"] })).rejects.toMatchObject({ code: "ECONNREFUSED" });
      expect(await relayStub(env.RELAY).query({ kinds: ["one"] }).then(() => "answered", (e: Error) => e.message)).toMatch(/^invalid: kinds/);
      const theirs = finalizeEvent({ kind: 1, content: "mine only", tags: [["-"]], created_at: Math.floor(Date.now() / 1000) }, generateSecretKey());
      const r = JSON.parse(await ask(ns, "/cap/nostr/publish", theirs));
      expect(r.accepted).toBe(false);
      expect(r.relays["ws://edge.test/relay"].message).toMatch(/^restricted:/);
      // Its own protected events go through.
      expect(JSON.parse(await ask(ns, "/cap/nostr/publish", { kind: 1, content: "protected", tags: [["-"]] })).accepted).toBe(true);
    } finally {
      granted.close();
    }
  });
});

describe("llm at the edge", () => {
  it("openai:URL with the workspace's OANIX_LLM_KEY, sent only because it is bound to that host", async () => {
    const a = newKey();
    const ws = await createWs(a);
    const spec = `openai:${servers.openai}#stub-small`;
    expect((await call(a, "POST", `/w/${ws}/run`, { program: "captest", args: ["llm", "x"], caps: { llm: spec } })).status).toBe(403);
    await call(a, "PUT", `/w/${ws}/caps`, { llm: [`openai:${servers.openai}`] });
    const key = "llm-key-" + crypto.randomUUID();
    await call(a, "PUT", `/w/${ws}/secrets/OANIX_LLM_KEY`, { value: key, hosts: [openaiHost] });
    const r = await json(call(a, "POST", `/w/${ws}/run`, { program: "captest", args: ["llm", "edge models answer"], caps: { llm: spec } }));
    expect(r.status.code).toBe(0);
    expect(await (await call(a, "GET", `/w/${ws}/logs/${r.job}.stdout`)).text()).toContain("answer models edge");
    const seen = (await (await fetch(`${servers.http}/openai-requests`)).json()) as { authorization?: string; body: { model?: string } }[];
    expect(seen.at(-1)).toMatchObject({ authorization: `Bearer ${key}`, body: { model: "stub-small" } });
  });

  it("workers-ai: refused with ENOTSUP where the edge has no AI binding (nothing created); the provider runs behind a stand-in binding", async () => {
    const a = newKey();
    const ws = await createWs(a);
    await call(a, "PUT", `/w/${ws}/caps`, { llm: ["workers-ai"] });
    const r = await call(a, "POST", `/w/${ws}/run`, { program: "captest", args: ["llm", "x"], caps: { llm: "workers-ai" } });
    expect(r.status).toBe(501);
    expect(await errCode(r)).toBe("ENOTSUP");
    expect((await json(call(a, "GET", `/w/${ws}/jobs`))).jobs).toEqual([]);
    const asked: { model: string; inputs: Record<string, unknown> }[] = [];
    const AI = { run: async (model: string, inputs: Record<string, unknown>) => (asked.push({ model, inputs }), { response: "from workers ai", usage: { prompt_tokens: 3, completion_tokens: 3 } }) };
    const ns = new Namespace().mount("/logs", new LogsService());
    mountEdgeCaps(ns, { ...env, AI }, { llm: "workers-ai#@cf/test/model" }, { budgets: { "llm:tokens": 100 }, secrets: {} }, "http://edge.test");
    expect(JSON.parse(await ask(ns, "/cap/llm/complete", "hi"))).toMatchObject({ text: "from workers ai", model: "@cf/test/model" });
    expect(asked[0]).toMatchObject({ model: "@cf/test/model", inputs: { max_tokens: 100 } });
  });
});

describe("the cache rules and the sealing key", () => {
  it("only plain GETs are looked up; only responses that say so are stored", () => {
    const none = new Secrets();
    const s = new Secrets({ K: { value: "hush-hush", hosts: ["example.com"] } });
    expect(cacheableRequest("https://example.com/", {}, none)).toBe(true);
    expect(cacheableRequest("https://example.com/", { headers: { "user-agent": "agent" } }, none)).toBe(true);
    expect(cacheableRequest("https://example.com/", { method: "POST", body: "x" }, none)).toBe(false);
    expect(cacheableRequest("https://example.com/", { headers: { authorization: "Bearer x" } }, none)).toBe(false);
    expect(cacheableRequest("https://example.com/", { headers: { accept: "text/html" } }, none)).toBe(false);
    expect(cacheableRequest("https://example.com/", { headers: { "user-agent": "hush-hush" } }, s)).toBe(false);
    const res = (headers: Record<string, string>, status = 200) => new Response("x", { status, headers });
    expect(cacheableResponse(res({ "cache-control": "public, max-age=60" }))).toBe(true);
    expect(cacheableResponse(res({ "cache-control": "s-maxage=10" }))).toBe(true);
    expect(cacheableResponse(res({}))).toBe(false);
    expect(cacheableResponse(res({ "cache-control": "max-age=0" }))).toBe(false);
    expect(cacheableResponse(res({ "cache-control": "max-age=60, no-store" }))).toBe(false);
    expect(cacheableResponse(res({ "cache-control": "private, max-age=60" }))).toBe(false);
    expect(cacheableResponse(res({ "cache-control": "max-age=60", "set-cookie": "a=b" }))).toBe(false);
    expect(cacheableResponse(res({ "cache-control": "max-age=60", vary: "Accept-Language" }))).toBe(false);
    expect(cacheableResponse(res({ "cache-control": "max-age=60", vary: "accept-encoding" }))).toBe(true);
    expect(cacheableResponse(res({ "cache-control": "max-age=60" }, 404))).toBe(false);
  });

  it("no SECRETS_KEY (or a short one) is a clear ENOTSUP; a sealed value opens only where it was sealed", async () => {
    expect(() => sealKey(undefined)).toThrow(/ENOTSUP: this edge keeps no secrets: the Worker secret SECRETS_KEY is not set/);
    expect(() => sealKey("short")).toThrow(/ENOTSUP: SECRETS_KEY is too short/);
    const k = await sealKey("k".repeat(40));
    const s = await seal(k, "the value", "ws-a\0NAME");
    expect(new TextDecoder().decode(s.ct)).not.toContain("the value");
    expect(await unseal(k, s, "ws-a\0NAME", "x")).toBe("the value");
    await expect(unseal(k, s, "ws-b\0NAME", "secret NAME")).rejects.toMatchObject({ code: "EIO" });
    await expect(unseal(await sealKey("j".repeat(40)), s, "ws-a\0NAME", "secret NAME")).rejects.toMatchObject({ code: "EIO" });
    const again = await seal(k, "the value", "ws-a\0NAME");
    expect(again.iv).not.toEqual(s.iv);
  });
});
