// Who the CLI is at the edge: a capability token (OANIX_TOKEN) or the nostr key (OANIX_KEY, else
// ~/.config/oanix/key). A key that cannot be used fails here, at once, naming where it came from.
import { keyPath, loadKey } from "../services/key.ts";
import type { Signer } from "../services/nip98.ts";
import { UsageError } from "./usage.ts";

export type Credential = { signer: Signer; token?: undefined } | { token: string; signer?: undefined };

/** The CLI's signing key (a malformed key is a UsageError naming it). */
export function cliKey(): Signer {
  try {
    return loadKey();
  } catch (e) {
    const where = process.env.OANIX_KEY ? "OANIX_KEY" : keyPath();
    const msg = (e as Error).message;
    throw new UsageError(msg.startsWith(where) ? msg : `${where}: ${msg}`);
  }
}

/** The credential for an edge request: OANIX_TOKEN if set, else the key. */
export function edgeCredential(): Credential {
  const token = process.env.OANIX_TOKEN;
  return token ? { token } : { signer: cliKey() };
}

/** Who we are, for messages: "key <hex>" or "a capability token". */
export const whoami = (c: Credential): string => (c.signer ? `key ${c.signer.pubkey}` : "a capability token (OANIX_TOKEN)");
