// /cap/nostr at the edge reaches the edge's own relay (relay/, a Durable Object in this Worker)
// without a network socket: publish and query are RPC calls on the relay object (relay/rpc.ts);
// live subscriptions (subscriptions/, inbox) use a WebSocket the relay object itself answers
// through its stub's fetch, in-process. Other relays a run is granted are reached by outbound
// WebSockets (ws.ts).
import type { Event } from "nostr-tools/pure";
import { relayStub } from "../../relay/http.ts";
import type { NostrRelay } from "../../relay/relay.ts";
import type { NostrEvent } from "../../relay/event.ts";
import { RelayConn, type Filter, type LinkFactory, type RelayLink, type SignAuth, type Sub } from "../../services/cap/nostr-relays.ts";
import { openSocket } from "./ws.ts";

/** Races a call against the time limit. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

const isProtected = (e: Event): boolean => e.tags.some((t) => t.length === 1 && t[0] === "-");

class RelayObjectLink implements RelayLink {
  readonly url: string;
  readonly #relay: DurableObjectStub<NostrRelay>;
  readonly #pubkey: string;
  readonly #live: RelayConn;

  constructor(ns: DurableObjectNamespace<NostrRelay>, url: string, auth: SignAuth, pubkey: string) {
    this.url = url;
    this.#relay = relayStub(ns);
    this.#pubkey = pubkey;
    const relay = this.#relay;
    this.#live = new RelayConn(url, auth, async (u) => (await openSocket(new URL(u), [], {}, (input, init) => relay.fetch(input as string, init))).ws);
  }

  async publish(e: Event, timeoutMs: number): Promise<{ ok: boolean; message: string }> {
    // Over a socket, NIP-70 wants the author authenticated; this caller speaks for the agent only.
    if (isProtected(e) && e.pubkey !== this.#pubkey) return { ok: false, message: "restricted: this event is protected; only its author may publish it" };
    try {
      const r = await within(this.#relay.publish(e as NostrEvent), timeoutMs, "publish");
      return { ok: r.accepted, message: r.message };
    } catch (err) {
      return { ok: false, message: (err as Error).message };
    }
  }

  async fetch(filters: Filter[], timeoutMs: number): Promise<Event[]> {
    return (await within(this.#relay.query(filters), timeoutMs, "query")) as Event[];
  }

  req(id: string, filters: Filter[], sub: Sub, timeoutMs: number): Promise<void> {
    return this.#live.req(id, filters, sub, timeoutMs);
  }

  unsub(id: string): void {
    this.#live.unsub(id);
  }

  close(): void {
    this.#live.close();
  }
}

/** The edge's own relay, as seen at `url` (its public ws URL, which NIP-42 AUTH names). */
export const relayObjectLink = (ns: DurableObjectNamespace<NostrRelay>, url: string): LinkFactory =>
  (auth, pubkey) => new RelayObjectLink(ns, url, auth, pubkey);

/** Another relay, by an outbound WebSocket. */
export const outboundRelayLink = (url: string): LinkFactory =>
  (auth) => new RelayConn(url, auth, async (u) => (await openSocket(new URL(u))).ws);
