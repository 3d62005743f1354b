// /cap/nostr against the project's own relay, run by the local edge (`wrangler dev`, offline):
// identity files, sign, NIP-44 both ways, publish to every relay (one of them dead), query merged
// and newest first, a live subscription, and the inbox.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bytesToHex } from "@noble/hashes/utils.js";
import { decode } from "nostr-tools/nip19";
import * as nip44 from "nostr-tools/nip44";
import { finalizeEvent, generateSecretKey, getPublicKey, verifyEvent, type Event } from "nostr-tools/pure";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { startEdge, type Edge } from "../../edge/dev/launch.ts";
import { loadProgram } from "../../runtime/modules.ts";
import { spawn } from "../../runtime/process.ts";
import { TaskService } from "../task.ts";
import { Namespace } from "../../runtime/namespace.ts";
import { grantCaps, type Granted } from "./grant.ts";
import { ask, askJson, capNamespace, dec, enc, failsWith, readAll, readText } from "./testing.ts";

let edge: Edge;
let dir: string;
let relay: string;
const granted: Granted[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "oanix-cap-nostr-"));
  edge = await startEdge({ persistTo: dir });
  relay = `ws://127.0.0.1:${edge.port}/relay`;
}, 120_000);

afterAll(async () => {
  for (const g of granted) g.close();
  await edge?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function setup(relays = [relay], timeoutMs?: number) {
  const sk = generateSecretKey();
  const t = capNamespace();
  const g = grantCaps(t.ns, { nostr: { secretKey: bytesToHex(sk), relays, timeoutMs } });
  granted.push(g);
  return { ...t, sk, pk: getPublicKey(sk) };
}

describe("/cap/nostr", () => {
  it("pubkey and npub are readable; the secret key is nowhere in the tree", async () => {
    const { ns, sk, pk } = setup();
    expect(await readText(ns, "/cap/nostr/pubkey")).toBe(pk + "\n");
    const npub = (await readText(ns, "/cap/nostr/npub")).trim();
    expect(decode(npub)).toEqual({ type: "npub", data: pk });
    const names = (await ns.readdir("/cap/nostr")).map((e) => e.name).sort();
    expect(names).toEqual(["decrypt", "encrypt", "inbox", "jobs", "npub", "pubkey", "publish", "query", "relays", "sign", "subscriptions"]);
    expect((await ns.readdir("/cap/nostr/jobs"))).toEqual([]);
    expect(await failsWith(async () => ns.open("/cap/nostr/pubkey", { write: true }))).toBe("EACCES");
    const skHex = bytesToHex(sk);
    for (const f of ["pubkey", "npub", "relays"]) expect(await readText(ns, `/cap/nostr/${f}`)).not.toContain(skHex);
  });

  it("sign answers a valid event by the agent; bad templates are EINVAL", async () => {
    const { ns, pk, capErrors } = setup();
    const e = (await askJson(ns, "/cap/nostr/sign", { kind: 1, content: "hi", tags: [["t", "oanix"]], created_at: 1_700_000_000 })) as unknown as Event;
    expect(verifyEvent(e)).toBe(true);
    expect(e).toMatchObject({ pubkey: pk, kind: 1, content: "hi", created_at: 1_700_000_000, tags: [["t", "oanix"]] });
    for (const t of [{ kind: -1, content: "" }, { kind: 1 }, { kind: 1, content: "x", tags: [[1]] }, []]) {
      expect(await failsWith(ask(ns, "/cap/nostr/sign", JSON.stringify(t)))).toBe("EINVAL");
    }
    expect(capErrors()).toHaveLength(4);
  });

  it("NIP-44 v2: encrypt for a peer who decrypts with nostr-tools, and decrypt what the peer sends", async () => {
    const { ns, pk } = setup();
    const peer = generateSecretKey();
    const peerPk = getPublicKey(peer);
    const { ciphertext } = await askJson(ns, "/cap/nostr/encrypt", { pubkey: peerPk, plaintext: "meet at the relay ✓" });
    expect(nip44.decrypt(ciphertext as string, nip44.getConversationKey(peer, pk))).toBe("meet at the relay ✓");
    const back = nip44.encrypt("reply from peer", nip44.getConversationKey(peer, pk));
    expect(await askJson(ns, "/cap/nostr/decrypt", { pubkey: peerPk, ciphertext: back })).toEqual({ pubkey: peerPk, plaintext: "reply from peer" });
    expect(await failsWith(ask(ns, "/cap/nostr/decrypt", JSON.stringify({ pubkey: peerPk, ciphertext: "garbage" })))).toBe("EINVAL");
    expect(await failsWith(ask(ns, "/cap/nostr/encrypt", JSON.stringify({ pubkey: "zz", plaintext: "x" })))).toBe("EINVAL");
  });

  it("publish waits for every relay's OK (a dead relay answers why); query merges newest first", async () => {
    const { ns, pk } = setup([relay, "ws://127.0.0.1:9/relay"], 3000);
    const now = Math.floor(Date.now() / 1000);
    const a = await askJson(ns, "/cap/nostr/publish", { kind: 1, content: "first", created_at: now - 10 });
    expect(a.accepted).toBe(true);
    const relays = a.relays as Record<string, { ok: boolean; message: string }>;
    expect(relays[relay]).toEqual({ ok: true, message: expect.any(String) });
    expect(relays["ws://127.0.0.1:9/relay"]!.ok).toBe(false);
    // An event signed elsewhere is published as it is.
    const other = finalizeEvent({ kind: 1, content: "second", tags: [["p", pk]], created_at: now - 5 }, generateSecretKey());
    expect((await askJson(ns, "/cap/nostr/publish", other)).id).toBe(other.id);
    const forged = { ...other, content: "tampered" };
    expect(await failsWith(ask(ns, "/cap/nostr/publish", JSON.stringify(forged)))).toBe("EINVAL");
    const got = JSON.parse(await ask(ns, "/cap/nostr/query", JSON.stringify([{ authors: [pk] }, { ids: [other.id] }]))) as Event[];
    expect(got.map((e) => e.content)).toEqual(["second", "first"]);
    expect(got.map((e) => e.id)).toEqual([other.id, a.id]);
  });

  it("a query to no live relay is an error, not an empty answer", async () => {
    const { ns, capErrors } = setup(["ws://127.0.0.1:9/relay"], 1000);
    expect(await failsWith(ask(ns, "/cap/nostr/query", JSON.stringify({ kinds: [1] })))).toBe("ECONNREFUSED");
    expect(capErrors()[0]).toMatchObject({ cap: "nostr", file: "query", errno: "ECONNREFUSED" });
  });

  it("subscriptions: clone → N/filter, N/events delivers events as they arrive", async () => {
    const { ns } = setup();
    const author = generateSecretKey();
    const clone = await ns.open("/cap/nostr/subscriptions/clone", { read: true });
    const n = dec(await readAll(clone)).trim();
    const filter = await ns.open(`/cap/nostr/subscriptions/${n}/filter`, { write: true });
    await filter.write(enc(JSON.stringify({ authors: [getPublicKey(author)], kinds: [1] })));
    const events = await ns.open(`/cap/nostr/subscriptions/${n}/events`, { read: true });
    const first = events.read(65536);
    await new Promise((r) => setTimeout(r, 300));
    const { ns: pub } = setup();
    const e = finalizeEvent({ kind: 1, content: "live", tags: [], created_at: Math.floor(Date.now() / 1000) }, author);
    await askJson(pub, "/cap/nostr/publish", e);
    const line = dec(await first);
    expect(JSON.parse(line.trim())).toMatchObject({ id: e.id, content: "live" });
    await events.close();
    await filter.close();
    await clone.close();
  });

  it("inbox: events that p-tag the agent since the mount", async () => {
    const { ns, pk } = setup();
    const h = await ns.open("/cap/nostr/inbox", { read: true });
    const next = h.read(65536);
    const { ns: sender } = setup();
    const sent = await askJson(sender, "/cap/nostr/publish", { kind: 1, content: "for you", tags: [["p", pk]] });
    expect(JSON.parse(dec(await next).trim())).toMatchObject({ id: sent.id, content: "for you" });
    await h.close();
  });

  it("a host may also mount it sign-only: request/reply files still answer", async () => {
    const sk = generateSecretKey();
    const inner = new Namespace();
    granted.push(grantCaps(inner, { nostr: { secretKey: bytesToHex(sk), relays: [] } }));
    const outer = new Namespace().mount("/id", inner, { access: "sign" });
    const signed = (await askJson(outer, "/id/cap/nostr/sign", { kind: 1, content: "x" })) as unknown as Event;
    expect(signed.pubkey).toBe(getPublicKey(sk));
    expect(await failsWith(async () => outer.open("/id/cap/nostr/sign", { read: true }))).toBe("EACCES");
  });

  it("a guest publishes and queries through the SDK helpers", async () => {
    const wasm = join(import.meta.dirname, "../../agents/build/captest.wasm");
    if (!existsSync(wasm)) throw new Error(`${wasm} is missing: run npm run build:agents`);
    const program = await loadProgram(readFileSync(wasm));
    const sk = bytesToHex(generateSecretKey());
    const go = async (...args: string[]) => {
      const t = capNamespace();
      const g = grantCaps(t.ns, { nostr: { secretKey: sk, relays: [relay] } });
      let out = "";
      const st = await spawn(program, { namespace: t.ns, args, onStdout: (b) => void (out += new TextDecoder().decode(b)), limits: { wallTimeMs: 20_000 } });
      g.close();
      return { code: st.code, out };
    };
    const a = await go("publish", "guest note one");
    expect(a.out).toMatch(/^[0-9a-f]{64} accepted\n$/);
    await new Promise((r) => setTimeout(r, 1100)); // a newer created_at
    await go("publish", "guest note two");
    const q = await go("query", getPublicKey(Uint8Array.from(Buffer.from(sk, "hex"))));
    expect(q).toEqual({ code: 0, out: "guest note two\nguest note one\n" });
  });

  it("the summarize demo: fetch a page, summarise it offline, publish the note", async () => {
    const page = createServer((_req, res) => res.end("<html><body><h1>OANIX</h1><p>Agents see only files. Capabilities are mounts.</p></body></html>"));
    await new Promise<void>((r) => page.listen(0, "127.0.0.1", r));
    const port = (page.address() as AddressInfo).port;
    const url = `http://127.0.0.1:${port}/about`;
    const program = await loadProgram(readFileSync(join(import.meta.dirname, "../../agents/build/summarize.wasm")));
    const sk = generateSecretKey();
    const task = new TaskService({ url });
    const t = capNamespace();
    t.ns.mount("/task", task);
    const g = grantCaps(t.ns, { http: { hosts: `127.0.0.1:${port}` }, llm: { provider: "offline" }, nostr: { secretKey: bytesToHex(sk), relays: [relay] } });
    const st = await spawn(program, { namespace: t.ns, limits: { wallTimeMs: 30_000 } });
    g.close();
    page.close();
    expect(st.code).toBe(0);
    const result = task.result() as { ok: boolean; summary: string; note: { id: string; accepted: boolean }; status: number };
    expect(result).toMatchObject({ ok: true, status: 200, note: { accepted: true } });
    expect(result.summary).toContain("Agents see only files. Capabilities are mounts.");
    const { ns: reader } = setup();
    const found = JSON.parse(await ask(reader, "/cap/nostr/query", JSON.stringify({ ids: [result.note.id] }))) as Event[];
    expect(found[0]).toMatchObject({ pubkey: getPublicKey(sk), kind: 1, tags: [["r", url]] });
    expect(found[0]!.content).toContain(result.summary);
  });

  it("the summarize demo fails clearly when the page is outside the grant", async () => {
    const program = await loadProgram(readFileSync(join(import.meta.dirname, "../../agents/build/summarize.wasm")));
    const task = new TaskService({ url: "http://127.0.0.1:1/" });
    const t = capNamespace();
    t.ns.mount("/task", task);
    const g = grantCaps(t.ns, { http: { hosts: "example.com" }, llm: { provider: "offline" } });
    const st = await spawn(program, { namespace: t.ns, limits: { wallTimeMs: 10_000 } });
    g.close();
    expect(st.code).toBe(1);
    expect(task.result()).toMatchObject({ ok: false, step: "fetch", errno: "EACCES" });
    expect(t.capErrors()).toHaveLength(1);
  });
});
