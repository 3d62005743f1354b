// Public surface of relay/: the Durable Object class, the Worker route handler, and the NIP-90
// edge-agent hook.
export { NostrRelay, type RelayEnv } from "./relay.ts";
export { RelayStorageShard } from "./shard.ts";
export { handleRelayRequest, relayShards, relayStub, RELAY_OBJECT } from "./http.ts";
export { defineEdgeAgent, type AgentRegistration, type EdgeAgentHandler, type JobContext, type PublishResult } from "./nip90.ts";
export type { NostrEvent } from "./event.ts";
export type { RelayConfig } from "./config.ts";
