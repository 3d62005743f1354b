// Webhook destinations per owner (D1 webhook_destinations) and the delivery of one run event to
// one destination: a POST of the event's JSON, signed `X-OANIX-Signature: sha256=HEX` (HMAC-SHA256
// of the body with the destination's secret; no signature when it has none), never following a
// redirect, within 10 s. The run's Durable Object decides when (run.ts: retries with exponential
// backoff from its alarm, so no request sleeps).
import { fsError } from "../../runtime/errors.ts";
import { hex } from "../bytes.ts";
import type { Env } from "../env.ts";
import { eventFilter, type EventType } from "./events.ts";
import { allowedPrivate, checkOutbound } from "./outbound.ts";
import { ensurePlanningSchema } from "./schema.ts";

export const MAX_DESTINATIONS = 20;
const MAX_SECRET = 256;
const MAX_URL = 2048;

export interface Destination { id: string; url: string; events: EventType[] | "*"; secret: string | null }

const publicOf = (d: { id: string; url: string; events: EventType[] | "*"; created?: number }) => ({
  id: d.id, url: d.url, events: d.events, ...(d.created ? { createdAt: new Date(d.created).toISOString() } : {}),
});

const eventsOf = (v: string): EventType[] | "*" => (v === "*" ? "*" : (JSON.parse(v) as EventType[]));

export async function addDestination(env: Env, owner: string, b: Record<string, unknown>): Promise<ReturnType<typeof publicOf>> {
  await ensurePlanningSchema(env.DB);
  if (typeof b.url !== "string" || !b.url || b.url.length > MAX_URL) throw fsError("EINVAL", `url is an http(s) URL of at most ${MAX_URL} characters`);
  const u = checkOutbound(b.url, allowedPrivate(env.ALLOW_PRIVATE_HOSTS), "webhook");
  const events = eventFilter(b.events);
  if (b.secret !== undefined && (typeof b.secret !== "string" || !b.secret || b.secret.length > MAX_SECRET)) throw fsError("EINVAL", `secret is a string of 1–${MAX_SECRET} characters`);
  const n = await env.DB.prepare("SELECT count(*) AS n FROM webhook_destinations WHERE owner = ? AND active = 1").bind(owner).first<{ n: number }>();
  if ((n?.n ?? 0) >= MAX_DESTINATIONS) throw fsError("ENOSPC", `at most ${MAX_DESTINATIONS} webhook destinations per key`);
  const id = crypto.randomUUID();
  const now = Date.now();
  await env.DB.prepare("INSERT INTO webhook_destinations (id, owner, url, hostname, secret, events, active, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)")
    .bind(id, owner, u.href, u.hostname, (b.secret as string | undefined) ?? null, events === "*" ? "*" : JSON.stringify(events), now, now).run();
  return publicOf({ id, url: u.href, events, created: now });
}

export async function listDestinations(db: D1Database, owner: string): Promise<ReturnType<typeof publicOf>[]> {
  await ensurePlanningSchema(db);
  const rs = await db.prepare("SELECT id, url, events, created_at FROM webhook_destinations WHERE owner = ? AND active = 1 ORDER BY created_at").bind(owner).all<{ id: string; url: string; events: string; created_at: number }>();
  return rs.results.map((r) => publicOf({ id: r.id, url: r.url, events: eventsOf(r.events), created: r.created_at }));
}

export async function removeDestination(db: D1Database, owner: string, id: string): Promise<void> {
  await ensurePlanningSchema(db);
  const r = await db.prepare("UPDATE webhook_destinations SET active = 0, secret = NULL, updated_at = ? WHERE id = ? AND owner = ? AND active = 1").bind(Date.now(), id, owner).run();
  if (!r.meta.changes) throw fsError("ENOENT", `no webhook ${id.slice(0, 100)}`);
}

/** The owner's active destinations (with their secrets: for delivery only, never answered). */
export async function destinationsFor(db: D1Database, owner: string): Promise<Destination[]> {
  await ensurePlanningSchema(db);
  const rs = await db.prepare("SELECT id, url, events, secret FROM webhook_destinations WHERE owner = ? AND active = 1").bind(owner).all<{ id: string; url: string; events: string; secret: string | null }>();
  return rs.results.map((r) => ({ id: r.id, url: r.url, events: eventsOf(r.events), secret: r.secret }));
}

export async function destination(db: D1Database, id: string): Promise<Destination | null> {
  const r = await db.prepare("SELECT id, url, events, secret FROM webhook_destinations WHERE id = ? AND active = 1").bind(id).first<{ id: string; url: string; events: string; secret: string | null }>();
  return r ? { id: r.id, url: r.url, events: eventsOf(r.events), secret: r.secret } : null;
}

export const wants = (d: Destination, type: string): boolean => d.events === "*" || (d.events as string[]).includes(type);

export async function sign(secret: string, body: string): Promise<string> {
  const enc = new TextEncoder();
  const key = await crypto.subtle.importKey("raw", enc.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return `sha256=${hex(new Uint8Array(await crypto.subtle.sign("HMAC", key, enc.encode(body))))}`;
}

export type Attempt = { ok: true; status: number } | { ok: false; retry: boolean; why: string };

/** One POST of `body` to the destination. `retry: false` when trying again cannot help. */
export async function deliver(env: Env, d: Destination, delivery: string, type: string, body: string): Promise<Attempt> {
  let url: URL;
  try {
    url = checkOutbound(d.url, allowedPrivate(env.ALLOW_PRIVATE_HOSTS), "webhook");
  } catch (e) {
    return { ok: false, retry: false, why: (e as Error).message };
  }
  const headers: Record<string, string> = { "content-type": "application/json", "user-agent": "oanix-edge", "x-oanix-event": type, "x-oanix-delivery": delivery };
  if (d.secret) headers["x-oanix-signature"] = await sign(d.secret, body);
  try {
    const r = await fetch(url, { method: "POST", headers, body, redirect: "manual", signal: AbortSignal.timeout(10_000) });
    await r.body?.cancel().catch(() => {});
    if (r.status >= 200 && r.status < 300) return { ok: true, status: r.status };
    return { ok: false, retry: true, why: `HTTP ${r.status}${r.status >= 300 && r.status < 400 ? " (redirects are not followed)" : ""}` };
  } catch (e) {
    return { ok: false, retry: true, why: (e as Error).message };
  }
}
