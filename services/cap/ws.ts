// /cap/ws: WebSockets as files. clone → N/
//   ctl     write {"url","protocols"?,"headers"?} to connect (the write returns once it is open, or
//           fails: EACCES, ECONNREFUSED, ETIMEDOUT); write "close [code [reason]]" to close.
//   data    each read is exactly one whole text message (waiting for it; EMSGSIZE if the buffer is
//           too small, and the message stays); each write sends one text message; EOF after close.
//   binary  the same for binary frames (text and binary never mix).
//   status  {"state","protocol","closeCode","closeReason"}.
// Same host grant and secrets as /cap/http. Budget: `calls` per connection, `bytes` both ways.
import { FsError, fsError } from "../../runtime/errors.ts";
import type { Budget } from "../../runtime/namespace.ts";
import { cloneDir, handle, type Conn } from "./clone.ts";
import { report, type CapContext } from "./events.ts";
import { checkUrl, type HostGrant } from "./hosts.ts";
import { MessageQueue } from "./pipe.ts";
import { isRecord, parseJson } from "./reqreply.ts";
import { noSecrets, type Secrets } from "./secrets.ts";
import { CapFs } from "./tree.ts";

/** The part of the WebSocket API used here (the global one in Node, browsers and Workers). */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  binaryType: string;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: string, fn: (ev: { data?: unknown; code?: number; reason?: string; cause?: { code?: string; message: string } }) => void): void;
}

export type WsConnect = (url: URL, protocols: string[], headers: Record<string, string>) => WebSocketLike;

/** Node's WebSocket (undici) takes headers in its init object; elsewhere headers are refused. */
export const defaultConnect: WsConnect = (url, protocols, headers) => {
  const WS = globalThis.WebSocket as unknown as new (u: string, p?: unknown) => WebSocketLike;
  return Object.keys(headers).length ? new WS(url.href, { protocols, headers }) : new WS(url.href, protocols);
};

export interface WsCapOptions {
  grant: HostGrant;
  secrets?: Secrets;
  /** Connecting (10 s by default). */
  timeoutMs?: number;
  budget?: Budget;
  connect?: WsConnect;
  ctx: CapContext;
}

const STATES = ["connecting", "open", "closing", "closed"];
const enc = new TextEncoder();

export class WsCap {
  readonly #o: WsCapOptions;
  readonly #open = new Set<WebSocketLike>();

  constructor(o: WsCapOptions) {
    this.#o = o;
  }

  close(): void {
    for (const s of this.#open) s.close(1000, "capability closed");
    this.#open.clear();
  }

  service(): CapFs {
    const fail = (file: string) => (e: unknown) => report(this.#o.ctx, "ws", file, e);
    return new CapFs(cloneDir((id) => this.#conn(id, fail)));
  }

  async #connect(v: unknown): Promise<WebSocketLike> {
    if (!isRecord(v) || typeof v.url !== "string") throw fsError("EINVAL", 'connect with {"url", "protocols"?, "headers"?}');
    const protocols = v.protocols === undefined ? [] : v.protocols;
    if (!Array.isArray(protocols) || !protocols.every((p) => typeof p === "string")) throw fsError("EINVAL", '"protocols" must be an array of strings');
    const headers: Record<string, string> = {};
    if (v.headers !== undefined) {
      if (!isRecord(v.headers)) throw fsError("EINVAL", '"headers" must be an object of strings');
      for (const [k, val] of Object.entries(v.headers)) {
        if (typeof val !== "string") throw fsError("EINVAL", `header ${k}: the value must be a string`);
        headers[k.toLowerCase()] = val;
      }
    }
    const url = await checkUrl(v.url, this.#o.grant, ["ws:", "wss:"]);
    const sent = (this.#o.secrets ?? noSecrets).substitute(headers, url);
    this.#o.budget?.charge("calls", 1);
    const ms = this.#o.timeoutMs ?? 10_000;
    let ws: WebSocketLike;
    try {
      ws = (this.#o.connect ?? defaultConnect)(url, protocols as string[], sent);
    } catch (e) {
      throw fsError("ECONNREFUSED", `${url.host}: ${(e as Error).message}`);
    }
    ws.binaryType = "arraybuffer";
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        ws.close();
        reject(fsError("ETIMEDOUT", `${url.host}: not open within ${ms} ms`));
      }, ms);
      ws.addEventListener("open", () => {
        clearTimeout(timer);
        resolve();
      });
      ws.addEventListener("close", (ev) => {
        clearTimeout(timer);
        if (ev.cause?.code === "EACCES") reject(fsError("EACCES", `${url.host}: ${ev.cause.message}; grant it by exact host:port`));
        else reject(fsError("ECONNREFUSED", `${url.host}: closed before it opened (${ev.code ?? "?"}${ev.cause ? `, ${ev.cause.message}` : ""})`));
      });
    });
    return ws;
  }

  #conn(id: number, failOf: (file: string) => (e: unknown) => FsError): Conn {
    let ws: WebSocketLike | null = null;
    let connecting = false;
    let closeCode: number | null = null;
    let closeReason: string | null = null;
    const text = new MessageQueue();
    const binary = new MessageQueue();
    const budget = this.#o.budget;
    const attach = (s: WebSocketLike): void => {
      this.#open.add(s);
      s.addEventListener("message", (ev) => {
        const d = ev.data;
        if (typeof d === "string") text.push(enc.encode(d));
        else if (d instanceof ArrayBuffer) binary.push(new Uint8Array(d));
        else if (d instanceof Uint8Array) binary.push(d);
      });
      s.addEventListener("close", (ev) => {
        closeCode = ev.code ?? null;
        closeReason = ev.reason ?? "";
        this.#open.delete(s);
        text.end();
        binary.end();
      });
    };
    const ctl = (data: Uint8Array): Promise<number> | number => {
      const f = failOf(`${id}/ctl`);
      const line = new TextDecoder().decode(data).trim();
      const close = /^close(?:\s+(\d+)(?:\s+(.*))?)?$/.exec(line);
      if (close) {
        if (!ws) throw f(fsError("ENOTCONN", "not connected"));
        const code = close[1] ? Number(close[1]) : 1000;
        if (code !== 1000 && (code < 3000 || code > 4999)) throw f(fsError("EINVAL", "a close code is 1000 or 3000–4999"));
        ws.close(code, close[2] ?? "");
        return data.length;
      }
      if (ws || connecting) throw f(fsError("EINVAL", "already connected: read clone again for another connection"));
      let req: unknown;
      try {
        req = parseJson(data, "ctl");
      } catch (e) {
        throw f(e);
      }
      connecting = true;
      return this.#connect(req).then((s) => {
        ws = s;
        attach(s);
        return data.length;
      }, (e) => {
        connecting = false;
        throw f(e);
      });
    };
    const stream = (q: MessageQueue, file: string, isText: boolean) => () => handle({
      read: (n) => {
        if (!ws) throw failOf(`${id}/${file}`)(fsError("ENOTCONN", `connect through ${id}/ctl first`));
        const m = q.read(n);
        const charge = (b: Uint8Array): Uint8Array => {
          budget?.charge("bytes", b.length);
          return b;
        };
        return m instanceof Promise ? m.then(charge) : charge(m);
      },
      write: (data) => {
        const f = failOf(`${id}/${file}`);
        if (!ws || ws.readyState !== 1) throw f(fsError("ENOTCONN", ws ? "the connection is closed" : `connect through ${id}/ctl first`));
        try {
          budget?.charge("bytes", data.length);
        } catch (e) {
          throw f(e);
        }
        if (isText) {
          let s: string;
          try {
            s = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(data);
          } catch {
            throw f(fsError("EILSEQ", "a text message must be UTF-8 (send bytes through binary)"));
          }
          ws.send(s);
        } else ws.send(data.slice());
        return data.length;
      },
    });
    return {
      files: {
        ctl: () => handle({ write: ctl }),
        data: stream(text, "data", true),
        binary: stream(binary, "binary", false),
        status: () => {
          let body: Uint8Array | null = null;
          let at = 0;
          return handle({
            read: (n) => {
              body ??= enc.encode(JSON.stringify({
                state: ws ? STATES[ws.readyState] : connecting ? "connecting" : "idle",
                protocol: ws?.protocol ?? "", closeCode, closeReason,
              }) + "\n");
              const out = body.subarray(at, at + n);
              at += out.length;
              return out;
            },
          });
        },
      },
      close: () => {
        if (ws && ws.readyState < 2) ws.close(1000, "");
      },
    };
  }
}
