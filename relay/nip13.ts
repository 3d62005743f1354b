// NIP-13 proof of work: an event's difficulty is the number of leading zero bits of its id. A
// `nonce` tag may commit to a target difficulty; an event that committed to less than the relay
// asks for is refused even if it got lucky, so that spammers cannot farm lucky ids.
import type { NostrEvent } from "./event.ts";

/** Leading zero bits of a 64-character hex id. */
export function powDifficulty(id: string): number {
  let bits = 0;
  for (let i = 0; i < id.length; i++) {
    const nibble = parseInt(id[i]!, 16);
    if (nibble === 0) {
      bits += 4;
      continue;
    }
    return bits + Math.clz32(nibble) - 28;
  }
  return bits;
}

/** Why an event does not carry `required` bits of work (with the `pow:` prefix), or null. */
export function checkPow(e: NostrEvent, required: number): string | null {
  if (required <= 0) return null;
  const have = powDifficulty(e.id);
  if (have < required) return `pow: difficulty ${have} is less than ${required}`;
  const nonce = e.tags.find((t) => t[0] === "nonce");
  if (nonce !== undefined && nonce[2] !== undefined) {
    const target = Number(nonce[2]);
    if (!Number.isInteger(target) || target < required) return `pow: committed target ${nonce[2]} is less than ${required}`;
  }
  return null;
}
