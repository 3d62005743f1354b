// A small Nostr relay client: one link per relay, behind the `RelayLink` seam. `RelayConn` is the
// link over a WebSocket (the global one by default, in Node, browsers and Workers; or a socket a
// host opens another way, as the edge does to its own relay object): opened on first use and
// again after it drops; NIP-01 EVENT/OK, REQ/EOSE/CLOSE, and NIP-42 AUTH answered with the
// agent's key when a relay asks. `Relays` merges the links for /cap/nostr.
import type { Event, EventTemplate } from "nostr-tools/pure";

export type Filter = Record<string, unknown>;
export type SignAuth = (t: EventTemplate) => Event;

export interface Sub {
  onEvent(e: Event): void;
  onEose(): void;
  onClosed(message: string): void;
}

/** One relay as /cap/nostr uses it. A host may supply its own (the edge speaks RPC to its relay object). */
export interface RelayLink {
  readonly url: string;
  /** Sends an event; answers the relay's OK (or why not). Never throws. */
  publish(e: Event, timeoutMs: number): Promise<{ ok: boolean; message: string }>;
  /** Starts subscription `id`: stored events, EOSE, then live ones, until `unsub`. */
  req(id: string, filters: Filter[], sub: Sub, timeoutMs: number): Promise<void>;
  unsub(id: string): void;
  /** Stored events only, in one call (optional: without it a query is a REQ closed at EOSE). */
  fetch?(filters: Filter[], timeoutMs: number): Promise<Event[]>;
  close(): void;
}

/** Makes a link for a relay, given how to answer NIP-42 AUTH and the agent's pubkey. */
export type LinkFactory = (auth: SignAuth, pubkey: string) => RelayLink;

/** Opens a WebSocket that is already open when the promise resolves (a host's own transport). */
export type OpenSocket = (url: string) => Promise<WebSocket>;

export class RelayConn implements RelayLink {
  readonly url: string;
  #ws: WebSocket | null = null;
  #ready: Promise<void> | null = null;
  readonly #subs = new Map<string, Sub>();
  readonly #oks = new Map<string, (ok: boolean, message: string) => void>();
  readonly #auth: SignAuth;
  readonly #openSocket: OpenSocket | undefined;
  #authed: Promise<void> | null = null;

  constructor(url: string, auth: SignAuth, openSocket?: OpenSocket) {
    this.url = url;
    this.#auth = auth;
    this.#openSocket = openSocket;
  }

  open(timeoutMs: number): Promise<void> {
    // A socket that is open, or one still being opened (#ws is set once a host's socket arrives).
    if (this.#ready && (this.#ws ? this.#ws.readyState <= 1 : this.#openSocket)) return this.#ready;
    this.#ws = null;
    this.#authed = null;
    this.#ready = this.#openSocket ? this.#openWith(this.#openSocket, timeoutMs) : this.#openGlobal(timeoutMs);
    this.#ready.catch(() => {});
    return this.#ready;
  }

  #openGlobal(timeoutMs: number): Promise<void> {
    const ws = new WebSocket(this.url);
    this.#attach(ws);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`no connection within ${timeoutMs} ms`));
        ws.close();
      }, timeoutMs);
      ws.addEventListener("open", () => {
        clearTimeout(timer);
        resolve();
      });
      ws.addEventListener("error", () => {
        clearTimeout(timer);
        reject(new Error("cannot connect"));
      });
    });
  }

  async #openWith(open: OpenSocket, timeoutMs: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no connection within ${timeoutMs} ms`)), timeoutMs)));
    const opening = open(this.url);
    try {
      const ws = await Promise.race([opening, late]);
      // Listeners go on in the same turn the socket arrives: its first message (AUTH) is a later task.
      this.#attach(ws);
    } catch (e) {
      opening.then((ws) => ws.close(), () => {});
      this.#ready = null;
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  #attach(ws: WebSocket): void {
    this.#ws = ws;
    ws.addEventListener("message", (m) => this.#onMessage(typeof m.data === "string" ? m.data : ""));
    ws.addEventListener("close", () => {
      for (const [id, s] of this.#subs) {
        this.#subs.delete(id);
        s.onClosed("connection closed");
      }
      for (const [id, ok] of this.#oks) {
        this.#oks.delete(id);
        ok(false, "connection closed");
      }
    });
  }

  #send(msg: unknown[]): void {
    this.#ws?.send(JSON.stringify(msg));
  }

  #onMessage(text: string): void {
    let m: unknown[];
    try {
      m = JSON.parse(text) as unknown[];
    } catch {
      return;
    }
    if (!Array.isArray(m)) return;
    const [type, a, b, c] = m;
    if (type === "EVENT" && typeof a === "string") this.#subs.get(a)?.onEvent(b as Event);
    else if (type === "EOSE" && typeof a === "string") this.#subs.get(a)?.onEose();
    else if (type === "CLOSED" && typeof a === "string") {
      const s = this.#subs.get(a);
      this.#subs.delete(a);
      s?.onClosed(String(b ?? ""));
    } else if (type === "OK" && typeof a === "string") {
      const ok = this.#oks.get(a);
      this.#oks.delete(a);
      ok?.(b === true, String(c ?? ""));
    } else if (type === "AUTH" && typeof a === "string") {
      const ev = this.#auth({ kind: 22242, created_at: Math.floor(Date.now() / 1000), content: "", tags: [["relay", this.url], ["challenge", a]] });
      this.#authed = new Promise<void>((resolve) => this.#oks.set(ev.id, () => resolve()));
      this.#send(["AUTH", ev]);
    }
  }

  async publish(e: Event, timeoutMs: number): Promise<{ ok: boolean; message: string }> {
    const deadline = Date.now() + timeoutMs;
    const once = async (): Promise<{ ok: boolean; message: string }> => {
      await this.open(Math.max(1, deadline - Date.now()));
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          this.#oks.delete(e.id);
          resolve({ ok: false, message: `no OK within ${timeoutMs} ms` });
        }, Math.max(1, deadline - Date.now()));
        this.#oks.set(e.id, (ok, message) => {
          clearTimeout(timer);
          resolve({ ok, message });
        });
        this.#send(["EVENT", e]);
      });
    };
    try {
      const first = await once();
      // A relay that asked for AUTH after the event went out: answer it, then send again once.
      if (!first.ok && first.message.startsWith("auth-required") && this.#authed) {
        await within(this.#authed, Math.max(1, deadline - Date.now()));
        return await once();
      }
      return first;
    } catch (err) {
      return { ok: false, message: (err as Error).message };
    }
  }

  async req(id: string, filters: Filter[], sub: Sub, timeoutMs: number): Promise<void> {
    await this.open(timeoutMs);
    // A relay that asked for AUTH gets its answer first; one that never confirms it is not waited for forever.
    if (this.#authed) await within(this.#authed, timeoutMs);
    this.#subs.set(id, sub);
    this.#send(["REQ", id, ...filters]);
  }

  unsub(id: string): void {
    if (this.#subs.delete(id) && this.#ws?.readyState === 1) this.#send(["CLOSE", id]);
  }

  close(): void {
    this.#ws?.close();
    this.#ws = null;
    this.#ready = null;
  }
}

/** Waits for `p`, or `ms` at most. */
function within(p: Promise<unknown>, ms: number): Promise<unknown> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([p, new Promise((r) => (timer = setTimeout(r, ms)))]).finally(() => clearTimeout(timer));
}

let nextSub = 0;
const subId = (): string => `oanix-${(nextSub++).toString(36)}-${Math.random().toString(36).slice(2, 8)}`;

export class Relays {
  readonly #conns: RelayLink[];

  /** Sockets to `urls`, then the host's own `links`. */
  constructor(urls: string[], auth: SignAuth, links: RelayLink[] = []) {
    this.#conns = [...urls.map((u) => new RelayConn(u, auth)), ...links];
  }

  get urls(): string[] {
    return this.#conns.map((c) => c.url);
  }

  /** Sends to every relay; answers each relay's OK (or why not). */
  async publish(e: Event, timeoutMs: number): Promise<Record<string, { ok: boolean; message: string }>> {
    const results = await Promise.all(this.#conns.map((c) => c.publish(e, timeoutMs)));
    return Object.fromEntries(this.#conns.map((c, i) => [c.url, results[i]!]));
  }

  /** Events from every relay up to EOSE (or the time limit), merged: deduplicated, newest first. */
  async query(filters: Filter[], timeoutMs: number): Promise<{ events: Event[]; failed: string[] }> {
    const seen = new Map<string, Event>();
    const failed: string[] = [];
    const stored = async (c: RelayLink & Required<Pick<RelayLink, "fetch">>): Promise<void> => {
      try {
        for (const e of await c.fetch(filters, timeoutMs)) if (e && typeof e.id === "string") seen.set(e.id, e);
      } catch (e) {
        failed.push(`${c.url}: ${(e as Error).message}`);
      }
    };
    await Promise.all(this.#conns.map((c) => c.fetch ? stored(c as RelayLink & Required<Pick<RelayLink, "fetch">>) : new Promise<void>((resolve) => {
      const id = subId();
      const timer = setTimeout(() => {
        c.unsub(id);
        failed.push(`${c.url}: no EOSE within ${timeoutMs} ms`);
        resolve();
      }, timeoutMs);
      const done = (why?: string): void => {
        clearTimeout(timer);
        c.unsub(id);
        if (why !== undefined) failed.push(`${c.url}: ${why}`);
        resolve();
      };
      c.req(id, filters, {
        onEvent: (e) => {
          if (e && typeof e.id === "string") seen.set(e.id, e);
        },
        onEose: () => done(),
        onClosed: (m) => done(m || "closed"),
      }, timeoutMs).catch((e) => done((e as Error).message));
    })));
    return { events: [...seen.values()].sort(newestFirst), failed };
  }

  /** A live subscription on every relay, each event delivered once. */
  subscribe(filters: Filter[], onEvent: (e: Event) => void, onError: (why: string) => void, timeoutMs: number): () => void {
    const seen = new Set<string>();
    const id = subId();
    let alive = this.#conns.length;
    for (const c of this.#conns) {
      c.req(id, filters, {
        onEvent: (e) => {
          if (!e || typeof e.id !== "string" || seen.has(e.id)) return;
          seen.add(e.id);
          onEvent(e);
        },
        onEose: () => {},
        onClosed: (m) => {
          if (--alive === 0) onError(`every relay closed the subscription (${c.url}: ${m})`);
        },
      }, timeoutMs).catch((e) => {
        if (--alive === 0) onError(`no relay: ${(e as Error).message}`);
      });
    }
    return () => this.#conns.forEach((c) => c.unsub(id));
  }

  close(): void {
    for (const c of this.#conns) c.close();
  }
}

export const newestFirst = (a: Event, b: Event): number => b.created_at - a.created_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
