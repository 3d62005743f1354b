// Namespace federation: an agent id's mounts from the edge's registry (PUT /registry/ID with
// {mounts: {"/workspace": "http://…/w/NAME", …}}), turned into `oanix run` mounts.
import { edgeCredential } from "./credentials.ts";
import { EdgeClient, EdgeFailure, edgeOrigin } from "./edge-client.ts";
import type { MountArg } from "./run.ts";
import { CommandError, UsageError } from "./usage.ts";

export async function registryMounts(agent: string, edgeFlag?: string): Promise<MountArg[]> {
  const edge = new EdgeClient(edgeOrigin(edgeFlag), edgeCredential());
  let entry: { mounts?: unknown };
  try {
    entry = await edge.json("GET", `/registry/${agent}`);
  } catch (e) {
    // Without the registry there is no namespace to run in: a setup error.
    if (e instanceof EdgeFailure) throw new UsageError(`agent ${agent}: ${e.code}: ${e.detail} (the registry at ${edge.origin})`);
    if (e instanceof CommandError) throw new UsageError(`agent ${agent}: ${e.message}`);
    throw e;
  }
  const mounts = entry.mounts;
  if (typeof mounts !== "object" || mounts === null || Array.isArray(mounts)) throw new UsageError(`agent ${agent}: the registry entry has no mounts`);
  return Object.entries(mounts as Record<string, unknown>).map(([path, source]) => {
    if (!path.startsWith("/") || typeof source !== "string") throw new UsageError(`agent ${agent}: bad registry mount ${JSON.stringify(path)}`);
    return { path, source, readOnly: false };
  });
}
