// Helpers for the capability tests: a namespace with /logs, and request/reply as a guest does it.
import { isFsError, type ErrorCode } from "../../runtime/errors.ts";
import { Namespace } from "../../runtime/namespace.ts";
import type { FileService } from "../../runtime/types.ts";
import { LogsService } from "../logs.ts";

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

export function capNamespace(): { ns: Namespace; logs: LogsService; capErrors: () => Record<string, unknown>[] } {
  const logs = new LogsService();
  const ns = new Namespace().mount("/logs", logs);
  return { ns, logs, capErrors: () => logs.events().filter((e) => e.event === "cap.error") };
}

/** Reads a handle to EOF. */
export async function readAll(h: { read(n: number): Uint8Array | Promise<Uint8Array> }, chunk = 65536): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const b = await h.read(chunk);
    if (!b.length) break;
    parts.push(b.slice());
    size += b.length;
  }
  const out = new Uint8Array(size);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Writes a request and reads the whole reply, as an agent does on a request/reply file. */
export async function ask(fs: FileService, path: string, request: string | Uint8Array): Promise<string> {
  const h = await fs.open(path, { read: true, write: true });
  try {
    await h.write(typeof request === "string" ? enc(request) : request);
    return dec(await readAll(h));
  } finally {
    await h.close();
  }
}

export async function askJson(fs: FileService, path: string, request: unknown): Promise<Record<string, unknown>> {
  return JSON.parse(await ask(fs, path, typeof request === "string" ? request : JSON.stringify(request))) as Record<string, unknown>;
}

/** The error code a promise fails with, or "no error". */
export async function failsWith(p: Promise<unknown> | (() => unknown)): Promise<ErrorCode | "no error"> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    if (isFsError(e)) return e.code;
    throw e;
  }
  return "no error";
}

export async function readText(fs: FileService, path: string): Promise<string> {
  const h = await fs.open(path, { read: true });
  try {
    return dec(await readAll(h));
  } finally {
    await h.close();
  }
}
