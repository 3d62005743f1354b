// Each edge provider's Nostr key, derived from one Worker secret (PROVIDER_KEY, 64 hex digits):
//   key = HMAC-SHA256(PROVIDER_KEY, "oanix edge provider\n" + name), re-hashed in the rare case it
//   is not a valid secp256k1 scalar.
// Why derived: the edge holds one secret (`wrangler secret put PROVIDER_KEY`), never written to D1,
// KV or a reply; every provider still has its own identity (customers p-tag one of them); the key
// is the same in every isolate and after every restart; adding a provider stores no key at all.
// A provider name stays with the key that first used it (store.ts), so a name never hands its
// identity to someone else. Rotating the secret changes every provider's identity.
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { getPublicKey } from "nostr-tools/pure";
import type { ProviderEnv } from "./config.ts";

const ORDER = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

/** The PROVIDER_KEY secret as bytes, or null when edge providers are off (missing or malformed). */
export function masterKey(env: ProviderEnv): Uint8Array | null {
  const k = env.PROVIDER_KEY?.trim().toLowerCase();
  return k && /^[0-9a-f]{64}$/.test(k) ? hexToBytes(k) : null;
}

export interface ProviderKey {
  secretKey: Uint8Array;
  pubkey: string;
}

const cache = new Map<string, ProviderKey>();

export function providerKey(master: Uint8Array, name: string): ProviderKey {
  const id = `${bytesToHex(sha256(master))}\n${name}`;
  let k = cache.get(id);
  if (k) return k;
  let sk = hmac(sha256, master, new TextEncoder().encode(`oanix edge provider\n${name}`));
  for (let n = BigInt("0x" + bytesToHex(sk)); n === 0n || n >= ORDER; n = BigInt("0x" + bytesToHex(sk))) sk = sha256(sk);
  k = { secretKey: sk, pubkey: getPublicKey(sk) };
  cache.set(id, k);
  return k;
}
