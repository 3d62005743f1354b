// Capabilities at the edge (issue 9): runs granted /cap/* by POST /w/NAME/run within the owner's
// cap policy, against real local servers (edge/dev/cap-servers.ts): http through the Worker's
// fetch and the Cache API, nostr through the relay object, ws outbound, llm offline and OpenAI-
// compatible; secrets sealed in the workspace and substituted, never echoed; budgets.
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, inject, it } from "vitest";
import { verifyEvent, type Event } from "nostr-tools/pure";
import { relayStub } from "../../relay/http.ts";
import { call, createWs, errCode, json, newKey, stub } from "../testing.ts";

const servers = inject("capServers");
const httpHost = new URL(servers.http).host; // 127.0.0.1:PORT
const uniq = () => crypto.randomUUID().slice(0, 8);
const seenBy = async (path: string): Promise<Record<string, string>> => (await fetch(`${servers.http}/seen?path=${encodeURIComponent(path)}`)).json();
const hits = async (path: string): Promise<number> => Number(await (await fetch(`${servers.http}/hits?path=${encodeURIComponent(path)}`)).text());

type Owner = ReturnType<typeof newKey>;
const setPolicy = (a: Owner, ws: string, policy: Record<string, unknown>) => call(a, "PUT", `/w/${ws}/caps`, policy);
const run = (a: Owner, ws: string, body: Record<string, unknown>) => call(a, "POST", `/w/${ws}/run`, body);
const logOf = async (a: Owner, ws: string, job: string, stream: string) => (await call(a, "GET", `/w/${ws}/logs/${job}.${stream}`)).text();

describe("the cap policy (PUT/GET /w/NAME/caps)", () => {
  it("nothing but the offline model until the owner sets a policy; a run beyond it is 403 naming what was refused, and creates nothing", async () => {
    const a = newKey();
    const ws = await createWs(a);
    const view = await json(call(a, "GET", `/w/${ws}/caps`));
    expect(view).toMatchObject({ set: false, identity: null, policy: { http: [], ws: [], nostr: null, llm: [], budgets: {} } });
    const refused = await run(a, ws, { program: "captest", args: ["http", `${servers.http}/page`], caps: { http: [httpHost], nostr: true, llm: "openai:https://api.example.com/v1" } });
    expect(refused.status).toBe(403);
    const e = ((await refused.json()) as { error: { code: string; message: string } }).error;
    expect(e.code).toBe("EACCES");
    expect(e.message).toContain(`http ${httpHost}`);
    expect(e.message).toContain("nostr");
    expect(e.message).toContain("llm openai:https://api.example.com/v1");
    expect((await json(call(a, "GET", `/w/${ws}/jobs`))).jobs).toEqual([]);
    // The offline model needs no policy.
    const ok = await json(run(a, ws, { program: "captest", args: ["llm", "hello edge"], caps: { llm: "offline" } }));
    expect(ok.status).toMatchObject({ code: 0, reason: "exit" });
    expect(await logOf(a, ws, ok.job, "stdout")).toContain("SUMMARY:");
  });

  it("only the owner sets or reads it; bad policies and bad caps are 400 and change nothing", async () => {
    const a = newKey(), b = newKey();
    const ws = await createWs(a);
    const tok = (await json(call(a, "POST", `/w/${ws}/grants`, { prefix: "", rights: "rw" }))).token as string;
    expect((await setPolicy(b, ws, { http: ["*"] })).status).toBe(403);
    expect((await call(tok, "PUT", `/w/${ws}/caps`, { http: ["*"] })).status).toBe(403);
    expect((await call(b, "GET", `/w/${ws}/caps`)).status).toBe(403);
    for (const bad of [{ http: "example.com" }, { http: ["user@example.com"] }, { llm: ["gpt"] }, { nostr: { relays: ["http://x"] } }, { budgets: { "llm:dollars": 5 } }, { budgets: { "llm:tokens": -1 } }, { shell: true }]) {
      const r = await setPolicy(a, ws, bad);
      expect(r.status, JSON.stringify(bad)).toBe(400);
      expect(await errCode(r)).toBe("EINVAL");
    }
    expect((await json(call(a, "GET", `/w/${ws}/caps`))).set).toBe(false);
    for (const caps of [{ http: "x" }, { llm: "gpt-4" }, { nostr: "yes" }, { fs: true }]) {
      expect((await run(a, ws, { program: "hello", caps })).status, JSON.stringify(caps)).toBe(400);
    }
    expect((await run(a, ws, { program: "hello", caps: { llm: "offline" }, budgets: { "http:calls": 1 } })).status).toBe(400);
    expect((await json(call(a, "GET", `/w/${ws}/jobs`))).jobs).toEqual([]);
    // A grantee with write access may run within the owner's policy.
    expect((await setPolicy(a, ws, { http: [httpHost] })).status).toBe(200);
    const byToken = await json(call(tok, "POST", `/w/${ws}/run`, { program: "captest", args: ["http", `${servers.http}/page`], caps: { http: [httpHost] } }));
    expect(byToken.status.code).toBe(0);
  });
});

describe("a run with capabilities", () => {
  it("the summarize agent fetches a page, asks the offline model and publishes the summary to the edge's relay, as the workspace's agent identity", async () => {
    const a = newKey();
    const ws = await createWs(a);
    const set = await json(setPolicy(a, ws, { http: [httpHost], nostr: true }));
    expect(set.identity.pubkey).toMatch(/^[0-9a-f]{64}$/);
    expect(set.identity.npub).toMatch(/^npub1/);
    const url = `${servers.http}/page?${uniq()}`;
    const r = await run(a, ws, { program: "summarize", task: { url }, caps: { http: [httpHost], llm: "offline", nostr: true } });
    expect(r.status).toBe(200);
    const out = await json(r);
    expect(out.status).toMatchObject({ code: 0, reason: "exit" });
    expect(out.result).toMatchObject({ ok: true, status: 200, note: { accepted: true } });
    expect(out.result.summary).toContain("SUMMARY:");
    // The note is on the relay, signed by the workspace's agent key.
    const events = (await relayStub(env.RELAY).query({ ids: [out.result.note.id] })) as Event[];
    expect(events).toHaveLength(1);
    expect(verifyEvent(events[0]!)).toBe(true);
    expect(events[0]!.pubkey).toBe(set.identity.pubkey);
    expect(events[0]!.content).toContain(url);
    // The same identity next time (made once, kept sealed).
    expect((await json(call(a, "GET", `/w/${ws}/caps`))).identity.pubkey).toBe(set.identity.pubkey);
  });

  it("hosts outside the grant, loopback under *, and redirects to ungranted hosts are EACCES in the run", async () => {
    const a = newKey();
    const ws = await createWs(a);
    await setPolicy(a, ws, { http: ["*", httpHost] });
    // Under "*" alone loopback is refused by its spelling.
    const star = await json(run(a, ws, { program: "captest", args: ["http", `${servers.http}/page`], caps: { http: ["*"] } }));
    expect(star.status.code).toBe(1);
    expect(await logOf(a, ws, star.job, "stderr")).toContain("EACCES");
    expect(await logOf(a, ws, star.job, "events")).toContain('"cap.error"');
    // A redirect from a granted host to one outside the grant.
    const hop = await json(run(a, ws, { program: "captest", args: ["http", `${servers.http}/to?url=${encodeURIComponent("http://127.0.0.2:9/")}`], caps: { http: [httpHost] } }));
    expect(hop.status.code).toBe(1);
    expect(await logOf(a, ws, hop.job, "stderr")).toContain("EACCES");
    // Asking for loopback by a port the policy does not name is refused before the run.
    const other = await run(a, ws, { program: "hello", caps: { http: ["127.0.0.1:1"] } });
    expect(other.status).toBe(403);
  });

  it("budgets: a run past its llm budget gets EDQUOT; the policy's budget is the ceiling and the default", async () => {
    const a = newKey();
    const ws = await createWs(a);
    const asked = await json(run(a, ws, { program: "captest", args: ["llmloop", "5"], caps: { llm: "offline" }, budgets: { "llm:calls": 2 } }));
    expect(asked.status.code).toBe(1);
    expect(await logOf(a, ws, asked.job, "stderr")).toContain("captest: llm: EDQUOT");
    await setPolicy(a, ws, { budgets: { "llm:calls": 3 } });
    expect((await run(a, ws, { program: "captest", args: ["llmloop", "5"], caps: { llm: "offline" }, budgets: { "llm:calls": 4 } })).status).toBe(403);
    const dflt = await json(run(a, ws, { program: "captest", args: ["llmloop", "3"], caps: { llm: "offline" } }));
    expect(dflt.status.code).toBe(0);
    const over = await json(run(a, ws, { program: "captest", args: ["llmloop", "4"], caps: { llm: "offline" } }));
    expect(over.status.code).toBe(1);
    expect(await logOf(a, ws, over.job, "events")).toContain("EDQUOT");
  });

  it("http GETs go through the Cache API: a cacheable plain GET reaches the origin once; no-store every time", async () => {
    const a = newKey();
    const ws = await createWs(a);
    await setPolicy(a, ws, { http: [httpHost] });
    const t = uniq();
    const cached = await json(run(a, ws, { program: "captest", args: ["fetchloop", `${servers.http}/cached?${t}`, "3"], caps: { http: [httpHost] } }));
    expect(cached.status.code).toBe(0);
    expect(await hits(`/cached?${t}`)).toBe(1);
    const nostore = await json(run(a, ws, { program: "captest", args: ["fetchloop", `${servers.http}/nostore?${t}`, "3"], caps: { http: [httpHost] } }));
    expect(nostore.status.code).toBe(0);
    expect(await hits(`/nostore?${t}`)).toBe(3);
  });
});

describe("the secrets store (/w/NAME/secrets)", () => {
  it("PUT answers the name and hosts only; GET lists names and hosts; the value is sealed at rest and never in SQLite", async () => {
    const a = newKey(), b = newKey();
    const ws = await createWs(a);
    const value = "sk-live-" + uniq() + uniq();
    const put = await call(a, "PUT", `/w/${ws}/secrets/API_KEY`, { value, hosts: [httpHost] });
    expect(put.status).toBe(200);
    const body = await put.text();
    expect(JSON.parse(body)).toEqual({ name: "API_KEY", hosts: [httpHost] });
    expect(body).not.toContain(value);
    const list = await call(a, "GET", `/w/${ws}/secrets`);
    const listed = await list.text();
    expect(listed).not.toContain(value);
    expect(JSON.parse(listed).secrets).toMatchObject([{ name: "API_KEY", hosts: [httpHost] }]);
    expect((await call(b, "GET", `/w/${ws}/secrets`)).status).toBe(403);
    expect((await call(b, "PUT", `/w/${ws}/secrets/X`, { value: "v", hosts: ["example.com"] })).status).toBe(403);
    for (const bad of [{ value: "v" }, { value: "v", hosts: [] }, { value: 5, hosts: ["a.com"] }, { value: "", hosts: ["a.com"] }, { value: "v", hosts: ["a.com/x"] }]) {
      expect((await call(a, "PUT", `/w/${ws}/secrets/BAD`, bad)).status, JSON.stringify(bad)).toBe(400);
    }
    expect((await call(a, "PUT", `/w/${ws}/secrets/1bad`, { value: "v", hosts: ["a.com"] })).status).toBe(400);
    // Nothing in the object's SQLite holds the value, in any table, text or blob.
    const needle = new TextEncoder().encode(value);
    const found = await runInDurableObject(stub(ws), (_i, state) => {
      const sql = state.storage.sql;
      const tables = sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '_cf_%' AND name NOT LIKE 'sqlite_%'").toArray().map((t) => t.name);
      const hitsIn: string[] = [];
      const wsName = new TextEncoder().encode(ws);
      let control = false; // the same scan finds a value that is stored in the clear (the workspace's name)
      for (const t of tables) {
        for (const row of sql.exec(`SELECT * FROM "${t}"`).raw()) {
          for (const cell of row) {
            const bytes = typeof cell === "string" ? new TextEncoder().encode(cell) : cell instanceof ArrayBuffer ? new Uint8Array(cell) : null;
            if (bytes && indexOf(bytes, needle) >= 0) hitsIn.push(t);
            if (bytes && indexOf(bytes, wsName) >= 0) control = true;
          }
        }
      }
      return { tables, hitsIn, control };
    });
    expect(found.control).toBe(true);
    expect(found.tables).toContain("secrets");
    expect(found.hitsIn).toEqual([]);
    expect((await call(a, "DELETE", `/w/${ws}/secrets/API_KEY`)).status).toBe(200);
    expect((await call(a, "DELETE", `/w/${ws}/secrets/API_KEY`)).status).toBe(404);
    expect(JSON.parse(await (await call(a, "GET", `/w/${ws}/secrets`)).text()).secrets).toEqual([]);
  });

  it("a run's $secret:NAME reaches the bound host, comes back scrubbed, and is refused for other hosts", async () => {
    const a = newKey();
    const ws = await createWs(a);
    const value = "tok-" + uniq() + uniq();
    await call(a, "PUT", `/w/${ws}/secrets/TOKEN`, { value, hosts: [httpHost] });
    await setPolicy(a, ws, { http: [httpHost, "example.com"] });
    const t = uniq();
    const r = await json(run(a, ws, { program: "captest", args: ["httph", `${servers.http}/headers?${t}`, "authorization", "Bearer $secret:TOKEN"], caps: { http: [httpHost] } }));
    expect(r.status.code).toBe(0);
    const out = await logOf(a, ws, r.job, "stdout");
    // The server got the value; its echo of it reaches the agent as the reference only.
    expect((await seenBy(`/headers?${t}`)).authorization).toBe(`Bearer ${value}`);
    expect(out).toContain('"authorization":"Bearer $secret:TOKEN"');
    expect(out).not.toContain(value);
    for (const s of ["stderr", "events"]) expect(await logOf(a, ws, r.job, s)).not.toContain(value);
    // Requests carrying credentials are never answered from (or put in) the cache.
    await json(run(a, ws, { program: "captest", args: ["httph", `${servers.http}/headers?${t}`, "authorization", "Bearer $secret:TOKEN"], caps: { http: [httpHost] } }));
    expect(await hits(`/headers?${t}`)).toBe(2);
    // Not bound to this host: EACCES, naming the secret and never its value.
    const elsewhere = await json(run(a, ws, { program: "captest", args: ["httph", "http://example.com/", "authorization", "$secret:TOKEN"], caps: { http: ["example.com"] } }));
    expect(elsewhere.status.code).toBe(1);
    const events = await logOf(a, ws, elsewhere.job, "events");
    expect(events).toContain("secret TOKEN is not bound to example.com");
    expect(events).not.toContain(value);
  });
});

function indexOf(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
