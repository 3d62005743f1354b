// --wallet nostr+walletconnect://… (oanix job, serve and run): a NIP-47 client, or a usage error
// naming the flag.
import { NwcClient } from "../agents/host/wallet.ts";
import { UsageError } from "./usage.ts";

export function walletFlag(uri: string | undefined): NwcClient | undefined {
  if (uri === undefined) return undefined;
  try {
    return new NwcClient(uri);
  } catch (e) {
    throw new UsageError(`--wallet: ${(e as Error).message}`);
  }
}
