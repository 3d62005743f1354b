// What a name in a workspace may be. A path is checked by services/remote-wire.ts `wirePath`
// (the wire's rule: segments, no climbing out, no NUL), then each name here:
// - well-formed Unicode only (a lone surrogate could never be stored and found again): EILSEQ;
// - at most 255 bytes of UTF-8 (as Linux NAME_MAX counts): ENAMETOOLONG;
// - no control characters (U+0001–U+001F, U+007F): EINVAL — they break terminals and logs;
// - no normalisation: a name is stored as given, so NFC "é" and NFD "é" are two names (as on
//   Linux); clients that want one form normalise before they send.
import { FsError } from "../../runtime/errors.ts";
import { MAX_NAME } from "../../runtime/path.ts";
import { wirePath } from "../../services/remote-wire.ts";

const CONTROL = /[\u0001-\u001f\u007f]/;
const utf8 = new TextEncoder();

export function checkName(name: string): void {
  if (!name.isWellFormed()) throw new FsError("EILSEQ", "name is not well-formed Unicode", { path: name.toWellFormed() });
  if (CONTROL.test(name)) throw new FsError("EINVAL", "name contains a control character", { path: JSON.stringify(name) });
  if (utf8.encode(name).length > MAX_NAME) throw new FsError("ENAMETOOLONG", `name longer than ${MAX_NAME} bytes of UTF-8`);
}

/** A workspace path from a request, normalised and checked ("" is the root). */
export function pathOf(raw: string): string {
  const path = wirePath(raw);
  if (path !== "") for (const name of path.split("/")) checkName(name);
  return path;
}
