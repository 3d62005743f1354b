// NIP-47 (Nostr Wallet Connect) on the wire, pure: the connection URI, the request a client signs
// and the answer it reads. The Node client (wallet.ts, over a SimplePool) and the edge provider's
// client (edge/provider/wallet.ts, over the edge's relay links) both speak through these.
//
// Wire: the wallet publishes an info event (13194: methods in the content, an `encryption` tag); a
// client signs requests (23194, `p` = wallet, content encrypted `{"method","params"}`) with the
// secret of its connection URI; the wallet answers (23195, `p` = client, `e` = request, content
// encrypted `{"result_type","error","result"}`). Both kinds are ephemeral: a client subscribes to
// the answer before it sends the request.
import { decrypt, encrypt, type Cipher } from "./cipher.ts";

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
export function walletCipher(info: Tagged | undefined): Cipher {
  const offered = info?.tags.find((t) => t[0] === "encryption")?.[1]?.split(/\s+/) ?? [];
  return offered.includes("nip44_v2") ? "nip44" : "nip04";
}

/** The unsigned request event for `method`. */
export function nwcRequest(sk: Uint8Array, wallet: string, method: string, params: Record<string, unknown>, cipher: Cipher) {
  return {
    kind: NWC_REQUEST,
    tags: [["p", wallet], ...(cipher === "nip44" ? [["encryption", "nip44_v2"]] : [])],
    content: encrypt(sk, wallet, JSON.stringify({ method, params }), cipher),
  };
}

/** The filter the answer to request `id` matches. */
export const nwcAnswerFilter = (wallet: string, id: string) => ({ kinds: [NWC_RESPONSE], authors: [wallet], "#e": [id] });

/** The result of an answer event; NwcError when the wallet answered an error. */
export function readNwcAnswer<T>(sk: Uint8Array, wallet: string, ev: { content: string }): T {
  const body = JSON.parse(decrypt(sk, wallet, ev.content)) as { error?: { code: string; message: string } | null; result?: T };
  if (body.error) throw new NwcError(body.error.code, body.error.message);
  return body.result as T;
}
