// The console's requests to the edge it is served from, each signed with NIP-98 by the browser's
// key (browser/key.ts). Errors come back as the edge's {"error":{code,message}}, thrown as Error.
import type { Signer } from "../../services/nip98.ts";

export class Edge {
  /** Who signs: the browser's key, or the page's NIP-07 extension when the person chooses it. */
  signer: Signer;
  readonly origin: string;
  constructor(signer: Signer, origin = location.origin) {
    this.signer = signer;
    this.origin = origin;
  }

  async fetch(path: string, init: { method?: string; body?: Uint8Array | string; headers?: Record<string, string> } = {}): Promise<Response> {
    const url = new URL(path, this.origin).href;
    const method = init.method ?? "GET";
    const body = typeof init.body === "string" ? new TextEncoder().encode(init.body) : init.body;
    const headers = { ...init.headers, authorization: await this.signer.authorize(url, method, body) };
    const r = await fetch(url, { method, headers, body: body as BodyInit | undefined });
    if (!r.ok) {
      const e = (await r.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null;
      throw new Error(e?.error?.message ?? `${method} ${path}: ${r.status}`);
    }
    return r;
  }

  json<T>(path: string, init?: Parameters<Edge["fetch"]>[1]): Promise<T> {
    return this.fetch(path, init).then((r) => r.json() as Promise<T>);
  }
}

/** A path inside a workspace, each segment encoded. */
export const filePath = (ws: string, path: string): string =>
  `/w/${encodeURIComponent(ws)}/f/${path.split("/").filter(Boolean).map(encodeURIComponent).join("/")}`;
