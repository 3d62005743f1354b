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

function parseSecret(s: string, where: string): string {
  const t = s.trim();
  if (/^[0-9a-fA-F]{64}$/.test(t)) return t.toLowerCase();
  if (t.startsWith("nsec1")) {
    const d = decode(t);
    if (d.type === "nsec") return bytesToHex(d.data);
  }
  throw new Error(`${where}: a nostr secret key is 64 hex digits or an nsec`);
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
