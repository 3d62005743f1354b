// The browser's nostr key: created on first use and kept in IndexedDB (database "oanix", store
// "keys"), so the page and its workers sign as the same key across reloads. The secret never
// leaves the origin; a page that wants a NIP-07 extension passes its own signer instead.
import { getPublicKey } from "nostr-tools/pure";
import { hexToBytes } from "@noble/hashes/utils.js";
import { keySigner, newSecretKey, type Signer } from "../services/nip98.ts";

const DB = "oanix";
const STORE = "keys";
const ID = "default";

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((res, rej) => {
    r.onsuccess = () => res(r.result);
    r.onerror = () => rej(r.error);
  });
}

function openDb(): Promise<IDBDatabase> {
  const r = indexedDB.open(DB, 1);
  r.onupgradeneeded = () => r.result.createObjectStore(STORE);
  return request(r);
}

/** The secret key (hex). Two callers racing on first use agree: the first `add` wins. */
export async function browserSecret(): Promise<string> {
  const db = await openDb();
  try {
    const have = await request(db.transaction(STORE).objectStore(STORE).get(ID));
    if (typeof have === "string") return have;
    const fresh = newSecretKey();
    try {
      await request(db.transaction(STORE, "readwrite").objectStore(STORE).add(fresh, ID));
      return fresh;
    } catch {
      return (await request(db.transaction(STORE).objectStore(STORE).get(ID))) as string; // someone else's add won
    }
  } finally {
    db.close();
  }
}

export async function browserSigner(): Promise<Signer> {
  return keySigner(await browserSecret());
}

export async function browserPubkey(): Promise<string> {
  return getPublicKey(hexToBytes(await browserSecret()));
}
