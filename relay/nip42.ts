// NIP-42: how a relay URL is compared, and the checks of a kind-22242 AUTH event (after its
// signature has been verified).
import type { NostrEvent } from "./event.ts";

export const AUTH_KIND = 22242;
/** An AUTH event must be this close to now (seconds). */
const AUTH_WINDOW = 600;

/** host + path, lowercased host, no trailing slash: how relay URLs are compared (NIP-42, NIP-98). */
export function relayUrlKey(u: string): string | null {
  try {
    const url = new URL(u);
    return url.host.toLowerCase() + (url.pathname.replace(/\/+$/, "") || "");
  } catch {
    return null;
  }
}

/** Why a verified AUTH event does not authenticate this connection, or null when it does. */
export function checkAuthEvent(e: NostrEvent, challenge: string, urlKey: string, now: number): string | null {
  if (e.kind !== AUTH_KIND) return "invalid: AUTH needs a kind 22242 event";
  if (Math.abs(e.created_at - now) > AUTH_WINDOW) return "invalid: AUTH event created_at is not within 10 minutes of now";
  if (e.tags.find((t) => t[0] === "challenge")?.[1] !== challenge) return "invalid: AUTH challenge does not match this connection's";
  const relay = e.tags.find((t) => t[0] === "relay")?.[1];
  if (relay === undefined || relayUrlKey(relay) !== urlKey) return "invalid: AUTH relay tag does not name this relay";
  return null;
}
