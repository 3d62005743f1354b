// Capabilities for agents served at the edge: a provider's `caps` and `budgets` are checked
// against its workspace's cap policy when it is added and again at every job, mounted for each
// job's run with the whole budget, and `url` inputs are fetched within the http grant. Real relay
// (nostr-tools customers through the Worker), real local servers (edge/dev/cap-servers.ts).
import { describe, expect, inject, it } from "vitest";
import { env } from "cloudflare:workers";
import { verifyEvent } from "nostr-tools/pure";
import { FsError } from "../../runtime/errors.ts";
import { relayStub } from "../../relay/http.ts";
import { listJobs } from "../d1.ts";
import { call, createWs, json, newKey } from "../testing.ts";
import { checkProvider } from "./config.ts";
import { MAX_INPUT_BYTES } from "./inputs.ts";
import { addProvider, ask, kindsFrom, nextKind, summary } from "./testing.ts";

kindsFrom(5700); // apart from provider.workers.test.ts's kinds: the relay is one

const servers = inject("capServers");
const httpHost = new URL(servers.http).host; // 127.0.0.1:PORT
const uniq = () => crypto.randomUUID().slice(0, 8);
const hits = async (path: string): Promise<number> => Number(await (await fetch(`${servers.http}/hits?path=${encodeURIComponent(path)}`)).text());
const i = (data: string, type = "url") => ["i", data, type];

describe("edge provider with capabilities: a job served with /cap/*", () => {
  it("summarize, granted http to the page's host, llm offline and the edge's relay: a url input is fetched for it, and each job has the whole budget", async () => {
    const { owner, ws, cfg, pubkey, view } = await addProvider(
      { program: "summarize", caps: { http: [httpHost], llm: "offline", nostr: true }, budgets: { "nostr:calls": 1, "http:calls": 1 } },
      { http: [httpHost], nostr: true },
    );
    // nostr names the edge's relay: by default the edge as the POST reached it.
    expect(view).toMatchObject({ caps: { http: [httpHost], llm: "offline", nostr: { relays: [] } }, budgets: { "nostr:calls": 1 }, origin: "http://edge.test" });
    const identity = (await json(call(owner, "GET", `/w/${ws}/caps`))).identity.pubkey as string;
    for (const n of [1, 2]) {
      const path = `/page?${uniq()}`;
      const { result, events, relay } = await ask(cfg.kind, [i(`${servers.http}${path}`)], pubkey, { ms: 20_000 });
      relay.close();
      // Each job publishes one note under a budget of one call: the second works only if it starts afresh.
      expect(summary(events), `job ${n}`).toEqual(["processing", String(cfg.kind + 1000)]);
      expect(result!.content).toContain("SUMMARY:");
      expect(await hits(path)).toBe(1);
      const [job] = (await listJobs(env.DB, ws)).filter((j) => j.kind === `nip90:${cfg.kind}` && (j.input as { request: string }).request === JSON.parse(result!.tags[0]![1]!).id);
      expect(job).toMatchObject({ state: "succeeded" });
      // The agent read the page from its spec (fetched by the provider: its own http budget untouched).
      const spec = await json(call(owner, "GET", `/w/${ws}/task/${job!.id}/spec.json`));
      expect(spec.input).toEqual([{ type: "url", data: expect.stringContaining("OANIX at the edge"), ref: `${servers.http}${path}` }]);
      const res = await json(call(owner, "GET", `/w/${ws}/task/${job!.id}/result.json`));
      expect(res).toMatchObject({ ok: true, url: `${servers.http}${path}`, note: { accepted: true } });
      // The note is on the edge's relay, signed by the workspace's agent identity.
      const [note] = await relayStub(env.RELAY).query({ ids: [res.note.id] });
      expect(verifyEvent(note!)).toBe(true);
      expect(note!.pubkey).toBe(identity);
    }
  });

  it("url inputs: outside the grant, redirected outside it or over 1 MiB, error feedback and nothing run; without http they pass through as sent", async () => {
    const { cfg, pubkey, ws } = await addProvider({ caps: { http: [httpHost] } }, { http: [httpHost] });
    const far = "http://127.0.0.2:9/x";
    const out = await ask(cfg.kind, [i(far), ["param", "op", "upper"]], pubkey);
    out.relay.close();
    expect(out.error?.content).toBe(`input url ${far}: EACCES: 127.0.0.2:9 is not in the grant`);
    const hop = `${servers.http}/to?url=${encodeURIComponent(far)}&${uniq()}`;
    const redirected = await ask(cfg.kind, [i(hop), ["param", "op", "upper"]], pubkey);
    redirected.relay.close();
    expect(redirected.error?.content).toBe(`input url ${hop}: redirect from ${httpHost}: EACCES: 127.0.0.2:9 is not in the grant`);
    const big = `${servers.http}/big?bytes=${MAX_INPUT_BYTES + 1}&${uniq()}`;
    const tooBig = await ask(cfg.kind, [i(big)], pubkey);
    tooBig.relay.close();
    expect(tooBig.error?.content).toBe(`input url ${big}: over ${MAX_INPUT_BYTES} bytes`);
    expect((await listJobs(env.DB, ws)).filter((j) => j.kind === `nip90:${cfg.kind}`)).toEqual([]);
    // Granted: the page is the input (jobcount upper-cases it).
    const page = `${servers.http}/page?${uniq()}`;
    const got = await ask(cfg.kind, [i(page), ["param", "op", "upper"]], pubkey);
    got.relay.close();
    expect(got.result?.content).toContain("OANIX AT THE EDGE");
    // No http granted: the URL itself is the input, and nothing is fetched.
    const plain = await addProvider();
    const path = `/page?${uniq()}`;
    const through = await ask(plain.cfg.kind, [i(`${servers.http}${path}`), ["param", "op", "upper"]], plain.pubkey);
    through.relay.close();
    expect(through.result?.content).toBe(`${servers.http}${path}`.toUpperCase());
    expect(await hits(path)).toBe(0);
  });
});

describe("edge provider with capabilities: the workspace's cap policy", () => {
  it("caps beyond the policy are refused when the provider is added (403 EACCES naming them), and nothing is added", async () => {
    const owner = newKey();
    const ws = await createWs(owner);
    expect((await call(owner, "PUT", `/w/${ws}/caps`, { http: [httpHost], budgets: { "http:calls": 5 } })).status).toBe(200);
    const cfg = { name: `c-${uniq()}`, kind: nextKind(), program: "summarize", workspace: ws };
    const r = await call(owner, "POST", "/api/providers", { ...cfg, caps: { http: [httpHost, "example.com"], nostr: true, llm: "offline" }, budgets: { "http:calls": 50 } });
    expect(r.status).toBe(403);
    const e = (await json(r)).error;
    expect(e.code).toBe("EACCES");
    expect(e.message).toContain(`the cap policy of workspace ${ws} does not allow: http example.com; nostr; budget http:calls=50 (at most 5)`);
    // Malformed caps are 400, as a run's are.
    for (const bad of [{ caps: { http: "x" } }, { caps: { llm: "gpt" } }, { caps: { shell: true } }, { caps: { llm: "offline" }, budgets: { "http:calls": 1 } }, { caps: { http: [httpHost] }, origin: "ftp://x" }]) {
      const res = await call(owner, "POST", "/api/providers", { ...cfg, ...bad });
      expect(res.status, JSON.stringify(bad)).toBe(400);
      expect((await json(res)).error.code).toBe("EINVAL");
    }
    expect((await json(call(owner, "GET", "/api/providers"))).providers).toEqual([]);
    expect(await relayStub(env.RELAY).listAgents(cfg.kind)).toEqual([]);
    // Within the policy it is added.
    expect((await call(owner, "POST", "/api/providers", { ...cfg, caps: { http: [httpHost], llm: "offline" } })).status).toBe(201);
  });

  it("wrangler.toml's providers name the edge's origin themselves when granted nostr", () => {
    const cfg = { name: "x", kind: 5100, program: "summarize", workspace: "w", caps: { nostr: true } };
    expect(() => checkProvider(cfg)).toThrow(FsError);
    expect(() => checkProvider(cfg)).toThrow(/origin .* is required with caps.nostr/);
    expect(checkProvider({ ...cfg, origin: "https://edge.example.com/ignored" }).origin).toBe("https://edge.example.com");
  });

  it("a policy narrowed after the provider was added: the next job gets error feedback naming it, and nothing is fetched or run", async () => {
    const { owner, ws, cfg, pubkey } = await addProvider({ caps: { http: [httpHost] } }, { http: [httpHost] });
    expect((await call(owner, "PUT", `/w/${ws}/caps`, {})).status).toBe(200);
    const path = `/page?${uniq()}`;
    const { events, error, relay } = await ask(cfg.kind, [i(`${servers.http}${path}`)], pubkey);
    relay.close();
    expect(summary(events)).toEqual(["processing", `error: ${error!.content}`]);
    expect(error!.content).toBe(`provider error: the cap policy of workspace ${ws} does not allow: http ${httpHost}. Its owner sets the policy with PUT /w/${ws}/caps`);
    expect(await hits(path)).toBe(0);
    expect((await listJobs(env.DB, ws)).filter((j) => j.kind === `nip90:${cfg.kind}`)).toEqual([]);
    // Widened again: served.
    expect((await call(owner, "PUT", `/w/${ws}/caps`, { http: [httpHost] })).status).toBe(200);
    const again = await ask(cfg.kind, [i(`${servers.http}${path}`)], pubkey);
    again.relay.close();
    expect(again.result?.content).toMatch(/^\d+ words$/);
    expect(await hits(path)).toBe(1);
  });
});
