// What every route needs from a request: the workspace it names, its file path, its body (read
// once, with a cap, by the `body` middleware), its credential, and the workspace object.
import type { Context, MiddlewareHandler } from "hono";
import { FsError } from "../../runtime/errors.ts";
import { NAME_RE } from "../../services/remote-wire.ts";
import { pathOf } from "../workspace/names.ts";
import { concat, sha256hex } from "../bytes.ts";
import { credentialOf, type Cred, type Principal } from "../auth.ts";
import { unwrap } from "../errors.ts";
import type { Env } from "../env.ts";

export type AppEnv = { Bindings: Env; Variables: { body: Uint8Array } };
export type C = Context<AppEnv>;

export const stubOf = (env: Env, name: string) => env.WORKSPACE.get(env.WORKSPACE.idFromName(name));
/** The object that records a key's NIP-98 nonces for routes that belong to no workspace. */
export const keyStub = (env: Env, pubkey: string) => stubOf(env, "@key:" + pubkey);

export function wsName(c: C): string {
  const n = c.req.param("name") ?? "";
  if (!NAME_RE.test(n)) throw new FsError("EINVAL", "workspace names are 1-63 of [A-Za-z0-9._-], starting with a letter or digit");
  return n;
}

/** Buffers the body (Content-Length checked first, then while reading) into `c.var.body`. */
export const body = (max: number): MiddlewareHandler<AppEnv> => async (c, next) => {
  c.set("body", await readBody(c.req.raw, max));
  await next();
};

async function readBody(req: Request, max: number): Promise<Uint8Array> {
  const tooBig = () => new FsError("EFBIG", `body larger than ${max} bytes`);
  const cl = req.headers.get("content-length");
  if (cl !== null && Number(cl) > max) throw tooBig();
  if (!req.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let n = 0;
  const r = req.body.getReader();
  for (;;) {
    const { done, value } = await r.read();
    if (done) break;
    n += value.length;
    if (n > max) {
      await r.cancel().catch(() => {});
      throw tooBig();
    }
    chunks.push(value);
  }
  return chunks.length ? concat(chunks) : new Uint8Array(0);
}

/** The credential of a request; its body (if any) has been read by `body`. */
export async function credOf(c: C): Promise<Cred> {
  const b = c.get("body");
  return credentialOf(c.req.raw, b && b.length ? await sha256hex(b) : undefined);
}

/** The body as a JSON object ({} when empty). */
export function jsonOf(c: C): Record<string, unknown> {
  const raw = c.get("body");
  let v: unknown = {};
  if (raw?.length) {
    try {
      v = JSON.parse(new TextDecoder().decode(raw));
    } catch {
      throw new FsError("EINVAL", "body is not JSON");
    }
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new FsError("EINVAL", "body must be a JSON object");
  return v as Record<string, unknown>;
}

/** Authenticates and authorises for a workspace-level action; returns an internal credential. */
export async function authFor(c: C, name: string, cred: Cred, write: boolean): Promise<{ principal: Principal; inner: Cred }> {
  const principal = unwrap(await stubOf(c.env, name).authenticate(cred, [{ path: "", write }]));
  return { principal, inner: { type: "internal", principal } };
}

/**
 * The file path of `/w/NAME/f/PATH`, from the raw URL: segments after the fourth, each
 * percent-decoded on its own (an encoded `/` inside a name is refused), then checked.
 */
export function filePath(c: C): string {
  const segs = new URL(c.req.url).pathname.split("/").slice(4);
  let names: string[];
  try {
    names = segs.map(decodeURIComponent);
  } catch {
    throw new FsError("EINVAL", "bad percent-encoding in path");
  }
  if (names.some((s) => s.includes("/"))) throw new FsError("EINVAL", "encoded slash in a name");
  return pathOf(names.join("/"));
}

/**
 * A natural number from a request: a JSON number, or a decimal string from a query. Anything
 * else is EINVAL, so a typo never becomes NaN, a default, or a silent clamp. Absent: `fallback`.
 */
export function natural(v: unknown, what: string, fallback?: number): number {
  if (v === undefined && fallback !== undefined) return fallback;
  const n = typeof v === "string" && /^\d{1,15}$/.test(v) ? Number(v) : v;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) throw new FsError("EINVAL", `${what} must be a natural number`);
  return n;
}
