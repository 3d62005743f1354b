// Path rules, in one place for every service. Paths are split into segments after folding `.`,
// `..` and repeated slashes; `..` at the root stays at the root (Plan 9), so a normalised path can
// never climb above where it starts.
//
// Names (decided here, once):
// - A name is well-formed Unicode: a lone UTF-16 surrogate cannot be written as UTF-8, so such a
//   name could never be named again by a WASI guest or a remote client: EILSEQ.
// - NUL, the C0 control characters (U+0001–U+001F) and DEL are refused (EINVAL), as Plan 9's
//   `isfrog` table does: names are shown in listings, logs and terminals, where a control
//   character is an escape sequence, not a name.
// - Lengths are counted in UTF-8 bytes, as the guest and the wire see them: a name is at most
//   255 bytes and a path at most 4096 (ENAMETOOLONG).
// - No Unicode normalisation: "é" as one code point (NFC) and as e + U+0301 (NFD) are two names, as
//   on Linux. What a program writes is what it reads back.
import { fsError } from "./errors.ts";

export const MAX_PATH = 4096;
export const MAX_NAME = 255;

const CONTROL = /[\x00-\x1f\x7f]/;

/** UTF-8 length of a string (lone surrogates count 3, as U+FFFD would). */
export function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 2; // a pair: 2 units, 4 bytes
      i++;
    } else n += 2;
  }
  return n;
}

/** Throws unless `name` is a valid single name (see the rules above); "", "." and ".." are not names. */
export function checkName(name: string, path = name): void {
  if (name === "" || name === "." || name === ".." || name.includes("/")) throw fsError("EINVAL", `${JSON.stringify(name)}: not a name`, { path });
  checkSegment(name, path);
}

function checkSegment(s: string, path: string): void {
  // Three UTF-8 bytes per UTF-16 unit at most: short names need no count.
  if (s.length > MAX_NAME / 3 && utf8Length(s) > MAX_NAME) throw fsError("ENAMETOOLONG", `name longer than ${MAX_NAME} bytes`, { path });
  if (CONTROL.test(s)) throw fsError("EINVAL", s.includes("\0") ? "path contains NUL" : "name contains a control character", { path });
  if (!s.isWellFormed()) throw fsError("EILSEQ", "name is not well-formed Unicode (a lone surrogate)", { path });
}

/** Normalises a path to its segments; refuses bad names and over-long paths. */
export function segments(path: string): string[] {
  if (path.length > MAX_PATH / 3 && utf8Length(path) > MAX_PATH) throw fsError("ENAMETOOLONG", `path longer than ${MAX_PATH} bytes`, { path: path.slice(0, 64) + "…" });
  const out: string[] = [];
  for (const s of path.split("/")) {
    if (s === "" || s === ".") continue;
    if (s === "..") out.pop();
    else {
      checkSegment(s, path);
      out.push(s);
    }
  }
  return out;
}

/**
 * Folds a relative path onto the directory `base` (its segments): the rule of WASI's capabilities,
 * where `..` may not climb above the directory it starts from (EPERM), unlike `segments`, where it
 * stops at the root. The edge's wire has the same rule with EINVAL (services/remote-wire.ts).
 */
export function below(base: readonly string[], rel: string, climb: "EPERM" | "EINVAL" = "EPERM"): string[] {
  const stack = [...base];
  for (const s of rel.split("/")) {
    if (s === "" || s === ".") continue;
    if (s === "..") {
      if (stack.length === base.length) throw fsError(climb, `${rel}: climbs above its directory`, { path: rel });
      stack.pop();
    } else {
      checkSegment(s, rel);
      stack.push(s);
    }
  }
  return stack;
}

/** True when a name is longer than MAX_NAME UTF-8 bytes (for fast paths that check only this). */
export const tooLong = (name: string): boolean => name.length > MAX_NAME / 3 && utf8Length(name) > MAX_NAME;

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
