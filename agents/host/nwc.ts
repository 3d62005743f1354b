// NIP-47 (Nostr Wallet Connect), pure: the connection URI, the request a client signs, the answer
// it reads, and the client (`WalletClient`) over any Party: Node's sockets (wallet.ts NwcClient)
// or the edge's relay links (edge/caps/party.ts, a priced edge provider's wallet).
//
// Wire: the wallet publishes an info event (13194: methods in the content, an `encryption` tag); a
// client signs requests (23194, `p` = wallet, content encrypted `{"method","params"}`) with the
// secret of its connection URI; the wallet answers (23195, `p` = client, `e` = request, content
// encrypted `{"result_type","error","result"}`). Both kinds are ephemeral: a client subscribes to
// the answer before it sends the request.
import { hexToBytes } from "@noble/hashes/utils.js";
import { decrypt, encrypt, type Cipher } from "./cipher.ts";
import type { Event, Party } from "./nostr.ts";

export const NWC_INFO = 13194;
export const NWC_REQUEST = 23194;
export const NWC_RESPONSE = 23195;

/** A NIP-47 error answer (`code` as the NIP names them: INSUFFICIENT_BALANCE, NOT_FOUND, …). */
export class NwcError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(`${code}: ${message}`);
    this.code = code;
  }
}

export interface WalletConnection {
  wallet: string;
  relays: string[];
  /** The client's secret key (hex). */
  secret: string;
}

/** nostr+walletconnect://WALLET_PUBKEY?relay=URL[&relay=URL]&secret=HEX */
export function parseWalletUri(uri: string): WalletConnection {
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    throw new Error("bad wallet connect URI: nostr+walletconnect://PUBKEY?relay=URL&secret=HEX");
  }
  const wallet = u.host || u.pathname.replace(/^\/+/, "");
  const relays = u.searchParams.getAll("relay");
  const secret = u.searchParams.get("secret") ?? "";
  if (!/^nostr\+walletconnect:$/.test(u.protocol) || !/^[0-9a-f]{64}$/.test(wallet) || !/^[0-9a-f]{64}$/.test(secret) || !relays.length)
    throw new Error("bad wallet connect URI: nostr+walletconnect://PUBKEY?relay=URL&secret=HEX");
  return { wallet, relays, secret };
}

export interface Invoice {
  type: "incoming" | "outgoing";
  invoice: string;
  payment_hash: string;
  amount: number;
  description?: string;
  created_at: number;
  expires_at: number;
  settled_at?: number;
  preimage?: string;
}

type Tagged = { tags: string[][] };

/** NIP-44 when the wallet's info event offers it, else NIP-04 (what older wallets speak). */
function walletCipher(info: Tagged | undefined): Cipher {
  const offered = info?.tags.find((t) => t[0] === "encryption")?.[1]?.split(/\s+/) ?? [];
  return offered.includes("nip44_v2") ? "nip44" : "nip04";
}

/** The unsigned request event for `method`. */
function nwcRequest(sk: Uint8Array, wallet: string, method: string, params: Record<string, unknown>, cipher: Cipher) {
  return {
    kind: NWC_REQUEST,
    tags: [["p", wallet], ...(cipher === "nip44" ? [["encryption", "nip44_v2"]] : [])],
    content: encrypt(sk, wallet, JSON.stringify({ method, params }), cipher),
  };
}

/** The filter the answer to request `id` matches. */
const nwcAnswerFilter = (wallet: string, id: string) => ({ kinds: [NWC_RESPONSE], authors: [wallet], "#e": [id] });

/** The result of an answer event; NwcError when the wallet answered an error. */
function readNwcAnswer<T>(sk: Uint8Array, wallet: string, ev: { content: string }): T {
  const body = JSON.parse(decrypt(sk, wallet, ev.content)) as { error?: { code: string; message: string } | null; result?: T };
  if (body.error) throw new NwcError(body.error.code, body.error.message);
  return body.result as T;
}

export class WalletClient {
  readonly wallet: string;
  readonly #peer: Party;
  #cipher: Promise<Cipher> | null = null;

  /** `party` reaches the wallet's relays: a Peer in Node (wallet.ts NwcClient), the edge's relay links there. */
  constructor(uri: string, party: (relays: string[], secretKey: Uint8Array) => Party) {
    const c = parseWalletUri(uri);
    this.wallet = c.wallet;
    this.#peer = party(c.relays, hexToBytes(c.secret));
  }

  #encryption(): Promise<Cipher> {
    this.#cipher ??= this.#peer.query({ kinds: [NWC_INFO], authors: [this.wallet], limit: 1 }, 5000).then((evs) => walletCipher(evs[0]));
    return this.#cipher;
  }

  async request<T = Record<string, unknown>>(method: string, params: Record<string, unknown>, timeoutMs = 15_000): Promise<T> {
    const cipher = await this.#encryption();
    const sk = this.#peer.secretKey;
    const req = this.#peer.sign(nwcRequest(sk, this.wallet, method, params, cipher));
    let settle!: (e: Event) => void;
    const answered = new Promise<Event>((r) => (settle = r));
    const sub = await this.#peer.subscribe(nwcAnswerFilter(this.wallet, req.id), settle);
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await this.#peer.publish(req);
      const ev = await Promise.race([
        answered,
        new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new NwcError("TIMEOUT", `wallet did not answer ${method} in ${timeoutMs} ms`)), timeoutMs))),
      ]);
      return readNwcAnswer<T>(sk, this.wallet, ev);
    } finally {
      clearTimeout(timer);
      sub.close();
    }
  }

  makeInvoice(amount: number, description?: string, expiry?: number): Promise<Invoice> {
    return this.request("make_invoice", { amount, ...(description ? { description } : {}), ...(expiry ? { expiry } : {}) });
  }
  lookupInvoice(q: { payment_hash?: string; invoice?: string }): Promise<Invoice> {
    return this.request("lookup_invoice", q);
  }
  payInvoice(invoice: string, amount?: number): Promise<{ preimage: string; fees_paid?: number }> {
    return this.request("pay_invoice", { invoice, ...(amount !== undefined ? { amount } : {}) });
  }
  getBalance(): Promise<{ balance: number }> {
    return this.request("get_balance", {});
  }
  close(): void {
    this.#peer.close();
  }
}
