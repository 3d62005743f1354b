// Outbound WebSockets from the edge, for /cap/ws and external Nostr relays: a fetch with
// `Upgrade: websocket` (the Workers way; the WebSocket constructor there takes no headers, and a
// connect may carry a secret), the answer's socket accepted and presented as the WebSocketLike
// WsCap uses. The grant is checked before (services/cap/ws.ts).
import type { WebSocketLike, WsConnect } from "../../services/cap/ws.ts";

type Listener = (ev: { data?: unknown; code?: number; reason?: string; cause?: { code?: string; message: string } }) => void;

const httpUrl = (u: URL): string => u.href.replace(/^ws/, "http");

/** Opens an already-accepted socket (or fails with why). */
export async function openSocket(url: URL, protocols: string[] = [], headers: Record<string, string> = {}, send: typeof fetch = fetch): Promise<{ ws: WebSocket; protocol: string }> {
  const h: Record<string, string> = { ...headers, Upgrade: "websocket" };
  if (protocols.length) h["Sec-WebSocket-Protocol"] = protocols.join(", ");
  const res = await send(httpUrl(url), { headers: h });
  const ws = res.webSocket;
  if (res.status !== 101 || !ws) {
    await res.body?.cancel().catch(() => {});
    throw new Error(`the server did not upgrade (HTTP ${res.status})`);
  }
  ws.accept();
  return { ws, protocol: res.headers.get("sec-websocket-protocol") ?? "" };
}

/** WsCap's connect at the edge. */
export function fetchWsConnect(send: typeof fetch = fetch): WsConnect {
  return (url, protocols, headers) => {
    const listeners = new Map<string, Listener[]>();
    const emit = (type: string, ev: Parameters<Listener>[0]): void => listeners.get(type)?.forEach((fn) => fn(ev));
    let ws: WebSocket | null = null;
    let state = 0;
    let protocol = "";
    let closeAsked: { code?: number; reason?: string } | null = null;
    openSocket(url, protocols, headers, send).then((open) => {
      ws = open.ws;
      protocol = open.protocol;
      ws.addEventListener("message", (ev) => emit("message", { data: ev.data }));
      ws.addEventListener("close", (ev) => {
        state = 3;
        emit("close", { code: ev.code, reason: ev.reason });
      });
      if (closeAsked) return ws.close(closeAsked.code, closeAsked.reason);
      state = 1;
      emit("open", {});
    }, (e: Error) => {
      state = 3;
      emit("close", { code: 1006, reason: "", cause: { message: e.message } });
    });
    const like: WebSocketLike = {
      get readyState() {
        return ws ? (state === 3 ? 3 : ws.readyState) : state;
      },
      get protocol() {
        return protocol;
      },
      binaryType: "arraybuffer",
      send: (d) => ws?.send(d),
      close: (code, reason) => {
        if (ws) ws.close(code, reason);
        else closeAsked = { code, reason };
      },
      addEventListener: (type, fn) => void listeners.set(type, [...(listeners.get(type) ?? []), fn]),
    };
    return like;
  };
}
