// Test helpers (used only by relay/*.workers.test.ts): WebSocket clients that reach the relay inside
// workerd through a Durable Object stub or the Worker, as a nostr-tools AbstractRelay or as a raw
// socket for malformed input.
import { AbstractRelay } from "nostr-tools/abstract-relay";
import { verifyEvent } from "nostr-tools/pure";

export interface FetchTarget {
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
}

export const RELAY_URL = "ws://relay.test/relay";

async function openSocket(target: FetchTarget, url: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  const httpUrl = url.replace(/^ws/, "http");
  const res = await target.fetch(httpUrl, { headers: { ...headers, Upgrade: "websocket" } });
  const ws = res.webSocket;
  if (res.status !== 101 || !ws) throw new Error(`upgrade failed: ${res.status}`);
  ws.accept();
  return ws;
}

/** A WebSocket-like class (what nostr-tools needs) whose connections go to `target`. */
export function socketClass(target: FetchTarget): typeof WebSocket {
  class StubSocket {
    static CONNECTING = 0;
    static OPEN = 1;
    static CLOSING = 2;
    static CLOSED = 3;
    readyState = 0;
    url: string;
    onopen: ((ev: unknown) => void) | null = null;
    onmessage: ((ev: { data: string }) => void) | null = null;
    onclose: ((ev: { code: number; reason: string }) => void) | null = null;
    onerror: ((ev: unknown) => void) | null = null;
    private ws: WebSocket | undefined;
    constructor(url: string) {
      this.url = url;
      openSocket(target, url).then(
        (ws) => {
          this.ws = ws;
          this.readyState = 1;
          ws.addEventListener("message", (ev) => this.onmessage?.({ data: ev.data as string }));
          ws.addEventListener("close", (ev) => {
            this.readyState = 3;
            this.onclose?.({ code: ev.code, reason: ev.reason });
          });
          ws.addEventListener("error", (ev) => this.onerror?.(ev));
          this.onopen?.({});
        },
        (err) => {
          this.readyState = 3;
          this.onerror?.(err);
        },
      );
    }
    send(data: string): void {
      if (this.readyState === 1) this.ws!.send(data);
    }
    close(): void {
      this.readyState = 3;
      try {
        this.ws?.close(1000, "bye");
      } catch {
        /* closed */
      }
    }
  }
  return StubSocket as unknown as typeof WebSocket;
}

/** A connected nostr-tools relay client talking to `target`. */
export async function nostrClient(target: FetchTarget): Promise<AbstractRelay> {
  const relay = new AbstractRelay(RELAY_URL, { verifyEvent, websocketImplementation: socketClass(target), enablePing: false, enableReconnect: false });
  await relay.connect({ timeout: 5000 });
  return relay;
}

type Msg = [string, ...unknown[]];

/** A raw socket: send any text, await the next message that matches. */
export class RawClient {
  ws: WebSocket;
  private queue: Msg[] = [];
  private waiters: Array<{ pred: (m: Msg) => boolean; resolve: (m: Msg) => void }> = [];
  closed = false;
  challenge: string | undefined;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.addEventListener("message", (ev) => {
      const m = JSON.parse(ev.data as string) as Msg;
      if (m[0] === "AUTH" && typeof m[1] === "string") this.challenge = m[1];
      const i = this.waiters.findIndex((w) => w.pred(m));
      if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(m);
      else this.queue.push(m);
    });
    ws.addEventListener("close", () => {
      this.closed = true;
    });
  }

  /** `headers` go with the upgrade request (e.g. CF-Connecting-IP, the client address Cloudflare sets). */
  static async open(target: FetchTarget, url = RELAY_URL, headers: Record<string, string> = {}): Promise<RawClient> {
    const c = new RawClient(await openSocket(target, url, headers));
    await c.next((m) => m[0] === "AUTH");
    return c;
  }

  send(msg: unknown): void {
    this.ws.send(typeof msg === "string" ? msg : JSON.stringify(msg));
  }

  /** The next message (queued or future) matching `pred`; rejects after `ms`. */
  next(pred: (m: Msg) => boolean = () => true, ms = 3000): Promise<Msg> {
    const i = this.queue.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.queue.splice(i, 1)[0]!);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (m: Msg) => (clearTimeout(t), resolve(m)) };
      const t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`no matching message within ${ms} ms; queued: ${JSON.stringify(this.queue).slice(0, 500)}`));
      }, ms);
      this.waiters.push(w);
    });
  }

  /** Messages that arrived and were not consumed. */
  pending(): Msg[] {
    return [...this.queue];
  }

  /** Forgets the messages that arrived and were not consumed. */
  drain(): void {
    this.queue.length = 0;
  }

  async publish(event: { id: string }): Promise<[boolean, string]> {
    this.send(["EVENT", event]);
    const m = await this.next((m) => m[0] === "OK" && m[1] === event.id);
    return [m[2] as boolean, m[3] as string];
  }

  /** REQ and collect stored events until EOSE (or the CLOSED that refuses it). */
  async req(sub: string, ...filters: unknown[]): Promise<{ events: Array<Record<string, unknown>>; closed?: string }> {
    this.send(["REQ", sub, ...filters]);
    const events: Array<Record<string, unknown>> = [];
    for (;;) {
      const m = await this.next((m) => m[1] === sub && (m[0] === "EVENT" || m[0] === "EOSE" || m[0] === "CLOSED"));
      if (m[0] === "EOSE") return { events };
      if (m[0] === "CLOSED") return { events, closed: m[2] as string };
      events.push(m[2] as Record<string, unknown>);
    }
  }

  /** Waits a little and returns whether no message arrived matching `pred`. */
  async silent(pred: (m: Msg) => boolean, ms = 150): Promise<boolean> {
    try {
      await this.next(pred, ms);
      return false;
    } catch {
      return true;
    }
  }

  close(): void {
    try {
      this.ws.close(1000, "bye");
    } catch {
      /* closed */
    }
  }
}
