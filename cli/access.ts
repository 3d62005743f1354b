// What to tell a person whose credential an edge workspace refused: who they are to the edge,
// whose workspace it is (when the edge lets us see: the local edge lists owners to its admin key,
// the key that started it), and how to get access (its owner grants it).
import type { FsError } from "../runtime/errors.ts";
import { edgeCredential } from "./credentials.ts";
import { EdgeClient, LOCAL_EDGE } from "./edge-client.ts";

export async function accessHint(e: FsError, ws: { name: string; origin: string }): Promise<string | undefined> {
  if (e.code !== "EACCES" && e.code !== "EPERM") return undefined;
  const cred = edgeCredential();
  if (!cred.signer) return `OANIX_TOKEN does not allow this in workspace "${ws.name}"; ask its owner for a token that does (oanix ws grant)`;
  const me = cred.signer.pubkey;
  const owner = await ownerOf(new EdgeClient(ws.origin, cred), ws.name);
  const whose = owner ? `belongs to key ${owner}` : "belongs to another key";
  const edge = ws.origin === LOCAL_EDGE ? "" : ` --edge ${ws.origin}`;
  return `you are key ${me}; workspace "${ws.name}" ${whose}, whose owner can give you access: oanix ws grant ${ws.name} --pubkey ${me} --rights rw${edge}`;
}

/** The workspace's owner, if this key may list every workspace (an admin key); else undefined. */
async function ownerOf(edge: EdgeClient, name: string): Promise<string | undefined> {
  try {
    const res = await edge.fetch("GET", "/w?all=1", { signal: AbortSignal.timeout(2000) });
    if (!res.ok) return undefined;
    const { workspaces } = (await res.json()) as { workspaces?: Array<{ name: string; owner?: string }> };
    return workspaces?.find((w) => w.name === name)?.owner;
  } catch {
    return undefined;
  }
}
