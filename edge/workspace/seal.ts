// Values kept sealed in the workspace's SQLite (secrets, the agent's Nostr key): AES-256-GCM
// (WebCrypto), a random 96-bit IV per value, and additional data that binds each value to where
// it belongs (the workspace name and the value's own name), so a sealed row copied into another
// workspace or under another name does not open. The key is derived with HKDF-SHA256 from the
// Worker secret SECRETS_KEY; without it nothing is stored (never plaintext): a clear ENOTSUP.
import { FsError } from "../../runtime/errors.ts";

export interface Sealed { iv: Uint8Array; ct: Uint8Array }

const MIN_KEY_CHARS = 32;
const enc = new TextEncoder();
const keys = new Map<string, Promise<CryptoKey>>();

/** The AES-GCM key for this Worker's SECRETS_KEY (derived once per isolate). */
export function sealKey(secret: string | undefined): Promise<CryptoKey> {
  if (!secret) {
    throw new FsError("ENOTSUP", "this edge keeps no secrets: the Worker secret SECRETS_KEY is not set (wrangler secret put SECRETS_KEY with 32+ random characters, as from openssl rand -hex 32; the local edge makes one in its state directory)");
  }
  if (secret.length < MIN_KEY_CHARS) throw new FsError("ENOTSUP", `SECRETS_KEY is too short (${secret.length} characters; at least ${MIN_KEY_CHARS} random ones, as from openssl rand -hex 32)`);
  let k = keys.get(secret);
  if (!k) {
    k = crypto.subtle.importKey("raw", enc.encode(secret), "HKDF", false, ["deriveKey"]).then((base) =>
      crypto.subtle.deriveKey(
        { name: "HKDF", hash: "SHA-256", salt: enc.encode("oanix/workspace-seal/v1"), info: enc.encode("aes-256-gcm") },
        base, { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]));
    keys.set(secret, k);
  }
  return k;
}

export async function seal(key: CryptoKey, plaintext: string, aad: string): Promise<Sealed> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: enc.encode(aad) }, key, enc.encode(plaintext));
  return { iv, ct: new Uint8Array(ct) };
}

/** The plaintext, or EIO when the value does not open (another SECRETS_KEY, or moved rows). */
export async function unseal(key: CryptoKey, s: Sealed, aad: string, what: string): Promise<string> {
  try {
    const pt = await crypto.subtle.decrypt({ name: "AES-GCM", iv: s.iv as Uint8Array<ArrayBuffer>, additionalData: enc.encode(aad) }, key, s.ct as Uint8Array<ArrayBuffer>);
    return new TextDecoder().decode(pt);
  } catch {
    throw new FsError("EIO", `${what} does not decrypt: it was sealed with another SECRETS_KEY or for another place; set it again`);
  }
}
