// Each failure of a mount said once on stderr. A guest sees only an errno (EACCES, EIO); the
// person at the terminal needs to know which mount failed and why. Failures that are ordinary
// answers (ENOENT, EEXIST, ENOTDIR, …) are the program's business and pass silently.
import { isFsError, type ErrorCode, type FsError } from "../runtime/errors.ts";
import type { FileHandle, FileService } from "../runtime/types.ts";

const MOUNT_FAILURES: ReadonlySet<ErrorCode> = new Set([
  "EACCES", "EPERM", "ENOTCAPABLE", "ECONNREFUSED", "ECONNRESET", "ENOTCONN", "EIO", "ETIMEDOUT",
  "EAGAIN", "ENOSPC", "EDQUOT", "EMFILE",
]);

export interface Reporter {
  /** The mount's description, e.g. "/workspace (http://127.0.0.1:8787/w/demo)". */
  label: string;
  say(line: string): void;
  /** What to add to the line (how to get access, say). */
  hint?(e: FsError): string | undefined | Promise<string | undefined>;
}

/** The service, reporting each distinct failure (code and message) once through `r.say`. */
/** Lines whose hint is still being looked up. */
const pending: Promise<void>[] = [];

/** Resolves once every failure reported so far has been said (call before exiting). */
export async function allSaid(): Promise<void> {
  while (pending.length) await Promise.all(pending.splice(0));
}

export function reportingFailures<S extends FileService>(service: S, r: Reporter): S {
  const said = new Set<string>();
  const report = (e: unknown): void => {
    if (!isFsError(e) || !MOUNT_FAILURES.has(e.code)) return;
    const key = e.message;
    if (said.has(key)) return;
    said.add(key);
    const line = (hint?: string) => r.say(`${r.label}: ${e.message}${hint ? ` (${hint})` : ""}`);
    const hint = r.hint?.(e);
    if (hint instanceof Promise) pending.push(hint.then(line, () => line()));
    else line(hint);
  };
  const wrap = <T extends object>(target: T, isService: boolean): T =>
    new Proxy(target, {
      get(t, prop) {
        const v = Reflect.get(t, prop, t);
        if (typeof v !== "function") return v;
        return (...args: unknown[]) => {
          let out: unknown;
          try {
            out = v.apply(t, args);
          } catch (e) {
            report(e);
            throw e;
          }
          if (out instanceof Promise) {
            return out.then(
              (x) => (isService && prop === "open" ? wrap(x as FileHandle, false) : x),
              (e) => { report(e); throw e; },
            );
          }
          return isService && prop === "open" ? wrap(out as FileHandle, false) : out;
        };
      },
    });
  return wrap(service, true);
}
