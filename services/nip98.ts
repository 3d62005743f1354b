// NIP-98 request signing for clients of the edge (services/remote.ts, the CLI, tests, bench).
// Works wherever WebCrypto and fetch exist (Node, browsers, workerd).
import { finalizeEvent, getPublicKey, generateSecretKey } from "nostr-tools/pure";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";

export interface Signer {
  /** Hex x-only public key. */
  readonly pubkey: string;
  /** The Authorization header value for one request (each call makes a new, single-use event). */
  authorize(url: string, method: string, body?: Uint8Array): string;
}

function b64(s: string): string {
  const bytes = new TextEncoder().encode(s);
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

export const bodyHash = (body: Uint8Array): string => bytesToHex(sha256(body));

/** A signer over a secret key (32 bytes, or 64 hex digits). */
export function keySigner(secret: Uint8Array | string): Signer {
  const sk = typeof secret === "string" ? hexToBytes(secret.trim()) : secret;
  if (sk.length !== 32) throw new Error("a nostr secret key is 32 bytes");
  const pubkey = getPublicKey(sk);
  let last = 0;
  return {
    pubkey,
    authorize(url, method, body) {
      const tags = [["u", url], ["method", method.toUpperCase()]];
      // Every body is hashed, the empty one too: a streamed PUT of an empty file needs its tag.
      if (body) tags.push(["payload", bodyHash(body)]);
      // Two requests in the same second must still be distinct events (single use): a nonce tag.
      tags.push(["nonce", (++last).toString(36) + Math.random().toString(36).slice(2, 10)]);
      const ev = finalizeEvent({ kind: 27235, created_at: Math.floor(Date.now() / 1000), tags, content: "" }, sk);
      return "Nostr " + b64(JSON.stringify(ev));
    },
  };
}

/** A signer for a streamed body whose hash the caller computed beforehand. */
export function authorizeWithHash(secret: Uint8Array | string, url: string, method: string, sha256hex: string): string {
  const sk = typeof secret === "string" ? hexToBytes(secret.trim()) : secret;
  const tags = [["u", url], ["method", method.toUpperCase()], ["payload", sha256hex], ["nonce", Math.random().toString(36).slice(2)]];
  const ev = finalizeEvent({ kind: 27235, created_at: Math.floor(Date.now() / 1000), tags, content: "" }, sk);
  return "Nostr " + b64(JSON.stringify(ev));
}

/** A bearer capability token as a signer-shaped credential. */
export function tokenSigner(token: string): Signer {
  return { pubkey: "", authorize: () => `Bearer ${token}` };
}

export const newSecretKey = (): string => bytesToHex(generateSecretKey());
