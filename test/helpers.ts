// Small helpers shared by the test suites.
import { FsError } from "../runtime/errors.ts";
import type { ErrorCode } from "../runtime/errors.ts";

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

/**
 * The FsError code a call fails with, or "no error". A call that answers a Promise fails when the
 * Promise rejects, so the answer is always awaited: `expect(await code(() => svc.open(…)))`.
 * Anything thrown that is not an FsError fails the test.
 */
export async function code(fn: () => unknown): Promise<ErrorCode | "no error"> {
  try {
    await fn();
  } catch (e) {
    if (e instanceof FsError) return e.code;
    throw e;
  }
  return "no error";
}

/** The error a call fails with (thrown or rejected), or null. */
export async function failure(fn: () => unknown): Promise<Error | null> {
  try {
    await fn();
  } catch (e) {
    return e as Error;
  }
  return null;
}

/** The message a call fails with (thrown or rejected), or "". */
export async function message(fn: () => unknown): Promise<string> {
  return (await failure(fn))?.message ?? "";
}
