// A Nostr party at the edge (agents/host/nostr.ts `Party`) over one of the edge's relay links
// (relay.ts): the edge's own relay object in-process, or another relay by an outbound WebSocket.
// What lets the Node customer code run in the Worker unchanged: the wallet client
// (agents/host/wallet.ts NwcClient) of a priced edge provider, and /cap/nostr/jobs
// (agents/host/jobs-service.ts) for an edge run that hires other agents.
import { finalizeEvent, getPublicKey, type EventTemplate } from "nostr-tools/pure";
import type { Event, Filter, Party } from "../../agents/host/nostr.ts";
import type { NostrRelay } from "../../relay/relay.ts";
import type { LinkFactory, RelayLink } from "../../services/cap/nostr-relays.ts";
import { outboundRelayLink, relayObjectLink } from "./relay.ts";

const WAIT_MS = 10_000;
let next = 0;
const subId = (): string => `party-${(next++).toString(36)}-${Math.random().toString(36).slice(2, 8)}`;

export class LinkParty implements Party {
  readonly pubkey: string;
  readonly secretKey: Uint8Array;
  readonly #link: RelayLink;

  constructor(link: LinkFactory, secretKey: Uint8Array) {
    this.secretKey = secretKey;
    this.pubkey = getPublicKey(secretKey);
    this.#link = link((t: EventTemplate) => finalizeEvent(t, secretKey), this.pubkey);
  }

  sign(t: Omit<EventTemplate, "created_at"> & { created_at?: number }): Event {
    return finalizeEvent({ created_at: Math.floor(Date.now() / 1000), ...t }, this.secretKey);
  }

  async publish(e: Event): Promise<void> {
    const r = await this.#link.publish(e, WAIT_MS);
    if (!r.ok) throw new Error(`${this.#link.url}: ${r.message}`);
  }

  /** Resolves at EOSE: from then on the subscription sees every new event (an ephemeral answer too). */
  subscribe(filter: Filter, onevent: (e: Event) => void, maxWait = WAIT_MS): Promise<{ close(): void }> {
    const id = subId();
    const close = () => this.#link.unsub(id);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => resolve({ close }), maxWait);
      const ready = () => (clearTimeout(timer), resolve({ close }));
      this.#link.req(id, [filter as Record<string, unknown>], { onEvent: onevent, onEose: ready, onClosed: ready }, maxWait).catch((e: unknown) => {
        clearTimeout(timer);
        reject(e as Error);
      });
    });
  }

  async query(filter: Filter, maxWait = WAIT_MS): Promise<Event[]> {
    if (this.#link.fetch) return this.#link.fetch([filter as Record<string, unknown>], maxWait);
    const out: Event[] = [];
    const sub = await this.subscribe(filter, (e) => out.push(e), maxWait);
    sub.close();
    return out;
  }

  close(): void {
    this.#link.close();
  }
}

/** The edge's own relay as a client reached it: ws(s)://HOST/relay. */
export const relayUrlOf = (origin: string): string => new URL("/relay", origin).href.replace(/^http/, "ws");

/**
 * A party on `url`: the edge's own relay (the one `origin` serves) in-process, any other by an
 * outbound WebSocket. (The Worker cannot dial its own hostname; it need not.)
 */
export function partyOn(ns: DurableObjectNamespace<NostrRelay>, origin: string | undefined, url: string, secretKey: Uint8Array): LinkParty {
  const own = origin !== undefined && sameRelay(url, relayUrlOf(origin));
  return new LinkParty(own ? relayObjectLink(ns, url) : outboundRelayLink(url), secretKey);
}

/** Two relay URLs naming the same relay (the scheme and a trailing slash aside). */
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
