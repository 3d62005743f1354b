// A NIP-47 wallet at the edge, from a workspace secret holding its connection URI: the wallet a
// priced edge provider collects with (provider/payment.ts) and the one an edge run pays the agents
// it hires from (/cap/nostr/jobs, mount.ts). The secret must be bound to the host of the wallet's
// relay, as any secret is bound to where it may go; its value never leaves the Worker except as
// NIP-47 requests to that relay. The client is Node's (agents/host/nwc.ts) over the edge's relay
// links (party.ts): a wallet on the edge's own relay is reached in-process.
import { FsError } from "../../runtime/errors.ts";
import { WalletClient, parseWalletUri } from "../../agents/host/nwc.ts";
import type { NostrRelay } from "../../relay/relay.ts";
import { partyOn } from "./party.ts";

export interface OpenedSecret {
  value: string;
  hosts: string[];
}

/** The wallet the secret `name` connects to; EINVAL when it is not a wallet URI bound to its relay's host. */
export function walletOf(name: string, secret: OpenedSecret, relay: DurableObjectNamespace<NostrRelay>, origin: string | undefined): WalletClient {
  let relays: string[];
  try {
    relays = parseWalletUri(secret.value).relays;
  } catch (e) {
    throw new FsError("EINVAL", `the wallet secret ${name}: ${(e as Error).message}`);
  }
  const unbound = relays.map((u) => new URL(u).host).filter((h) => !secret.hosts.includes(h));
  if (unbound.length) throw new FsError("EINVAL", `the wallet secret ${name} is not bound to ${[...new Set(unbound)].join(", ")}`);
  return new WalletClient(secret.value, (urls, sk) => partyOn(relay, origin, urls[0]!, sk));
}
