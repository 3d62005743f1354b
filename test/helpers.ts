// Small helpers shared by the test suites.
import { FsError } from "../runtime/errors.ts";
import type { ErrorCode } from "../runtime/errors.ts";

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

/** The FsError code a call fails with, or "no error". */
export function code(fn: () => unknown): ErrorCode | "no error" {
  try {
    fn();
  } catch (e) {
    if (e instanceof FsError) return e.code;
    throw e;
  }
  return "no error";
}

/** The message a call fails with, or "". */
export function message(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  return "";
}
