// Capabilities: typed helpers over /cap/* files (request/reply and clone, as in Plan 9). Every
// helper returns null on failure with the reason in lastError() (EACCES: host not granted,
// EDQUOT: budget spent, ETIMEDOUT, …); the host has also logged a cap.error line.
//
//   const page = httpFetch("https://example.com/");
//   const answer = llmComplete("Summarise:\n" + page!.body);
//   nostrPublish(1, answer!.text);

import { EIO, fail, lastError } from "./errno";
import { File } from "./file";
import { Json, parseJson } from "./json";
import { utf8ToString } from "./utf8";

const EMSGSIZE: u16 = 35;

/** One request/reply exchange: write `body` to `path`, read the reply to EOF. */
export function request(path: string, body: string): string | null {
  const f = File.open(path, "r+");
  if (f == null) return null;
  if (!f.writeText(body)) {
    f.close();
    return null;
  }
  const reply = f.readText();
  f.close();
  return reply;
}

/** request() with a JSON request and reply. */
export function requestJson(path: string, body: Json): Json | null {
  const text = request(path, body.toString());
  if (text == null) return null;
  const v = parseJson(text);
  if (v == null) fail(EIO, "parse", path);
  return v;
}

// ---- /cap/http ----------------------------------------------------------------------------

export class HttpReply {
  status: i32 = 0;
  statusText: string = "";
  /** The final URL, after redirects. */
  url: string = "";
  /** Lower-case header names to values. */
  headers: Json = Json.obj();
  /** The body as text ("" when it was not UTF-8: see bodyBase64). */
  body: string = "";
  bodyBase64: string = "";
}

/** Fetches a URL through /cap/http/fetch. A 4xx/5xx is a reply, not a failure. */
export function httpFetch(url: string, method: string = "GET", body: string | null = null, headers: Json | null = null): HttpReply | null {
  const req = Json.obj();
  req.set("url", Json.str(url));
  req.set("method", Json.str(method));
  if (headers != null) req.set("headers", headers);
  if (body != null) req.set("body", Json.str(body));
  const v = requestJson("/cap/http/fetch", req);
  if (v == null) return null;
  const r = new HttpReply();
  r.status = <i32>v.getNumber("status");
  r.statusText = v.getString("statusText");
  r.url = v.getString("url");
  const h = v.get("headers");
  if (h != null) r.headers = h;
  r.body = v.getString("body");
  r.bodyBase64 = v.getString("bodyBase64");
  return r;
}

// ---- /cap/llm -----------------------------------------------------------------------------

export class LlmReply {
  text: string = "";
  model: string = "";
  finishReason: string = "";
  promptTokens: i32 = 0;
  completionTokens: i32 = 0;
}

/** Asks the model: an optional system message and one user message. maxTokens 0: no limit asked. */
export function llmComplete(prompt: string, system: string = "", maxTokens: i32 = 0): LlmReply | null {
  const messages = Json.arr();
  if (system.length > 0) messages.push(Json.obj().set("role", Json.str("system")).set("content", Json.str(system)));
  messages.push(Json.obj().set("role", Json.str("user")).set("content", Json.str(prompt)));
  const req = Json.obj().set("messages", messages);
  if (maxTokens > 0) req.set("max_tokens", Json.num(<f64>maxTokens));
  const v = requestJson("/cap/llm/complete", req);
  if (v == null) return null;
  const r = new LlmReply();
  r.text = v.getString("text");
  r.model = v.getString("model");
  r.finishReason = v.getString("finish_reason");
  const u = v.get("usage");
  if (u != null) {
    r.promptTokens = <i32>u.getNumber("prompt_tokens");
    r.completionTokens = <i32>u.getNumber("completion_tokens");
  }
  return r;
}

// ---- /cap/nostr ---------------------------------------------------------------------------

function template(kind: i32, content: string, tags: Json | null): Json {
  const t = Json.obj();
  t.set("kind", Json.num(<f64>kind));
  t.set("content", Json.str(content));
  t.set("tags", tags != null ? tags : Json.arr());
  return t;
}

/** Signs an event with the agent's key (which it never sees); the signed event. */
export function nostrSign(kind: i32, content: string, tags: Json | null = null): Json | null {
  return requestJson("/cap/nostr/sign", template(kind, content, tags));
}

export class Published {
  id: string = "";
  /** At least one relay accepted it. */
  accepted: bool = false;
  /** Per relay URL: {"ok", "message"}. */
  relays: Json = Json.obj();
}

/** Signs and publishes an event to every granted relay. */
export function nostrPublish(kind: i32, content: string, tags: Json | null = null): Published | null {
  const v = requestJson("/cap/nostr/publish", template(kind, content, tags));
  if (v == null) return null;
  const p = new Published();
  p.id = v.getString("id");
  p.accepted = v.getBool("accepted");
  const r = v.get("relays");
  if (r != null) p.relays = r;
  return p;
}

/** Events matching a filter (or a list of filters) from every relay, newest first. */
export function nostrQuery(filter: Json): Json | null {
  return requestJson("/cap/nostr/query", filter);
}

// ---- /cap/ws ------------------------------------------------------------------------------

/** A WebSocket through /cap/ws (the clone pattern); null on failure (lastError()). */
export class WsConn {
  /** The connection number N (files under /cap/ws/N/). */
  n: string;
  /** True once the peer or we closed: recv() then answers null. */
  closed: bool = false;
  private clone: File;
  private ctl: File;
  private data: File;
  private bin: File;

  constructor(n: string, clone: File, ctl: File, data: File, bin: File) {
    this.n = n;
    this.clone = clone;
    this.ctl = ctl;
    this.data = data;
    this.bin = bin;
  }

  /** Sends one text message. */
  send(text: string): bool {
    return this.data.writeText(text);
  }

  /** Sends one binary message. */
  sendBinary(bytes: Uint8Array): bool {
    return this.bin.write(bytes);
  }

  /** The next whole text message (waiting for it); null at close (`closed`) or on error. */
  recv(): string | null {
    const b = this.recvFrom(this.data);
    return b == null ? null : utf8ToString(b);
  }

  /** The next whole binary message; null at close or on error. */
  recvBinary(): Uint8Array | null {
    return this.recvFrom(this.bin);
  }

  private recvFrom(f: File): Uint8Array | null {
    let size: i32 = 65536;
    while (true) {
      const b = f.read(size);
      if (b != null) {
        if (b.length == 0) {
          this.closed = true;
          return null;
        }
        return b;
      }
      // A message bigger than the buffer stays queued: read again with room for it.
      if (lastError().errno != EMSGSIZE || size >= 64 << 20) return null;
      size *= 4;
    }
  }

  /** Closes (code 1000 unless given) and releases the connection's files. */
  close(code: i32 = 1000, reason: string = ""): void {
    this.ctl.writeText("close " + code.toString() + (reason.length > 0 ? " " + reason : ""));
    this.data.close();
    this.bin.close();
    this.ctl.close();
    this.clone.close();
  }
}

/** Opens a WebSocket to `url` (ws:// or wss://, within the ws grant). */
export function wsConnect(url: string, protocols: string[] | null = null): WsConn | null {
  const clone = File.open("/cap/ws/clone", "r");
  if (clone == null) return null;
  const nText = clone.readText();
  if (nText == null) {
    clone.close();
    return null;
  }
  const n = nText.trim();
  const base = "/cap/ws/" + n + "/";
  const ctl = File.open(base + "ctl", "r+");
  if (ctl == null) {
    clone.close();
    return null;
  }
  const req = Json.obj().set("url", Json.str(url));
  if (protocols != null) {
    const ps = Json.arr();
    for (let i = 0; i < protocols.length; i++) ps.push(Json.str(protocols[i]));
    req.set("protocols", ps);
  }
  if (!ctl.writeText(req.toString())) {
    ctl.close();
    clone.close();
    return null;
  }
  const data = File.open(base + "data", "r+");
  const bin = File.open(base + "binary", "r+");
  if (data == null || bin == null) {
    if (data != null) data.close();
    if (bin != null) bin.close();
    ctl.close();
    clone.close();
    return null;
  }
  return new WsConn(n, clone, ctl, data, bin);
}
