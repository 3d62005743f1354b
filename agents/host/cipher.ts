// The two encryptions NIP-90 and NIP-47 name: NIP-44 v2, and the NIP-04 both specs still allow.
// Pure (nostr-tools' ciphers only), so the edge provider uses it too.
import * as nip04 from "nostr-tools/nip04";
import * as nip44 from "nostr-tools/nip44";

export type Cipher = "nip44" | "nip04";

/** NIP-04 payloads are `base64?iv=base64`; everything else is taken for NIP-44 v2. */
export const cipherOf = (payload: string): Cipher => (payload.includes("?iv=") ? "nip04" : "nip44");

export function encrypt(sk: Uint8Array, peer: string, text: string, cipher: Cipher): string {
  return cipher === "nip04" ? nip04.encrypt(sk, peer, text) : nip44.encrypt(text, nip44.getConversationKey(sk, peer));
}

export function decrypt(sk: Uint8Array, peer: string, payload: string, cipher: Cipher = cipherOf(payload)): string {
  return cipher === "nip04" ? nip04.decrypt(sk, peer, payload) : nip44.decrypt(payload, nip44.getConversationKey(sk, peer));
}
