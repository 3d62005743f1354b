// A real guest (agents/src/captest.ts, AssemblyScript with the SDK's cap helpers) drives each
// capability file as an agent would: errnos reach it as errnos, replies as JSON, streams whole.
import { readFileSync, existsSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { bytesToHex } from "@noble/hashes/utils.js";
import { generateSecretKey, getPublicKey, verifyEvent } from "nostr-tools/pure";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocketServer } from "ws";
import { loadProgram, type Program } from "../../runtime/modules.ts";
import { spawn } from "../../runtime/process.ts";
import { grantCaps, type CapGrants } from "./grant.ts";
import { capNamespace } from "./testing.ts";

const wasm = join(import.meta.dirname, "../../agents/build/captest.wasm");
let program: Program;
let server: Server;
let port: number;
let wss: WebSocketServer;
let wsPort: number;

beforeAll(async () => {
  if (!existsSync(wasm)) throw new Error(`${wasm} is missing: run npm run build:agents`);
  program = await loadProgram(readFileSync(wasm));
  server = createServer((req, res) => {
    if (req.url === "/page") res.end("<h1>Hello</h1><p>A page for the agent.</p>");
    else if (req.url!.startsWith("/big")) res.end(Buffer.alloc(3_000_000, 0x62));
    else if (req.url === "/post") {
      let n = 0;
      req.on("data", (c: Buffer) => (n += c.length));
      req.on("end", () => res.end(`posted ${n}`));
    } else {
      res.statusCode = 404;
      res.end("nope");
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as AddressInfo).port;
  wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise((r) => wss.once("listening", r));
  wsPort = (wss.address() as AddressInfo).port;
  wss.on("connection", (s) => s.on("message", (d, bin) => s.send(bin ? d : `echo ${d}`)));
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
  for (const c of wss.clients) c.terminate();
  wss.close();
});

async function run(grants: CapGrants, ...args: string[]) {
  const t = capNamespace();
  const g = grantCaps(t.ns, grants);
  let stdout = "";
  let stderr = "";
  const st = await spawn(program, {
    namespace: t.ns, args, limits: { wallTimeMs: 20_000 },
    onStdout: (b) => void (stdout += new TextDecoder().decode(b)), onStderr: (b) => void (stderr += new TextDecoder().decode(b)),
  });
  g.close();
  return { code: st.code, stdout, stderr, errors: t.capErrors() };
}

const http = (): CapGrants => ({ http: { hosts: `127.0.0.1:${port}` } });

describe("a guest using /cap/*", () => {
  it("http: fetches a page, posts a body; a 404 is a reply", async () => {
    const r = await run(http(), "http", `http://127.0.0.1:${port}/page`);
    expect(r).toMatchObject({ code: 0, stdout: `200 http://127.0.0.1:${port}/page\n<h1>Hello</h1><p>A page for the agent.</p>` });
    expect((await run(http(), "http", `http://127.0.0.1:${port}/post`, "POST", "x".repeat(1000))).stdout).toContain("posted 1000");
    expect((await run(http(), "http", `http://127.0.0.1:${port}/none`)).stdout).toBe(`404 http://127.0.0.1:${port}/none\nnope`);
  });

  it("http: a host outside the grant is EACCES in the guest and one line in /logs/events.jsonl", async () => {
    const r = await run(http(), "http", "http://127.0.0.1:1/");
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("captest: http: EACCES\n");
    expect(r.errors).toEqual([expect.objectContaining({ cap: "http", errno: "EACCES" })]);
    const none = await run({}, "http", `http://127.0.0.1:${port}/page`);
    expect(none.stderr).toBe("captest: http: ENOENT\n"); // not granted: not there
  });

  it("http: a body through clone → N/body, bigger than the fetch limit", async () => {
    const r = await run({ http: { hosts: `127.0.0.1:${port}`, maxReply: 1000 } }, "stream", `http://127.0.0.1:${port}/big`);
    expect(r.stdout).toMatch(/^bytes 3000000 \d+\n$/);
    const direct = await run({ http: { hosts: `127.0.0.1:${port}`, maxReply: 1000 } }, "http", `http://127.0.0.1:${port}/big`);
    expect(direct.stderr).toBe("captest: http: EFBIG\n");
  });

  it("llm: the offline model's markers; a spent budget is EDQUOT", async () => {
    const r = await run({ llm: { provider: "offline" } }, "llm", "Tell me about namespaces.");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^SUMMARY: Tell me about namespaces\.\nVERDICT: GO\nREVIEW: ACCEPT\nSCORE: \d\n$/);
    expect(r.stderr).toMatch(/^usage 4 11 stop\n$/);
    const cut = await run({ llm: { provider: "offline", budget: { tokens: 8 } } }, "llm", "one two three four five six");
    expect(cut.stderr).toMatch(/^usage 6 8 length\n$/); // max_tokens = the 8 left
    const spent = await run({ llm: { provider: "offline", budget: { tokens: 3 } } }, "llmloop", "3");
    expect(spent.stderr).toBe("captest: llm: EDQUOT\n");
  });

  it("llm: streams deltas through clone → N/ctl, N/data", async () => {
    const r = await run({ llm: { provider: "offline" } }, "llmstream", "stream this");
    expect(r.code).toBe(0);
    const deltas = r.stdout.trimEnd().split("|").filter(Boolean);
    expect(deltas.length).toBeGreaterThan(3);
    expect(deltas.join("")).toMatch(/^SUMMARY: stream this\nVERDICT: GO\nREVIEW: ACCEPT\nSCORE: \d\n$/);
    const bad = await run({ llm: { provider: "offline", budget: { tokens: 1 } } }, "llmloop", "2");
    expect(bad.stderr).toBe("captest: llm: EDQUOT\n");
  });

  it("ws: sends and receives whole messages, then closes", async () => {
    const r = await run({ ws: { hosts: `127.0.0.1:${wsPort}` } }, "ws", `ws://127.0.0.1:${wsPort}/`, "one", "two words");
    expect(r).toMatchObject({ code: 0, stdout: "echo one\necho two words\n" });
    expect((await run({ ws: { hosts: "example.com" } }, "ws", `ws://127.0.0.1:${wsPort}/`, "x")).stderr).toBe("captest: ws connect: EACCES\n");
  });

  it("nostr: signs with a key the guest never sees", async () => {
    const sk = generateSecretKey();
    const r = await run({ nostr: { secretKey: bytesToHex(sk), relays: [] } }, "sign", "hello from wasm");
    const e = JSON.parse(r.stdout);
    expect(verifyEvent(e)).toBe(true);
    expect(e).toMatchObject({ pubkey: getPublicKey(sk), content: "hello from wasm", kind: 1 });
    expect(r.stdout + r.stderr).not.toContain(bytesToHex(sk));
  });

  it("the process's wall time bounds a capability call that would wait longer", async () => {
    const hang = createServer(() => {});
    await new Promise<void>((r) => hang.listen(0, "127.0.0.1", r));
    const p = (hang.address() as AddressInfo).port;
    const t = capNamespace();
    const g = grantCaps(t.ns, { http: { hosts: `127.0.0.1:${p}`, timeoutMs: 60_000 } });
    const started = Date.now();
    const st = await spawn(program, { namespace: t.ns, args: ["http", `http://127.0.0.1:${p}/`], limits: { wallTimeMs: 500 } });
    g.close();
    hang.closeAllConnections();
    hang.close();
    expect(st.reason).toBe("timeout");
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
