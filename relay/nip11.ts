// NIP-11: the relay information document, advertising exactly what the relay enforces (its
// configuration and which optional NIPs are switched on).
import type { RelayConfig } from "./config.ts";

export const SOFTWARE = "oanix-relay";
export const VERSION = "0.2.0";

/** NIPs that are always enforced. */
const BASE_NIPS = [1, 9, 11, 40, 42, 45, 50, 70, 89, 90];

export interface RelayFeatures {
  /** NIP-86 management is served (at least one admin pubkey is configured). */
  management: boolean;
  /** NIPs other modules add (e.g. NIP-77). */
  extraNips?: number[];
}

export function supportedNips(cfg: RelayConfig, features: RelayFeatures): number[] {
  const nips = new Set([...BASE_NIPS, ...(features.extraNips ?? [])]);
  if (cfg.minPowDifficulty > 0 || Object.values(cfg.powByKind).some((b) => b > 0)) nips.add(13);
  if (features.management) nips.add(86);
  return [...nips].sort((a, b) => a - b);
}

/** The NIP-11 relay information document for this configuration. */
export function relayInfo(cfg: RelayConfig, features: RelayFeatures = { management: false }): Record<string, unknown> {
  const limitation: Record<string, unknown> = {
    max_message_length: cfg.maxMessageLength,
    max_subscriptions: cfg.maxSubscriptions,
    max_filters: cfg.maxFilters,
    max_limit: cfg.maxLimit,
    default_limit: cfg.defaultLimit,
    max_subid_length: cfg.maxSubidLength,
    max_event_tags: cfg.maxEventTags,
    max_content_length: cfg.maxContentLength,
    min_pow_difficulty: cfg.minPowDifficulty,
    auth_required: cfg.authRead,
    payment_required: false,
    restricted_writes: cfg.authWrite,
    created_at_lower_limit: cfg.createdAtLowerLimit,
    created_at_upper_limit: cfg.createdAtUpperLimit,
  };
  // Not in NIP-11: a per-kind minimum (e.g. NIP-90 job requests) beside the global one.
  if (Object.keys(cfg.powByKind).length > 0) limitation.min_pow_difficulty_by_kind = cfg.powByKind;
  const doc: Record<string, unknown> = {
    name: cfg.name,
    description: cfg.description,
    supported_nips: supportedNips(cfg, features),
    software: SOFTWARE,
    version: VERSION,
    limitation,
  };
  if (cfg.pubkey) doc.pubkey = cfg.pubkey;
  if (cfg.contact) doc.contact = cfg.contact;
  return doc;
}
