// A NIP-07 signer: a browser extension (`window.nostr`) holds the key, and the page asks it to sign
// each NIP-98 event (kind 27235). The secret never reaches the page; each request costs the
// extension a signature (and, depending on the extension, the user a click).
import type { Event, EventTemplate } from "nostr-tools/pure";
import { bodyHash, headerOf, nip98Template, type Signer } from "../services/nip98.ts";

/** What NIP-07 says an extension puts on `window.nostr` (the part OANIX uses). */
export interface Nip07 {
  getPublicKey(): Promise<string>;
  signEvent(event: EventTemplate): Promise<Event>;
}

/** The page's `window.nostr`, if an extension put one there. */
export function nip07(): Nip07 | undefined {
  const n = (globalThis as { nostr?: Partial<Nip07> }).nostr;
  return typeof n?.getPublicKey === "function" && typeof n.signEvent === "function" ? (n as Nip07) : undefined;
}

/** A Signer whose events the extension signs. Fails at once when there is no extension or it refuses the key. */
export async function nip07Signer(nostr: Nip07 | undefined = nip07()): Promise<Signer> {
  if (!nostr) throw new Error("this page has no NIP-07 signer (window.nostr): install or enable a nostr extension, or use the browser's own key");
  const pubkey = await nostr.getPublicKey();
  if (!/^[0-9a-f]{64}$/.test(pubkey)) throw new Error(`the NIP-07 extension gave a public key that is not 64 hex digits: ${String(pubkey).slice(0, 80)}`);
  return {
    pubkey,
    authorize: async (url, method, body) => headerOf(await nip07Sign(nostr, nip98Template(url, method, body ? bodyHash(body) : undefined), pubkey)),
  };
}

/**
 * `template` signed by the extension as `pubkey`. The relay or edge verifies the signature; what is
 * checked here is that the extension signed what was asked, as the key it named (an extension
 * with several accounts may switch under the page).
 */
export async function nip07Sign(nostr: Nip07, template: EventTemplate, pubkey: string): Promise<Event> {
  const ev = await nostr.signEvent(template);
  if (ev?.kind !== template.kind || typeof ev.sig !== "string" || typeof ev.id !== "string") throw new Error(`the NIP-07 extension did not return a signed kind ${template.kind} event`);
  if (ev.pubkey !== pubkey) throw new Error("the NIP-07 extension signed with another key than the one it gave (was the account switched? reload the page)");
  return ev;
}
