// Payments through NIP-47 on the real local relay: the local wallet (a ledger file), a priced
// provider that makes and checks invoices, customers that pay within a budget or refuse to.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateSecretKey } from "nostr-tools/pure";
import { JobFailed, OverBudget, submitJob } from "./job.ts";
import { Provider } from "./serve.ts";
import { LedgerFile, LocalWallet, NwcClient, NwcError } from "./wallet.ts";
import { agent, collect, newPeer, startRelay, status, type TestRelay } from "./testing.ts";

let relay: TestRelay;
let dir: string;
let ledger: LedgerFile;
let wallet: LocalWallet;
let provider: Provider;
const clients: NwcClient[] = [];
const connect = (uri: string) => {
  const c = new NwcClient(uri);
  clients.push(c);
  return c;
};

beforeAll(async () => {
  relay = await startRelay();
  dir = mkdtempSync(join(tmpdir(), "oanix-wallet-"));
  ledger = new LedgerFile(join(dir, "ledger.json"));
  wallet = new LocalWallet(ledger, [relay.url]);
  await wallet.start();
  provider = new Provider({
    relays: [relay.url], secretKey: generateSecretKey(), programs: new Map([[5100, await agent("jobcount")]]),
    price: 1000, wallet: connect(ledger.account("provider", [relay.url], 0)), paymentPollMs: 100, paymentTimeoutMs: 20_000,
  });
  await provider.start();
}, 120_000);
afterAll(async () => {
  provider?.stop();
  for (const c of clients) c.close();
  wallet?.stop();
  await relay?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("the local NWC wallet", () => {
  it("answers NIP-47: balance, invoices made, looked up and paid once; errors with NIP-47 codes", async () => {
    const a = connect(ledger.account("alice", [relay.url], 5000));
    const b = connect(ledger.account("bob", [relay.url], 0));
    expect(await a.getBalance()).toEqual({ balance: 5000 });
    const inv = await b.makeInvoice(1200, "lunch");
    expect(inv).toMatchObject({ type: "incoming", amount: 1200, description: "lunch" });
    expect(inv.invoice).toMatch(/^lnoanix1[0-9a-f]{64}$/);
    expect((await b.lookupInvoice({ payment_hash: inv.payment_hash })).settled_at).toBeUndefined();
    const paid = await a.payInvoice(inv.invoice);
    expect(paid.preimage).toMatch(/^[0-9a-f]{64}$/);
    const settled = await b.lookupInvoice({ invoice: inv.invoice });
    expect(settled.settled_at).toBeGreaterThan(0);
    expect(settled.preimage).toBe(paid.preimage);
    expect(await a.getBalance()).toEqual({ balance: 3800 });
    expect(await b.getBalance()).toEqual({ balance: 1200 });
    await expect(a.payInvoice(inv.invoice)).rejects.toMatchObject({ code: "PAYMENT_FAILED" });
    const big = await b.makeInvoice(1_000_000);
    await expect(a.payInvoice(big.invoice)).rejects.toMatchObject({ code: "INSUFFICIENT_BALANCE" });
    await expect(a.request("fly", {})).rejects.toMatchObject({ code: "NOT_IMPLEMENTED" });
    await expect(b.makeInvoice(-5)).rejects.toBeInstanceOf(NwcError);
    // A stranger's key has no connection.
    const stranger = connect(ledger.account("x", [relay.url]).replace(/secret=[0-9a-f]+/, `secret=${"11".repeat(32)}`));
    await expect(stranger.getBalance()).rejects.toMatchObject({ code: "UNAUTHORIZED" });
    // The ledger on disk has the same balances.
    expect(new LedgerFile(ledger.path).balances()).toMatchObject({ alice: 3800, bob: 1200 });
  });
});

describe("paid jobs", () => {
  it("payment-required with an invoice; the customer pays within budget; the job runs and the money moved", async () => {
    const before = ledger.balances().provider ?? 0;
    const c = newPeer(relay.url);
    const paidWith = connect(ledger.account("carol", [relay.url], 3000));
    const seen: string[] = [];
    const job = await submitJob(c, { kind: 5100, inputs: [{ data: "worth paying for", type: "text" }], bid: 1000 }, {
      timeoutMs: 30_000, wallet: paidWith, budget: 1500, onFeedback: (f) => seen.push(`${f.status}${f.amount ? ` ${f.amount}` : ""}`),
    });
    const r = await job.result;
    expect(r.content).toBe("3 words");
    expect(r.event.tags).toContainEqual(["amount", "1000"]);
    expect(seen[0]).toBe("payment-required 1000");
    expect(seen).toContain("processing");
    expect(ledger.balances()).toMatchObject({ carol: 2000, provider: before + 1000 });
    c.close();
  });

  it("an invoice over the budget is EDQUOT: nothing is paid and the job never runs", async () => {
    const c = newPeer(relay.url);
    const w = connect(ledger.account("dave", [relay.url], 3000));
    const job = await submitJob(c, { kind: 5100, inputs: [{ data: "too dear", type: "text" }], bid: 1000 }, { timeoutMs: 30_000, wallet: w, budget: 999 });
    const e = await job.result.catch((x) => x);
    expect(e).toBeInstanceOf(OverBudget);
    expect(e.code).toBe("EDQUOT");
    expect(e.message).toMatch(/asks 1000 msats, over the budget of 999/);
    expect(ledger.balances().dave).toBe(3000);
    const evs = await collect(c, { "#e": [job.id] }, () => false, 1500);
    expect(evs.filter((x) => x.kind === 7000).map(status)).toEqual(["payment-required"]);
    expect(evs.some((x) => x.kind === 6100)).toBe(false);
    c.close();
  });

  it("a customer who cannot pay gets the wallet's reason", async () => {
    const c = newPeer(relay.url);
    const w = connect(ledger.account("erin", [relay.url], 10));
    const job = await submitJob(c, { kind: 5100, inputs: [{ data: "broke", type: "text" }] }, { timeoutMs: 30_000, wallet: w, budget: 5000 });
    const e = await job.result.catch((x) => x);
    expect(e).toBeInstanceOf(JobFailed);
    expect(e.message).toMatch(/payment failed: INSUFFICIENT_BALANCE/);
    c.close();
  });

  // A request of the very second a provider starts arrives live and through pickup; the live copy
  // must wait for pickup's knowledge of the invoice it already asked for (it used to ask again).
  it("a paid job picked up after a restart is not charged twice", async () => {
    const sk = generateSecretKey();
    const payTo = connect(ledger.account("frank-provider", [relay.url], 0));
    const crashing = new Provider({
      relays: [relay.url], secretKey: sk, programs: new Map([[5101, await agent("busy")]]), timeoutMs: 60_000,
      price: 700, wallet: payTo, paymentPollMs: 100,
    });
    await crashing.start();
    const c = newPeer(relay.url);
    const w = connect(ledger.account("frank", [relay.url], 5000));
    const job = await submitJob(c, { kind: 5101, inputs: [{ data: "paid once only", type: "text" }], bid: 700 }, { timeoutMs: 30_000, wallet: w, budget: 5000 });
    // Paid, then running (spinning) when the provider dies.
    await collect(c, { "#e": [job.id] }, (es) => es.filter((e) => status(e) === "processing").length > 0, 10_000);
    crashing.stop();
    expect(ledger.balances()).toMatchObject({ frank: 4300, "frank-provider": 700 });
    const restarted = new Provider({
      relays: [relay.url], secretKey: sk, programs: new Map([[5101, await agent("jobcount")]]),
      price: 700, wallet: payTo, paymentPollMs: 100,
    });
    await restarted.start();
    try {
      expect((await job.result).content).toBe("3 words");
      const asks = (await c.query({ kinds: [7000], "#e": [job.id] })).filter((e) => status(e) === "payment-required");
      expect(asks).toHaveLength(1);
      expect(ledger.balances()).toMatchObject({ frank: 4300, "frank-provider": 700 });
    } finally {
      restarted.stop();
      c.close();
    }
  }, 60_000);
});
