// NIP-47 Nostr Wallet Connect in Node: the client over this process's sockets (what a provider uses
// to make and check invoices and a customer to pay them; the client itself is nwc.ts's) and a
// small local wallet service that answers NIP-47 on a relay, keeping
// its accounts and invoices in a ledger file: the stand-in for Lightning, behind the protocol
// every NWC wallet speaks.
//
// The wire (the URI, requests and answers) is nwc.ts's.
//
// The local wallet's invoices are `lnoanix1<payment hash>`: only this wallet can pay them (there is
// no Lightning here); amounts are msats and the ledger moves them between accounts atomically.
import { randomBytes } from "node:crypto";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { generateSecretKey, getPublicKey } from "nostr-tools/pure";
import { Peer, decrypt, encrypt, now, secretBytes, tag, type Cipher, type Event } from "./nostr.ts";
import { NWC_INFO, NWC_REQUEST, NWC_RESPONSE, NwcError, WalletClient, parseWalletUri, type Invoice } from "./nwc.ts";

export { NWC_INFO, NWC_REQUEST, NWC_RESPONSE, NwcError, WalletClient, parseWalletUri, type Invoice };

const METHODS = ["pay_invoice", "make_invoice", "lookup_invoice", "get_balance", "get_info"];

// ---- the client ------------------------------------------------------------------------------

/** A wallet client reaching the wallet's relays from this process (the edge gives WalletClient its own party). */
export class NwcClient extends WalletClient {
  constructor(uri: string) {
    super(uri, (relays, sk) => new Peer(relays, sk));
  }
}

// ---- the local wallet ------------------------------------------------------------------------

interface Account {
  name: string;
  /** The connection secret (hex); the account is keyed by its pubkey. */
  secret: string;
  balance: number;
}
interface LedgerInvoice extends Invoice {
  /** Account pubkey paid by this invoice. */
  payee: string;
  payer?: string;
}
interface Ledger {
  walletSecret: string;
  accounts: Record<string, Account>;
  invoices: Record<string, LedgerInvoice>;
}

/** The ledger file: read once, written whole through a temporary file and a rename on each change. */
export class LedgerFile {
  readonly data: Ledger;
  readonly path: string;
  constructor(path: string) {
    this.path = path;
    let text: string | null = null;
    try {
      text = readFileSync(path, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
    if (text === null) {
      this.data = { walletSecret: bytesToHex(generateSecretKey()), accounts: {}, invoices: {} };
      this.save();
    } else {
      const d = JSON.parse(text) as Ledger;
      if (typeof d?.walletSecret !== "string" || typeof d.accounts !== "object" || typeof d.invoices !== "object") throw new Error(`${path}: not a wallet ledger`);
      this.data = d;
    }
  }

  get walletPubkey(): string {
    return getPublicKey(secretBytes(this.data.walletSecret));
  }

  save(): void {
    const tmp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.data, null, 2) + "\n", { mode: 0o600 });
    renameSync(tmp, this.path);
  }

  /** Opens (or tops up, when it exists) the account `name`; answers its connection URI. */
  account(name: string, relays: string[], balance?: number): string {
    let entry = Object.entries(this.data.accounts).find(([, a]) => a.name === name);
    if (!entry) {
      const secret = bytesToHex(generateSecretKey());
      entry = [getPublicKey(secretBytes(secret)), { name, secret, balance: 0 }];
      this.data.accounts[entry[0]] = entry[1];
    }
    if (balance !== undefined) entry[1].balance = balance;
    this.save();
    const q = relays.map((r) => `relay=${encodeURIComponent(r)}`).join("&");
    return `nostr+walletconnect://${this.walletPubkey}?${q}&secret=${entry[1].secret}`;
  }

  balances(): Record<string, number> {
    return Object.fromEntries(Object.values(this.data.accounts).map((a) => [a.name, a.balance]));
  }
}

const INVOICE_PREFIX = "lnoanix1";
const publicInvoice = ({ payee: _p, payer: _q, ...i }: LedgerInvoice): Invoice => i;

/** Answers NIP-47 requests for the ledger's accounts on the given relays. */
export class LocalWallet {
  readonly #peer: Peer;
  #sub: { close(): void } | null = null;
  readonly #seen = new Set<string>();
  readonly ledger: LedgerFile;

  constructor(ledger: LedgerFile, relays: string[]) {
    this.ledger = ledger;
    this.#peer = new Peer(relays, secretBytes(ledger.data.walletSecret));
  }

  get pubkey(): string {
    return this.#peer.pubkey;
  }

  async start(): Promise<void> {
    await this.#peer.publish(this.#peer.sign({ kind: NWC_INFO, tags: [["encryption", "nip44_v2 nip04"]], content: METHODS.join(" ") }));
    this.#sub = await this.#peer.subscribe({ kinds: [NWC_REQUEST], "#p": [this.pubkey], since: now() - 5 }, (e) => void this.#answer(e));
  }

  async #answer(req: Event): Promise<void> {
    if (this.#seen.has(req.id)) return;
    this.#seen.add(req.id);
    const account = this.ledger.data.accounts[req.pubkey];
    const cipher: Cipher = tag(req, "encryption") === "nip44_v2" ? "nip44" : "nip04";
    let method = "";
    let body: { result_type: string; error: { code: string; message: string } | null; result: unknown };
    try {
      if (!account) throw new NwcError("UNAUTHORIZED", "no wallet connection for this key");
      const sk = this.#peer.secretKey;
      const r = JSON.parse(decrypt(sk, req.pubkey, req.content, cipher)) as { method?: unknown; params?: Record<string, unknown> };
      method = typeof r.method === "string" ? r.method : "";
      body = { result_type: method, error: null, result: this.#run(req.pubkey, account, method, r.params ?? {}) };
    } catch (e) {
      const err = e instanceof NwcError ? { code: e.code, message: e.message.replace(/^[A-Z_]+: /, "") } : { code: "OTHER", message: (e as Error).message };
      body = { result_type: method, error: err, result: null };
    }
    const res = this.#peer.sign({
      kind: NWC_RESPONSE,
      tags: [["p", req.pubkey], ["e", req.id]],
      content: encrypt(this.#peer.secretKey, req.pubkey, JSON.stringify(body), cipher),
    });
    await this.#peer.publish(res).catch(() => {});
  }

  #run(pubkey: string, account: Account, method: string, p: Record<string, unknown>): unknown {
    const invoices = this.ledger.data.invoices;
    switch (method) {
      case "get_info":
        return { alias: "oanix local wallet", methods: METHODS, network: "oanix-local" };
      case "get_balance":
        return { balance: account.balance };
      case "make_invoice": {
        const amount = p.amount;
        if (!Number.isSafeInteger(amount) || (amount as number) <= 0) throw new NwcError("OTHER", "amount must be a positive integer (msats)");
        const preimage = bytesToHex(randomBytes(32));
        const hash = bytesToHex(sha256(secretBytes(preimage)));
        const t = now();
        const expiry = Number.isSafeInteger(p.expiry) && (p.expiry as number) > 0 ? (p.expiry as number) : 3600;
        const inv: LedgerInvoice = {
          type: "incoming", invoice: INVOICE_PREFIX + hash, payment_hash: hash, amount: amount as number,
          ...(typeof p.description === "string" ? { description: p.description } : {}),
          created_at: t, expires_at: t + expiry, preimage, payee: pubkey,
        };
        invoices[hash] = inv;
        this.ledger.save();
        const { preimage: _secret, ...shown } = publicInvoice(inv);
        return shown;
      }
      case "lookup_invoice": {
        const hash = typeof p.payment_hash === "string" ? p.payment_hash : typeof p.invoice === "string" ? p.invoice.slice(INVOICE_PREFIX.length) : "";
        const inv = invoices[hash];
        if (!inv || (inv.payee !== pubkey && inv.payer !== pubkey)) throw new NwcError("NOT_FOUND", "no such invoice");
        const shown = publicInvoice(inv);
        // The preimage is the payee's secret until the invoice is paid.
        if (!inv.settled_at) delete shown.preimage;
        return { ...shown, type: inv.payee === pubkey ? "incoming" : "outgoing", state: inv.settled_at ? "settled" : inv.expires_at < now() ? "expired" : "pending" };
      }
      case "pay_invoice": {
        const text = typeof p.invoice === "string" ? p.invoice : "";
        const inv = text.startsWith(INVOICE_PREFIX) ? invoices[text.slice(INVOICE_PREFIX.length)] : undefined;
        if (!inv) throw new NwcError("PAYMENT_FAILED", "unknown invoice (this wallet pays lnoanix1 invoices of its own ledger)");
        if (inv.settled_at) throw new NwcError("PAYMENT_FAILED", "invoice already paid");
        if (inv.expires_at < now()) throw new NwcError("PAYMENT_FAILED", "invoice expired");
        if (p.amount !== undefined && p.amount !== inv.amount) throw new NwcError("OTHER", "amount does not match the invoice");
        if (account.balance < inv.amount) throw new NwcError("INSUFFICIENT_BALANCE", `balance ${account.balance} msats, invoice ${inv.amount} msats`);
        const payee = this.ledger.data.accounts[inv.payee];
        account.balance -= inv.amount;
        if (payee) payee.balance += inv.amount;
        inv.settled_at = now();
        inv.payer = pubkey;
        this.ledger.save();
        return { preimage: inv.preimage, fees_paid: 0 };
      }
      default:
        throw new NwcError("NOT_IMPLEMENTED", `unknown method ${JSON.stringify(method)}`);
    }
  }

  stop(): void {
    this.#sub?.close();
    this.#peer.close();
  }
}
