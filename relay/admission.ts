// Whether the relay takes an event whose shape is valid: the operators' bans, then verification, then
// the relay's rules (kinds, sizes, time bounds, NIP-40, NIP-42 write auth, NIP-70, NIP-13, the
// per-author rate, NIP-90 checks), in that order. The answer is the text of an `OK false`, or null.
// Storage rules (duplicates, replaceables, NIP-09) come after, in store.ts.
import { expirationOf, isProtected, type NostrEvent } from "./event.ts";
import { powRequired, type RelayConfig } from "./config.ts";
import type { Moderation } from "./moderation.ts";
import { checkPow } from "./nip13.ts";
import { AUTH_KIND } from "./nip42.ts";
import { checkJobEvent } from "./nip90.ts";
import type { BucketMap } from "./ratelimit.ts";
import type { Verifier } from "./verify.ts";

export interface Gate {
  cfg: RelayConfig;
  moderation: Moderation;
  verifier: Verifier;
  buckets: BucketMap;
}

/**
 * `authed` is the pubkeys authenticated on the connection the event came on, or null for an event
 * published by code in the Worker (trusted: no write auth, NIP-70 or per-author rate).
 */
export function refusal(g: Gate, e: NostrEvent, authed: string[] | null, now: number): string | null {
  // The operators' bans cost a lookup, verification a signature check: bans first.
  const banned = g.moderation.refusal(e.id, e.pubkey);
  if (banned !== null) return banned;
  const v = g.verifier.verify(e);
  if (v === "bad-id") return "invalid: event id does not match its sha256 serialisation";
  if (v === "bad-sig") return "invalid: bad signature";
  if (e.kind === AUTH_KIND) return "invalid: kind 22242 events are only accepted in AUTH messages";
  const cfg = g.cfg;
  if (e.content.length > cfg.maxContentLength) return `invalid: content is longer than ${cfg.maxContentLength} characters`;
  if (e.tags.length > cfg.maxEventTags) return `invalid: more than ${cfg.maxEventTags} tags`;
  if (e.created_at > now + cfg.createdAtUpperLimit) return `invalid: created_at is more than ${cfg.createdAtUpperLimit} seconds in the future`;
  if (e.created_at < now - cfg.createdAtLowerLimit) return `invalid: created_at is more than ${cfg.createdAtLowerLimit} seconds in the past`;
  const exp = expirationOf(e);
  if (exp !== null && exp <= now) return "invalid: event has expired";
  if (authed && cfg.authWrite && !authed.includes(e.pubkey)) {
    if (authed.length === 0) return "auth-required: this relay only accepts events from authenticated authors";
    return "restricted: the event's author is not the authenticated pubkey";
  }
  // NIP-70: a protected event is accepted only from its authenticated author (code in the Worker is trusted).
  if (authed && isProtected(e) && !authed.includes(e.pubkey)) {
    if (authed.length === 0) return "auth-required: this event is protected; authenticate as its author to publish it";
    return "restricted: this event is protected; only its author may publish it";
  }
  const pow = checkPow(e, powRequired(cfg, e.kind));
  if (pow !== null) return pow;
  if (authed && !g.buckets.take(`pk:${e.pubkey}`, cfg.eventsPerSecondPerPubkey, cfg.eventBurstPerPubkey, Date.now()))
    return `rate-limited: more than ${cfg.eventsPerSecondPerPubkey} events/s from this author; slow down`;
  const jobError = checkJobEvent(e);
  if (jobError !== null) return `invalid: ${jobError}`;
  return null;
}
