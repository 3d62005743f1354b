// Helpers for the edge's workerd tests: signed requests through the Worker's own fetch handler.
import { env, exports } from "cloudflare:workers";
import { keySigner, newSecretKey, type KeySigner, type Signer } from "../services/nip98.ts";
import { encodeFrame, decodeFrame, FRAME_TYPE, type WireOp, type WireResult } from "../services/remote-wire.ts";

export const BASE = "http://edge.test";

export function newKey(): KeySigner & { secret: string } {
  const secret = newSecretKey();
  return Object.assign(keySigner(secret), { secret });
}

export type Body = Uint8Array | string | Record<string, unknown> | undefined;

const bytesOf = (b: Body): Uint8Array | undefined =>
  b === undefined ? undefined : b instanceof Uint8Array ? b : new TextEncoder().encode(typeof b === "string" ? b : JSON.stringify(b));

/** A request signed by `who` (a key), with a bearer token, or with no credentials (null). */
export async function call(who: Signer | string | null, method: string, path: string, body?: Body, headers: Record<string, string> = {}): Promise<Response> {
  const url = BASE + path;
  const bytes = bytesOf(body);
  const h: Record<string, string> = { ...headers };
  if (typeof who === "string") h.authorization = `Bearer ${who}`;
  else if (who) h.authorization = await who.authorize(url, method, bytes);
  return exports.default.fetch(new Request(url, { method, headers: h, ...(bytes ? { body: bytes } : {}) }));
}

export async function json<T = Record<string, any>>(r: Response | Promise<Response>): Promise<T> {
  return (await (await r).json()) as T;
}

export async function createWs(owner: Signer, name = "t-" + crypto.randomUUID().slice(0, 8)): Promise<string> {
  const r = await call(owner, "POST", `/w/${name}`, {});
  if (r.status !== 201) throw new Error(`create ${name}: ${r.status} ${await r.text()}`);
  return name;
}

export interface BatchReply { status: number; results: Array<WireResult & { bytes?: Uint8Array }>; error?: { code: string; message: string } }

/** Sends a batch; `data` parts are given inline as strings or bytes. */
export async function batch(who: Signer | string | null, ws: string, ops: Array<WireOp | (Omit<Extract<WireOp, { op: "write" }>, "data"> & { bytes: Uint8Array | string })>, atomic = false, rid?: string): Promise<BatchReply> {
  const parts: Uint8Array[] = [];
  const wire = ops.map((o) => {
    if ("bytes" in o) {
      const { bytes, ...rest } = o;
      parts.push(typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes);
      return { ...rest, data: parts.length - 1 };
    }
    return o;
  });
  const r = await call(who, "POST", `/w/${ws}/batch`, encodeFrame({ ops: wire, atomic, ...(rid !== undefined ? { rid } : {}) }, parts), { "content-type": FRAME_TYPE });
  if (r.headers.get("content-type") !== FRAME_TYPE) {
    const e = (await r.json()) as { error: { code: string; message: string } };
    return { status: r.status, results: [], error: e.error };
  }
  const f = decodeFrame(new Uint8Array(await r.arrayBuffer()));
  const results = (f.header as { results: WireResult[] }).results.map((x) =>
    x.ok && typeof x.data === "number" ? { ...x, bytes: f.parts[x.data] } : x);
  return { status: r.status, results };
}

export const text = (b: Uint8Array | undefined): string => new TextDecoder().decode(b ?? new Uint8Array(0));

/** The workspace Durable Object named `name`, for tests that reach past the HTTP API. */
export const stub = (name: string) => env.WORKSPACE.get(env.WORKSPACE.idFromName(name));

/** The error code of a JSON error answer. */
export const errCode = async (r: Response): Promise<string> => ((await r.json()) as { error: { code: string } }).error.code;

/** A file's text, read through one batch. */
export async function readText(who: Parameters<typeof batch>[0], ws: string, path: string): Promise<string> {
  return text((await batch(who, ws, [{ op: "read", path, offset: 0, length: 1 << 20 }])).results[0]!.bytes);
}

export function randomBytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, Math.min(n, i + 65536)));
  return b;
}

export async function sha256Hex(b: Uint8Array): Promise<string> {
  return Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", b)), (x) => x.toString(16).padStart(2, "0")).join("");
}
