// The edge provider's wallet: a NIP-47 client (agents/host/nwc.ts's wire) over the edge's relay
// links, so a priced provider makes and checks invoices with no machine of its owner's on. A
// wallet on the edge's own relay is reached in-process (RPC for the request, a socket the relay
// object answers for the reply); a wallet on another relay by an outbound WebSocket. The
// connection URI is a workspace secret (sealed at rest, edge/workspace/secrets.ts) named by the
// provider's `wallet` field; its hosts must include the wallet relay's host, as for any secret.
import { finalizeEvent, getPublicKey, type EventTemplate } from "nostr-tools/pure";
import { hexToBytes } from "@noble/hashes/utils.js";
import type { Event } from "nostr-tools/pure";
import { NWC_INFO, NwcError, nwcAnswerFilter, nwcRequest, parseWalletUri, readNwcAnswer, walletCipher, type Invoice, type WalletConnection } from "../../agents/host/nwc.ts";
import type { RelayLink } from "../../services/cap/nostr-relays.ts";
import type { NostrRelay } from "../../relay/relay.ts";
import { outboundRelayLink, relayObjectLink } from "../caps/relay.ts";

const ANSWER_MS = 15_000;

/** The ws URL of the edge's own relay, as served at `origin`. */
export const ownRelayUrl = (origin: string): string => `${origin.replace(/^http/, "ws")}/relay`;

export class EdgeWallet {
  readonly #c: WalletConnection;
  readonly #sk: Uint8Array;
  readonly #link: RelayLink;

  /** `uri` a wallet connect URI; `origin` the edge's URL (its own relay is not dialled by URL). */
  constructor(uri: string, relay: DurableObjectNamespace<NostrRelay>, origin: string | undefined) {
    this.#c = parseWalletUri(uri);
    this.#sk = hexToBytes(this.#c.secret);
    const url = this.#c.relays[0]!;
    const sign = (t: EventTemplate) => finalizeEvent(t, this.#sk);
    const own = origin !== undefined && sameRelay(url, ownRelayUrl(origin));
    this.#link = (own ? relayObjectLink(relay, url) : outboundRelayLink(url))(sign, getPublicKey(this.#sk));
  }

  /** The hosts the wallet is reached at (a secret holding the URI must be bound to them). */
  static hostsOf(uri: string): string[] {
    return parseWalletUri(uri).relays.map((r) => new URL(r).host);
  }

  async request<T>(method: string, params: Record<string, unknown>): Promise<T> {
    const info = (await this.#query({ kinds: [NWC_INFO], authors: [this.#c.wallet], limit: 1 }))[0];
    const req = finalizeEvent({ ...nwcRequest(this.#sk, this.#c.wallet, method, params, walletCipher(info)), created_at: Math.floor(Date.now() / 1000) }, this.#sk);
    const id = `nwc-${req.id.slice(0, 12)}`;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let ready!: () => void;
    const subscribed = new Promise<void>((r) => (ready = r));
    const answer = new Promise<Event>((resolve, reject) => {
      timer = setTimeout(() => reject(new NwcError("TIMEOUT", `wallet did not answer ${method} in ${ANSWER_MS} ms`)), ANSWER_MS);
      void this.#link.req(id, [nwcAnswerFilter(this.#c.wallet, req.id)], {
        onEvent: resolve,
        onEose: ready,
        onClosed: (why) => reject(new NwcError("OTHER", `the wallet's relay closed the subscription: ${why}`)),
      }, ANSWER_MS).catch(reject);
    });
    answer.catch(() => {});
    try {
      // The answer is ephemeral: the subscription must be in place (EOSE) before the request goes
      // out, and the request may go another way (RPC) than the subscription (a socket).
      await Promise.race([subscribed, answer]);
      const sent = await this.#link.publish(req, ANSWER_MS);
      if (!sent.ok) throw new NwcError("OTHER", `the wallet's relay refused the request: ${sent.message}`);
      return readNwcAnswer<T>(this.#sk, this.#c.wallet, await answer);
    } finally {
      clearTimeout(timer);
      this.#link.unsub(id);
    }
  }

  makeInvoice(amount: number, description: string, expiry: number): Promise<Invoice> {
    return this.request("make_invoice", { amount, description, expiry });
  }

  lookupInvoice(invoice: string): Promise<Invoice> {
    return this.request("lookup_invoice", { invoice });
  }

  close(): void {
    this.#link.close();
  }

  async #query(filter: Record<string, unknown>): Promise<Event[]> {
    if (this.#link.fetch) return this.#link.fetch([filter], 5000);
    const out: Event[] = [];
    const id = `nwc-q-${Math.random().toString(36).slice(2, 10)}`;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, 5000);
      const done = () => (clearTimeout(timer), resolve());
      void this.#link.req(id, [filter], { onEvent: (e) => out.push(e), onEose: done, onClosed: done }, 5000).catch(reject);
    }).finally(() => this.#link.unsub(id));
    return out;
  }
}

/** Two relay URLs naming the same relay (scheme and a trailing slash aside). */
function sameRelay(a: string, b: string): boolean {
  const norm = (u: string) => {
    const x = new URL(u);
    return `${x.host}${x.pathname.replace(/\/+$/, "")}`;
  };
  try {
    return norm(a) === norm(b);
  } catch {
    return false;
  }
}
