// The marketplace at the edge, end to end. A customer written with NDK (NDKDVMRequest) asks an
// edge-hosted provider for a job. Payments: the local edge (`wrangler dev`) serves a priced provider whose
// wallet connect URI is a workspace secret; the local NWC wallet (a ledger file) answers NIP-47 on
// the edge's own relay; customers are the CLI's job client (agents/host/job.ts) paying through
// their own wallet connection. Also: a customer who never pays, and the edge restarted while a
// job waits for its invoice (the same invoice is asked about after the restart, paid once).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateSecretKey } from "nostr-tools/pure";
import { bytesToHex } from "@noble/hashes/utils.js";
import NDK, { NDKDVMRequest, NDKPrivateKeySigner, type NDKEvent } from "@nostr-dev-kit/ndk";
import { startEdge, type Edge } from "../edge/dev/launch.ts";
import { keySigner, newSecretKey, type Signer } from "../services/nip98.ts";
import { JobFailed, submitJob } from "../agents/host/job.ts";
import { Peer, type Event } from "../agents/host/nostr.ts";
import { LedgerFile, LocalWallet, NwcClient } from "../agents/host/wallet.ts";

let dir: string;
let edge: Edge;
let ledger: LedgerFile;
let wallet: LocalWallet;
const owner = keySigner(newSecretKey());
const closers: Array<{ close(): void }> = [];
const relayUrl = () => `${edge.url.replace(/^http/, "ws")}/relay`;

async function call(who: Signer, method: string, path: string, body?: unknown): Promise<Response> {
  const url = `${edge.url}${path}`;
  const text = body === undefined ? undefined : JSON.stringify(body);
  const auth = await who.authorize(url, method, text === undefined ? undefined : new TextEncoder().encode(text));
  return fetch(url, { method, headers: { authorization: auth, ...(text ? { "content-type": "application/json" } : {}) }, ...(text ? { body: text } : {}) });
}

async function ok(r: Promise<Response>, status = 200): Promise<Record<string, unknown>> {
  const res = await r;
  const text = await res.text();
  expect(res.status, text).toBe(status);
  return JSON.parse(text) as Record<string, unknown>;
}

const startWallet = async () => {
  wallet = new LocalWallet(ledger, [relayUrl()]);
  await wallet.start();
};
const customer = (balance: number) => {
  const c = new NwcClient(ledger.account(`customer-${Math.random().toString(36).slice(2, 8)}`, [relayUrl()], balance));
  closers.push(c);
  return c;
};
const peer = () => {
  const p = new Peer([relayUrl()], generateSecretKey());
  closers.push(p);
  return p;
};

/** A workspace of the owner's with the provider's wallet secret, and a priced provider over it. */
async function pricedProvider(kind: number, extra: Record<string, unknown> = {}): Promise<{ pubkey: string; account: string }> {
  const ws = `pay-${Math.random().toString(36).slice(2, 10)}`;
  await ok(call(owner, "POST", `/w/${ws}`, {}), 201);
  const account = `provider-${ws}`;
  const uri = ledger.account(account, [relayUrl()], 0);
  await ok(call(owner, "PUT", `/w/${ws}/secrets/NWC`, { value: uri, hosts: [new URL(edge.url).host] }));
  const view = await ok(call(owner, "POST", "/api/providers", { name: ws, kind, program: "jobcount", workspace: ws, price: 2000, wallet: "NWC", ...extra }), 201);
  return { pubkey: view.pubkey as string, account };
}
const balance = (name: string) => Object.values(ledger.data.accounts).find((a) => a.name === name)!.balance;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "oanix-edge-pay-"));
  edge = await startEdge({ persistTo: dir });
  ledger = new LedgerFile(join(dir, "ledger.json"));
  await startWallet();
}, 120_000);

afterAll(async () => {
  for (const c of closers) c.close();
  wallet?.stop();
  await edge?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("an NDK customer of an edge provider", () => {
  it("NDKDVMRequest gets the answer of the agent the edge runs, with no provider machine on", async () => {
    const ws = `ndk-${Math.random().toString(36).slice(2, 10)}`;
    await ok(call(owner, "POST", `/w/${ws}`, {}), 201);
    const view = await ok(call(owner, "POST", "/api/providers", { name: ws, kind: 5310, program: "jobcount", workspace: ws }), 201);
    const ndk = new NDK({ explicitRelayUrls: [relayUrl()], signer: new NDKPrivateKeySigner(bytesToHex(generateSecretKey())) });
    await ndk.connect(5000);
    try {
      const req = new NDKDVMRequest(ndk);
      req.kind = 5310;
      req.addInput("the quick brown fox", "text");
      req.addParam("op", "upper");
      await req.sign();
      const feedback: string[] = [];
      const result = new Promise<NDKEvent>((resolve) => {
        const sub = ndk.subscribe({ kinds: [7000, req.kind! + 1000], "#e": [req.id] }, { closeOnEose: false });
        sub.on("event", (e: NDKEvent) => (e.kind === 7000 ? feedback.push(e.tagValue("status") ?? "") : resolve(e)));
      });
      await new Promise((r) => setTimeout(r, 200));
      await req.publish();
      const res = await result;
      expect(res.content).toBe("THE QUICK BROWN FOX");
      expect(res.pubkey).toBe(view.pubkey);
      expect(res.tagValue("e")).toBe(req.id);
      expect(feedback).toContain("processing");
    } finally {
      for (const r of ndk.pool.relays.values()) r.disconnect();
    }
  }, 60_000);
});

describe("edge provider payments (NIP-47, the local wallet on the edge's relay)", () => {
  it("payment-required with an invoice; the customer's wallet pays it; the job runs and the money moved once", async () => {
    const { pubkey, account } = await pricedProvider(5301);
    const pay = customer(5000);
    const seen: string[] = [];
    const job = await submitJob(peer(), { kind: 5301, inputs: [{ data: "paid words are counted", type: "text" }], providers: [pubkey], bid: 2000 }, {
      timeoutMs: 30_000, wallet: pay, budget: 2000, onFeedback: (f) => seen.push(f.status),
    });
    const res = await job.result;
    expect(res.content).toBe("4 words");
    expect(res.event.tags).toContainEqual(["amount", "2000"]);
    expect(seen.slice(0, 2)).toEqual(["payment-required", "processing"]);
    expect(await pay.getBalance()).toEqual({ balance: 3000 });
    expect(balance(account)).toBe(2000);
  }, 60_000);

  it("a customer who does not pay: error feedback when the invoice's time is up, nothing runs, nothing moved", async () => {
    const { pubkey, account } = await pricedProvider(5302, { paymentTimeoutMs: 2000 });
    const seen: string[] = [];
    // No wallet: the customer is told the price and pays nothing.
    const job = await submitJob(peer(), { kind: 5302, inputs: [{ data: "never paid for", type: "text" }], providers: [pubkey] }, {
      timeoutMs: 20_000, onFeedback: (f) => seen.push(f.status),
    });
    const err = await job.result.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JobFailed);
    expect((err as JobFailed).message).toMatch(/invoice of 2000 msats was not paid within 2 s/);
    expect(seen).toEqual(["payment-required", "error"]);
    expect(balance(account)).toBe(0);
  }, 60_000);

  it("a wallet secret that is missing or not bound to the wallet's relay is refused when the provider is added", async () => {
    const ws = `pay-${Math.random().toString(36).slice(2, 10)}`;
    await ok(call(owner, "POST", `/w/${ws}`, {}), 201);
    const add = () => call(owner, "POST", "/api/providers", { name: ws, kind: 5303, program: "jobcount", workspace: ws, price: 10, wallet: "NWC" });
    expect(await (await add()).text()).toMatch(/the wallet secret NWC is not set in workspace/);
    await ok(call(owner, "PUT", `/w/${ws}/secrets/NWC`, { value: ledger.account("unbound", [relayUrl()], 0), hosts: ["example.com"] }));
    const r = await add();
    expect(r.status).toBe(400);
    expect(await r.text()).toMatch(/the wallet secret NWC is not bound to 127\.0\.0\.1:\d+/);
    const noPrice = await call(owner, "POST", "/api/providers", { name: ws, kind: 5303, program: "jobcount", workspace: ws, wallet: "NWC" });
    expect(await noPrice.text()).toMatch(/wallet is for a priced provider/);
  });

  it("the edge restarted while a job waits for its invoice: the same invoice, paid after the restart, runs the job once", async () => {
    const { pubkey, account } = await pricedProvider(5304, { paymentTimeoutMs: 120_000 });
    const p = peer();
    const asked = new Promise<Event>((resolve) => {
      void p.subscribe({ kinds: [7000], authors: [pubkey] }, (e) => {
        if (e.tags.some((t) => t[0] === "status" && t[1] === "payment-required")) resolve(e);
      });
    });
    const req = p.sign({ kind: 5304, tags: [["i", "survives a restart", "text"], ["p", pubkey]], content: "" });
    await p.publish(req);
    const invoice = (await asked).tags.find((t) => t[0] === "amount")![2]!;
    // Every connection goes with the edge; the wallet and the customer come back after it.
    for (const c of closers.splice(0)) c.close();
    wallet.stop();
    await edge.stop();
    edge = await startEdge({ persistTo: dir, port: Number(new URL(edge.url).port) });
    await startWallet();
    expect((await customer(2500).payInvoice(invoice)).preimage).toMatch(/^[0-9a-f]{64}$/);
    const after = peer();
    let answers: Event[] = [];
    for (let i = 0; i < 100 && !answers.some((e) => e.kind === 6304 || (e.kind === 7000 && e.tags.some((t) => t[1] === "error"))); i++) {
      await new Promise((r) => setTimeout(r, 200));
      answers = (await after.query({ "#e": [req.id], authors: [pubkey] }, 3000));
    }
    const result = answers.find((e) => e.kind === 6304);
    expect(result?.content).toBe("3 words");
    // One invoice was asked for, and paid once.
    expect(answers.filter((e) => e.tags.some((t) => t[1] === "payment-required"))).toHaveLength(1);
    expect(balance(account)).toBe(2000);
  }, 120_000);

  it("an edge run hires the priced provider and pays from its workspace's wallet, within its budget; past it, EDQUOT and nothing paid", async () => {
    const { pubkey: _seller, account } = await pricedProvider(5305);
    const buyer = `buy-${Math.random().toString(36).slice(2, 10)}`;
    await ok(call(owner, "POST", `/w/${buyer}`, {}), 201);
    const buyerAccount = `${buyer}-wallet`;
    await ok(call(owner, "PUT", `/w/${buyer}/secrets/NWC`, { value: ledger.account(buyerAccount, [relayUrl()], 5000), hosts: [new URL(edge.url).host] }));
    await ok(call(owner, "PUT", `/w/${buyer}/caps`, { nostr: { wallet: "NWC" }, budgets: { "nostr:msats": 3000 } }));
    const run = (budget: number, wallet = "NWC") => call(owner, "POST", `/w/${buyer}/run`, {
      program: "hire", task: { input: [{ data: "bought at the edge", type: "text" }], params: { kind: "5305" } },
      caps: { nostr: { wallet } }, budgets: { "nostr:msats": budget }, limits: { wallTimeMs: 20_000 },
    });
    const paid = await ok(run(2500));
    expect(paid).toMatchObject({ status: { code: 0 }, result: { content: "4 words" } });
    expect(balance(buyerAccount)).toBe(3000);
    expect(balance(account)).toBe(2000);
    // The invoice (2000) is past a budget of 1000: the agent's read is EDQUOT, nothing is paid.
    const refused = await ok(run(1000));
    expect(refused).toMatchObject({ status: { code: 1 } });
    expect(balance(buyerAccount)).toBe(3000);
    // Past the policy's ceiling, or another wallet than the policy's: refused before anything runs.
    expect(await (await run(3500)).text()).toMatch(/does not allow: budget nostr:msats=3500 \(at most 3000\)/);
    expect(await (await run(100, "OTHER")).text()).toMatch(/does not allow: nostr wallet OTHER/);
  }, 90_000);
});
