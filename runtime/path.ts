// Path rules: paths are split into segments after folding `.`, `..` and repeated slashes. `..` at
// the root stays at the root (Plan 9), so a normalised path can never climb above where it starts.
import { fsError } from "./errors.ts";

export const MAX_PATH = 4096;
export const MAX_NAME = 255;

/** Normalises a path to its segments; rejects NUL, over-long paths and names. */
export function segments(path: string): string[] {
  if (path.length > MAX_PATH) throw fsError("ENAMETOOLONG", `path longer than ${MAX_PATH}`);
  if (path.includes("\0")) throw fsError("EINVAL", "path contains NUL");
  const out: string[] = [];
  for (const s of path.split("/")) {
    if (s === "" || s === ".") continue;
    if (s === "..") out.pop();
    else {
      if (s.length > MAX_NAME) throw fsError("ENAMETOOLONG", `name longer than ${MAX_NAME}`);
      out.push(s);
    }
  }
  return out;
}

/** The normalised relative form ("a/b", "" for the root) used inside services. */
export const normalize = (path: string): string => segments(path).join("/");

/** The normalised absolute form ("/a/b", "/" for the root) used by namespaces. */
export const absolute = (path: string): string => "/" + segments(path).join("/");

export function parent(path: string): string {
  const s = segments(path);
  s.pop();
  return s.join("/");
}

export function basename(path: string): string {
  const s = segments(path);
  return s.length ? s[s.length - 1]! : "";
}

export const join = (...parts: string[]): string => normalize(parts.join("/"));
