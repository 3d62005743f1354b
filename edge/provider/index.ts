// The edge-hosted NIP-90 provider (edge/README.md, "Edge providers"): importing this module
// defines the `oanix-provider` handler in the Worker bundle (handler.ts); the Worker registers
// wrangler.toml's providers on each relay connection (relay.ts) and serves the admin route (http.ts).
import "./handler.ts";

export { ensureConfigured } from "./relay.ts";
export { ProviderJob } from "./job.ts";
export { providers } from "./http.ts";
export type { ProviderConfig, ProviderEnv } from "./config.ts";
