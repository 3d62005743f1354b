// NIP-98 HTTP auth, both sides in one module (as nostr-tools' nip98.ts): clients sign requests
// (services/remote.ts, the CLI, tests, bench) and the edge verifies them (edge/auth.ts).
// An event is kind 27235 naming the exact URL (`u`) and method, within ±60 s, with a `payload`
// tag (SHA-256 hex of the body) whenever a body is sent, an empty one included.
// Works wherever WebCrypto exists (Node, browsers, workerd).
import { finalizeEvent, getPublicKey, generateSecretKey, verifyEvent, type Event, type EventTemplate } from "nostr-tools/pure";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";

export const NIP98_KIND = 27235;
/** How far an event's created_at may be from now, in seconds. */
export const NIP98_WINDOW_S = 60;

// ---------------------------------------------------------------------------------------------
// Signing

export interface Signer {
  /** Hex x-only public key. */
  readonly pubkey: string;
  /**
   * The Authorization header value for one request (each call makes a new, single-use event).
   * A key in hand answers at once; a NIP-07 extension (browser/nip07.ts) answers with a Promise.
   */
  authorize(url: string, method: string, body?: Uint8Array): string | Promise<string>;
}

/** A signer holding its key: it signs synchronously. */
export interface KeySigner extends Signer {
  authorize(url: string, method: string, body?: Uint8Array): string;
}

function b64(s: string): string {
  const bytes = new TextEncoder().encode(s);
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

export const bodyHash = (body: Uint8Array): string => bytesToHex(sha256(body));

const secretOf = (secret: Uint8Array | string): Uint8Array => {
  const sk = typeof secret === "string" ? hexToBytes(secret.trim()) : secret;
  if (sk.length !== 32) throw new Error("a nostr secret key is 32 bytes");
  return sk;
};

let nonces = 0;

/** The unsigned NIP-98 event for one request, for a signer that holds no key (a NIP-07 extension). */
export function nip98Template(url: string, method: string, payload?: string): EventTemplate {
  const tags = [["u", url], ["method", method.toUpperCase()]];
  if (payload !== undefined) tags.push(["payload", payload]);
  // Two requests in the same second must still be distinct events (single use): a nonce tag.
  tags.push(["nonce", (++nonces).toString(36) + Math.random().toString(36).slice(2, 10)]);
  return { kind: NIP98_KIND, created_at: Math.floor(Date.now() / 1000), tags, content: "" };
}

/** The Authorization header value carrying a signed NIP-98 event. */
export const headerOf = (ev: Event): string => "Nostr " + b64(JSON.stringify(ev));

/** One signed Authorization header value. */
function header(sk: Uint8Array, url: string, method: string, payload: string | undefined): string {
  return headerOf(finalizeEvent(nip98Template(url, method, payload), sk));
}

/** A signer over a secret key (32 bytes, or 64 hex digits). */
export function keySigner(secret: Uint8Array | string): KeySigner {
  const sk = secretOf(secret);
  return {
    pubkey: getPublicKey(sk),
    // Every body is hashed, the empty one too: a streamed PUT of an empty file needs its tag.
    authorize: (url, method, body) => header(sk, url, method, body ? bodyHash(body) : undefined),
  };
}

/** A signer for a streamed body whose hash the caller computed beforehand. */
export function authorizeWithHash(secret: Uint8Array | string, url: string, method: string, sha256hex: string): string {
  return header(secretOf(secret), url, method, sha256hex);
}

/** A bearer capability token as a signer-shaped credential. */
export function tokenSigner(token: string): KeySigner {
  return { pubkey: "", authorize: () => `Bearer ${token}` };
}

export const newSecretKey = (): string => bytesToHex(generateSecretKey());

// ---------------------------------------------------------------------------------------------
// Verifying

/** Why a NIP-98 authorization was refused (the edge answers 401 with this message). */
export class Nip98Error extends Error {}

export interface Nip98Claim {
  pubkey: string;
  /** The event id: single use, kept by the verifier until `exp` (seconds). */
  id: string;
  exp: number;
  payload?: string;
}

const b64decode = (s: string): string => new TextDecoder().decode(Uint8Array.from(atob(s), (c) => c.charCodeAt(0)));

/**
 * Verifies the base64 event of `Authorization: Nostr <value>` for a request. `bodyHash` is the
 * SHA-256 hex of a body read in full (the payload tag must equal it), `"later"` for a streamed
 * body (a payload tag must be present; the caller compares it once it has seen the body), or
 * undefined for no body. Throws Nip98Error.
 */
export function verifyAuthorization(value: string, req: { url: string; method: string }, bodyHash: string | "later" | undefined, nowS = Math.floor(Date.now() / 1000)): Nip98Claim {
  let ev: Event;
  try {
    ev = JSON.parse(b64decode(value)) as Event;
  } catch {
    throw new Nip98Error("NIP-98: authorization is not a base64 JSON event");
  }
  if (typeof ev !== "object" || ev === null || ev.kind !== NIP98_KIND) throw new Nip98Error("NIP-98: event kind must be 27235");
  if (!Array.isArray(ev.tags) || typeof ev.created_at !== "number") throw new Nip98Error("NIP-98: malformed event");
  if (Math.abs(nowS - ev.created_at) > NIP98_WINDOW_S) throw new Nip98Error("NIP-98: event is expired or from the future");
  const tag = (n: string): string | undefined => {
    const t = ev.tags.find((x) => Array.isArray(x) && x[0] === n);
    return typeof t?.[1] === "string" ? t[1] : undefined;
  };
  if (tag("u") !== req.url) throw new Nip98Error("NIP-98: u tag does not match the request URL");
  if (tag("method")?.toUpperCase() !== req.method.toUpperCase()) throw new Nip98Error("NIP-98: method tag does not match");
  const payload = tag("payload");
  if (bodyHash !== undefined && bodyHash !== "later" && payload !== bodyHash) throw new Nip98Error("NIP-98: payload tag does not match the body");
  if (bodyHash === "later" && !payload) throw new Nip98Error("NIP-98: a request with a body needs a payload tag");
  let ok = false;
  try {
    ok = verifyEvent(ev);
  } catch {
    ok = false;
  }
  if (!ok) throw new Nip98Error("NIP-98: bad signature");
  return { pubkey: ev.pubkey, id: ev.id, exp: ev.created_at + NIP98_WINDOW_S + 5, ...(payload ? { payload } : {}) };
}
