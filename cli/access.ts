// What to tell a person whose credential an edge workspace refused: who they are to the edge,
// and how to get access (the owner grants it; the edge's message does not name the owner).
import type { FsError } from "../runtime/errors.ts";
import { edgeCredential } from "./credentials.ts";

export function accessHint(e: FsError, ws: { name: string; origin: string }): string | undefined {
  if (e.code !== "EACCES" && e.code !== "EPERM") return undefined;
  const { signer } = edgeCredential();
  if (!signer) return `OANIX_TOKEN does not allow this in workspace "${ws.name}"; ask its owner for a token that does (oanix ws grant)`;
  const edge = ws.origin === "http://127.0.0.1:8787" ? "" : ` --edge ${ws.origin}`;
  return `you are key ${signer.pubkey}; workspace "${ws.name}" belongs to another key, whose owner can give you access: oanix ws grant ${ws.name} --pubkey ${signer.pubkey} --rights rw${edge}`;
}
