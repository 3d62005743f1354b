// Requests to an edge's HTTP API from the CLI: NIP-98 signed with the CLI key (or a capability
// token), errors turned into one line. The edge is --edge URL, else $OANIX_EDGE, else the local one.
import type { Credential } from "./credentials.ts";
import { CommandError, UsageError } from "./usage.ts";

export const LOCAL_EDGE = "http://127.0.0.1:8787";

export function edgeOrigin(flag?: string): string {
  const raw = flag ?? process.env.OANIX_EDGE ?? LOCAL_EDGE;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new UsageError(`${raw}: the edge is a URL like ${LOCAL_EDGE}`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new UsageError(`${raw}: the edge is an http(s) URL`);
  return u.origin + u.pathname.replace(/\/+$/, "");
}

export interface EdgeRequest {
  body?: Uint8Array | string | object;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export class EdgeClient {
  readonly origin: string;
  readonly cred: Credential;
  /** What a failure says it was doing ("cat demo/a.txt"); default the method and path. */
  label?: string;
  constructor(origin: string, cred: Credential) {
    this.origin = origin;
    this.cred = cred;
  }

  /** One request; a network failure is a CommandError naming the edge. */
  async fetch(method: string, path: string, r: EdgeRequest = {}): Promise<Response> {
    const url = this.origin + path;
    const headers: Record<string, string> = { ...r.headers };
    let body: Uint8Array | undefined;
    if (r.body instanceof Uint8Array) body = r.body;
    else if (typeof r.body === "string") body = new TextEncoder().encode(r.body);
    else if (r.body !== undefined) {
      body = new TextEncoder().encode(JSON.stringify(r.body));
      headers["content-type"] = "application/json";
    }
    headers.authorization = this.cred.signer ? await this.cred.signer.authorize(url, method, body) : `Bearer ${this.cred.token}`;
    try {
      return await fetch(url, { method, headers, ...(body ? { body: body as Uint8Array<ArrayBuffer> } : {}), ...(r.signal ? { signal: r.signal } : {}) });
    } catch (e) {
      const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
      throw new CommandError(`the edge at ${this.origin} cannot be reached (${cause}); start one with npm start, or pass --edge URL`);
    }
  }

  /** A request whose success is JSON; a failure is a CommandError with the edge's code and message. */
  async json<T = unknown>(method: string, path: string, r: EdgeRequest = {}): Promise<T> {
    const res = await this.fetch(method, path, r);
    if (!res.ok) throw await edgeError(res, this.label ?? `${method} ${path}`);
    if (res.status === 204) return {} as T;
    return (await res.json()) as T;
  }
}

/** The edge refused: its error code (EACCES, ENOENT, …) and message, kept apart for callers. */
export class EdgeFailure extends CommandError {
  readonly code: string;
  readonly detail: string;
  constructor(what: string, code: string, detail: string) {
    super(`${what}: ${code}${detail ? `: ${detail}` : ""}`);
    this.code = code;
    this.detail = detail;
  }
}

/** The edge's error answer ({error: {code, message}}) as one line. */
export async function edgeError(res: Response, what: string): Promise<EdgeFailure> {
  let code = `HTTP ${res.status}`, message = res.statusText;
  try {
    const b = (await res.json()) as { error?: { code?: string; message?: string } };
    if (b.error?.code) code = b.error.code;
    if (b.error?.message) message = b.error.message.replace(new RegExp(`^${code}: ?`), "");
  } catch {
    // not JSON: keep the status
  }
  return new EdgeFailure(what, code, message);
}
