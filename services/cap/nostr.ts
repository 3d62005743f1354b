// /cap/nostr: the agent's Nostr identity and relays. The secret key lives in this object only: it
// is never a file, never in a reply, never in a log.
//   pubkey, npub        the public key (64 hex + newline; the npub + newline). Public files.
//   sign                request/reply: {kind, content, tags?, created_at?} → the signed event.
//   encrypt, decrypt    request/reply, NIP-44 v2: {"pubkey","plaintext"} ↔ {"pubkey","ciphertext"}.
//   publish             request/reply: a template (signed here) or a signed event →
//                       {"id","accepted","relays":{url:{"ok","message"}}} after every relay's OK or time limit.
//   query               request/reply: a filter or a list → the events from every relay up to EOSE,
//                       merged, deduplicated, newest first.
//   subscriptions/      clone → N/filter (write filters), N/events (one event JSON per line, waiting).
//   inbox               events that p-tag the agent since the mount was made, one per line, waiting.
//   jobs/               the customer side of NIP-90 (the marketplace issue).
// Time limit: 10 s per relay for publish and query. Budget: `calls` per sign/encrypt/decrypt/publish/query.
import { fsError, type FsError } from "../../runtime/errors.ts";
import type { Budget } from "../../runtime/namespace.ts";
import { hexToBytes } from "@noble/hashes/utils.js";
import { npubEncode } from "nostr-tools/nip19";
import * as nip44 from "nostr-tools/nip44";
import { finalizeEvent, getPublicKey, verifyEvent, type Event, type EventTemplate } from "nostr-tools/pure";
import { cloneDir, handle, type Conn } from "./clone.ts";
import { report, type CapContext } from "./events.ts";
import { Relays, type Filter, type LinkFactory } from "./nostr-relays.ts";
import { Pipe } from "./pipe.ts";
import { isRecord, jsonReply, parseJson, reqReplyFile } from "./reqreply.ts";
import { CapFs, dir, textFile, type CapFile } from "./tree.ts";

export interface NostrCapOptions {
  /** 64 hex digits. */
  secretKey: string;
  relays: string[];
  /** Relays the host reaches its own way (the edge: its relay object, by RPC), after `relays`. */
  links?: LinkFactory[];
  timeoutMs?: number;
  budget?: Budget;
  ctx: CapContext;
}

const HEX64 = /^[0-9a-f]{64}$/;
const enc = new TextEncoder();

function template(v: unknown): EventTemplate {
  if (!isRecord(v)) throw fsError("EINVAL", "an event template is {kind, content, tags?, created_at?}");
  if (!Number.isInteger(v.kind) || (v.kind as number) < 0 || (v.kind as number) > 65535) throw fsError("EINVAL", '"kind" must be an integer 0–65535');
  if (typeof v.content !== "string") throw fsError("EINVAL", '"content" must be a string');
  const tags = v.tags ?? [];
  if (!Array.isArray(tags) || !tags.every((t) => Array.isArray(t) && t.every((x) => typeof x === "string"))) throw fsError("EINVAL", '"tags" must be an array of arrays of strings');
  const created = v.created_at ?? Math.floor(Date.now() / 1000);
  if (!Number.isSafeInteger(created) || (created as number) < 0) throw fsError("EINVAL", '"created_at" must be a non-negative integer (seconds)');
  return { kind: v.kind as number, content: v.content, tags: tags as string[][], created_at: created as number };
}

function filters(v: unknown): Filter[] {
  const list = Array.isArray(v) ? v : [v];
  if (!list.length || !list.every(isRecord)) throw fsError("EINVAL", "a filter is a JSON object (or a list of them)");
  return list as Filter[];
}

export class NostrCap {
  readonly #o: NostrCapOptions;
  readonly #sk: Uint8Array;
  readonly pubkey: string;
  readonly #relays: Relays;
  readonly #mountedAt = Math.floor(Date.now() / 1000);

  constructor(o: NostrCapOptions) {
    if (!HEX64.test(o.secretKey)) throw fsError("EINVAL", "nostr: the secret key must be 64 lower-case hex digits");
    this.#o = o;
    this.#sk = hexToBytes(o.secretKey);
    this.pubkey = getPublicKey(this.#sk);
    const auth = (t: EventTemplate): Event => finalizeEvent(t, this.#sk);
    this.#relays = new Relays(o.relays, auth, (o.links ?? []).map((make) => make(auth, this.pubkey)));
  }

  get #ms(): number {
    return this.#o.timeoutMs ?? 10_000;
  }

  close(): void {
    this.#relays.close();
  }

  sign(t: EventTemplate): Event {
    this.#o.budget?.charge("calls", 1);
    return finalizeEvent(t, this.#sk);
  }

  async publish(v: unknown): Promise<Record<string, unknown>> {
    let e: Event;
    if (isRecord(v) && typeof v.id === "string" && typeof v.sig === "string") {
      if (!verifyEvent(v as unknown as Event)) throw fsError("EINVAL", "publish: the event's id or signature does not verify");
      this.#o.budget?.charge("calls", 1);
      e = v as unknown as Event;
    } else e = this.sign(template(v));
    if (!this.#relays.urls.length) throw fsError("ENOTCONN", "publish: no relays granted");
    const relays = await this.#relays.publish(e, this.#ms);
    return { id: e.id, accepted: Object.values(relays).some((r) => r.ok), relays };
  }

  async query(v: unknown): Promise<Event[]> {
    const f = filters(v);
    this.#o.budget?.charge("calls", 1);
    if (!this.#relays.urls.length) throw fsError("ENOTCONN", "query: no relays granted");
    const { events, failed } = await this.#relays.query(f, this.#ms);
    if (failed.length === this.#relays.urls.length && !events.length) {
      const timedOut = failed.every((f) => f.includes("no EOSE"));
      throw fsError(timedOut ? "ETIMEDOUT" : "ECONNREFUSED", `query: ${failed.join("; ")}`);
    }
    return events;
  }

  #crypt(v: unknown, way: "encrypt" | "decrypt"): Record<string, string> {
    const field = way === "encrypt" ? "plaintext" : "ciphertext";
    if (!isRecord(v) || typeof v.pubkey !== "string" || !HEX64.test(v.pubkey) || typeof v[field] !== "string")
      throw fsError("EINVAL", `${way} takes {"pubkey": 64 hex, "${field}": string}`);
    this.#o.budget?.charge("calls", 1);
    let key: Uint8Array;
    try {
      key = nip44.getConversationKey(this.#sk, v.pubkey);
    } catch {
      throw fsError("EINVAL", `${way}: ${v.pubkey} is not a valid public key`);
    }
    try {
      return way === "encrypt"
        ? { pubkey: v.pubkey, ciphertext: nip44.encrypt(v.plaintext as string, key) }
        : { pubkey: v.pubkey, plaintext: nip44.decrypt(v.ciphertext as string, key) };
    } catch (e) {
      throw fsError("EINVAL", `${way}: ${(e as Error).message}`);
    }
  }

  /** A file that streams events as lines, from a subscription started by `filtersOf()`. */
  #stream(fail: (e: unknown) => FsError, filtersOf: () => Filter[] | null) {
    return () => {
      const lines = new Pipe();
      let stop: (() => void) | null = null;
      return handle({
        read: (n) => {
          if (!stop) {
            const f = filtersOf();
            if (!f) throw fail(fsError("EINVAL", "write a filter first"));
            stop = this.#relays.subscribe(f, (e) => lines.push(enc.encode(JSON.stringify(e) + "\n")), (why) => lines.fail(fail(fsError("ECONNRESET", why))), this.#ms);
          }
          return lines.read(n);
        },
        close: () => stop?.(),
      });
    };
  }

  service(): CapFs {
    const failOf = (file: string) => (e: unknown) => report(this.#o.ctx, "nostr", file, e);
    const rr = (name: string, fn: (v: unknown) => unknown): CapFile =>
      reqReplyFile(async (r) => jsonReply(await fn(parseJson(r, name))), { fail: failOf(name) });
    const subscription = (id: number): Conn => {
      let f: Filter[] | null = null;
      return {
        files: {
          filter: () => handle({
            write: (data) => {
              if (f) throw failOf(`subscriptions/${id}/filter`)(fsError("EINVAL", "one filter per subscription: read clone again"));
              try {
                f = filters(parseJson(data, "filter"));
              } catch (e) {
                throw failOf(`subscriptions/${id}/filter`)(e);
              }
              return data.length;
            },
          }),
          events: this.#stream(failOf(`subscriptions/${id}/events`), () => f),
        },
        close: () => {},
      };
    };
    return new CapFs(dir({
      pubkey: textFile(() => this.pubkey + "\n", { public: true }),
      npub: textFile(() => npubEncode(this.pubkey) + "\n", { public: true }),
      relays: textFile(() => this.#relays.urls.map((u) => u + "\n").join(""), { public: true }),
      sign: rr("sign", (v) => this.sign(template(v))),
      encrypt: rr("encrypt", (v) => this.#crypt(v, "encrypt")),
      decrypt: rr("decrypt", (v) => this.#crypt(v, "decrypt")),
      publish: rr("publish", (v) => this.publish(v)),
      query: rr("query", (v) => this.query(v)),
      subscriptions: cloneDir(subscription),
      inbox: { kind: "file", open: this.#stream(failOf("inbox"), () => [{ "#p": [this.pubkey], since: this.#mountedAt }]) },
      jobs: dir({}),
    }));
  }
}
