// What the edge provider's workers tests share: nostr-tools customers on the Worker's own relay
// (/relay through the Worker's fetch) and providers added through the admin route.
import { expect } from "vitest";
import { exports } from "cloudflare:workers";
import { finalizeEvent, generateSecretKey, type Event } from "nostr-tools/pure";
import type { AbstractRelay } from "nostr-tools/abstract-relay";
import type { Filter } from "nostr-tools/filter";
import { nostrClient, type FetchTarget } from "../../relay/testing.ts";
import { call, createWs, json, newKey } from "../testing.ts";

export const worker: FetchTarget = { fetch: (input, init) => exports.default.fetch(new Request(input as string, init)) };
export const now = () => Math.floor(Date.now() / 1000);
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const status = (e: Event) => e.tags.find((t) => t[0] === "status")?.[1];

export function sign(sk: Uint8Array, kind: number, tags: string[][], content = ""): Event {
  return finalizeEvent({ kind, created_at: now(), tags, content }, sk);
}

/** Everything matching `filter` the relay holds now. */
export async function query(filter: Filter): Promise<Event[]> {
  const relay = await nostrClient(worker);
  const evs: Event[] = [];
  await new Promise<void>((resolve) => {
    const sub = relay.subscribe([filter], { onevent: (e) => evs.push(e), oneose: () => (sub.close(), resolve()) });
  });
  relay.close();
  return evs;
}

/** Follows everything naming `id` (#e) until `done` holds or `ms` pass. */
export function follow(relay: AbstractRelay, id: string, done: (evs: Event[]) => boolean, ms: number): Promise<Event[]> {
  return new Promise((resolve) => {
    const evs: Event[] = [];
    const finish = () => (clearTimeout(t), sub.close(), resolve(evs));
    const t = setTimeout(finish, ms);
    const sub = relay.subscribe([{ "#e": [id] }], {
      onevent(e) {
        evs.push(e);
        if (done(evs)) finish();
      },
    });
  });
}

/**
 * A customer asks for a job over the relay and follows it until a result or an error from
 * `pubkey` (only that provider's events count: NIP-90 forgery), or `ms`.
 */
export async function ask(kind: number, tags: string[][], pubkey: string, o: { ms?: number; sk?: Uint8Array; content?: string; until?: (evs: Event[]) => boolean } = {}) {
  const sk = o.sk ?? generateSecretKey();
  const relay = await nostrClient(worker);
  const req = sign(sk, kind, tags, o.content);
  const mine = (es: Event[]) => es.filter((e) => e.pubkey === pubkey);
  const until = o.until ?? ((es: Event[]) => es.some((e) => e.kind === kind + 1000 || status(e) === "error"));
  const got = follow(relay, req.id, (es) => until(mine(es)), o.ms ?? 15_000);
  await sleep(20);
  await relay.publish(req);
  const events = mine(await got);
  return { req, sk, relay, events, result: events.find((e) => e.kind === kind + 1000), error: events.find((e) => status(e) === "error") };
}

/** What `pubkey` published naming `id`, once a result or an error is among them (or `ms`). */
export async function answersTo(id: string, pubkey: string, ms = 20_000): Promise<Event[]> {
  const until = Date.now() + ms;
  for (;;) {
    const evs = (await query({ "#e": [id] })).filter((e) => e.pubkey === pubkey);
    if (evs.some((e) => e.kind !== 7000 || status(e) === "error") || Date.now() > until) return evs;
    await sleep(100);
  }
}

export const summary = (events: Event[]) => events.map((e) => (e.kind === 7000 ? `${status(e)}${e.content ? `: ${e.content}` : ""}` : String(e.kind)));

/** Job kinds: each test file starts its own range (the relay is shared by the files). */
let kind = 5960;
export const kindsFrom = (k: number): void => void (kind = k);
export const nextKind = (): number => kind++;

/** A provider added through the admin route over a fresh workspace of a fresh owner (with `policy` as its cap policy). */
export async function addProvider(o: Record<string, unknown> = {}, policy?: Record<string, unknown>) {
  const owner = newKey();
  const ws = await createWs(owner);
  if (policy) expect((await call(owner, "PUT", `/w/${ws}/caps`, policy)).status).toBe(200);
  const cfg = { name: `p-${crypto.randomUUID().slice(0, 8)}`, kind: nextKind(), program: "jobcount", workspace: ws, ...o } as { name: string; kind: number; program: string; workspace: string };
  const r = await call(owner, "POST", "/api/providers", cfg);
  expect(r.status, await r.clone().text()).toBe(201);
  const view = await json(r);
  return { owner, ws, cfg, pubkey: view.pubkey as string, view };
}
