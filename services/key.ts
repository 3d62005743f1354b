// The CLI's nostr key (Node only): OANIX_KEY (64 hex digits or an nsec) if set, else
// $OANIX_CONFIG_DIR or ~/.config/oanix/key, created on first use with mode 0600.
import { mkdirSync, readFileSync, writeFileSync, chmodSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { decode } from "nostr-tools/nip19";
import { bytesToHex } from "@noble/hashes/utils.js";
import { keySigner, newSecretKey, type Signer } from "./nip98.ts";

export const configDir = (): string => process.env.OANIX_CONFIG_DIR ?? join(homedir(), ".config", "oanix");
export const keyPath = (): string => join(configDir(), "key");

/** The secret (hex) in `s`; anything else fails at once, naming `where` the key came from. */
function parseSecret(s: string, where: string): string {
  const t = s.trim();
  let hex: string | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(t)) hex = t.toLowerCase();
  else if (t.startsWith("nsec1")) {
    try {
      const d = decode(t);
      if (d.type === "nsec") hex = bytesToHex(d.data);
    } catch {
      // a mistyped nsec: said below
    }
  }
  if (!hex) throw new Error(`${where}: not a nostr secret key (64 hex digits or an nsec)`);
  try {
    keySigner(hex); // 0 and numbers past the curve order are not keys
  } catch {
    throw new Error(`${where}: not a valid secp256k1 secret key`);
  }
  return hex;
}

/** The secret key (hex), creating and saving one on first use. */
export function loadSecret(): string {
  if (process.env.OANIX_KEY) return parseSecret(process.env.OANIX_KEY, "OANIX_KEY");
  const p = keyPath();
  try {
    return parseSecret(readFileSync(p, "utf8"), p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  const sk = newSecretKey();
  mkdirSync(configDir(), { recursive: true, mode: 0o700 });
  try {
    writeFileSync(p, sk + "\n", { mode: 0o600, flag: "wx" });
  } catch (e) {
    // Another process created it first: use theirs.
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return parseSecret(readFileSync(p, "utf8"), p);
    throw e;
  }
  chmodSync(p, 0o600);
  return sk;
}

export function loadKey(): Signer {
  return keySigner(loadSecret());
}
